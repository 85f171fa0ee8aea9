"""RSVD scenarios: shared-disk sessions built from dissectors.definitions.rsvd.

rsvd_shared_disk.pcapng holds two initiators of one guest cluster opening the same
shared VHDX on one SMB 3.0.2 server:

- NODE1 (frames on TCP 49701) speaks the seed's layouts: the variable-length open
  context, the 20-byte file info, the 2+2-byte support answer and the 4-byte
  StatusKey.
- NODE2 (TCP 49702) speaks what Windows sends: the 192-byte v2 context, 168-byte
  v1 context, 24-byte file info, 4+4-byte support answer, 1-byte StatusKey and the
  VALIDATE_DISK payloads. It also runs an async tunnel request.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Optional

from dissectors.definitions import rsvd
from . import smb2
from .conversation import RELATED_FILE_ID, Pdu, Smb2Session, start
from .network import Capture, host
from .smb3_encryption import Sealer

SYNC, ASYNC = rsvd.FSCTL_SVHDX_SYNC_TUNNEL_REQUEST, rsvd.FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST
SRB_DATA_IN = rsvd.SRB_FLAGS["SRB_FLAGS_DATA_IN"]
SRB_DATA_OUT = rsvd.SRB_FLAGS["SRB_FLAGS_DATA_OUT"]
SRB_STATUS_SUCCESS = 0x01
SRB_STATUS_ERROR_AUTOSENSE = 0x84  # SRB_STATUS_ERROR with SRB_STATUS_AUTOSENSE_VALID
SCSI_GOOD, SCSI_CHECK_CONDITION = 0x00, 0x02


def srb_bits(byte: int) -> dict:
    """An SrbStatus byte as the definitions' bit fields."""
    return dict(AutosenseValid=bool(byte & 0x80), QueueFrozen=bool(byte & 0x40), Status=byte & 0x3F)


def _flags(mask: int) -> dict:
    return {name: bool(mask & bit) for name, bit in rsvd.SRB_FLAGS.items()}


def pattern(n: int, seed: int) -> bytes:
    """Deterministic disk contents."""
    return bytes((seed + i * 7) & 0xFF for i in range(n))


def cdb(*octets: int) -> bytes:
    return bytes(octets).ljust(16, b"\x00")


# Fixed sense data (SPC-3 4.5.3): response code 0x70, sense key, ASC, ASCQ.
def fixed_sense(key: int, asc: int, ascq: int) -> bytes:
    s = bytearray(18)
    s[0], s[2], s[7], s[12], s[13] = 0x70, key, 10, asc, ascq
    return bytes(s)


@dataclass
class RsvdClient:
    """An RSVD initiator: SMB2 session plus the RequestIdentifier of §3.1.1.1."""

    smb: Smb2Session
    request_id: int = 1

    def _next_id(self) -> int:
        rid = self.request_id
        self.request_id += 1  # §3.1.4.1: increment for every tunnel operation
        return rid

    def tunnel_pdus(self, op: str, req_payload, resp_payload, *, file_id: bytes, status: int = 0,
                    fsctl: int = SYNC, request_id: Optional[int] = None):
        rid = self._next_id() if request_id is None else request_id
        req = rsvd.TUNNEL_REQUEST.build(dict(
            Header=dict(OperationCode=op, Status=0, RequestId=rid), Payload=req_payload or {}))
        resp = rsvd.TUNNEL_RESPONSE.build(dict(
            Header=dict(OperationCode=op, Status=status, RequestId=rid), Payload=resp_payload))
        return (Pdu(smb2.IOCTL, smb2.ioctl_request(fsctl, file_id, req)),
                Pdu(smb2.IOCTL, smb2.ioctl_response(fsctl, file_id, resp)))

    def tunnel(self, op: str, req_payload, resp_payload, *, file_id: bytes, status: int = 0,
               fsctl: int = SYNC, think_us: int = 400) -> None:
        q, r = self.tunnel_pdus(op, req_payload, resp_payload, file_id=file_id, status=status, fsctl=fsctl)
        self.smb.exchange([q], [r], think_us)

    def tunnel_async(self, op: str, req_payload, resp_payload, *, file_id: bytes, async_id: int,
                     think_us: int = 5000) -> None:
        """FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST: interim STATUS_PENDING, then the final answer."""
        q, r = self.tunnel_pdus(op, req_payload, resp_payload, file_id=file_id, fsctl=ASYNC)
        (mid,) = self.smb.exchange([q], [Pdu(smb2.IOCTL, smb2.error_response(), status=smb2.STATUS_PENDING,
                                             async_id=async_id)], 150)
        r.async_id, r.message_id = async_id, mid
        self.smb.respond([r], think_us)

    def scsi(self, cdb_bytes: bytes, cdb_len: int, *, data_in: bool, length: int, out: bytes = b"",
             returned: bytes = b"", file_id: bytes, srb_status: int = SRB_STATUS_SUCCESS,
             scsi_status: int = SCSI_GOOD, sense: bytes = b"", fsctl: int = SYNC, async_id: Optional[int] = None,
             status: int = 0, think_us: int = 400) -> None:
        srb = SRB_DATA_IN if data_in else (SRB_DATA_OUT if out else 0)
        direction = "SCSI_IOCTL_DATA_IN" if data_in else ("SCSI_IOCTL_DATA_OUT" if out else "SCSI_IOCTL_DATA_UNSPECIFIED")
        req = dict(Length=36, Reserved1=0, CdbLength=cdb_len, SenseInfoExLength=rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE,
                   DataIn=direction, Reserved2=0, SrbFlags=_flags(srb), DataTransferLength=length,
                   CDBBuffer=cdb_bytes, Reserved3=0, DataBuffer=out)
        resp = dict(BodyNotDecoded=b"") if status else dict(
            Length=36, SrbStatus=srb_bits(srb_status), ScsiStatus=scsi_status, CdbLength=cdb_len,
            SenseInfoExLength=len(sense), DataIn=direction, Reserved=0, SrbFlags=_flags(srb),
            DataTransferLength=len(returned) if data_in else length,
            SenseDataEx=sense.ljust(20, b"\x00"), DataBuffer=returned)
        if async_id is not None:
            self.tunnel_async("RSVD_TUNNEL_SCSI_OPERATION", req, resp, file_id=file_id, async_id=async_id,
                              think_us=think_us)
        else:
            self.tunnel("RSVD_TUNNEL_SCSI_OPERATION", req, resp, file_id=file_id, status=status, fsctl=fsctl,
                        think_us=think_us)


def connect(cap: Capture, client, server, cport: int, session_id: int, request_id: int,
            session_key: Optional[bytes] = None) -> RsvdClient:
    """TCP handshake, NEGOTIATE (3.0.2), SESSION_SETUP and TREE_CONNECT to \\sofs\vhdx; with a
    session key, everything after SESSION_SETUP is encrypted (MS-SMB2 3.2.4.1.8)."""
    smb = start(cap, client, server, cport)
    if session_key is None:
        smb.negotiate()
        smb.session_setup(session_id)
    else:
        smb.negotiate(capabilities=smb2.SERVER_CAPABILITIES | smb2.GLOBAL_CAP_ENCRYPTION)
        smb.session_setup(session_id, smb2.SESSION_FLAG_ENCRYPT_DATA)
        smb.sealer = Sealer(session_key, session_id)
    smb.tree_connect(r"\\sofs\vhdx", 1)
    return RsvdClient(smb, request_id=request_id)


def support_answer(layout: str, state: str) -> bytes:
    """An SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE in the seed or Windows layout."""
    return rsvd.SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE.build(dict(
        _variant=layout, SharedVirtualDiskSupport=1, SharedVirtualDiskHandleState=state))


def open_context_seed(host_name: str, initiator: uuid.UUID) -> bytes:
    name = host_name.encode("utf-16-le") + b"\x00\x00"
    return rsvd.SVHDX_OPEN_DEVICE_CONTEXT.build(dict(
        _variant="seed", Version=rsvd.RSVD_ECP_CONTEXT_VERSION_1, HasInitiatorId="TRUE", Reserved=bytes(3),
        InitiatorId=initiator, Flags=0, OriginatorFlags="SVHDX_ORIGINATOR_PVHDPARSER",
        InitiatorHostNameLength=len(name), InitiatorHostName=host_name))


def open_context_windows(host_name: str, initiator: uuid.UUID, *, version: int, open_request_id: int,
                         props: Optional[dict] = None) -> bytes:
    name_len = len(host_name.encode("utf-16-le")) + 2
    fields = dict(Version=version, HasInitiatorId="TRUE", Reserved=bytes(3), InitiatorId=initiator, Flags=0,
                  OriginatorFlags="SVHDX_ORIGINATOR_PVHDPARSER", OpenRequestId=open_request_id,
                  InitiatorHostNameLength=name_len, InitiatorHostName=host_name)
    if version == 2:
        fields.update(_variant="windows_v2", **(props or dict(
            VirtualDiskPropertiesInitialized=0, ServerServiceVersion=0, VirtualSectorSize=0,
            PhysicalSectorSize=0, VirtualSize=0)))
    else:
        fields.update(_variant="windows_v1")
    return rsvd.SVHDX_OPEN_DEVICE_CONTEXT.build(fields)


def app_instance_eas(initiator: uuid.UUID) -> bytes:
    """The two FILE_FULL_EA_INFORMATION entries of §3.1.4.2."""
    return smb2.full_ea_list([
        (rsvd.SMB_CCF_APP_INSTANCE_EA_NAME.encode(), initiator.bytes_le),
        (rsvd.APP_TRAFFIC_TYPE_EA_NAME.encode(), initiator.bytes_le),
    ])


DISK_SIZE = 64 << 30
SECTOR = 512
LINKAGE = uuid.UUID("6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b")
DISK_ID = uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
NODE1_ID = uuid.UUID("11111111-2222-4333-8444-555555555555")
NODE2_ID = uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa")


def disk_info_response() -> dict:
    return dict(DiskType="VHD_TYPE_DYNAMIC", DiskFormat="VIRTUAL_STORAGE_TYPE_DEVICE_VHDX", BlockSize=32 << 20,
                LinkageID=LINKAGE, IsMounted="TRUE", Is4kAligned="TRUE", Reserved=0, FileSize=DISK_SIZE // 16,
                VirtualDiskId=DISK_ID)


DISK_INFO_REQUEST = dict(Reserved1=0, BlockSize=0, LinkageID=uuid.UUID(int=0), IsMounted="FALSE",
                         Is4kAligned="FALSE", Reserved2=0, FileSize=0, VirtualDiskId=uuid.UUID(int=0))
INQUIRY_DATA = (bytes([0x00, 0x00, 0x06, 0x02, 31, 0x00, 0x10, 0x02]) + b"Msft    " + b"Virtual Disk    "
                + b"1.0 ")
SRB_STATUS_REQUEST = dict(SrbStatus=0, ScsiStatus=0, SenseInfoExLength=0, Reserved=0, SenseDataEx=bytes(20))


def read_capacity16_data() -> bytes:
    last_lba = DISK_SIZE // SECTOR - 1
    return last_lba.to_bytes(8, "big") + SECTOR.to_bytes(4, "big") + bytes([0, 0x03, 0, 0]) + bytes(16)


def pr_in_read_keys(generation: int, keys) -> bytes:
    body = b"".join(k.to_bytes(8, "big") for k in keys)
    return generation.to_bytes(4, "big") + len(body).to_bytes(4, "big") + body


def pr_out_params(key: int, sa_key: int, aptpl: bool = False) -> bytes:
    return key.to_bytes(8, "big") + sa_key.to_bytes(8, "big") + bytes(4) + bytes([0x01 if aptpl else 0, 0, 0, 0])


def open_disk(c: RsvdClient, name: str, context: bytes, resp_context: Optional[bytes], file_id: bytes,
              initiator: uuid.UUID, handle_state_resp: bytes, support_input: bytes = b"",
              compound: bool = True) -> None:
    """CREATE name:SharedVirtualDisk, compounded with the shared-disk-support FSCTL (§3.1.4.2, §3.1.4.11)."""
    create = Pdu(smb2.CREATE, smb2.create_request(
        name + rsvd.SHARED_VIRTUAL_DISK_SUFFIX,
        smb2.FILE_NO_INTERMEDIATE_BUFFERING | smb2.FILE_NON_DIRECTORY_FILE,
        [smb2.create_context(rsvd.SVHDX_OPEN_DEVICE_CONTEXT_TAG, context),
         smb2.create_context(b"ExtA", app_instance_eas(initiator))]))
    query = Pdu(smb2.IOCTL, smb2.ioctl_request(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, RELATED_FILE_ID,
                                                support_input, max_output=8), flags=smb2.FLAGS_RELATED_OPERATIONS)
    resp_ctx = [smb2.create_context(rsvd.SVHDX_OPEN_DEVICE_CONTEXT_TAG, resp_context)] if resp_context else []
    created = Pdu(smb2.CREATE, smb2.create_response(file_id, DISK_SIZE // 16, resp_ctx))
    answer = Pdu(smb2.IOCTL, smb2.ioctl_response(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, file_id,
                                                 handle_state_resp))
    if compound:
        answer.flags = smb2.FLAGS_RELATED_OPERATIONS
        c.smb.exchange([create, query], [created, answer], think_us=2500)
    else:
        # Wireshark's SMB2 dissector stops at a seed-layout context it cannot read,
        # which would hide the rest of a compound; send the FSCTL on its own.
        c.smb.exchange([create], [created], think_us=2500)
        query.body = smb2.ioctl_request(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, file_id, support_input,
                                        max_output=8)
        query.flags = 0
        c.smb.exchange([query], [answer])


def node1(cap: Capture, server, session_key: Optional[bytes] = None) -> None:
    """The seed-layout initiator: a full §3.1.4 session, every tunnel operation and the sense-error flow."""
    c = connect(cap, host(1, "10.0.0.11"), server, 49701, 0x0000040000000001, request_id=1, session_key=session_key)
    smb = c.smb
    fid = bytes.fromhex("0100000000000000" "0a00000000000000")
    open_disk(c, "disk.vhdx", open_context_seed("NODE1", NODE1_ID), None, fid, NODE1_ID,
              support_answer("seed", "HandleStateShared"),
              # §2.2.5.15 read literally: the request carries a bare header.
              support_input=rsvd.SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_REQUEST.build(dict(
                  Header=dict(OperationCode=0, Status=0, RequestId=0))), compound=False)
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
             dict(_variant="seed", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, VirtualSize=0),
             dict(_variant="seed", ServerVersion=2, SectorSize=SECTOR, PhysicalSectorSize=4096,
                  VirtualSize=DISK_SIZE), file_id=fid)
    c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST, disk_info_response(), file_id=fid)
    c.tunnel("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", dict(_variant="seed"), dict(_variant="seed"), file_id=fid)
    c.scsi(cdb(0x12, 0, 0, 0, 36, 0), 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=fid)
    c.scsi(cdb(0x9E, 0x10, *([0] * 8), 0, 0, 0, 32, 0, 0), 16, data_in=True, length=32,
           returned=read_capacity16_data(), file_id=fid)
    c.scsi(cdb(0x28, 0, 0, 0, 0x08, 0, 0, 0, 0x80, 0), 10, data_in=True, length=65536,
           returned=pattern(65536, 1), file_id=fid, think_us=900)
    c.scsi(cdb(0x2A, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0), 10, data_in=False, length=16384,
           out=pattern(16384, 2), file_id=fid, think_us=1200)
    c.scsi(cdb(0x5E, 0x00, 0, 0, 0, 0, 0, 0x10, 0x00, 0), 10, data_in=True, length=4096,
           returned=pr_in_read_keys(3, [0x4E4F444531000001, 0x4E4F444532000002]), file_id=fid)
    c.scsi(cdb(0x5F, 0x00, 0x00, 0, 0, 0, 0, 0, 24, 0), 10, data_in=False, length=24,
           out=pr_out_params(0, 0x4E4F444531000001), file_id=fid)
    # An SMB2 READ of the disk itself (§3.1.4.4), then a WRITE that fails with a stored
    # sense error (§3.2.5.4) and its retrieval through SRB_STATUS (§3.1.5.4).
    smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 0, 4096))],
                 [Pdu(smb2.READ, smb2.read_response(pattern(4096, 3)))])
    key = 0x01
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 1 << 20, pattern(8192, 4)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"] | key)])
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(StatusKey=key, **SRB_STATUS_REQUEST),
             dict(_variant="seed", StatusKey=key, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                  ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=18, Reserved=0,
                  SenseDataEx=fixed_sense(0x03, 0x0C, 0x00).ljust(20, b"\x00")), file_id=fid)
    smb.close(fid)
    smb.tree_disconnect()
    smb.logoff()
    smb.flow.close()


def node2(cap: Capture, server, session_key: Optional[bytes] = None) -> None:
    """The Windows-layout initiator: v2 open, async SCSI, compounded tunnels, a second disk."""
    c = connect(cap, host(2, "10.0.0.12"), server, 49702, 0x0000040000000005, request_id=1000,
                session_key=session_key)
    smb = c.smb
    fid = bytes.fromhex("0200000000000000" "0b00000000000000")
    props = dict(VirtualDiskPropertiesInitialized=1, ServerServiceVersion=2, VirtualSectorSize=SECTOR,
                 PhysicalSectorSize=4096, VirtualSize=DISK_SIZE)
    open_disk(c, "disk.vhdx", open_context_windows("NODE2.cluster.example", NODE2_ID, version=2,
                                                    open_request_id=0x1234),
              open_context_windows("NODE2.cluster.example", NODE2_ID, version=2, open_request_id=0x1234,
                                   props=props),
              fid, NODE2_ID,
              support_answer("windows", "HandleStateShared"))
    # Two tunnel operations in one compound request, answered by one compound response.
    fi_q, fi_r = c.tunnel_pdus(
        "RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
        dict(_variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0, VirtualSize=0),
        dict(_variant="windows", ServerVersion=2, SectorSize=SECTOR, PhysicalSectorSize=4096, Reserved=0,
             VirtualSize=DISK_SIZE), file_id=fid)
    cc_q, cc_r = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    smb.exchange([fi_q, cc_q], [fi_r, cc_r])
    c.tunnel("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", dict(_variant="windows", Reserved=bytes(56)),
             dict(_variant="windows", IsValidDisk="TRUE", Padding=b""), file_id=fid)
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST, disk_info_response(), file_id=fid)
    c.scsi(cdb(0x12, 0, 0, 0, 36, 0), 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=fid)
    # A large READ(10) through the async tunnel: STATUS_PENDING first, then 64 KiB.
    c.scsi(cdb(0x28, 0, 0, 0, 0x20, 0, 0, 0, 0x80, 0), 10, data_in=True, length=65536,
           returned=pattern(65536, 5), file_id=fid, async_id=0x51, think_us=8000)
    # A tunnelled WRITE(10) refused with the header status only (§3.2.5.5.5).
    c.scsi(cdb(0x2A, 0, 0, 0, 0x30, 0, 0, 0, 0x08, 0), 10, data_in=False, length=4096, out=pattern(4096, 6),
           file_id=fid, status=rsvd.ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"])
    # A failed SMB2 READ with a stored sense error (the open's first: key 1), retrieved in the Windows layout.
    key = 0x01
    smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 2 << 20, 4096))],
                 [Pdu(smb2.READ, smb2.error_response(), status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"] | key)])
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(StatusKey=key, **SRB_STATUS_REQUEST),
             dict(_variant="windows", StatusKey=key, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                  ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=18,
                  SenseDataEx=fixed_sense(0x06, 0x2A, 0x03), Padding=bytes(6)), file_id=fid)
    # A second disk opened with the 168-byte Windows v1 context.
    fid2 = bytes.fromhex("0300000000000000" "0c00000000000000")
    open_disk(c, "witness.vhdx", open_context_windows("NODE2", NODE2_ID, version=1, open_request_id=0x1235),
              None, fid2, NODE2_ID,
              support_answer("windows", "HandleStateShared"))
    c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid2)
    smb.close(fid2)
    smb.close(fid)
    smb.tree_disconnect()
    smb.logoff()
    smb.flow.close()


# The session keys of rsvd_encrypted's two sessions (what an engineer pastes from the
# client, e.g. with mimikatz or a debugger, into Wireshark or `analyze --smb-key`).
SESSION_KEYS = {0x0000040000000001: bytes.fromhex("6b3a1c9e0d5f4a2b8c7e6d5f4a3b2c1d"),
                0x0000040000000005: bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")}


def shared_disk(encrypted: bool = False) -> bytes:
    cap = Capture()
    server = host(0x10, "10.0.0.20")
    node1(cap, server, SESSION_KEYS[0x0000040000000001] if encrypted else None)
    cap.tick(20_000)
    node2(cap, server, SESSION_KEYS[0x0000040000000005] if encrypted else None)
    return cap.pcapng()


def encrypted() -> bytes:
    """rsvd_shared_disk with SMB 3.0.2 encryption (AES-128-CCM) after each SESSION_SETUP."""
    return shared_disk(encrypted=True)


SCENARIOS = {"rsvd_shared_disk": shared_disk, "rsvd_encrypted": encrypted}


def malformed() -> bytes:
    """Hostile and truncated RSVD buffers: each must give expert info, never a Lua error."""
    cap = Capture()
    server = host(0x10, "10.0.0.20")
    c = connect(cap, host(3, "10.0.0.13"), server, 49703, 0x0000040000000009, request_id=50)
    smb = c.smb
    fid = bytes.fromhex("0400000000000000" "0d00000000000000")
    # A seed open context whose InitiatorHostNameLength points far past the buffer.
    ctx = bytearray(open_context_seed("NODE3", NODE1_ID))
    ctx[32:34] = (4000).to_bytes(2, "little")
    open_disk(c, "disk.vhdx", bytes(ctx), None, fid, NODE1_ID,
              support_answer("windows", "HandleStateShared"))

    def raw_ioctl(req: bytes, resp: bytes) -> None:
        smb.exchange([Pdu(smb2.IOCTL, smb2.ioctl_request(SYNC, fid, req))],
                     [Pdu(smb2.IOCTL, smb2.ioctl_response(SYNC, fid, resp))])

    hdr = rsvd.SVHDX_TUNNEL_OPERATION_HEADER
    # 1. A request cut inside the header; 2. a file-info answer cut after 12 bytes.
    good = hdr.build(dict(OperationCode="RSVD_TUNNEL_GET_FILE_INFO_OPERATION", Status=0, RequestId=50))
    raw_ioctl(good[:10], good + bytes(20)[:12])
    # 3. A SCSI request cut inside its fixed part.
    scsi = hdr.build(dict(OperationCode="RSVD_TUNNEL_SCSI_OPERATION", Status=0, RequestId=51))
    raw_ioctl(scsi + bytes([36, 0, 0, 0, 10, 20, 1]), scsi)
    # 4. A Windows-layout SRB_STATUS answer whose SenseInfoExLength overruns the buffer.
    srb = hdr.build(dict(OperationCode="RSVD_TUNNEL_SRB_STATUS_OPERATION", Status=0, RequestId=52))
    raw_ioctl(srb + rsvd.SVHDX_TUNNEL_SRB_STATUS_REQUEST.build(dict(StatusKey=3, **SRB_STATUS_REQUEST)),
              srb + bytes([3, 0x84, 0x02, 0xF0]) + fixed_sense(0x05, 0x24, 0x00))
    # 5. An OperationCode no revision defines: the body is shown undecoded, and the
    # server answers STATUS_SVHDX_VERSION_MISMATCH (3.2.5.5).
    unknown = (0x02009999).to_bytes(4, "little") + bytes(4) + (53).to_bytes(8, "little")
    mismatch = (0x02009999).to_bytes(4, "little") + rsvd.ERROR_CODES["STATUS_SVHDX_VERSION_MISMATCH"].to_bytes(
        4, "little") + (53).to_bytes(8, "little")
    raw_ioctl(unknown + b"\xde\xad\xbe\xef", mismatch)
    # 6. A file that is not a shared virtual disk: STATUS_SVHDX_WRONG_FILE_TYPE (2.2.3).
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST, dict(BodyNotDecoded=b""), file_id=fid,
             status=rsvd.ERROR_CODES["STATUS_SVHDX_WRONG_FILE_TYPE"])
    # 7. A Windows v1 open context breaking three MUSTs: Version 3, HasInitiatorId 2,
    # OriginatorFlags SVHDX_ORIGINATOR_VHDMP (3.2.5.1, 2.2.5.2).
    bad = bytearray(open_context_windows("NODE3", NODE1_ID, version=1, open_request_id=0x3001))
    bad[0:4] = (3).to_bytes(4, "little")
    bad[4] = 2
    bad[28:32] = (4).to_bytes(4, "little")
    fid2 = bytes.fromhex("0500000000000000" "0e00000000000000")
    open_disk(c, "quorum.vhdx", bytes(bad), None, fid2, NODE1_ID, support_answer("windows", "HandleStateShared"))
    smb.close(fid2)
    smb.close(fid)
    smb.flow.close()
    return cap.pcapng()


SCENARIOS["rsvd_malformed"] = malformed
