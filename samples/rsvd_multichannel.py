"""rsvd_multichannel.pcapng: one shared-VHDX open used over SMB 3 multichannel.

NODE1 opens disk.vhdx on a Scale-Out File Server over its first NIC (10.0.0.11 ->
10.0.0.20), then binds a second TCP connection to the same session over its second NIC
(10.0.1.11 -> 10.0.1.20, SESSION_SETUP with SMB2_SESSION_FLAG_BINDING, no TREE_CONNECT:
trees and opens belong to the session, MS-SMB2 3.3.1.10). The RequestId runs on across
both channels (MS-RSVD 3.1.1.1 keeps one per client). What a per-connection analyzer gets
wrong, each once:

- a WRITE on channel 1 answers STATUS_SVHDX_ERROR_STORED|1, fetched by SRB_STATUS on channel 2;
- a SCSI WRITE(10) on channel 2 answers STATUS_SVHDX_ERROR_STORED|2 in its tunnel header,
  fetched on channel 1;
- a READ on channel 2 answers STATUS_SVHDX_ERROR_STORED|3, never fetched before the CLOSE on
  channel 1 (rsvd.sense_not_retrieved, MS-RSVD 3.1.5.3).
"""
from __future__ import annotations

from dissectors.definitions import rsvd
from . import smb2
from .conversation import Pdu, start
from .network import Capture, host
from .rsvd_scenarios import (
    INQUIRY_DATA, NODE1_ID, SECTOR, DISK_SIZE, SRB_STATUS_ERROR_AUTOSENSE, SRB_STATUS_REQUEST, SCSI_CHECK_CONDITION,
    RsvdClient, cdb, connect, fixed_sense, open_context_windows, open_disk, pattern, srb_bits, support_answer)

SESSION = 0x0000080000000021
FID = bytes.fromhex("2100000000000000" "3100000000000000")
STORED = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"]


def srb_status(c: RsvdClient, key: int, sense: bytes) -> None:
    c.tunnel("RSVD_TUNNEL_SRB_STATUS_OPERATION", dict(StatusKey=key, **SRB_STATUS_REQUEST),
             dict(_variant="windows", StatusKey=key, SrbStatus=srb_bits(SRB_STATUS_ERROR_AUTOSENSE),
                  ScsiStatus=SCSI_CHECK_CONDITION, SenseInfoExLength=18, SenseDataEx=sense, Padding=bytes(6)),
             file_id=FID)


def multichannel() -> bytes:
    cap = Capture()
    one = connect(cap, host(1, "10.0.0.11"), host(0x10, "10.0.0.20"), 49801, SESSION, request_id=0x100)
    open_disk(one, "disk.vhdx", open_context_windows("NODE1", NODE1_ID, version=2, open_request_id=0x2001),
              None, FID, NODE1_ID, support_answer("windows", "HandleStateShared"))
    one.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION",
               dict(_variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0, VirtualSize=0),
               dict(_variant="windows", ServerVersion=2, SectorSize=SECTOR, PhysicalSectorSize=4096, Reserved=0,
                    VirtualSize=DISK_SIZE), file_id=FID)
    one.scsi(cdb(0x12, 0, 0, 0, 36, 0), 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=FID)

    # The second channel: its own NEGOTIATE, then a binding SESSION_SETUP; same session, same tree.
    cap.tick(5_000)
    smb2nd = start(cap, host(0x21, "10.0.1.11"), host(0x30, "10.0.1.20"), 49802)
    smb2nd.negotiate(client_guid=b"\x11" * 12 + host(1, "10.0.0.11").ip_bytes)  # NODE1's, as on channel 1
    smb2nd.bind_session(SESSION)
    smb2nd.tree_id = one.smb.tree_id
    two = RsvdClient(smb2nd, request_id=one.request_id)

    # Stored on channel 1, fetched on channel 2.
    one.smb.exchange([Pdu(smb2.WRITE, smb2.write_request(FID, 1 << 20, pattern(4096, 11)))],
                     [Pdu(smb2.WRITE, smb2.error_response(), status=STORED | 1)])
    srb_status(two, 1, fixed_sense(0x03, 0x0C, 0x00))
    # Stored on channel 2 (in the tunnel header of a SCSI WRITE), fetched on channel 1.
    two.scsi(cdb(0x2A, 0, 0, 0, 0x40, 0, 0, 0, 0x08, 0), 10, data_in=False, length=4096, out=pattern(4096, 12),
             file_id=FID, status=STORED | 2)
    one.request_id = two.request_id
    srb_status(one, 2, fixed_sense(0x04, 0x44, 0x00))
    # Stored on channel 2, never fetched: the CLOSE goes on channel 1.
    two.smb.exchange([Pdu(smb2.READ, smb2.read_request(FID, 3 << 20, 4096))],
                     [Pdu(smb2.READ, smb2.error_response(), status=STORED | 3)])
    one.smb.close(FID)
    two.smb.flow.close()
    one.smb.tree_disconnect()
    one.smb.logoff()
    one.smb.flow.close()
    return cap.pcapng()


SCENARIOS = {"rsvd_multichannel": multichannel}
