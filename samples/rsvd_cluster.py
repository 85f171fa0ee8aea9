"""rsvd_cluster_events.pcapng: two guest-cluster nodes fight over one shared VHDX.

What an engineer debugging arbitration meets, each in a few frames: persistent
reservations (REGISTER, RESERVE, a WRITE refused with RESERVATION CONFLICT, PREEMPT),
the unit attention the loser sees next, PR IN in all four service actions, the other
SCSI commands a cluster sends, a stored error never retrieved before CLOSE, a
retrieval of a key never stored (ERROR_NOT_AVAILABLE), a malformed SCSI request, a
RequestId reused while in flight, an unanswered request, an open context on a name
without :SharedVirtualDisk, and RSVD v2 operations. CDBs, parameter data and sense
data are built from dissectors/definitions/scsi.py.
"""
from __future__ import annotations

import uuid

from dissectors.definitions import rsvd, scsi
from . import smb2
from .conversation import Pdu
from .network import Capture, host
from .rsvd_scenarios import (
    DISK_SIZE, INQUIRY_DATA, NODE1_ID, NODE2_ID, SECTOR, SRB_STATUS_REQUEST, RsvdClient, app_instance_eas, connect,
    open_context_windows, open_disk, pattern, read_capacity16_data, support_answer)

K1, K2 = 0x4E4F444531000001, 0x4E4F444532000002
PR_TYPE = "WRITE_EXCLUSIVE_REGISTRANTS_ONLY"
SRB_SUCCESS, SRB_ERROR, SRB_ERROR_AUTOSENSE = 0x01, 0x04, 0x84
GOOD, CHECK_CONDITION, RESERVATION_CONFLICT = 0x00, 0x02, 0x18


def cdb(op: str, **fields) -> bytes:
    return scsi.SCSI_CDB.build(dict(OperationCode=op, Fields=fields)).ljust(16, b"\x00")


def fixed_sense(key: str, asc: str) -> bytes:
    return scsi.SENSE_DATA.build(dict(
        ResponseCode=dict(VALID=False, Code="CURRENT_FIXED"),
        Format=dict(Obsolete=b"\x00", KeyFlags=dict(FILEMARK=False, EOM=False, ILI=False, SenseKey=key),
                    Information=0, AdditionalSenseLength=10, CommandSpecificInformation=0, AdditionalSense=asc,
                    FieldReplaceableUnitCode=0, SenseKeySpecific=bytes(3))))


def descriptor_sense(key: str, asc: str) -> bytes:
    return scsi.SENSE_DATA.build(dict(
        ResponseCode=dict(VALID=False, Code="CURRENT_DESCRIPTOR"),
        Format=dict(SenseKey=key, AdditionalSense=asc, Reserved=bytes(3), AdditionalSenseLength=0, Descriptors=b"")))


def pr_out(c: RsvdClient, fid: bytes, action: str, key: int, sa_key: int, **kw) -> None:
    params = scsi.PR_OUT_PARAMETERS.build(dict(
        ReservationKey=key, ServiceActionReservationKey=sa_key, Obsolete=bytes(4),
        ParameterFlags=dict(SPEC_I_PT=False, ALL_TG_PT=False, APTPL=action == "REGISTER"), Reserved=b"\x00",
        Obsolete2=bytes(2)))
    c.scsi(cdb("PERSISTENT_RESERVE_OUT", ServiceAction=action, ScopeType=dict(Scope="LU_SCOPE", Type=PR_TYPE),
               Reserved=bytes(2), ParameterListLength=len(params), Control=0), 10,
           data_in=False, length=len(params), out=params, file_id=fid, **kw)


def pr_in(c: RsvdClient, fid: bytes, action: str, data: bytes) -> None:
    c.scsi(cdb("PERSISTENT_RESERVE_IN", ServiceAction=action, Reserved=bytes(5), AllocationLength=4096, Control=0),
           10, data_in=True, length=4096, returned=data, file_id=fid)


def arbitration(n1: RsvdClient, f1: bytes, n2: RsvdClient, f2: bytes) -> None:
    """SPC-3 5.6: both register, NODE1 reserves, NODE2 is refused, then preempts NODE1."""
    pr_out(n1, f1, "REGISTER", 0, K1)
    pr_out(n2, f2, "REGISTER", 0, K2)
    pr_out(n1, f1, "RESERVE", K1, 0)
    pr_in(n2, f2, "READ_RESERVATION", scsi.PR_IN_READ_RESERVATION.build(dict(
        PrGeneration=2, AdditionalLength=16, Reservation=dict(
            ReservationKey=K1, Obsolete=bytes(4), Reserved=b"\x00",
            ScopeType=dict(Scope="LU_SCOPE", Type=PR_TYPE), Obsolete2=bytes(2)))))
    n2.scsi(cdb("WRITE_10", Flags=dict(RdWrProtect=0, DPO=False, FUA=True, FUA_NV=False), LogicalBlockAddress=2048,
                GroupNumber=0, TransferLength=8, Control=0), 10, data_in=False, length=4096, out=pattern(4096, 7),
            file_id=f2, srb_status=SRB_ERROR, scsi_status=RESERVATION_CONFLICT)
    pr_out(n2, f2, "PREEMPT", K2, K1)
    # NODE1 learns it lost: a unit attention on its next command, in the SCSI sense data...
    n1.scsi(cdb("READ_10", Flags=dict(RdWrProtect=0, DPO=False, FUA=False, FUA_NV=False), LogicalBlockAddress=0,
                GroupNumber=0, TransferLength=1, Control=0), 10, data_in=True, length=512, returned=b"",
            file_id=f1, srb_status=SRB_ERROR_AUTOSENSE, scsi_status=CHECK_CONDITION,
            sense=fixed_sense("UNIT_ATTENTION", "RESERVATIONS PREEMPTED"))
    # ...and as the RSVD status of a tunnel operation (2.2.3), header only (3.2.5.5.1; CHECK_CONNECTION
    # could not carry it: 3.2.5.5.2 always answers STATUS_SUCCESS).
    n1.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", dict(_variant="seed", ServerVersion=0, SectorSize=0,
                                                          PhysicalSectorSize=0, VirtualSize=0),
              dict(BodyNotDecoded=b""), file_id=f1,
              status=rsvd.ERROR_CODES["STATUS_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED"])
    pr_in(n2, f2, "READ_FULL_STATUS", scsi.PR_IN_READ_FULL_STATUS.build(dict(
        PrGeneration=4, AdditionalLength=24 + 8, Descriptors=[dict(
            ReservationKey=K2, Reserved=bytes(4), Holder=dict(ALL_TG_PT=False, R_HOLDER=True),
            ScopeType=dict(Scope="LU_SCOPE", Type=PR_TYPE), Reserved2=bytes(4), RelativeTargetPortIdentifier=1,
            AdditionalDescriptorLength=8, TransportID=bytes.fromhex("0500000000000000"))])))
    pr_in(n2, f2, "REPORT_CAPABILITIES", scsi.PR_IN_REPORT_CAPABILITIES.build(dict(
        Length=8, Capabilities=dict(CRH=False, SIP_C=False, ATP_C=True, PTPL_C=True),
        State=dict(TMV=True, PTPL_A=True), PersistentReservationTypeMask=0xEA01, Reserved=bytes(2))))
    pr_in(n2, f2, "READ_KEYS", scsi.PR_IN_READ_KEYS.build(dict(PrGeneration=4, AdditionalLength=8,
                                                                ReservationKey=[K2])))


def other_commands(c: RsvdClient, fid: bytes) -> None:
    """The rest of what a cluster node sends to its disk."""
    c.scsi(cdb("TEST_UNIT_READY", Reserved=bytes(4), Control=0), 6, data_in=False, length=0, file_id=fid)
    c.scsi(cdb("REPORT_LUNS", Reserved=b"\x00", SelectReport=0, Reserved2=bytes(3), AllocationLength=16,
               Reserved3=b"\x00", Control=0), 12, data_in=True, length=16,
           returned=scsi.REPORT_LUNS_DATA.build(dict(LunListLength=8, Reserved=bytes(4), Lun=[0])), file_id=fid)
    c.scsi(cdb("MODE_SENSE_10", Dbd=dict(LLBAA=False, DBD=True), Page=dict(PC="CURRENT", PageCode=0x3F),
               SubpageCode=0, Reserved=bytes(3), AllocationLength=192, Control=0), 10, data_in=True, length=192,
           returned=scsi.MODE_PARAMETER_HEADER10.build(dict(
               ModeDataLength=6, MediumType=0, DeviceSpecificParameter=dict(WP=False, DPOFUA=True), LongLba=0,
               Reserved=b"\x00", BlockDescriptorLength=0, ModePages=b"")), file_id=fid)
    c.scsi(cdb("READ_CAPACITY_10", Reserved=b"\x00", LogicalBlockAddress=0, Reserved2=bytes(2), PMI=0, Control=0),
           10, data_in=True, length=8, returned=scsi.READ_CAPACITY10_DATA.build(dict(
               ReturnedLogicalBlockAddress=0xFFFFFFFF, LogicalBlockLength=SECTOR)), file_id=fid)
    c.scsi(cdb("SERVICE_ACTION_IN_16", ServiceAction="READ_CAPACITY_16", LogicalBlockAddress=0, AllocationLength=32,
               PMI=0, Control=0), 16, data_in=True, length=32, returned=read_capacity16_data(), file_id=fid)
    c.scsi(cdb("SYNCHRONIZE_CACHE_10", SyncFlags=dict(SYNC_NV=False, IMMED=False), LogicalBlockAddress=0,
               GroupNumber=0, NumberOfLogicalBlocks=0, Control=0), 10, data_in=False, length=0, file_id=fid)
    unmap = scsi.UNMAP_PARAMETERS.build(dict(DataLength=22, BlockDescriptorDataLength=16, Reserved=bytes(4),
                                             Descriptors=[dict(UnmapLogicalBlockAddress=1 << 20,
                                                               NumberOfLogicalBlocks=2048, Reserved=bytes(4))]))
    c.scsi(cdb("UNMAP", Anchor=0, Reserved=bytes(4), GroupNumber=0, ParameterListLength=len(unmap), Control=0), 10,
           data_in=False, length=len(unmap), out=unmap, file_id=fid)
    c.scsi(cdb("WRITE_SAME_16", WriteSameFlags=dict(WrProtect=0, ANCHOR=False, UNMAP=True),
               LogicalBlockAddress=4 << 20, NumberOfLogicalBlocks=4096, GroupNumber=0, Control=0), 16,
           data_in=False, length=SECTOR, out=bytes(SECTOR), file_id=fid)
    c.scsi(cdb("INQUIRY", Flags=dict(CmdDt=False, EVPD=True), PageCode=0x83, AllocationLength=64, Control=0), 6,
           data_in=True, length=64, returned=scsi.VPD_PAGE.build(dict(
               Device=0, PageCode=0x83, PageLength=20,
               PageData=bytes.fromhex("0103001060022480") + uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").bytes[:12])),
           file_id=fid)
    rw = dict(Flags=dict(RdWrProtect=0, DPO=False, FUA=False, FUA_NV=False), GroupNumber=0, Control=0)
    c.scsi(cdb("READ_16", LogicalBlockAddress=1 << 33, TransferLength=8, **rw), 16, data_in=True, length=4096,
           returned=pattern(4096, 10), file_id=fid)
    c.scsi(cdb("WRITE_16", LogicalBlockAddress=1 << 33, TransferLength=8, **rw), 16, data_in=False, length=4096,
           out=pattern(4096, 11), file_id=fid)
    c.scsi(cdb("READ_12", LogicalBlockAddress=4096, TransferLength=1, **rw), 12, data_in=True, length=512,
           returned=pattern(512, 12), file_id=fid)
    c.scsi(cdb("READ_6", Address=dict(LogicalBlockAddress=64), TransferLength=1, Control=0), 6, data_in=True,
           length=512, returned=pattern(512, 13), file_id=fid)
    c.scsi(cdb("SYNCHRONIZE_CACHE_16", SyncFlags=dict(SYNC_NV=False, IMMED=True), LogicalBlockAddress=0,
               NumberOfLogicalBlocks=0, GroupNumber=0, Control=0), 16, data_in=False, length=0, file_id=fid)
    c.scsi(cdb("WRITE_SAME_10", WriteSameFlags=dict(WrProtect=0, ANCHOR=False, UNMAP=False),
               LogicalBlockAddress=8192, GroupNumber=0, NumberOfLogicalBlocks=16, Control=0), 10, data_in=False,
           length=SECTOR, out=bytes(SECTOR), file_id=fid)
    c.scsi(cdb("MODE_SENSE_6", Dbd=dict(DBD=True), Page=dict(PC="CURRENT", PageCode=0x08), SubpageCode=0,
               AllocationLength=64, Control=0), 6, data_in=True, length=64,
           returned=scsi.MODE_PARAMETER_HEADER6.build(dict(
               ModeDataLength=23, MediumType=0, DeviceSpecificParameter=dict(WP=False, DPOFUA=True),
               BlockDescriptorLength=0, ModePages=bytes.fromhex("08120400ffff0000ffffffff800000000000000000"))),
           file_id=fid)
    # An INQUIRY for a page the disk lacks: CHECK CONDITION, descriptor-format sense.
    c.scsi(cdb("INQUIRY", Flags=dict(CmdDt=False, EVPD=True), PageCode=0xC7, AllocationLength=64, Control=0), 6,
           data_in=True, length=64, returned=b"", file_id=fid, srb_status=SRB_ERROR_AUTOSENSE,
           scsi_status=CHECK_CONDITION, sense=descriptor_sense("ILLEGAL_REQUEST", "INVALID FIELD IN CDB"))


def v2_operations(c: RsvdClient, fid: bytes) -> None:
    """RSVD v2: resize through a meta-operation, its progress, VHD set queries, a snapshot delete."""
    txn = uuid.UUID("3c1e8a6b-2d4f-4e7a-9b1c-5d6e7f8091a2")
    snap = uuid.UUID("7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d")
    c.tunnel("RSVD_TUNNEL_QUERY_SAFE_SIZE", dict(BodyNotDecoded=b""), dict(SafeVirtualSize=48 << 30), file_id=fid)
    c.tunnel("RSVD_TUNNEL_META_OPERATION_START", dict(
        TransactionId=txn, OperationType="SvhdxMetaOperationTypeResize", Padding=0,
        Parameters=dict(NewSize=DISK_SIZE * 2, ExpandOnly="TRUE", AllowUnsafeVirtualSize="FALSE",
                        ShrinkToMinimumSafeSize="FALSE", Reserved=0)), dict(BodyNotDecoded=b""), file_id=fid)
    c.tunnel("RSVD_TUNNEL_META_OPERATION_QUERY_PROGRESS", dict(TransactionId=txn),
             dict(CurrentProgressValue=50, CompleteValue=100), file_id=fid)
    c.tunnel("RSVD_TUNNEL_VHDSET_QUERY_INFORMATION", dict(
        VHDSetInformationType="SvhdxVHDSetInformationTypeSnapshotEntry", SnapshotType="SvhdxSnapshotTypeVM",
        SnapshotId=snap), dict(
        VHDSetInformationType="SvhdxVHDSetInformationTypeSnapshotEntry", Information=dict(
            Padding=0, SnapshotCreationTime=0x01DC5A1234567890, SnapshotType="SvhdxSnapshotTypeVM",
            IsValidSnapshot="TRUE", SnapshotId=snap, ParentSnapshotId=uuid.UUID(int=0), LogFileId=uuid.UUID(int=1))),
        file_id=fid)
    c.tunnel("RSVD_TUNNEL_DELETE_SNAPSHOT", dict(SnapshotId=snap, PersistReference="FALSE",
                                                 SnapshotType="SvhdxSnapshotTypeVM"), dict(BodyNotDecoded=b""),
             file_id=fid)
    c.tunnel("RSVD_TUNNEL_CHANGE_TRACKING_START", dict(BodyNotDecoded=bytes(16)), dict(BodyNotDecoded=b""),
             file_id=fid)


def mistakes(n1: RsvdClient, f1: bytes, n2: RsvdClient, f2: bytes) -> None:
    """What the rules of §3 forbid, one of each."""
    # A WRITE failing with a stored error (the open's first: key 1, 3.2.5.4) that NODE1 never fetches
    # before its CLOSE (3.1.5.4).
    n1.smb.exchange([Pdu(smb2.WRITE, smb2.write_request(f1, 8 << 20, pattern(4096, 8)))],
                    [Pdu(smb2.WRITE, smb2.error_response(),
                         status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"] | 1)])
    # NODE2 fetches a key nothing stored: ERROR_NOT_AVAILABLE (3.2.5.5.3).
    n2.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(StatusKey=9, **SRB_STATUS_REQUEST), dict(BodyNotDecoded=b""),
              file_id=f2, status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_NOT_AVAILABLE"])
    # A SCSI request whose Length, CdbLength and SenseInfoExLength break 2.2.5.11.
    bad = dict(Length=40, Reserved1=0, CdbLength=20, SenseInfoExLength=32, DataIn="SCSI_IOCTL_DATA_IN", Reserved2=0,
               SrbFlags={k: k == "SRB_FLAGS_DATA_IN" for k in rsvd.SRB_FLAGS}, DataTransferLength=0,
               CDBBuffer=bytes(16), Reserved3=0, DataBuffer=b"")
    n2.tunnel("RSVD_TUNNEL_SCSI_OPERATION", bad, dict(BodyNotDecoded=b""), file_id=f2,
              status=rsvd.NT_STATUS["STATUS_INVALID_PARAMETER"])
    # The same RequestId twice while the first is in flight (3.1.4.1), both answered.
    rid = n2.request_id
    q1, r1 = n2.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=f2, request_id=rid)
    q2, r2 = n2.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=f2, request_id=rid)
    n2.request_id += 1
    (m1,) = n2.smb.exchange([q1], [])
    (m2,) = n2.smb.exchange([q2], [])
    r1.message_id, r2.message_id = m1, m2
    n2.smb.respond([r1])
    n2.smb.respond([r2])
    # An open context on a name without :SharedVirtualDisk (3.2.5.1); the server refuses it.
    create = Pdu(smb2.CREATE, smb2.create_request(
        "other.vhdx", smb2.FILE_NO_INTERMEDIATE_BUFFERING | smb2.FILE_NON_DIRECTORY_FILE,
        [smb2.create_context(rsvd.SVHDX_OPEN_DEVICE_CONTEXT_TAG,
                             open_context_windows("NODE2", NODE2_ID, version=2, open_request_id=0x2001)),
         smb2.create_context(b"ExtA", app_instance_eas(NODE2_ID))]))
    n2.smb.exchange([create], [Pdu(smb2.CREATE, smb2.error_response(), status=rsvd.NT_STATUS["STATUS_INVALID_PARAMETER"])])


def two_nodes(cap: Capture, then=None):
    """NODE1 and NODE2, each connected to the server and holding an open of disk.vhdx:
    (n1, f1, n2, f2), clients and FileIds; `then(client, file_id, name)` runs right after each open."""
    server = host(0x10, "10.0.0.20")
    n1 = connect(cap, host(1, "10.0.0.11"), server, 49711, 0x0000040000000011, request_id=100)
    n2 = connect(cap, host(2, "10.0.0.12"), server, 49712, 0x0000040000000012, request_id=200)
    f1 = bytes.fromhex("1100000000000000" "1a00000000000000")
    f2 = bytes.fromhex("1200000000000000" "1b00000000000000")
    for c, fid, name, ident in ((n1, f1, "NODE1", NODE1_ID), (n2, f2, "NODE2", NODE2_ID)):
        open_disk(c, "disk.vhdx", open_context_windows(name, ident, version=2, open_request_id=0x1000),
                  None, fid, ident, support_answer("windows", "HandleStateShared"))
        if then is not None:
            then(c, fid, name)
    return n1, f1, n2, f2


def cluster_events() -> bytes:
    cap = Capture()

    def first_calls(c, fid, name):
        # NODE2 asks as the current MS-RSVD's 2.2.4.13 has it: the header only
        c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
                 dict(_variant="current") if name == "NODE2" else dict(
                     _variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0,
                     VirtualSize=0),
                 dict(_variant="windows", ServerVersion=2, SectorSize=SECTOR, PhysicalSectorSize=4096, Reserved=0,
                      VirtualSize=DISK_SIZE), file_id=fid)
        c.scsi(bytes([0x12, 0, 0, 0, 36, 0]).ljust(16, b"\x00"), 6, data_in=True, length=36,
               returned=INQUIRY_DATA, file_id=fid)

    n1, f1, n2, f2 = two_nodes(cap, first_calls)
    arbitration(n1, f1, n2, f2)
    other_commands(n2, f2)
    v2_operations(n2, f2)
    mistakes(n1, f1, n2, f2)
    n1.smb.close(f1)
    n1.smb.logoff()
    n1.smb.flow.close()
    # NODE2 moves its reservation to another I_T nexus (SPC-3 6.12.4: its own parameter list layout).
    move = scsi.PR_OUT_MOVE_PARAMETERS.build(dict(
        ReservationKey=K2, ServiceActionReservationKey=K2 + 1, Reserved=b"\x00",
        MoveFlags=dict(UNREG=True, APTPL=True), RelativeTargetPortIdentifier=2, TransportIdParameterDataLength=8,
        TransportID=bytes.fromhex("0500000000000001")))
    n2.scsi(cdb("PERSISTENT_RESERVE_OUT", ServiceAction="REGISTER_AND_MOVE",
                ScopeType=dict(Scope="LU_SCOPE", Type=PR_TYPE), Reserved=bytes(2), ParameterListLength=len(move),
                Control=0), 10, data_in=False, length=len(move), out=move, file_id=f2)
    # The last request is never answered: the capture ends first.
    q, _ = n2.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=f2)
    n2.smb.exchange([q], [])
    return cap.pcapng()


SCENARIOS = {"rsvd_cluster_events": cluster_events}
