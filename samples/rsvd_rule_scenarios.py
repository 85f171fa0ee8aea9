"""rsvd_rule_violations.pcapng: the RSVD mistakes the analyzer's rules catch that
the other samples do not make, one or two frames each:

- an RSVD open on a connection that negotiated SMB 3.0.0 (RSVD needs 3.0.2);
- a shared-disk CREATE without FILE_NO_INTERMEDIATE_BUFFERING;
- a SCSI command before any GET_FILE_INFO / GET_DISK_INFO on its open;
- a tunnel operation on an open after its CLOSE (the server answers STATUS_FILE_CLOSED);
- a RequestId that skips 7 instead of adding 1;
- and one server fault: a tunnel response whose RequestId is not its request's.

Everything else in it is well-formed, so no other rule fires. rsvd_truncated.pcapng is a
capture cut short in the middle of a packet.
"""
from __future__ import annotations

import uuid

from dissectors.definitions import rsvd
from . import smb2
from .conversation import Pdu, start
from .network import Capture, host
from .rsvd_scenarios import DISK_SIZE, INQUIRY_DATA, RsvdClient, app_instance_eas, cdb, open_context_windows

NODE3_ID = uuid.UUID("3c3c3c3c-1111-4222-8333-444455556666")
STATUS_FILE_CLOSED = 0xC0000128


def create(c: RsvdClient, name: str, options: int, file_id: bytes) -> None:
    ctx = open_context_windows("NODE3", NODE3_ID, version=1, open_request_id=0x33)
    req = Pdu(smb2.CREATE, smb2.create_request(name, options, [
        smb2.create_context(rsvd.SVHDX_OPEN_DEVICE_CONTEXT_TAG, ctx),
        smb2.create_context(b"ExtA", app_instance_eas(NODE3_ID))]))
    c.smb.exchange([req], [Pdu(smb2.CREATE, smb2.create_response(file_id, DISK_SIZE // 16))], think_us=2500)


def violations() -> bytes:
    cap = Capture()
    server = host(0x20, "10.0.0.20")
    smb = start(cap, host(0x13, "10.0.0.13"), server, 49713, dialect=0x0300)
    smb.negotiate(dialects=(0x0202, 0x0210, 0x0300))
    smb.session_setup(0x0000040000000013)
    smb.tree_connect(r"\\sofs\vhdx", 1)
    c = RsvdClient(smb, request_id=1)
    fid = bytes.fromhex("1300000000000000" "1d00000000000000")
    name = "disk.vhdx" + rsvd.SHARED_VIRTUAL_DISK_SUFFIX
    create(c, name, smb2.FILE_NO_INTERMEDIATE_BUFFERING | smb2.FILE_NON_DIRECTORY_FILE, fid)  # on SMB 3.0.0
    # SCSI INQUIRY first: no GET_FILE_INFO before it
    c.scsi(cdb(0x12, 0, 0, 0, 36, 0), 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=fid)
    c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", dict(_variant="windows", ServerVersion=0, SectorSize=0,
                                                         PhysicalSectorSize=0, Reserved=0, VirtualSize=0),
             dict(_variant="windows", ServerVersion=2, SectorSize=512, PhysicalSectorSize=4096, Reserved=0,
                  VirtualSize=DISK_SIZE), file_id=fid)
    smb.close(fid)
    # the open is gone: the server refuses with STATUS_FILE_CLOSED
    q, _ = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
    smb.exchange([q], [Pdu(smb2.IOCTL, smb2.error_response(), status=STATUS_FILE_CLOSED)])
    # a second open without FILE_NO_INTERMEDIATE_BUFFERING
    fid2 = bytes.fromhex("1400000000000000" "1e00000000000000")
    create(c, "other.vhdx" + rsvd.SHARED_VIRTUAL_DISK_SUFFIX, smb2.FILE_NON_DIRECTORY_FILE, fid2)
    # a RequestId that skips 7 (MS-RSVD 3.1.4.1: +1 for every tunnel operation)
    c.request_id += 7
    c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid2)
    # the server's fault: a response whose RequestId is not its request's (3.2.5.5.2)
    q, r = c.tunnel_pdus("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid2)
    rid = c.request_id - 1
    r.body = smb2.ioctl_response(rsvd.FSCTL_SVHDX_SYNC_TUNNEL_REQUEST, fid2, rsvd.TUNNEL_RESPONSE.build(dict(
        Header=dict(OperationCode="RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", Status=0, RequestId=rid + 0x100),
        Payload={})))
    smb.exchange([q], [r])
    smb.close(fid2)
    smb.tree_disconnect()
    smb.logoff()
    smb.flow.close()
    return cap.pcapng()


def truncated() -> bytes:
    """rsvd_truncated.pcapng: rsvd_shared_disk cut 100 bytes into its last packet's record, as a
    capture whose writer died mid-packet looks; the analyzer reads what is there."""
    from .rsvd_scenarios import shared_disk

    return shared_disk()[:-100]


SCENARIOS = {"rsvd_rule_violations": violations, "rsvd_truncated": truncated}
