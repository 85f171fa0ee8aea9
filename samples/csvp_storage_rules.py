"""The IClusterStorage2/IClusterStorage3 rules of the inventory (docs/rules.md), each broken once
and each come close to without breaking it. Built from dissectors/definitions/csvp.py like the other ClusPrep
samples, in clear so every rule can read parameters and answers.

- clusprep_storage_violations: one storage object on NODE1 whose server and client break, in
  order: PrepareNode accepted twice (C05), GetDsms accepted before Phase2 (C07), Phase2 accepted
  twice (C06), GetUniqueIds refused for the disk's state (C11, on a disk whose states the
  refusal then leaves unknown, 3.2.6), a disk the server said it lacks answered ERROR_INVALID_STATE (C12),
  IsOnline on a disk never attached answered S_OK (C13), a second Attach refused (C21),
  UnRegister on a disk never registered (C33), Offline
  accepted on a disk not online (C15), StopDefense accepted on a disk not owned (C14), a
  600-byte RawWrite accepted (C19), a RawRead answering fewer bytes than asked (C18), raw I/O on
  a sector GetArbSectors did not give (C29), IsPRPresent answering Present 5 (C23), Register ->
  Reserve with no Clear before (C37), Release and Preempt with no reservation (C36, C35), IsNtfs
  contradicting GetFSName (C22), a file written on a RAW volume (C17), an empty file-system name
  (C25), a partition past MaxPartitionNumber served (C16), IsOnline answering ERROR_NOT_READY on
  an online disk (C24), GetUniqueIds refusing a buffer that holds the data (C26);
  then over IClusterStorage3: pool name and id for a disk outside a pool (C57), FindKey3 and
  IsPRPresent3 before Register3 and Reserve3 (C38, C39), Register3 -> Reserve3 with no Clear3
  (C40), share paths that are names, not addresses (C27), and Connect with paths no Create
  returned (C41). The clients' own breaks that come with them (calls on a disk not attached,
  not online, ...) are found too. (C56, a DiskIdType outside CPREP_DISKID_ENUM, is in
  clusprep_malformed: such a stub does not parse.)
- clusprep_storage_near_misses: the same object's calls done right, each as close to its rule
  as conforming behaviour gets (NEAR_MISSES says how, per inventory id), on three connections:
  NODE1's object prepared on one and called again, without PrepareNode, on a second
  connection with the same IPIDs (state belongs to the object), disks named in one CPREP_DISKID
  form after being attached in another (a DISK_PROPS answer joins them), and the shares NODE1
  created connected to from NODE2 (a second server, as 3.5.4.7 describes); device number 5 of the
  3 disks Phase2 counted, served (Windows numbers keep gaps); a 512-byte RawRead failing with
  ERROR_READ_FAULT (a failing disk); a disk lost after it came online (GetFSName and IsOnline
  answering ERROR_NOT_READY: its states are unknown then, 3.2.6); and on NODE1 a second object
  whose CprepPrepareNode the server refuses with ERROR_INVALID_SERVER_STATE (3.2.1: the server's
  Prepare State is no longer Initial), its later calls served. It has no storage finding (its
  binds are unauthenticated, which the RPC-level rules note). tests/test_real_captures.py cuts it
  to its second connection: a reconnect whose object's start the capture lacks.
"""
from __future__ import annotations

from dissectors.definitions import csvp
from . import csvp_payloads as P
from . import dcerpc
from .csvp_scenarios import (CLIENT, DISK, MBR_DISK, NODE1, NODE2, NUMBERED_DISK, ClusPrepClient, _text,
                             disk_props, disk_props_ex, ipid)
from .network import Capture

S2, S3 = csvp.IClusterStorage2, csvp.IClusterStorage3
ERROR_INVALID_SERVER_STATE, ERROR_INVALID_STATE = 0x80070548, 0x8007139F
ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND, ERROR_NOT_READY = 0x80070002, 0x80070490, 0x80070015
ERROR_WRONG_DISK, ERROR_INSUFFICIENT_BUFFER, E_FAIL = 0x80070022, 0x8007007A, 0x80004005
GUID_NULL = "00000000-0000-0000-0000-000000000000"
K1, K2 = 0x0000B10C00000001, 0x0000B10C00000002
UNIQUE_IDS = P.device_id_descriptor()
OTHER_DISK = dict(DiskIdType="CprepIdSignature", DiskSignature=0x1C0FFEE1)  # device 1, an MBR disk


def _prepare(c: ClusPrepClient) -> None:
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=5))
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))


def violations() -> bytes:
    cap = Capture()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50501))
    c.bind(S2)
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=5))
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=5))  # C05
    c.call(S2, "CprepDiskGetDsms", dict(Size=1024),
           dict(pReserved=len(P.registered_dsms()), RegisteredDsms=P.registered_dsms()))  # C07: still Preparing
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))  # C06: already Online
    c.call(S2, "CprepDiskGetProps", dict(DiskId=NUMBERED_DISK), dict(DiskProps=disk_props()))
    c.call(S2, "CprepDiskGetUniqueIds", dict(DiskId=OTHER_DISK, cbData=512), hresult=ERROR_INVALID_STATE)  # C11
    c.call(S2, "CprepDiskGetProps", dict(DiskId=MBR_DISK), hresult=ERROR_FILE_NOT_FOUND)
    c.call(S2, "CprepDiskIsReadable", dict(DiskId=MBR_DISK), hresult=ERROR_INVALID_STATE)  # C12: it has none
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK))  # C13: never attached, answered S_OK
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK), hresult=E_FAIL)  # C21: already attached
    c.call(S2, "CprepDiskAttach", dict(DiskId=OTHER_DISK))
    c.call(S2, "CprepDiskPRUnRegister", dict(DiskId=OTHER_DISK))  # C33: never registered
    c.call(S2, "CprepDiskOffline", dict(DiskId=DISK))  # C15: not online, answered S_OK
    c.call(S2, "CprepDiskStopDefense", dict(DiskId=DISK))  # C14: not owned, answered S_OK
    c.call(S2, "CprepDiskPRArbitrate", dict(DiskId=DISK))
    c.call(S2, "CprepDiskGetArbSectors", dict(DiskId=DISK), dict(SectorX=11, SectorY=12))
    c.call(S2, "CprepDiskRawWrite", dict(DiskId=DISK, ulSector=11, cbData=600, pbData=_text(600)),
           dict(pcbDataWritten=512, ulLatency=3))  # C19: more than a sector, accepted
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=12, cbData=512),
           dict(pbData=_text(256), pcbDataRead=256, ulLatency=2))  # C18: pcbDataRead is not cbData
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=40, cbData=512),
           dict(pbData=_text(512), pcbDataRead=512, ulLatency=2))  # C29: not an arbitration sector
    c.call(S2, "CprepDiskIsPRPresent", dict(DiskId=DISK), dict(Present=5))  # C23
    c.call(S2, "CprepDiskPRRegister", dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRReserve", dict(DiskId=DISK))  # C37: no PRClear before the Register
    c.call(S2, "CprepDiskPRRelease", dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRUnRegister", dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRRelease", dict(DiskId=DISK))  # C36: none to release
    c.call(S2, "CprepDiskPRPreempt", dict(DiskId=DISK))  # C35: no reservation in effect
    c.call(S2, "CprepDiskPRUnRegister", dict(DiskId=DISK))
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), dict(FsName="NTFS"))
    c.call(S2, "CprepDiskDiskPartitionIsNtfs", dict(DiskId=DISK, ulPartition=1), hresult=ERROR_WRONG_DISK)  # C22
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=2), dict(FsName="RAW"))
    c.call(S2, "CprepDiskWriteFileData", dict(DiskId=DISK, ulPartition=2, FileName="ClusPrepTest.txt", cbDataIn=4,
                                              DataIn=b"test"))  # C17: no file system there, answered S_OK
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), dict(FsName=""))  # C25
    c.call(S2, "CprepDiskDiskPartitionIsNtfs", dict(DiskId=DISK, ulPartition=5))  # C16: partition 5 of 2
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=ERROR_NOT_READY)  # C24: it is online
    c.call(S2, "CprepDiskGetUniqueIds", dict(DiskId=DISK, cbData=16),
           dict(pcbNeeded=8), hresult=ERROR_INSUFFICIENT_BUFFER)  # C26: 8 bytes fit in 16
    c.alter_context(S3)
    props = disk_props_ex()
    props["Flags"] &= ~0x20000000  # not a pool drive, yet a pool name and id: C57
    c.call(S3, "CprepDiskGetProps3", dict(DiskId=DISK), dict(pDiskProps=props))
    c.call(S3, "CprepDiskFindKey3", dict(DiskId=DISK, Key=K1), dict(pbFound=0))  # C38: before Register3
    c.call(S3, "CprepDiskIsPRPresent3", dict(DiskId=DISK, Key=K1), hresult=ERROR_NOT_FOUND)  # C39: before Reserve3
    c.call(S3, "CprepDiskPRRegister3", dict(DiskId=DISK, OldPrKey=0, NewPrKey=K1))
    c.call(S3, "CprepDiskPRReserve3", dict(DiskId=DISK, Key=K1))  # C40: no PRClear3 before the Register3
    c.call(S3, "CprepDiskPRRelease3", dict(DiskId=DISK, Key=K1))
    names = ["\\\\NODE1\\ClusPrepShare$-2d5c7a10"]
    c.call(S3, "CprepCreateNewSmbShares3", outs=dict(ppwszSharePaths=names, pdwNumberOfPaths=1))  # C27
    c.call(S3, "CprepConnectToNewSmbShares3", dict(ppwszSharePaths=["\\\\10.0.0.12"], dwNumberOfPaths=1))  # C41
    c.conn.close()
    return cap.pcapng()


NEAR_MISSES = {"clusprep_storage_near_misses": {
    "C05": "a second CprepPrepareNode, refused with ERROR_INVALID_SERVER_STATE; a second object's CprepPrepareNode "
           "refused so (the server's state), its later calls served",
    "C06": "a second CprepPrepareNodePhase2 once Online, refused with ERROR_INVALID_SERVER_STATE",
    "C07": "calls on a second connection to the prepared object (same IPIDs), served",
    "C08": "the second connection's first call is not CprepPrepareNode: the object was prepared on the first",
    "C09": "no CprepPrepareNodePhase2 on the second connection: the object's Phase2 is done",
    "C10": "AttachDisksOnSystemBus 1",
    "C11": "CprepDiskGetProps and CprepDiskGetUniqueIds on a disk not attached, served",
    "C12": "a disk the server lacks (GetProps ERROR_FILE_NOT_FOUND) asked to Attach, answered ERROR_NOT_FOUND",
    "C13": "CprepDiskIsReadable by device number on the disk attached by GUID (GetProps joined the two)",
    "C14": "CprepDiskOnline right after CprepDiskPRArbitrate, served",
    "C15": "CprepDiskOffline on the online disk, served",
    "C16": "CprepDiskGetFSName on partition 2 of 2, served",
    "C17": "a RAW partition asked CprepDiskDiskPartitionIsNtfs, never written to",
    "C18": "a 100-byte CprepDiskRawRead answered pcbDataRead 100; a 512-byte one failing with ERROR_READ_FAULT",
    "C19": "a 100-byte CprepDiskRawWrite answered pcbDataWritten 512 (one padded sector)",
    "C20": "CprepDiskStopDefense after Arbitrate, Online and Offline",
    "C21": "CprepDiskAttach and CprepDiskOnline repeated, both S_OK",
    "C22": "IsNtfs ERROR_WRONG_DISK on the partition GetFSName calls RAW, S_OK on the NTFS one",
    "C23": "CprepDiskIsPRPresent answering Present 2 (held by this server)",
    "C24": "CprepDiskIsOnline ERROR_NOT_READY after Offline and after a SetOnline not yet done, S_OK once online; "
           "ERROR_NOT_READY on an online disk after a GetFSName found it not ready (lost to a local event)",
    "C25": "GetFSName names \"NTFS\" and \"RAW\"",
    "C26": "GetUniqueIds with 16 bytes: ERROR_INSUFFICIENT_BUFFER needing more; GetUniqueIds3 with no page 80h",
    "C27": "share paths \\\\10.0.10.11 and \\\\[fd00:20:11::11]",
    "C28": "calls by device number on the disk attached by GUID, by signature on the one attached by number",
    "C29": "raw I/O on SectorY of CprepDiskGetArbSectors",
    "C30": "CprepDiskGetFSName after CprepDiskOnline",
    "C31": "partition 2 of the 2 CprepDiskOnline reported",
    "C32": "a file written on the partition GetFSName found NTFS",
    "C33": "CprepDiskPRUnRegister after the Register",
    "C34": "CprepDiskPRReserve after the Register",
    "C35": "CprepDiskPRPreempt while reserved",
    "C36": "CprepDiskPRRelease while reserved",
    "C37": "CprepDiskPRClear, then Register and Reserve",
    "C38": "CprepDiskFindKey3 and PRReserve3 after PRRegister3",
    "C39": "IsPRPresent3, PRPreempt3 and PRRelease3 after PRReserve3",
    "C40": "PRClear3, PRRegister3, PRReserve3, PRPreempt3",
    "C41": "NODE2 connects to the paths NODE1's CprepCreateNewSmbShares3 returned",
    "C56": "device number 5 of the 3 disks Phase2 counted, asked, attached and answered (numbers keep gaps)",
    "C57": "DISK_PROPS_EX with pool name and id on a pool drive, and NULL and GUID_NULL on one outside a pool",
}}


def near_misses() -> bytes:
    cap = Capture()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50511))
    c.bind(S2)
    _prepare(c)
    c.call(S2, "CprepPrepareNode", hresult=ERROR_INVALID_SERVER_STATE)  # C05
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), hresult=ERROR_INVALID_SERVER_STATE)  # C06
    c.call(S2, "CprepDiskGetProps", dict(DiskId=NUMBERED_DISK), dict(DiskProps=disk_props()))  # C11, C56
    c.call(S2, "CprepDiskGetUniqueIds", dict(DiskId=DISK, cbData=16),
           dict(pcbNeeded=len(UNIQUE_IDS)), hresult=ERROR_INSUFFICIENT_BUFFER)  # C26
    c.call(S2, "CprepDiskGetUniqueIds", dict(DiskId=DISK, cbData=512),
           dict(pbData=UNIQUE_IDS, pcbDataOut=len(UNIQUE_IDS), pcbNeeded=len(UNIQUE_IDS)))
    c.call(S2, "CprepDiskGetProps", dict(DiskId=MBR_DISK), hresult=ERROR_FILE_NOT_FOUND)
    c.call(S2, "CprepDiskAttach", dict(DiskId=MBR_DISK), hresult=ERROR_NOT_FOUND)  # C12
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))  # C21
    c.call(S2, "CprepDiskIsReadable", dict(DiskId=NUMBERED_DISK))  # C13, C28: the same disk
    c.call(S2, "CprepDiskIsPRPresent", dict(DiskId=DISK), dict(Present=2))  # C23
    for name in ("CprepDiskPRClear", "CprepDiskPRRegister", "CprepDiskPRReserve", "CprepDiskPRPreempt",
                 "CprepDiskPRRelease", "CprepDiskPRUnRegister"):  # C33-C37
        c.call(S2, name, dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRArbitrate", dict(DiskId=DISK))
    c.call(S2, "CprepDiskGetArbSectors", dict(DiskId=DISK), dict(SectorX=11, SectorY=12))
    c.call(S2, "CprepDiskRawWrite", dict(DiskId=DISK, ulSector=12, cbData=100, pbData=_text(100)),
           dict(pcbDataWritten=512, ulLatency=3))  # C19, C29
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=12, cbData=100),
           dict(pbData=_text(100), pcbDataRead=100, ulLatency=2))  # C18
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=11, cbData=512),
           dict(pbData=b"", pcbDataRead=0, ulLatency=2), hresult=0x8007001E)  # C18: a failing disk
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))  # C14
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))  # C21
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK))  # C24
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), dict(FsName="NTFS"))  # C25, C30
    c.call(S2, "CprepDiskDiskPartitionIsNtfs", dict(DiskId=DISK, ulPartition=1))  # C22
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=2), dict(FsName="RAW"))  # C16, C31
    c.call(S2, "CprepDiskDiskPartitionIsNtfs", dict(DiskId=DISK, ulPartition=2), hresult=ERROR_WRONG_DISK)  # C17
    data = _text(64)
    c.call(S2, "CprepDiskWriteFileData", dict(DiskId=DISK, ulPartition=1, FileName="ClusPrepTest.txt",
                                              cbDataIn=len(data), DataIn=data))  # C32
    c.call(S2, "CprepDiskOffline", dict(DiskId=DISK))  # C15
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=ERROR_NOT_READY)  # C24
    c.call(S2, "CprepDiskSetOnline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=ERROR_NOT_READY)  # C24: the transition runs
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskOffline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskStopDefense", dict(DiskId=DISK))  # C20
    c.conn.close()

    # The same object on a second connection: its IPIDs, its state (C07, C08, C09)
    again = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50512))
    again.bind(S2)
    again.ipid["IClusterStorage2"] = c.ipid["IClusterStorage2"]
    again.call(S2, "CprepDiskIsReadable", dict(DiskId=DISK))
    again.alter_context(S3)
    again.call(S3, "CprepDiskGetUniqueIds3", dict(DiskId=DISK),
               dict(ppbDeviceIdHeader=UNIQUE_IDS, pcbDihSize=len(UNIQUE_IDS), ppDeviceDescriptor=None,
                    pcbDdSize=0))  # C26: no page 80h
    pooled = disk_props_ex()
    again.call(S3, "CprepDiskGetProps3", dict(DiskId=DISK), dict(pDiskProps=pooled))  # C57
    boot = dict(DiskIdType="CprepIdNumber", DeviceNumber=1)  # another disk, in no pool
    alone = dict(disk_props_ex(), DiskNumber=1, DiskId=OTHER_DISK,
                 pwszPoolName=None, guidPoolId=GUID_NULL, ExtendedFlags=0, Flags=0x00001000 | 0x00008000)
    again.call(S2, "CprepDiskAttach", dict(DiskId=boot))
    again.call(S3, "CprepDiskGetProps3", dict(DiskId=boot), dict(pDiskProps=alone))  # C57
    again.call(S3, "CprepDiskIsReadOnly3", dict(DiskId=OTHER_DISK), dict(pbReadOnly=0))  # C28: by its signature
    # the boot disk comes online, then a local event takes it (3.2.6): its answers are not held to it (C24)
    again.call(S2, "CprepDiskPRArbitrate", dict(DiskId=boot))
    again.call(S2, "CprepDiskOnline", dict(DiskId=boot), dict(MaxPartitionNumber=1))
    again.call(S2, "CprepDiskGetFSName", dict(DiskId=boot, Partition=1), hresult=ERROR_NOT_READY)
    again.call(S2, "CprepDiskIsOnline", dict(DiskId=boot), hresult=ERROR_NOT_READY)  # C24
    # device 5 of the 3 disks Phase2 counted: Windows numbers keep gaps after a LUN removal (C12, C56)
    gap = dict(DiskIdType="CprepIdNumber", DeviceNumber=5)
    again.call(S2, "CprepDiskGetProps", dict(DiskId=gap), dict(DiskProps=dict(
        disk_props(), DiskNumber=5, DiskId=dict(DiskIdType="CprepIdSignature", DiskSignature=0x2C0FFEE5))))
    again.call(S2, "CprepDiskAttach", dict(DiskId=gap))
    again.call(S3, "CprepDiskPRClear3", dict(DiskId=DISK, Key=0))
    again.call(S3, "CprepDiskPRRegister3", dict(DiskId=DISK, OldPrKey=0, NewPrKey=K1))
    again.call(S3, "CprepDiskFindKey3", dict(DiskId=DISK, Key=K1), dict(pbFound=1))  # C38
    again.call(S3, "CprepDiskPRReserve3", dict(DiskId=DISK, Key=K1))  # C38, C40
    again.call(S3, "CprepDiskIsPRPresent3", dict(DiskId=DISK, Key=K1))  # C39
    again.call(S3, "CprepDiskPRPreempt3", dict(DiskId=DISK, OwnerKey=K1, NewKey=K2))  # C39, C40
    again.call(S3, "CprepDiskPRRelease3", dict(DiskId=DISK, Key=K2))  # C39
    again.call(S3, "CprepCsvTestSetup3", dict(TestShareGuid="2d5c7a10-8e4b-4f3a-b1c2-d3e4f5a6b7c8", Reserved=""))
    shares = ["\\\\10.0.10.11", "\\\\[fd00:20:11::11]"]
    again.call(S3, "CprepCreateNewSmbShares3", outs=dict(ppwszSharePaths=shares, pdwNumberOfPaths=len(shares)))  # C27
    again.conn.close()

    # A second object on NODE1: the server's Prepare State is not Initial (3.2.1), so its CprepPrepareNode is
    # refused; what its later calls are answered is not judged against a state the capture does not show (C05-C07)
    second = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50514))
    second.bind(S2)
    second.ipid["IClusterStorage2"] = ipid(0x900)  # its own IPID: another object
    second.call(S2, "CprepPrepareNode", hresult=ERROR_INVALID_SERVER_STATE)  # C05
    second.call(S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=disk_props()))  # C07
    second.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    second.conn.close()

    # NODE2 connects to NODE1's shares (3.5.4.7): C41
    other = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50513))
    other.bind(S2)
    _prepare(other)
    other.alter_context(S3)
    other.call(S3, "CprepCsvTestSetup3", dict(TestShareGuid="2d5c7a10-8e4b-4f3a-b1c2-d3e4f5a6b7c8", Reserved=""))
    other.call(S3, "CprepConnectToNewSmbShares3", dict(ppwszSharePaths=shares, dwNumberOfPaths=len(shares)))
    other.conn.close()
    return cap.pcapng()


SCENARIOS = {"clusprep_storage_violations": violations, "clusprep_storage_near_misses": near_misses}
