"""The SCSI of RSVD exchanges, carried again over iSCSI (RFC 7143), so that Wireshark's own
SCSI dissector can decode the same CDBs, parameter data and sense data as ours does.

One TCP connection from an initiator to port 3260 (iscsi.target_ports' default); for every
exchange, in order: SCSI Command (opcode 0x01, the CDB in BHS bytes 32-47), Data-Out (0x05)
PDUs with the Data-out buffer, Data-In (0x25) PDUs with the Data-in buffer, the last carrying
the status when it is GOOD (phase collapse), else a SCSI Response (0x21) whose data segment
is SenseLength (2 bytes) and the sense data. Initiator Task Tags are unique, so Wireshark
pairs each command with its data and status. No digests and no login: tshark 4.0, 4.4 and
4.6 decode a LUN they have seen no INQUIRY for as a block device (scsi.decode_scsi_messages_as
defaults to Block Device), and need no preference.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from samples.network import Capture, TcpFlow, host
from samples.rsvd_scenarios import NODE1_ID, connect, open_context_windows, open_disk, support_answer

ISCSI_PORT = 3260
MAX_DATA_SEGMENT = 8192  # MaxRecvDataSegmentLength's default (RFC 7143 13.12)

OP_SCSI_COMMAND, OP_SCSI_RESPONSE, OP_DATA_OUT, OP_DATA_IN = 0x01, 0x21, 0x05, 0x25
F_FINAL, F_READ, F_WRITE, ATTR_SIMPLE = 0x80, 0x40, 0x20, 0x01
DATA_IN_STATUS = 0x01  # the S bit
NO_TTT = 0xFFFFFFFF
LUN0 = bytes(8)


@dataclass
class ScsiExchange:
    """One SCSI command as the RSVD tunnel carried it: the bytes both dissectors decode."""

    cdb: bytes  # CdbLength bytes
    expected_length: int  # DataTransferLength of the request
    data_out: bytes = b""
    data_in: bytes = b""
    read: bool = False  # SCSI_IOCTL_DATA_IN
    status: int = 0  # SCSI status
    sense: bytes = b""  # SenseInfoExLength bytes


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _bhs(opcode: int, flags: int, b2: int, b3: int, data_len: int, b8_15: bytes, itt: int, rest: bytes) -> bytes:
    """The 48-byte Basic Header Segment (RFC 7143 11.2.1), with no AHS."""
    assert len(b8_15) == 8 and len(rest) == 28
    head = struct.pack("!BBBBB", opcode, flags, b2, b3, 0) + data_len.to_bytes(3, "big")
    return head + b8_15 + struct.pack("!I", itt) + rest


def scsi_command(itt: int, cmd_sn: int, exp_stat_sn: int, cdb: bytes, expected_length: int, read: bool,
                 write: bool) -> bytes:
    """SCSI Command (RFC 7143 11.3). RSVD's CDBs are at most 16 bytes (MS-RSVD 2.2.5.11), so none
    needs the Extended CDB AHS (11.3.4)."""
    assert len(cdb) <= 16, "a CDB over 16 bytes would need an Extended CDB AHS"
    flags = F_FINAL | (F_READ if read else 0) | (F_WRITE if write else 0) | ATTR_SIMPLE
    rest = struct.pack("!III", expected_length, cmd_sn, exp_stat_sn) + cdb.ljust(16, b"\x00")
    return _bhs(OP_SCSI_COMMAND, flags, 0, 0, 0, LUN0, itt, rest)


def data_out(itt: int, exp_stat_sn: int, data: bytes, offset: int, data_sn: int, final: bool) -> bytes:
    """SCSI Data-Out (RFC 7143 11.7), unsolicited: no Target Transfer Tag."""
    rest = struct.pack("!IIIIIII", NO_TTT, 0, exp_stat_sn, 0, data_sn, offset, 0)
    return _bhs(OP_DATA_OUT, F_FINAL if final else 0, 0, 0, len(data), LUN0, itt, rest) + _pad(data)


def data_in(itt: int, stat_sn: int, exp_cmd_sn: int, data: bytes, offset: int, data_sn: int, final: bool,
            status: Optional[int] = None) -> bytes:
    """SCSI Data-In (RFC 7143 11.7); the last one may carry the status (S bit)."""
    flags = (F_FINAL if final else 0) | (DATA_IN_STATUS if status is not None else 0)
    rest = struct.pack("!IIIIIII", NO_TTT, stat_sn if status is not None else 0, exp_cmd_sn, exp_cmd_sn + 32,
                       data_sn, offset, 0)
    return _bhs(OP_DATA_IN, flags, 0, status or 0, len(data), LUN0, itt, rest) + _pad(data)


def scsi_response(itt: int, stat_sn: int, exp_cmd_sn: int, status: int, sense: bytes) -> bytes:
    """SCSI Response (RFC 7143 11.4): the sense data as SenseLength then the sense bytes (11.4.7)."""
    segment = struct.pack("!H", len(sense)) + sense if sense else b""
    rest = struct.pack("!IIIIIII", 0, stat_sn, exp_cmd_sn, exp_cmd_sn + 32, 0, 0, 0)
    return _bhs(OP_SCSI_RESPONSE, 0x80, 0x00, status, len(segment), bytes(8), itt, rest) + _pad(segment)


def _chunks(data: bytes) -> List[Tuple[int, bytes]]:
    return [(i, data[i:i + MAX_DATA_SEGMENT]) for i in range(0, len(data), MAX_DATA_SEGMENT)]


def iscsi_capture(exchanges: List[ScsiExchange]) -> Tuple[bytes, List[Tuple[int, int]]]:
    """The capture, and for every exchange the first and last frame that carry it."""
    cap = Capture()
    flow = TcpFlow(cap, host(0x21, "192.168.50.11"), host(0x22, "192.168.50.20"), 52100, sport=ISCSI_PORT)
    flow.handshake()
    frames = []
    cmd_sn = stat_sn = 1
    for n, ex in enumerate(exchanges):
        first = len(cap.frames) + 1
        itt = 0x1000 + n
        flow.send(True, scsi_command(itt, cmd_sn, stat_sn, ex.cdb, ex.expected_length, ex.read, bool(ex.data_out)))
        cmd_sn += 1
        for sn, (off, chunk) in enumerate(_chunks(ex.data_out)):
            flow.send(True, data_out(itt, stat_sn, chunk, off, sn, off + len(chunk) == len(ex.data_out)))
        chunks = _chunks(ex.data_in)
        collapse = ex.status == 0 and not ex.sense and bool(chunks)  # the status in the last Data-In
        for sn, (off, chunk) in enumerate(chunks):
            last = off + len(chunk) == len(ex.data_in)
            flow.send(False, data_in(itt, stat_sn, cmd_sn, chunk, off, sn, last, 0 if last and collapse else None))
        if not collapse:
            flow.send(False, scsi_response(itt, stat_sn, cmd_sn, ex.status, ex.sense))
        stat_sn += 1
        frames.append((first, len(cap.frames)))
    flow.close()
    return cap.pcapng(), frames


def rsvd_capture(exchanges: List[ScsiExchange]) -> bytes:
    """The same exchanges through MS-RSVD's tunnel, as the samples carry theirs: one initiator opens
    a shared VHDX and sends each as an RSVD_TUNNEL_SCSI_OPERATION."""
    cap = Capture()
    client = connect(cap, host(1, "10.0.7.11"), host(0x10, "10.0.7.20"), 49731, 0x0000040000000031, request_id=1)
    fid = bytes.fromhex("3100000000000000" "3a00000000000000")
    open_disk(client, "edge.vhdx", open_context_windows("NODE1", NODE1_ID, version=2, open_request_id=0x3000),
              None, fid, NODE1_ID, support_answer("windows", "HandleStateShared"))
    for ex in exchanges:
        failed = ex.status != 0
        client.scsi(ex.cdb.ljust(16, b"\x00"), len(ex.cdb), data_in=ex.read,
                    length=ex.expected_length, out=ex.data_out, returned=ex.data_in, file_id=fid,
                    srb_status=(0x84 if ex.sense else 0x04) if failed else 0x01, scsi_status=ex.status,
                    sense=ex.sense)
    client.smb.flow.close()
    return cap.pcapng()
