"""ClusPrep (MS-CSVP) captures: what Test-Cluster and cluster setup send, built from
dissectors/definitions/csvp.py.

- clusprep_storage: the §4.1 flow, then what storage validation does with a shared
  disk: persistent reservations, arbitration sectors with raw I/O, online with
  partitions, NTFS and file-system name checks, a file written, verified and
  deleted, offline and stop defense, GetDsms, GetUniqueIds(3) and DiskGetProps3 with
  every string present, and the rest of IClusterStorage3 over an alter_context. It
  also has a response in three fragments and faults (the opnums not used on the wire).
- clusprep_network: the §4.2 flow, GetIpConfigSerialized with its SAFEARRAY(byte)
  holding an ADAPTERLIST2, ProcessAddRoutes/GetAddRoutesStatus with BSTRs and
  SAFEARRAYs of BSTR, ULONG and records, and IClusterFirewall's enumeration.
- clusprep_setup: §4.3 (IClusterSetup), IClusterCleanup, IClusterLog and
  IClusterUpdate, one connection each, with a plain one-item bind.
- clusprep_sealed: storage calls at PKT_PRIVACY with NTLMSSP, as Windows sends them;
  `-o ntlmssp.nt_password:<samples.ntlmssp password>` lets Wireshark decrypt them.

Every request carries the interface's IPID as its object UUID and starts with
ORPCTHIS; every response starts with ORPCTHAT and ends with the HRESULT.
"""
from __future__ import annotations

import uuid
from typing import Dict, Optional

from dissectors.definitions import csvp, dcom
from dissectors.vocabulary import ndr
from dissectors.vocabulary.ndr import members
from dissectors.vocabulary.idl import Interface
from . import csvp_payloads as P
from . import dcerpc, ntlmssp
from .network import Capture, host

CLIENT = host(0x31, "10.0.0.31")  # the node running Test-Cluster
NODE1 = host(0x11, "10.0.0.11")
NODE2 = host(0x12, "10.0.0.12")
CAUSALITY = "3e7a1a5c-0c1f-4c8e-9e43-6a7d2f0e9b01"

S_OK = 0
DISK_GUID = "6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30"
DISK = dict(DiskIdType="CprepIdGuid", DiskGuid=DISK_GUID)
MBR_DISK = dict(DiskIdType="CprepIdSignature", DiskSignature=0x5A3C9E71)
NUMBERED_DISK = dict(DiskIdType="CprepIdNumber", DeviceNumber=2)


def ipid(n: int) -> uuid.UUID:
    """IPIDs as the server's OXID resolver hands them out (fixed for determinism)."""
    return uuid.UUID("0000%04x-0b1c-0000-7c3e-9f04a2d61e55" % n)


def orpcthis(extensions: bool = False) -> dict:
    ext = None
    if extensions:  # an ORPC_EXTENT as Windows adds for error information (MS-DCOM 2.2.21.1)
        ext = dict(size=1, reserved=0, extent=[
            dict(id="f1f19680-4d2a-11ce-a66a-0020af6e72f4", size=8, data=b"\x00\x00\x00\x00\x01\x00\x00\x00"),
            None])
    return dict(version=dict(MajorVersion=5, MinorVersion=7), flags=0, reserved1=0, cid=CAUSALITY,
                extensions=ext)


def orpcthat() -> dict:
    return dict(flags=0, extensions=None)


class ClusPrepClient:
    """DCOM calls on one RPC connection: each interface on its presentation context and IPID."""

    def __init__(self, conn: dcerpc.RpcConnection):
        self.conn = conn
        self.ctx: Dict[str, int] = {}
        self.ipid: Dict[str, uuid.UUID] = {}
        self._next_ctx = 0

    def _items(self, itf: Interface, dcom_style: bool):
        abstract = dcerpc.syntax(itf.uuid, *itf.version)
        ctx = self._next_ctx
        self.ctx[itf.name] = ctx
        self.ipid[itf.name] = ipid(0x100 + len(self.ipid))
        if not dcom_style:
            self._next_ctx += 1
            return [dcerpc.ContextItem(ctx, abstract, (dcerpc.NDR32,))]
        # What Windows offers: NDR32, NDR64, and bind-time feature negotiation.
        self._next_ctx += 3
        return [dcerpc.ContextItem(ctx, abstract, (dcerpc.NDR32,)),
                dcerpc.ContextItem(ctx + 1, abstract, (dcerpc.NDR64,)),
                dcerpc.ContextItem(ctx + 2, abstract, (dcerpc.bind_time_features(),))]

    def bind(self, itf: Interface, dcom_style: bool = True, **kw):
        return self.conn.bind(self._items(itf, dcom_style), **kw)

    def alter_context(self, itf: Interface, dcom_style: bool = True, **kw):
        return self.conn.alter_context(self._items(itf, dcom_style), **kw)

    def call(self, itf: Interface, name: str, ins: Optional[dict] = None, outs: Optional[dict] = None,
             hresult: int = S_OK, fault: Optional[int] = None, max_frag: Optional[int] = None,
             extensions: bool = False, opnum: Optional[int] = None, together: bool = False, answered: bool = True):
        m = next(m for m in itf.methods if m.name == name)
        request, response = self.stubs(itf, name, ins, outs, hresult, extensions)
        if fault is not None:
            response = b""
        return self.conn.call(self.ctx[itf.name], m.opnum if opnum is None else opnum, request, response,
                              object_uuid=self.ipid[itf.name], fault_status=fault, max_frag=max_frag,
                              together=together, answered=answered)


    def raw(self, itf: Interface, name: str, request: bytes, response: Optional[bytes] = None,
            fault: Optional[int] = None, opnum: Optional[int] = None):
        """A call whose stubs are given as bytes (the malformed sample patches built ones)."""
        m = next(m for m in itf.methods if m.name == name)
        return self.conn.call(self.ctx[itf.name], m.opnum if opnum is None else opnum, request, response or b"",
                              object_uuid=self.ipid[itf.name], fault_status=fault)

    def stubs(self, itf: Interface, name: str, ins: Optional[dict] = None, outs: Optional[dict] = None,
              hresult: int = S_OK, extensions: bool = False):
        """The request and response stubs of a call; [out] parameters not given are what a
        failed call leaves (zeros, NULL pointers)."""
        m = next(m for m in itf.methods if m.name == name)
        values = {n: ndr.zero(t) for n, t, _ in members(m.out)}
        values.update(outs or {})
        return (m.request(dcom.ORPCTHIS).build(dict(ORPCthis=orpcthis(extensions), **(ins or {}))),
                m.response(dcom.ORPCTHAT).build(dict(ORPCthat=orpcthat(), ReturnValue=hresult, **values)))


def _patch(stub: bytes, offset: int, old: int, new: int, size: int = 4) -> bytes:
    """Overwrite one little-endian field, checking it held what the layout says it holds."""
    assert int.from_bytes(stub[offset:offset + size], "little") == old, (offset, stub[offset:offset + size].hex())
    return stub[:offset] + new.to_bytes(size, "little") + stub[offset + size:]


def _text(n: int) -> bytes:
    """Deterministic file contents, as validation writes and reads back."""
    return bytes((i * 37 + 11) % 256 for i in range(n))


def disk_props() -> dict:
    return dict(DiskNumber=2, DiskId=DISK, DiskBusType="BusTypeSas", StackType="DiskStackStorPort",
                ScsiAddress=dict(Length=8, PortNumber=3, PathId=0, TargetId=1, Lun=0), DiskIsClusterable=1,
                AdapterDesc="Microsoft Storage Spaces Controller", NumPaths=2,
                Flags=0x00002000 | 0x00008000 | 0x00080000)


def disk_props_ex() -> dict:
    return dict(DiskNumber=2, DiskId=DISK, DiskBusType="BusTypeSas", StackType="DiskStackStorPort",
                ScsiAddress=dict(Length=8, PortNumber=3, PathId=0, TargetId=1, Lun=0), DiskIsClusterable=1,
                AdapterDesc="Microsoft Storage Spaces Controller", pwszFriendlyName="Cluster Disk 1",
                NumPaths=2, Flags=0x00002000 | 0x00008000 | 0x00080000 | 0x20000000, ExtendedFlags=0x00000001,
                pwszPoolName="Pool01", pwszPage83Id="60014055ee5c8e1b4a5d6c7e8f901234",
                pwszSerialNumber="6VPBT0NQ", guidPoolId="9b6c1a2e-3d4f-4a5b-8c7d-0e1f2a3b4c5d")


def storage() -> bytes:
    cap = Capture()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50211))
    S2, S3 = csvp.IClusterStorage2, csvp.IClusterStorage3
    c.bind(S2)
    # §4.1: prepare, find the disk, attach, arbitrate, online
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=0x0005),
           extensions=True)
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))
    c.call(S2, "CprepDiskGetProps", dict(DiskId=NUMBERED_DISK), dict(DiskProps=disk_props()))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    c.call(S2, "CprepDiskVerifyUnique", dict(DiskId=DISK))
    c.call(S2, "CprepDiskGetUniqueIds", dict(DiskId=DISK, cbData=512),
           dict(pbData=P.device_id_descriptor(), pcbDataOut=len(P.device_id_descriptor()),
                pcbNeeded=len(P.device_id_descriptor())))
    c.call(S2, "CprepDiskGetDsms", dict(Size=1024),
           dict(pReserved=len(P.registered_dsms()), RegisteredDsms=P.registered_dsms()))
    c.call(S2, "CprepDiskIsPRPresent", dict(DiskId=DISK), dict(Present=0))
    # persistent reservation tests: Clear, then Register -> Reserve (3.3.4.6)
    for name in ("CprepDiskPRClear", "CprepDiskPRRegister", "CprepDiskPRReserve", "CprepDiskPRPreempt",
                 "CprepDiskPRRelease", "CprepDiskPRUnRegister"):
        c.call(S2, name, dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRArbitrate", dict(DiskId=DISK))
    # arbitration sectors and raw I/O on them
    c.call(S2, "CprepDiskGetArbSectors", dict(DiskId=DISK), dict(SectorX=11, SectorY=12))
    c.call(S2, "CprepDiskRawWrite", dict(DiskId=DISK, ulSector=11, cbData=512, pbData=_text(512)),
           dict(pcbDataWritten=512, ulLatency=3))
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=11, cbData=512),
           dict(pbData=_text(512), pcbDataRead=512, ulLatency=2))
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=12, cbData=100),
           dict(pbData=_text(512)[:100], pcbDataRead=100, ulLatency=2), max_frag=72)  # three fragments
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=12, cbData=200),
           dict(pbData=_text(512)[:200], pcbDataRead=200, ulLatency=2), max_frag=128, together=True)  # one segment
    # online, partitions, file system
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))
    c.call(S2, "CprepDiskIsOnline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskSetOnline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskIsReadable", dict(DiskId=DISK))
    c.call(S2, "CprepDiskDiskPartitionIsNtfs", dict(DiskId=DISK, ulPartition=1))
    c.call(S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), dict(FsName="NTFS"))
    name, data = "ClusPrepTest.txt", _text(300)
    c.call(S2, "CprepDiskWriteFileData", dict(DiskId=DISK, ulPartition=1, FileName=name, cbDataIn=len(data),
                                              DataIn=data))
    c.call(S2, "CprepDiskVerifyFileData", dict(DiskId=DISK, ulPartition=1, FileName=name, cbDataIn=len(data),
                                               DataIn=data))
    c.call(S2, "CprepDiskDeleteFile", dict(DiskId=DISK, ulPartition=1, FileName=name))
    c.call(S2, "CprepDiskOffline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskStopDefense", dict(DiskId=DISK))
    c.call(S2, "CprepDiskGetProps", dict(DiskId=MBR_DISK), hresult=0x80070002)  # not found
    # the opnums the IDL reserves (§3.2.4): a server faults them (nca_s_op_rng_error)
    for m in S2.methods:
        if not m.used_on_wire:
            c.call(S2, m.name, fault=0x1C010002)
    # IClusterStorage3 on the same object, over an alter_context
    c.alter_context(S3)
    c.call(S3, "CprepCheckNetFtBindings3")
    c.call(S3, "CprepIsNodeClustered3", outs=dict(pbIsClusterNode=0))
    c.call(S3, "CprepDiskGetUniqueIds3", dict(DiskId=DISK),
           dict(ppbDeviceIdHeader=P.device_id_descriptor(), pcbDihSize=len(P.device_id_descriptor()),
                ppDeviceDescriptor=P.device_descriptor(), pcbDdSize=len(P.device_descriptor())))
    c.call(S3, "CprepDiskGetProps3", dict(DiskId=DISK), dict(pDiskProps=disk_props_ex()))
    c.call(S3, "CprepDiskIsReadOnly3", dict(DiskId=DISK), dict(pbReadOnly=0))
    k1, k2 = 0x0000B10C00000001, 0x0000B10C00000002
    c.call(S3, "CprepDiskPRClear3", dict(DiskId=DISK, Key=0))  # a Clear3 -> Register3 -> Reserve3 sequence
    c.call(S3, "CprepDiskPRRegister3", dict(DiskId=DISK, OldPrKey=0, NewPrKey=k1))
    c.call(S3, "CprepDiskFindKey3", dict(DiskId=DISK, Key=k1), dict(pbFound=1))
    c.call(S3, "CprepDiskPRReserve3", dict(DiskId=DISK, Key=k1))
    c.call(S3, "CprepDiskIsPRPresent3", dict(DiskId=DISK, Key=k1))
    c.call(S3, "CprepDiskPRPreempt3", dict(DiskId=DISK, OwnerKey=k1, NewKey=k2))
    c.call(S3, "CprepDiskPRRelease3", dict(DiskId=DISK, Key=k2))
    c.call(S3, "CprepDiskPRClear3", dict(DiskId=DISK, Key=k2))
    c.call(S3, "CprepCsvTestSetup3", dict(TestShareGuid="2d5c7a10-8e4b-4f3a-b1c2-d3e4f5a6b7c8",
                                          Reserved=""))
    shares = ["\\\\10.0.10.11", "\\\\[fd00:20:11::11]"]  # 3.4.4.5: \\IPv4 or \\[IPv6]
    c.call(S3, "CprepCreateNewSmbShares3", outs=dict(ppwszSharePaths=shares, pdwNumberOfPaths=len(shares)))
    c.call(S3, "CprepConnectToNewSmbShares3", dict(ppwszSharePaths=shares, dwNumberOfPaths=len(shares)))
    c.conn.close()
    return cap.pcapng()


def network() -> bytes:
    cap = Capture()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50212))
    N, FW = csvp.IClusterNetwork2, csvp.IClusterFirewall
    c.bind(N)
    # §4.2
    c.call(N, "InitializeNode", dict(RequestUDPPort=3343),
           dict(BoundUDPPort=3343, NodeMajorVersion=10, NodeMinorVersion=0, ClusprepVersion=5))
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0),
           dict(Data=P.adapterlist2(), pcbOut=len(P.adapterlist2())))
    c.call(N, "SendRTMessage", dict(SourceIPAddress="10.0.0.12", DestIPAddress="10.0.0.11", DestPort=3343,
                                    AddressFamily="AF_INET", MessageSize=1024, Timeout=1000),
           dict(RTElapsedTime=1))
    c.call(N, "QueryFirewallConfiguration", outs=dict(serverRulesEnabled=1, mgmtRulesEnabled=1))
    route = dict(remoteVirtualIP="fe80::5efe:a00:b",
                 localUnicastIPs=["10.0.0.12", "172.16.0.12"],
                 remoteUnicastIPs=["10.0.0.11", "172.16.0.11"],
                 indices=[1, 2])
    c.call(N, "ProcessAddRoutes", dict(request=dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[route])))
    c.call(N, "GetAddRoutesStatus", outs=dict(reply=dict(
        indices=[1, 2], replies=[dict(packetLoss=0, status="UP"), dict(packetLoss=40, status="UP_DOWN")],
        routeUnavailable=0)))
    c.call(N, "ProcessAddRoutes", dict(request=dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[route])))
    c.call(N, "CancelAddRoutesRequest")
    c.call(N, "Opnum10Reserved", fault=0x1C010002)  # §3.6.4: reserved
    c.call(N, "CleanupNode")
    # IClusterFirewall on its own object
    c.alter_context(FW, dcom_style=False)
    c.call(FW, "InitializeAdapterConfiguration", outs=dict(cRetAdapters=2))
    for i, (adapter, profile) in enumerate([("8d1c6e0a-2b3f-4c5d-9e8f-0a1b2c3d4e5f", "ClusterNetworkProfilePrivate"),
                                            ("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                                             "ClusterNetworkProfileDomainAuthenticated")]):
        c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=i),
               dict(adapterId=adapter, adapterProfile=profile, serverRulesEnabled=1, managementRulesEnabled=1,
                    commonRulesEnabled=1))
    c.conn.close()
    return cap.pcapng()


def setup() -> bytes:
    cap = Capture()
    port = 50300
    for itf, calls in [
        (csvp.IClusterSetup, [
            ("ConfigSvcSecret", dict(SecretBLOB="Gx7#kP2m!vQ9$wR4"), None),
            ("RetrieveSvcSecret", None, dict(SecretBLOB="Gx7#kP2m!vQ9$wR4")),
            ("RetrieveHostLabel", None, dict(HostLabel="NODE2.corp.contoso.com")),
        ]),
        (csvp.IClusterCleanup, [
            ("CleanUpEvictedNode", dict(DelayBeforeCleanup=0, TimeOut=60000, Flags=0), None),
            ("ClearPR", dict(DeviceNumber=2), None),
        ]),
        (csvp.IClusterLog, [
            # <share>\<file> (3.12.4.1): \\NODE2\ before it makes the UNC path
            ("GenerateClusterLog", None, dict(LogFilePath="ADMIN$\\Cluster\\Reports\\Cluster.log")),
            ("GenerateTimeSpanLog", dict(SpanMinutes=15),
             dict(LogFilePath="ADMIN$\\Cluster\\Reports\\Cluster-15min.log")),
        ]),
        (csvp.IClusterUpdate, [
            ("GetUpdates", None, dict(UpdateCount=len(P.UPDATES), updates=P.updates_xml())),
            ("Count", None, dict(Count=2)),
        ]),
    ]:
        c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, port))
        port += 1
        c.bind(itf, dcom_style=False)  # a plain bind: one item, NDR32 only
        for name, ins, outs in calls:
            c.call(itf, name, ins, outs)
        c.conn.close()
    return cap.pcapng()


def sealed(privacy: bool = True, kerberos: bool = False) -> bytes:
    """At PKT_PRIVACY with NTLM (password Clu5ter-Sample), or with Kerberos. The last call breaks a
    rule only its sealed stub shows (raw I/O before CprepDiskGetArbSectors). privacy=False
    builds the clear twin the key tests compare with (tests/test_keys.py)."""
    cap = Capture()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50213))
    S2 = csvp.IClusterStorage2
    if kerberos:
        from . import kerberos as krb
        c.bind(S2, ntlm=krb.Handshake(), level=dcerpc.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    elif privacy:
        c.bind(S2, ntlm=ntlmssp.Handshake(), level=dcerpc.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    else:
        c.bind(S2)
    c.call(S2, "CprepPrepareNode", outs=dict(pulMajorVersion=10, pulMinorVersion=0, pdwCPrepVersion=5))
    c.call(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))
    c.call(S2, "CprepDiskGetProps", dict(DiskId=NUMBERED_DISK), dict(DiskProps=disk_props()))
    c.call(S2, "CprepDiskAttach", dict(DiskId=DISK))
    c.call(S2, "CprepDiskPRArbitrate", dict(DiskId=DISK))
    c.call(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))
    c.call(S2, "CprepDiskOffline", dict(DiskId=DISK))
    c.call(S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=11, cbData=512),
           dict(pbData=_text(512), pcbDataRead=512, ulLatency=2))
    c.conn.close()
    return cap.pcapng()


def kerberos_sealed() -> bytes:
    """clusprep_sealed's calls sealed with Kerberos, as in a domain: AP-REQ / AP-REP / AP-REP
    (DCE style) and AES256 wrap tokens with header signing (samples.kerberos). Decrypt with
    `analyze --keytab samples/clusprep_kerberos.keytab`."""
    return sealed(kerberos=True)


# Offsets below: ORPCTHIS is 32 bytes, ORPCTHAT 8, a GUID CPREP_DISKID 20 (2+2+16).
MALFORMED_CASES = {  # method -> (direction, the expert the dissector must raise)
    "CprepDiskRawWrite": ("request", "length"),
    "CprepDiskGetProps": ("response", "short"),
    "CprepDiskAttach": ("request", "ndr"),
    "CprepDiskOnline": ("request", "ndr"),
    "CprepDiskWriteFileData": ("request", "ndr"),
    "CprepDiskIsOnline": ("response", "trailing"),
    "CprepDiskOffline": ("request", "short"),
    "CprepCreateNewSmbShares3": ("response", "length"),
    "GetIpConfigSerialized": ("response", "ndr"),
    "SendRTMessage": ("request", "ndr"),
}


REJECTED_CONTEXT_CALL = []  # the call_id malformed() sends on a rejected context


def malformed() -> bytes:
    """One bad stub per call, each of a kind a fuzzer or a broken peer sends: hostile counts,
    truncation, a union arm that does not exist or disagrees with its switch, a string or
    BSTR longer than its bound, the wrong SAFEARRAY type, trailing bytes, an opnum the
    interface does not define. The dissector must flag each and carry on."""
    cap = Capture()
    REJECTED_CONTEXT_CALL.clear()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50250))
    S2, S3, N = csvp.IClusterStorage2, csvp.IClusterStorage3, csvp.IClusterNetwork2
    c.bind(S2)
    req, resp = c.stubs(S2, "CprepDiskRawWrite", dict(DiskId=DISK, ulSector=11, cbData=16, pbData=_text(16)),
                        dict(pcbDataWritten=16))
    c.raw(S2, "CprepDiskRawWrite", _patch(req, 60, 16, 0x7FFFFFF0), resp)  # max_count of pbData
    req, resp = c.stubs(S2, "CprepDiskGetProps", dict(DiskId=NUMBERED_DISK), dict(DiskProps=disk_props()))
    c.raw(S2, "CprepDiskGetProps", req, resp[:60])
    req, resp = c.stubs(S2, "CprepDiskAttach", dict(DiskId=MBR_DISK))
    req = _patch(_patch(req, 32, 0, 7, 2), 34, 0, 7, 2)  # DiskIdType and discriminant: no such arm
    c.raw(S2, "CprepDiskAttach", req, resp)
    req, resp = c.stubs(S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=2))
    c.raw(S2, "CprepDiskOnline", _patch(req, 34, 1, 0, 2), resp)  # discriminant disagrees with DiskIdType
    req, resp = c.stubs(S2, "CprepDiskWriteFileData", dict(DiskId=DISK, ulPartition=1, FileName="a.txt",
                                                            cbDataIn=4, DataIn=b"abcd"))
    c.raw(S2, "CprepDiskWriteFileData", _patch(req, 64, 6, 11), resp)  # actual_count past max_count
    req, resp = c.stubs(S2, "CprepDiskIsOnline", dict(DiskId=DISK))
    c.raw(S2, "CprepDiskIsOnline", req, resp + bytes(8))
    req, resp = c.stubs(S2, "CprepDiskOffline", dict(DiskId=DISK))
    c.raw(S2, "CprepDiskOffline", req[:40], resp)  # cut inside the DiskId
    c.raw(S2, "CprepDiskIsReadable", req[:52], fault=0x1C010002, opnum=40)  # IClusterStorage2 has 3-38
    # a call on the NDR64 context the server rejected: not a context this dissector decodes
    req, resp = c.stubs(S2, "CprepDiskIsOnline", dict(DiskId=DISK))
    REJECTED_CONTEXT_CALL.append(c.conn.call(c.ctx["IClusterStorage2"] + 1, 34, req, resp,
                                             object_uuid=c.ipid["IClusterStorage2"]).call_id)
    c.alter_context(S3)
    req, resp = c.stubs(S3, "CprepCreateNewSmbShares3", outs=dict(ppwszSharePaths=["\\\\NODE1\\s"],
                                                                   pdwNumberOfPaths=1))
    c.raw(S3, "CprepCreateNewSmbShares3", req, _patch(resp, 12, 1, 1_000_000))  # the array's max_count
    c.alter_context(N)
    req, resp = c.stubs(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0),
                        dict(Data=P.adapterlist2(), pcbOut=len(P.adapterlist2())))
    c.raw(N, "GetIpConfigSerialized", req, _patch(resp, 28, 0x10, 0x03))  # sfType SF_I4, not SF_I1
    req, resp = c.stubs(N, "SendRTMessage", dict(SourceIPAddress="10.0.0.12", DestIPAddress="10.0.0.11",
                                                 DestPort=3343, AddressFamily="AF_INET", MessageSize=1024,
                                                 Timeout=5000), dict(RTElapsedTime=1))
    c.raw(N, "SendRTMessage", _patch(req, 44, 9, 19), resp)  # the BSTR's clSize past its max_count
    c.conn.close()
    return cap.pcapng()


SCENARIOS = {"clusprep_storage": storage, "clusprep_network": network, "clusprep_setup": setup,
             "clusprep_sealed": sealed, "clusprep_kerberos": kerberos_sealed, "clusprep_malformed": malformed}
