"""MS-RSVD conformance samples: each inventory rule (docs/rules.md R01-R50) broken once, and its
closest conforming behaviour.

rsvd_server_violations.pcapng: NODE4 (10.0.0.14) and a server that break, once each:
- the client: a context with non-zero Reserved (R08) and Flags (R09); header Status, FILE_INFO,
  DISK_INFO and SRB_STATUS request fields not zero (R03, R19, R23, R21); a CHECK_CONNECTION
  with a payload and an 8-byte shared-disk-support request (R20); an InitiatorHostNameLength
  without the NUL (R11); an OperationCode no revision defines (R02); a :SharedVirtualDisk CREATE
  without the open context (R17) and one with a single, zero-valued EA (R16); SCSI Reserved1/Reserved3
  (R27) and Reserved2 (R01; the Windows FILE_INFO padding beside it is not judged); a v1 operation through
  FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST on a version 1 open (R18);
- the server: CREATEs it must refuse accepted (Version 3 and HasInitiatorId 2: R07, R13; no
  :SharedVirtualDisk suffix: R15); FILE_INFO ServerVersion 5 (R41); a
  CHECK_CONNECTION answer with a payload (R42); a DISK_INFO answer with DiskType 7 and Reserved 1
  (R46); a SCSI answer with another DataIn, Length 40 and Reserved 1 (R48); a SCSI request of
  Length 40 served (R47); a failed SCSI operation answered with a payload (R40); a
  VALIDATE_DISK answer with IsValidDisk 5 (R49); a support answer of 2 and HandleStateFileShared
  for the handle just opened (R50); the open's first stored error under key 2 (R32); a stored key
  answered NOT_AVAILABLE and a key never stored answered success with another StatusKey and
  Reserved 1 (R44, R45); READ, WRITE and CHECK_CONNECTION served after the CLOSE (R30, R31, R36);
  a WRITE served on an open without FILE_NO_INTERMEDIATE_BUFFERING by a server that accepted a
  Version 2 context (R34); another initiator's WRITE served while NODE4 holds a WRITE
  EXCLUSIVE reservation (R33); the undefined OperationCode answered STATUS_SUCCESS (R37); a
  CHECK_CONNECTION answered with VALIDATE_DISK's OperationCode (R38).

rsvd_near_misses.pcapng: NODE5 (10.0.0.15) over two channels, and a server, each doing the
closest conforming thing for every other R check (NEAR_MISSES says which, and what).

rsvd_refusals.pcapng: NODE6 (10.0.0.16) sends what the server must refuse (a Version 3 context,
HasInitiatorId 2, a name without the suffix, a SCSI request of Length 40, an SRB_STATUS for a
key never stored), and the server refuses each as it must (R07, R13, R15, R47, R44); the client's
own findings (R06, R12, R14, R22, R26) are the price of asking.
"""
from __future__ import annotations

import uuid
from typing import Optional

from dissectors.definitions import rsvd, scsi
from . import smb2
from .conversation import Pdu, start
from .network import Capture, host
from .rsvd_scenarios import (DISK_INFO_REQUEST, DISK_SIZE, INQUIRY_DATA, SECTOR, SRB_STATUS_ERROR_AUTOSENSE,
                             SRB_STATUS_REQUEST, SCSI_CHECK_CONDITION, ASYNC, SYNC, RsvdClient, app_instance_eas, cdb,
                             connect, disk_info_response, fixed_sense, open_context_seed, open_context_windows,
                             pattern, read_capacity16_data, srb_bits, support_answer)

STORED = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"]
INVALID_PARAMETER = rsvd.NT_STATUS["STATUS_INVALID_PARAMETER"]
NOT_SUPPORTED = rsvd.NT_STATUS["STATUS_NOT_SUPPORTED"]
FILE_CLOSED = 0xC0000128
OBJECT_NAME_NOT_FOUND = 0xC0000034
FNIB = smb2.FILE_NO_INTERMEDIATE_BUFFERING | smb2.FILE_NON_DIRECTORY_FILE
NODE4_ID = uuid.UUID("44444444-1111-4222-8333-444455556666")
NODE5_ID = uuid.UUID("55555555-1111-4222-8333-444455556666")
NODE6_ID = uuid.UUID("66666666-1111-4222-8333-444455556666")
ZERO_ID = uuid.UUID(int=0)
SUFFIX = rsvd.SHARED_VIRTUAL_DISK_SUFFIX
FILE_INFO_ZERO = dict(_variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0,
                      VirtualSize=0)


def file_info(version: int = 2, reserved: int = 0) -> dict:
    return dict(_variant="windows", ServerVersion=version, SectorSize=SECTOR, PhysicalSectorSize=4096,
                Reserved=reserved, VirtualSize=DISK_SIZE)


def fid_of(n: int) -> bytes:
    return bytes([n]) + bytes(7) + bytes([0x40 + n]) + bytes(7)


def context(host_name: str, initiator: uuid.UUID, *, version: int = 1, has_id=None, reserved: bytes = bytes(3),
            flags: int = 0) -> bytes:
    """A Windows-layout open context (168 bytes, or 192 for Version 2) with the fields a test needs."""
    ctx = bytearray(open_context_windows(host_name, initiator, version=2 if version == 2 else 1,
                                         open_request_id=0x4000 + initiator.bytes[0]))
    ctx[0:4] = version.to_bytes(4, "little")
    ctx[4] = (1 if initiator != ZERO_ID else 0) if has_id is None else has_id
    ctx[5:8] = reserved
    ctx[24:28] = flags.to_bytes(4, "little")
    return bytes(ctx)


def create(c: RsvdClient, name: str, ctx: Optional[bytes], fid: bytes, initiator: uuid.UUID, *, options: int = FNIB,
           status: int = 0, eas: Optional[bytes] = None, app_instance: Optional[uuid.UUID] = None) -> None:
    """CREATE with the open context (unless ctx is None) and the EAs of 3.1.4.2 (or `eas`; b"": no ExtA);
    with `app_instance`, an SMB2_CREATE_APP_INSTANCE_ID context too, as Windows' SMB2 client sends it."""
    contexts = [smb2.create_context(rsvd.SVHDX_OPEN_DEVICE_CONTEXT_TAG, ctx)] if ctx is not None else []
    if eas != b"":
        contexts.append(smb2.create_context(b"ExtA", app_instance_eas(initiator) if eas is None else eas))
    if app_instance is not None:
        contexts.append(smb2.create_context(rsvd.SMB2_CREATE_APP_INSTANCE_ID_TAG, rsvd.SMB2_CREATE_APP_INSTANCE_ID.build(
            dict(StructureSize=20, Reserved=0, AppInstanceId=app_instance))))
    req = Pdu(smb2.CREATE, smb2.create_request(name, options, contexts))
    resp = Pdu(smb2.CREATE, smb2.error_response(), status=status) if status else \
        Pdu(smb2.CREATE, smb2.create_response(fid, DISK_SIZE // 16))
    c.smb.exchange([req], [resp], think_us=2500)


def support(c: RsvdClient, fid: bytes, answer: bytes, request: bytes = b"") -> None:
    c.smb.exchange([Pdu(smb2.IOCTL, smb2.ioctl_request(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, fid, request,
                                                       max_output=8))],
                   [Pdu(smb2.IOCTL, smb2.ioctl_response(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, fid, answer))])


def header(op: str, rid: int, status: int = 0) -> bytes:
    return rsvd.SVHDX_TUNNEL_OPERATION_HEADER.build(dict(OperationCode=op, Status=status, RequestId=rid))


def raw_tunnel(c: RsvdClient, fid: bytes, request: bytes, response: bytes, fsctl: int = SYNC) -> None:
    """A tunnel operation whose bytes the test spells out (the RequestId is the client's next)."""
    c.smb.exchange([Pdu(smb2.IOCTL, smb2.ioctl_request(fsctl, fid, request))],
                   [Pdu(smb2.IOCTL, smb2.ioctl_response(fsctl, fid, response))])


def scsi_request(cdb_bytes: bytes, cdb_len: int, **kw) -> dict:
    r = dict(Length=36, Reserved1=0, CdbLength=cdb_len, SenseInfoExLength=20, DataIn="SCSI_IOCTL_DATA_IN",
             Reserved2=0, SrbFlags={k: k == "SRB_FLAGS_DATA_IN" for k in rsvd.SRB_FLAGS}, DataTransferLength=36,
             CDBBuffer=cdb_bytes, Reserved3=0, DataBuffer=b"")
    r.update(kw)
    return r


def scsi_response(returned: bytes, **kw) -> dict:
    r = dict(Length=36, SrbStatus=srb_bits(1), ScsiStatus=0, CdbLength=6, SenseInfoExLength=0,
             DataIn="SCSI_IOCTL_DATA_IN", Reserved=0, SrbFlags={k: k == "SRB_FLAGS_DATA_IN" for k in rsvd.SRB_FLAGS},
             DataTransferLength=len(returned), SenseDataEx=bytes(20), DataBuffer=returned)
    r.update(kw)
    return r


INQUIRY = cdb(0x12, 0, 0, 0, 36, 0)
OTHER_ID = uuid.UUID("77777777-1111-4222-8333-444455556666")


def pr_out(c: RsvdClient, fid: bytes, action: str, key: int, sa_key: int, kind: str = "WRITE_EXCLUSIVE") -> None:
    """PERSISTENT RESERVE OUT (SPC-3 6.12) through the tunnel, accepted (GOOD)."""
    params = scsi.PR_OUT_PARAMETERS.build(dict(
        ReservationKey=key, ServiceActionReservationKey=sa_key, Obsolete=bytes(4),
        ParameterFlags=dict(SPEC_I_PT=False, ALL_TG_PT=False, APTPL=False), Reserved=b"\x00", Obsolete2=bytes(2)))
    c.scsi(scsi.SCSI_CDB.build(dict(OperationCode="PERSISTENT_RESERVE_OUT", Fields=dict(
        ServiceAction=action, ScopeType=dict(Scope="LU_SCOPE", Type=kind), Reserved=bytes(2),
        ParameterListLength=len(params), Control=0))).ljust(16, b"\x00"), 10, data_in=False, length=len(params),
        out=params, file_id=fid)


def srb_answer(key: int) -> dict:
    return dict(_variant="windows", StatusKey=key, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=18, SenseDataEx=fixed_sense(0x03, 0x0C, 0x00),
                Padding=bytes(6))


def server_violations() -> bytes:
    cap = Capture()
    c = connect(cap, host(4, "10.0.0.14"), host(0x10, "10.0.0.20"), 49704, 0x0000040000000041, request_id=1)
    smb = c.smb
    # CREATEs the server must refuse, accepted (3.2.5.1)
    create(c, "bad.vhdx" + SUFFIX, context("NODE4", NODE4_ID, version=3, has_id=2), fid_of(1), NODE4_ID)
    create(c, "plain.vhdx", context("NODE4", NODE4_ID), fid_of(2), NODE4_ID)
    # The main open: Reserved and Flags not zero (2.2.5.2); its support answer is wrong twice (2.2.5.16)
    fid = fid_of(3)
    create(c, "disk.vhdx" + SUFFIX, context("NODE4", NODE4_ID, reserved=b"\x01\x00\x00", flags=0x10), fid, NODE4_ID)
    support(c, fid, rsvd.SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE.build(dict(
        _variant="windows", SharedVirtualDiskSupport=2, SharedVirtualDiskHandleState="HandleStateFileShared")),
        request=bytes(8))
    # FILE_INFO: header Status, SectorSize and Reserved set by the client; ServerVersion 5 and Reserved back
    rid = c.request_id
    c.request_id += 1
    raw_tunnel(c, fid, header("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", rid, status=0x10)
               + rsvd.SVHDX_TUNNEL_FILE_INFO_REQUEST.build(dict(FILE_INFO_ZERO, SectorSize=512, Reserved=7)),
               header("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", rid)
               + rsvd.SVHDX_TUNNEL_FILE_INFO_RESPONSE.build(file_info(version=5, reserved=9)))
    # CHECK_CONNECTION with 4 bytes of payload, answered with 4 bytes of payload (2.2.5.5, 2.2.5.6)
    rid = c.request_id
    c.request_id += 1
    raw_tunnel(c, fid, header("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", rid) + bytes(4),
               header("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", rid) + bytes(4))
    # DISK_INFO: BlockSize from the client; DiskType 7 and Reserved 1 from the server
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", dict(DISK_INFO_REQUEST, BlockSize=4096),
             dict(disk_info_response(), DiskType=7, Reserved=1), file_id=fid)
    # VALIDATE_DISK answered with IsValidDisk 5 (2.2.5.14)
    c.tunnel("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", dict(_variant="windows", Reserved=bytes(56)),
             dict(_variant="windows", IsValidDisk=5, Padding=bytes(7)), file_id=fid)
    # SCSI: Reserved1/2/3 set by the client; another DataIn, Length 40 and Reserved 1 back (2.2.5.11-12)
    c.tunnel("RSVD_TUNNEL_SCSI_OPERATION", scsi_request(INQUIRY, 6, Reserved1=1, Reserved2=2, Reserved3=3),
             scsi_response(INQUIRY_DATA, DataIn="SCSI_IOCTL_DATA_OUT", Length=40, Reserved=1), file_id=fid)
    # SCSI request of Length 40 served (3.2.5.5.5)
    c.tunnel("RSVD_TUNNEL_SCSI_OPERATION", scsi_request(INQUIRY, 6, Length=40), scsi_response(INQUIRY_DATA),
             file_id=fid)
    # A failed SCSI operation whose answer carries a payload after the header (3.2.5.5.5)
    rid = c.request_id
    c.request_id += 1
    raw_tunnel(c, fid, header("RSVD_TUNNEL_SCSI_OPERATION", rid)
               + rsvd.SVHDX_TUNNEL_SCSI_REQUEST.build(scsi_request(INQUIRY, 6)),
               header("RSVD_TUNNEL_SCSI_OPERATION", rid, status=rsvd.ERROR_CODES["STATUS_SVHDX_WRONG_FILE_TYPE"])
               + bytes(36))
    # A v1 operation through the async tunnel on a version 1 open (3.1.4.7)
    c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid, fsctl=ASYNC)
    # The open's first stored error under key 2 (3.2.5.4: 1 comes first)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 1 << 20, pattern(4096, 21)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=STORED | 2)])
    # Its SRB_STATUS with SrbStatus set (2.2.5.7), answered NOT_AVAILABLE although key 2 is stored
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=2, SrbStatus=4),
             dict(BodyNotDecoded=b""), file_id=fid, status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_NOT_AVAILABLE"])
    # A key never stored, answered success with StatusKey 8 and Reserved 1 (3.2.5.5.3, 2.2.5.8)
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=9),
             dict(_variant="seed", StatusKey=8, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                  ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=18, Reserved=1,
                  SenseDataEx=fixed_sense(0x03, 0x0C, 0x00).ljust(20, b"\x00")), file_id=fid)
    # NODE4 reserves the disk WRITE EXCLUSIVE; another initiator's WRITE is served (3.2.5.4)
    pr_out(c, fid, "REGISTER", 0, 0x4E4F444534000001)
    pr_out(c, fid, "RESERVE", 0x4E4F444534000001, 0)
    other = fid_of(11)
    create(c, "disk.vhdx" + SUFFIX, context("NODE7", OTHER_ID), other, OTHER_ID)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(other, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.write_response(512))])
    smb.close(other)
    smb.close(fid)
    # After the CLOSE: READ, WRITE and CHECK_CONNECTION served (3.2.5.3-5)
    smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 0, 512))], [Pdu(smb2.READ, smb2.read_response(bytes(512)))])
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 0, bytes(512)))], [Pdu(smb2.WRITE, smb2.write_response(512))])
    c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    # An open without FILE_NO_INTERMEDIATE_BUFFERING whose WRITE is served (3.2.5.4, newer)
    fid4 = fid_of(4)
    # (a Version 2 context accepted: a server of the newer revision)
    create(c, "nobuf.vhdx" + SUFFIX, context("NODE4", NODE4_ID, version=2), fid4, NODE4_ID,
           options=smb2.FILE_NON_DIRECTORY_FILE)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid4, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.write_response(512))])
    smb.close(fid4)
    # A seed context whose InitiatorHostNameLength leaves out the NUL (2.2.5.2)
    fid6 = fid_of(6)
    name = "NODE4".encode("utf-16-le")
    create(c, "short.vhdx" + SUFFIX, rsvd.SVHDX_OPEN_DEVICE_CONTEXT.build(dict(
        _variant="seed", Version=1, HasInitiatorId="TRUE", Reserved=bytes(3), InitiatorId=NODE4_ID, Flags=0,
        OriginatorFlags="SVHDX_ORIGINATOR_PVHDPARSER", InitiatorHostNameLength=len(name), InitiatorHostName="NODE4")),
        fid6, NODE4_ID)
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", FILE_INFO_ZERO, file_info(1), file_id=fid6)
    # A shared-disk name without the open context (R17), and an open whose EAs are wrong (R16)
    create(c, "bare.vhdx" + SUFFIX, None, fid_of(7), NODE4_ID)
    smb.close(fid_of(7))
    create(c, "eas.vhdx" + SUFFIX, context("NODE4", NODE4_ID), fid_of(8), NODE4_ID,
           eas=smb2.full_ea_list([(rsvd.SMB_CCF_APP_INSTANCE_EA_NAME.encode(), bytes(16))]))
    smb.close(fid_of(8))
    # An OperationCode no revision defines, answered STATUS_SUCCESS (3.2.5.5: VERSION_MISMATCH)
    rid = c.request_id
    c.request_id += 1
    unknown = (0x02009999).to_bytes(4, "little")
    raw_tunnel(c, fid6, unknown + bytes(4) + rid.to_bytes(8, "little"), unknown + bytes(4) + rid.to_bytes(8, "little"))
    # CHECK_CONNECTION answered with VALIDATE_DISK's OperationCode (3.2.5.5.2)
    rid = c.request_id
    c.request_id += 1
    raw_tunnel(c, fid6, header("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", rid),
               header("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", rid))
    smb.close(fid6)
    smb.close(fid_of(1))
    smb.close(fid_of(2))
    smb.tree_disconnect()
    smb.logoff()
    smb.flow.close()
    return cap.pcapng()


def near_misses() -> bytes:
    cap = Capture()
    server = host(0x10, "10.0.0.20")
    session = 0x0000040000000051
    c = connect(cap, host(5, "10.0.0.15"), server, 49705, session, request_id=0xFFFE)
    smb = c.smb
    # A Version 2 context in the 192-byte layout: accepted (newer 3.2.5.1); the seed's own layout with a
    # 62-character host name (126 bytes with its NUL) on a second open
    fid = fid_of(6)
    create(c, r"vm1\disk.vhdx" + SUFFIX, context("NODE5", NODE5_ID, version=2), fid, NODE5_ID)
    support(c, fid, rsvd.SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE.build(dict(
        _variant="windows", SharedVirtualDiskSupport=3, SharedVirtualDiskHandleState="HandleStateShared")))
    # Two operations in one compound, echoed (3.2.5.5.1-2); Windows' 24-byte FILE_INFO, ServerVersion 2
    fi_q, fi_r = c.tunnel_pdus("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", FILE_INFO_ZERO, file_info(2), file_id=fid)
    cc_q, cc_r = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    smb.exchange([fi_q, cc_q], [fi_r, cc_r])
    # Windows' alignment padding left uninitialised: FILE_INFO's 4 bytes before VirtualSize, both ways
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", dict(FILE_INFO_ZERO, Reserved=0xCCCCCCCC),
             file_info(2, reserved=0xBAADF00D), file_id=fid)
    # Windows' VALIDATE_DISK: 56 zero bytes, IsValidDisk TRUE and zero padding; then with padding not zero
    c.tunnel("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", dict(_variant="windows", Reserved=bytes(56)),
             dict(_variant="windows", IsValidDisk="TRUE", Padding=bytes(7)), file_id=fid)
    c.tunnel("RSVD_TUNNEL_VALIDATE_DISK_OPERATION", dict(_variant="windows", Reserved=bytes(56)),
             dict(_variant="windows", IsValidDisk="TRUE", Padding=b"\xcc" * 7), file_id=fid)
    # DISK_INFO: a fixed VHD set, not mounted
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST,
             dict(disk_info_response(), DiskType="VHD_TYPE_FIXED", DiskFormat="VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET",
                  IsMounted="FALSE"), file_id=fid)
    # DISK_INFO: a VHD Set with checkpoints, differencing (Windows)
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST,
             dict(disk_info_response(), DiskType="VHD_TYPE_DIFFERENCING",
                  DiskFormat="VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET"), file_id=fid)
    # A failed DISK_INFO: the header only (3.2.5.5.4)
    c.tunnel("RSVD_TUNNEL_GET_DISK_INFO_OPERATION", DISK_INFO_REQUEST, dict(BodyNotDecoded=b""), file_id=fid,
             status=rsvd.ERROR_CODES["STATUS_SVHDX_WRONG_FILE_TYPE"])
    # SCSI: CdbLength 16 and SenseInfoExLength 20 exactly; DataIn UNSPECIFIED echoed
    c.scsi(cdb(0x9E, 0x10, *([0] * 8), 0, 0, 0, 32, 0, 0), 16, data_in=True, length=32,
           returned=read_capacity16_data(), file_id=fid)
    unspecified = dict(DataIn="SCSI_IOCTL_DATA_UNSPECIFIED", DataTransferLength=0,
                       SrbFlags={k: False for k in rsvd.SRB_FLAGS})
    c.tunnel("RSVD_TUNNEL_SCSI_OPERATION", scsi_request(cdb(0, 0, 0, 0, 0, 0), 6, **unspecified),
             scsi_response(b"", **unspecified), file_id=fid)
    # A SCSI answer whose Length counts its data: 36 + DataTransferLength (3.2.5.5.5, "the structure constructed")
    c.tunnel("RSVD_TUNNEL_SCSI_OPERATION", scsi_request(INQUIRY, 6),
             scsi_response(INQUIRY_DATA, Length=36 + len(INQUIRY_DATA)), file_id=fid)
    # A v1 operation through the async tunnel on a Version 2 open
    c.scsi(INQUIRY, 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=fid, async_id=0x61)
    # A v2 operation the server knows, answered
    c.tunnel("RSVD_TUNNEL_QUERY_SAFE_SIZE", dict(BodyNotDecoded=b""), dict(SafeVirtualSize=DISK_SIZE // 2),
             file_id=fid)
    # Stored errors 1 and 2 on this open, each fetched on the same handle: the READ's on a second channel,
    # whose RequestIds go on from the first's, exactly +1 (3.1.4.1)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 1 << 20, pattern(4096, 31)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=STORED | 1)])
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=1), srb_answer(1), file_id=fid)
    cap.tick(5_000)
    smb2nd = start(cap, host(0x25, "10.0.1.15"), host(0x30, "10.0.1.20"), 49706)
    smb2nd.negotiate(client_guid=b"\x11" * 12 + host(5, "10.0.0.15").ip_bytes)
    smb2nd.bind_session(session)
    smb2nd.tree_id = smb.tree_id
    two = RsvdClient(smb2nd, request_id=c.request_id)
    smb2nd.exchange([Pdu(smb2.READ, smb2.read_request(fid, 2 << 20, 4096))],
                    [Pdu(smb2.READ, smb2.error_response(), status=STORED | 2)])
    two.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=2), srb_answer(2), file_id=fid)
    # RequestIds captured out of order across the channels: the second channel's id first, then the first's
    rid = two.request_id
    q2, r2 = two.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid, request_id=rid + 1)
    smb2nd.exchange([q2], [r2])
    q1, r1 = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid, request_id=rid)
    smb.exchange([q1], [r1])
    c.request_id = rid + 2
    # Two READs in flight at once, answered out of order: key 4 before key 3 (both after 2); each fetched,
    # key 3 with SenseInfoExLength 20, the size 3.2.5.5.3 wants
    (m3,) = smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 3 << 20, 4096))], [])
    (m4,) = smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 4 << 20, 4096))], [])
    smb.respond([Pdu(smb2.READ, smb2.error_response(), status=STORED | 4, message_id=m4)])
    smb.respond([Pdu(smb2.READ, smb2.error_response(), status=STORED | 3, message_id=m3)])
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=3, SenseInfoExLength=20),
             srb_answer(3), file_id=fid)
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=4), srb_answer(4), file_id=fid)
    # NODE5 holds a WRITE EXCLUSIVE reservation: its own WRITE is served, another initiator's refused
    pr_out(c, fid, "REGISTER", 0, 0x4E4F444535000001)
    pr_out(c, fid, "RESERVE", 0x4E4F444535000001, 0)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.write_response(512))])
    other = fid_of(12)
    create(c, r"vm1\disk.vhdx" + SUFFIX, context("NODE7", OTHER_ID), other, OTHER_ID)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(other, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=rsvd.ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"])])
    smb.close(other)
    # NODE5's VM, live-migrated to NODE9, keeps its InitiatorId: its WRITE is the holder's, served
    moved = fid_of(14)
    create(c, r"vm1\disk.vhdx" + SUFFIX, context("NODE9", NODE5_ID), moved, NODE5_ID)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(moved, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.write_response(512))])
    smb.close(moved)
    smb.close(fid)
    # After the CLOSE the server refuses READ, WRITE and tunnel operations with STATUS_FILE_CLOSED (MS-SMB2)
    smb.exchange([Pdu(smb2.READ, smb2.read_request(fid, 0, 512))],
                 [Pdu(smb2.READ, smb2.error_response(), status=FILE_CLOSED)])
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=FILE_CLOSED)])
    q, _ = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    smb.exchange([q], [Pdu(smb2.IOCTL, smb2.error_response(), status=FILE_CLOSED)])
    # A second file server, the seed's (FILE_INFO ServerVersion 1: its one ServerServiceVersion, 3.2.3, in
    # every answer, as the first server's is 2 in all of its): the same client, its RequestIds going on
    old = connect(cap, host(5, "10.0.0.15"), host(0x11, "10.0.0.21"), 49708, 0x0000040000000055,
                  request_id=c.request_id)
    # The seed layout, a 126-byte host name, no InitiatorId, a virtual SCSI disk: its WRITE is stored (key 1)
    fid2 = fid_of(7)
    long_name = "N" * 62
    seed = bytearray(open_context_seed(long_name, NODE5_ID))
    seed[4] = 0
    seed[8:24] = bytes(16)
    create(old, "anon.vhdx" + SUFFIX, bytes(seed), fid2, ZERO_ID, eas=smb2.full_ea_list([
        (rsvd.APP_TRAFFIC_TYPE_EA_NAME.encode(), bytes(16)), (rsvd.SMB_CCF_APP_INSTANCE_EA_NAME.encode(), bytes(16))]))
    old.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
               dict(_variant="seed", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, VirtualSize=0),
               dict(_variant="seed", ServerVersion=1, SectorSize=SECTOR, PhysicalSectorSize=4096, VirtualSize=DISK_SIZE),
               file_id=fid2)
    old.smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid2, 0, bytes(512)))],
                     [Pdu(smb2.WRITE, smb2.error_response(), status=STORED | 1)])
    old.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=1),
               dict(_variant="seed", StatusKey=1, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                    ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=20, Reserved=0,
                    SenseDataEx=fixed_sense(0x03, 0x0C, 0x00).ljust(20, b"\x00")), file_id=fid2)
    c.request_id = old.request_id
    # A plain file whose name only contains the suffix, opened with EAs but no open context
    create(c, "SharedVirtualDisk.txt", None, fid_of(13), NODE5_ID)
    smb.close(fid_of(13))
    # An empty shared-disk-support request, answered in the seed layout
    support(old, fid2, support_answer("seed", "HandleStateShared"))
    old.smb.close(fid2)
    # An open without FILE_NO_INTERMEDIATE_BUFFERING on a newer server (a Version 2 context accepted): its
    # WRITE refused with STATUS_NOT_SUPPORTED
    fid3 = fid_of(8)
    create(c, "nobuf.vhdx" + SUFFIX, context("NODE5", NODE5_ID, version=2), fid3, NODE5_ID,
           options=smb2.FILE_NON_DIRECTORY_FILE)
    smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid3, 0, bytes(512)))],
                 [Pdu(smb2.WRITE, smb2.error_response(), status=NOT_SUPPORTED)])
    smb.close(fid3)
    # The same on the seed's server (FILE_INFO ServerVersion 1), which writes whatever the CreateOptions: served
    fid4 = fid_of(15)
    old.request_id = c.request_id
    create(old, "seedsrv.vhdx" + SUFFIX, context("NODE5", NODE5_ID), fid4, NODE5_ID,
           options=smb2.FILE_NON_DIRECTORY_FILE)
    old.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", FILE_INFO_ZERO, file_info(1), file_id=fid4)
    old.smb.exchange([Pdu(smb2.WRITE, smb2.write_request(fid4, 0, bytes(512)))],
                     [Pdu(smb2.WRITE, smb2.write_response(512))])
    old.smb.close(fid4)
    c.request_id = old.request_id
    # The app instance as Windows' SMB2 client sends it: SMB2_CREATE_APP_INSTANCE_ID, no ExtA at all; and an
    # ExtA with the app instance EA alone (no traffic-type EA)
    create(c, "appinst.vhdx" + SUFFIX, context("NODE5", NODE5_ID), fid_of(16), NODE5_ID, eas=b"", app_instance=NODE5_ID)
    smb.close(fid_of(16))
    create(c, "oneea.vhdx" + SUFFIX, context("NODE5", NODE5_ID), fid_of(17), NODE5_ID,
           eas=smb2.full_ea_list([(rsvd.SMB_CCF_APP_INSTANCE_EA_NAME.encode(), NODE5_ID.bytes_le)]))
    smb.close(fid_of(17))
    # The capture ends with a READ's stored error not yet fetched on an open still open: not judged
    fid5 = fid_of(18)
    create(c, "tail.vhdx" + SUFFIX, context("NODE5", NODE5_ID, version=2), fid5, NODE5_ID)
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", FILE_INFO_ZERO, file_info(2), file_id=fid5)
    smb.exchange([Pdu(smb2.READ, smb2.read_request(fid5, 0, 4096))],
                 [Pdu(smb2.READ, smb2.error_response(), status=STORED | 1)])
    smb2nd.flow.close()
    for s in (old.smb, smb):
        s.tree_disconnect()
        s.logoff()
        s.flow.close()
    return cap.pcapng()


def refusals() -> bytes:
    cap = Capture()
    c = connect(cap, host(6, "10.0.0.16"), host(0x10, "10.0.0.20"), 49707, 0x0000040000000061, request_id=1)
    smb = c.smb
    create(c, "bad.vhdx" + SUFFIX, context("NODE6", NODE6_ID, version=3), fid_of(9), NODE6_ID,
           status=INVALID_PARAMETER)
    create(c, "bad.vhdx" + SUFFIX, context("NODE6", NODE6_ID, has_id=2), fid_of(9), NODE6_ID,
           status=INVALID_PARAMETER)
    # MS-SMB2 may refuse the name first, with its own status: accepted
    create(c, "plain.vhdx", context("NODE6", NODE6_ID), fid_of(9), NODE6_ID, status=OBJECT_NAME_NOT_FOUND)
    fid = fid_of(10)
    create(c, "disk.vhdx" + SUFFIX, context("NODE6", NODE6_ID), fid, NODE6_ID)
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", FILE_INFO_ZERO, file_info(1), file_id=fid)
    c.tunnel("RSVD_TUNNEL_SCSI_OPERATION", scsi_request(INQUIRY, 6, Length=40), dict(BodyNotDecoded=b""),
             file_id=fid, status=INVALID_PARAMETER)
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(SRB_STATUS_REQUEST, StatusKey=3), dict(BodyNotDecoded=b""),
             file_id=fid, status=rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_NOT_AVAILABLE"])
    smb.close(fid)
    smb.tree_disconnect()
    smb.logoff()
    smb.flow.close()
    return cap.pcapng()


SCENARIOS = {"rsvd_server_violations": server_violations, "rsvd_near_misses": near_misses,
             "rsvd_refusals": refusals}

NEAR_MISSES = {
    "rsvd_near_misses": {
        "R01": "the 56-byte VALIDATE_DISK request zero; Windows' FILE_INFO alignment padding not zero, both ways",
        "R02": "a v2 OperationCode (RSVD_TUNNEL_QUERY_SAFE_SIZE), known to the server",
        "R03": "every request's header Status 0, in a compound and on a second channel",
        "R04": "RequestIds 0xFFFE upwards, unique across two channels of one client",
        "R05": "RequestId exactly +1 from the first channel's last to the second channel's first; then ids N+1 "
               "(second channel) and N (first) captured out of order",
        "R06": "Version 2 in Windows' 192-byte SVHDX_OPEN_DEVICE_CONTEXT_V2",
        "R08": "Reserved zero in both Windows and seed contexts",
        "R09": "Flags 0 with a non-zero InitiatorId beside it",
        "R10": "OriginatorFlags 1 in a seed context",
        "R11": "a 62-character InitiatorHostName: 126 bytes with its NUL, the most allowed",
        "R12": "HasInitiatorId FALSE with an all-zero InitiatorId",
        "R14": "a name in a subfolder ending in :SharedVirtualDisk",
        "R16": "the two EAs in the other order, valued with the zero InitiatorId of an open without one; "
               "SMB2_CREATE_APP_INSTANCE_ID and no ExtA (Windows); the app instance EA alone",
        "R17": "SharedVirtualDisk.txt, a name that holds the suffix but does not end in it, without the context",
        "R18": "SCSI through FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST on a Version 2 open",
        "R19": "Windows' 24-byte FILE_INFO request, all zero",
        "R20": "CHECK_CONNECTION header only; Windows' 56-byte VALIDATE_DISK; an empty support request",
        "R21": "SRB_STATUS requests with every reserved field zero; one with SenseInfoExLength 20",
        "R22": "StatusKey the low byte of the READ's and WRITE's stored errors, on the same handle",
        "R23": "DISK_INFO requests all zero",
        "R24": "CdbLength 16 (SERVICE ACTION IN(16)), the most allowed",
        "R25": "SenseInfoExLength 20, the most allowed",
        "R26": "SCSI requests of Length 36",
        "R27": "SCSI Reserved1 and Reserved3 zero",
        "R28": "a READ's stored error fetched on the other channel; one unfetched when the capture ends, its "
               "open not closed (not evaluated)",
        "R29": "a WRITE's stored error fetched on the same channel",
        "R30": "a READ after the CLOSE refused with STATUS_FILE_CLOSED (MS-SMB2), not INVALID_PARAMETER",
        "R31": "a WRITE after the CLOSE refused with STATUS_FILE_CLOSED",
        "R32": "keys 1 then 2 on one open, and 1 again on the next open (per-open sequences); two READs in "
               "flight answered with keys 4 then 3",
        "R33": "under NODE5's WRITE EXCLUSIVE reservation, NODE5's WRITE served and NODE7's refused with "
               "STATUS_SVHDX_RESERVATION_CONFLICT; NODE5's InitiatorId from NODE9 (live migration) served",
        "R34": "a WRITE on an open without FILE_NO_INTERMEDIATE_BUFFERING refused with STATUS_NOT_SUPPORTED by a "
               "newer server; served by the seed's server (FILE_INFO ServerVersion 1: not evaluated)",
        "R36": "CHECK_CONNECTION after the CLOSE refused with STATUS_FILE_CLOSED",
        "R37": "a v2 OperationCode answered STATUS_SUCCESS",
        "R38": "two operations in one compound, each answered with its own OperationCode",
        "R39": "RequestIds echoed across a compound and two channels",
        "R40": "a failed DISK_INFO answered with the header only",
        "R41": "ServerVersion 2 (an RSVD v2 server) and 1",
        "R42": "CHECK_CONNECTION answered STATUS_SUCCESS, header only, inside a compound",
        "R44": "stored keys answered STATUS_SUCCESS",
        "R45": "Windows' 1-byte StatusKey echoed; the seed's with SenseInfoExLength 20",
        "R46": "DiskType VHD_TYPE_FIXED, DiskFormat VHDSET (Windows), IsMounted FALSE; VHD_TYPE_DIFFERENCING "
               "with VHDSET (a VHD Set with checkpoints)",
        "R48": "DataIn SCSI_IOCTL_DATA_UNSPECIFIED echoed, Length 36; Length 36 + DataTransferLength",
        "R49": "Windows' IsValidDisk TRUE with zero padding, and with padding not zero",
        "R50": "SharedVirtualDiskSupport 3 (snapshots, Windows) and 1 (seed), HandleStateShared",
    },
    "rsvd_refusals": {
        "R07": "a Version 3 context refused with STATUS_INVALID_PARAMETER",
        "R13": "HasInitiatorId 2 refused with STATUS_INVALID_PARAMETER",
        "R15": "a name without the suffix refused by MS-SMB2 first (STATUS_OBJECT_NAME_NOT_FOUND)",
        "R44": "a key never stored answered STATUS_SVHDX_ERROR_NOT_AVAILABLE",
        "R47": "a SCSI request of Length 40 refused with STATUS_INVALID_PARAMETER",
    },
}
