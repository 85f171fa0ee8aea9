"""Our SCSI definitions against an independent reference: Wireshark's own SCSI dissector,
decoding the same bytes (issue 15 item 6).

Our plugin decodes SCSI only inside MS-RSVD's SMB2 tunnel; the built-in decodes SCSI inside
iSCSI. So every SCSI exchange of the RSVD samples (rsvd_cluster_events, rsvd_shared_disk),
and the edge cases of EDGE, sent through the tunnel into a capture of their own, is carried
again over iSCSI (tests/iscsi_capture.py): the same CDB, Data-out buffer, status, sense data
and Data-in buffer. Real tshark decodes both captures, ours with the plugins, the iSCSI one
with no Lua at all, and the values are compared as integers, whatever the built-in's field
type (rdwr16.lba and the reservation keys are FT_BYTES; 4.4 and 4.6 print LBAs in hex).

- test_scenario: named scenarios (CASES), every value pinned to what SPC-3/SBC-3 say the bytes
  mean, in ours and in the built-in (through RULES where the built-in shows something else).
- test_every_exchange: every exchange, every value either side decodes; a value only one side
  shows, or two values that differ, must be one of RULES, and every rule must be met.
- test_value_names: the names both give a value (command, status, sense key, ASC/ASCQ,
  service action, reservation type and scope), word by word; NAME_DIFFERENCES says where
  the wording differs and whose follows SPC-3.

RULES holds each departure with the section that decides it: what the built-in gets wrong
(READ(6)'s 21-bit LBA; 4.4's READ CAPACITY(10) answer), what it leaves out, and where ours
is wrong (none left: REGISTER AND MOVE's parameter list, SPC-3 6.12.4, was, until scsi.py gave it its own layout). The status
comes from the SCSI layer (scsi.status) where it adds one; with sense data, and for the
standard INQUIRY answer, it adds none, and iSCSI's reading of the same byte is compared.
"""
from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

import decoded
import samples
from dissectors.definitions import rsvd
from iscsi_capture import ScsiExchange, iscsi_capture, rsvd_capture

pytestmark = pytest.mark.tshark_matrix  # 4.0, 4.4 and 4.6 (tests/tsharks.py)

# One name per value, with the fields that carry it: ours, then the built-in's.
FIELDS: Dict[str, Tuple[List[str], List[str]]] = {
    "opcode": (["msrsvd.scsi.opcode"], ["scsi_sbc.opcode", "scsi.spc.opcode"]),
    "lba": (["msrsvd.scsi.lba"], ["scsi_sbc.rdwr6.lba", "scsi_sbc.rdwr10.lba", "scsi_sbc.rdwr16.lba",
                                  "scsi_sbc.verify.lba", "scsi_sbc.verify.lba64"]),
    # SYNCHRONIZE CACHE and WRITE SAME call it NUMBER OF LOGICAL BLOCKS, VERIFY the VERIFICATION LENGTH.
    "transfer_length": (["msrsvd.scsi.transfer_length", "msrsvd.scsi.rw.number_of_logical_blocks"],
                        ["scsi_sbc.rdwr6.xferlen", "scsi_sbc.rdwr10.xferlen", "scsi_sbc.rdwr12.xferlen",
                         "scsi_sbc.verify.vlen", "scsi_sbc.verify.vlen32"]),
    # The SCSI layer's status; where it has none, the iSCSI layer's reading of the same byte (STATUS_FALLBACK).
    "status": (["msrsvd.scsi_response.scsi_status"], ["scsi.status"]),
    "sense.key": (["msrsvd.scsi.sense.key"], ["scsi.sns.key"]),
    "sense.asc": (["msrsvd.scsi.sense.asc"], ["scsi.sns.asc"]),
    "sense.ascq": (["msrsvd.scsi.sense.ascq"], ["scsi.sns.ascq"]),
    "sense.asc_ascq": (["msrsvd.scsi.sense.asc_ascq"], ["scsi.sns.ascascq"]),
    "pr_in.service_action": (["msrsvd.scsi.pr_in.service_action"], ["scsi.persresvin.svcaction"]),
    "pr_out.service_action": (["msrsvd.scsi.pr_out.service_action"], ["scsi.persresvout.svcaction"]),
    "pr.type": (["msrsvd.scsi.pr.type"], ["scsi.persresv.type"]),
    "pr.scope": (["msrsvd.scsi.pr.scope"], ["scsi.persresv.scope"]),
    # In PERSISTENT RESERVE IN data the built-in calls the keys scsi.spc.resv.key.
    "pr.reservation_key": (["msrsvd.scsi.pr.reservation_key"], ["scsi.persresv.reskey", "scsi.spc.resv.key"]),
    "pr.service_action_reservation_key": (["msrsvd.scsi.pr.service_action_reservation_key"],
                                          ["scsi.persresv.sareskey"]),
    "pr.aptpl": (["msrsvd.scsi.pr.parameter_flags.aptpl", "msrsvd.scsi.pr.move_flags.aptpl"],
                 ["scsi.persresv.control.aptpl"]),
    "pr.all_tg_pt": (["msrsvd.scsi.pr.parameter_flags.all_tg_pt"], ["scsi.persresv.control.all_tg_pt"]),
    "pr.spec_i_pt": (["msrsvd.scsi.pr.parameter_flags.spec_i_pt"], ["scsi.persresv.control.spec_i_pt"]),
    "capacity.returned_lba": (["msrsvd.scsi.capacity.returned_logical_block_address"],
                              ["scsi_sbc.returned_lba", "scsi_sbc.lba64_add"]),
    "capacity.block_length": (["msrsvd.scsi.capacity.logical_block_length"], ["scsi_sbc.blocksize"]),
    "unmap.lba": (["msrsvd.scsi.unmap.unmap_logical_block_address"], ["scsi_sbc.unmap.lba"]),
    "unmap.blocks": (["msrsvd.scsi.unmap.number_of_logical_blocks"], ["scsi_sbc.unmap.num_blocks"]),
    "inquiry.device_type": (["msrsvd.scsi.inquiry.device.peripheral_device_type"], ["scsi.inquiry.devtype"]),
}
FLAGS = {"pr.aptpl", "pr.all_tg_pt", "pr.spec_i_pt"}  # compared as "set or not": ours shows only set bits
NAMED = {"opcode", "status", "sense.key", "sense.asc_ascq", "pr_in.service_action", "pr_out.service_action",
         "pr.type", "pr.scope"}
STATUS_FALLBACK = "iscsi.scsiresponse.status"
# The built-in shows WRITE SAME(10)'s NUMBER OF LOGICAL BLOCKS (SBC-3 5.38) as "Allocation Length".
BY_OPCODE = {0x41: {"scsi_sbc.alloclen16": "transfer_length"}}
GENERATED_OK = {"scsi.status"}  # the built-in adds the status as a generated field; the rest come from bytes

OURS = {f: canon for canon, (ours, _) in FIELDS.items() for f in ours}
BUILTIN = {f: canon for canon, (_, builtin) in FIELDS.items() for f in builtin}
BUILTIN_WANTED = set(BUILTIN) | {STATUS_FALLBACK} | {f for m in BY_OPCODE.values() for f in m}


# -- where the built-in shows something else than SPC-3/SBC-3 say the bytes mean -----------------------
def _pr_out_action(ex: ScsiExchange) -> Optional[int]:
    return ex.cdb[1] & 0x1F if ex.cdb[0] == 0x5F else None


def _pr_in_action(ex: ScsiExchange) -> Optional[int]:
    return ex.cdb[1] & 0x1F if ex.cdb[0] == 0x5E else None


@dataclass(frozen=True)
class Rule:
    name: str
    fields: Tuple[str, ...]
    applies: Callable[[ScsiExchange, str], bool]  # (exchange, tshark series)
    # What the built-in shows: from the exchange, the value's canonical name, and what the bytes mean
    # (test_scenario) or what ours shows (test_every_exchange).
    builtin: Callable[[ScsiExchange, str, List[int]], List[int]]
    why: str
    ours_wrong: bool = False


RULES = [
    Rule("READ(6)/WRITE(6) LBA: the built-in keeps 20 bits", ("lba",),
         lambda ex, series: ex.cdb[0] in (0x08, 0x0A), lambda ex, canon, v: [x & 0x0FFFFF for x in v],
         "SBC-3 (READ(6) 5.7, WRITE(6) likewise): the LOGICAL BLOCK ADDRESS is 21 bits, byte 1 bits 4-0 and "
         "bytes 2-3; the built-in's scsi_sbc.rdwr6.lba has mask 0x0FFFFF, so it drops bit 20. Ours is right."),
    Rule("PR OUT CDB: the built-in shows no SCOPE/TYPE where SPC-3 ignores them", ("pr.type", "pr.scope"),
         lambda ex, series: _pr_out_action(ex) in (0x00, 0x03, 0x06), lambda ex, canon, v: [],
         "SPC-3 6.12.2: SCOPE and TYPE are ignored for REGISTER, REGISTER AND IGNORE EXISTING KEY and CLEAR; "
         "the built-in leaves them out, ours shows the byte. Not a disagreement."),
    Rule("PR IN READ FULL STATUS: the built-in does not decode the descriptors",
         ("pr.reservation_key", "pr.type", "pr.scope"),
         lambda ex, series: _pr_in_action(ex) == 0x03, lambda ex, canon, v: [],
         "SPC-3 6.11.5: the built-in stops after PRGENERATION and ADDITIONAL LENGTH. Not a disagreement."),
    Rule("descriptor-format sense: the built-in shows ASC/ASCQ only combined", ("sense.asc", "sense.ascq"),
         lambda ex, series: bool(ex.sense) and ex.sense[0] & 0x7F in (0x72, 0x73), lambda ex, canon, v: [],
         "The built-in adds scsi.sns.asc/ascq (hidden) for fixed format only; scsi.sns.ascascq is compared."),
    Rule("READ CAPACITY(10) on 4.4: the built-in shows RETURNED LOGICAL BLOCK ADDRESS + 1, in 32 bits",
         ("capacity.returned_lba",), lambda ex, series: ex.cdb[0] == 0x25 and series == "4.4",
         lambda ex, canon, v: [(x + 1) & 0xFFFFFFFF for x in v],
         "SBC-3 5.12.2: bytes 0-3 are the address of the last logical block; 4.4's scsi_sbc.returned_lba "
         "shows it plus one (the block count), wrapping 0xFFFFFFFF (\"use READ CAPACITY(16)\") to 0; 4.0 and "
         "4.6 show the field. Ours is right."),
    Rule("INQUIRY VPD page: ours shows byte 0 whole", ("inquiry.device_type",),
         lambda ex, series: ex.cdb[0] == 0x12 and ex.cdb[1] & 0x01 and bool(ex.data_in),
         lambda ex, canon, v: [ex.data_in[0] & 0x1F],
         "SPC-3 7.6: a VPD page starts with PERIPHERAL QUALIFIER and PERIPHERAL DEVICE TYPE; ours shows the "
         "byte as msrsvd.scsi.inquiry.device, the built-in its device type. Not a disagreement."),
]


def _rule(ex: ScsiExchange, canon: str, series: str) -> Optional[Rule]:
    found = [r for r in RULES if canon in r.fields and r.applies(ex, series)]
    assert len(found) <= 1, [r.name for r in found]
    return found[0] if found else None


# -- the edge cases, sent through the RSVD tunnel into a capture of our own ------------------------------
K1, K2, K3 = 0x4E4F444531000001, 0x4E4F444532000002, 0x1122334455667788
CHECK_CONDITION, BUSY, RESERVATION_CONFLICT, TASK_SET_FULL = 0x02, 0x08, 0x18, 0x28
TUR = bytes(6)
READ10_LBA0 = bytes.fromhex("28000000000000000100")


def pr_params(key: int, sa_key: int, flags: int = 0) -> bytes:
    """A PERSISTENT RESERVE OUT parameter list (SPC-3 6.12.3), by hand."""
    return struct.pack("!QQ4sBB2s", key, sa_key, bytes(4), flags, 0, bytes(2))


def register_and_move_params(key: int, sa_key: int, unreg: bool, aptpl: bool, port: int, tid: bytes) -> bytes:
    """REGISTER AND MOVE's parameter list (SPC-3 6.12.4), by hand: UNREG and APTPL in byte 17."""
    return struct.pack("!QQBBHI", key, sa_key, 0, unreg << 1 | aptpl, port, len(tid)) + tid


def fixed(key_byte: int, asc: int, ascq: int, *, code: int = 0x70, info: int = 0) -> bytes:
    """Fixed-format sense data (SPC-3 4.5.3), by hand: byte 2 holds FILEMARK, EOM, ILI and the key."""
    return struct.pack("!BBBIBIBBB3s", code, 0, key_byte, info, 10, 0, asc, ascq, 0, bytes(3))


def descriptor(key: int, asc: int, ascq: int, descriptors: bytes = b"", *, code: int = 0x72) -> bytes:
    """Descriptor-format sense data (SPC-3 4.5.2), by hand."""
    return struct.pack("!BBBB3sB", code, key, asc, ascq, bytes(3), len(descriptors)) + descriptors


def pr_out_cdb(action: int, scope_type: int, length: int = 24) -> bytes:
    return bytes([0x5F, action, scope_type, 0, 0]) + struct.pack("!I", length) + b"\x00"


def pr_in_cdb(action: int) -> bytes:
    return bytes([0x5E, action, 0, 0, 0, 0, 0, 0x10, 0x00, 0])


# SPC-3 7.5.4: an FC TransportID (N_PORT_NAME in bytes 8-15)
FC_TRANSPORT_ID = bytes(8) + bytes.fromhex("21000024ff4b1a2c") + bytes(8)

EDGE: Dict[str, ScsiExchange] = {
    "READ(6) at the top of its 21-bit LBA, 256 blocks":
        ScsiExchange(bytes.fromhex("081fffff0000"), 512 * 256, read=True),
    "WRITE(6) under 2^20":
        ScsiExchange(bytes.fromhex("0a0abcde1000"), 512 * 16, data_out=bytes(512 * 16)),
    "READ(10) at the last 32-bit LBA, 65535 blocks":
        ScsiExchange(bytes.fromhex("2800ffffffff00ffff00"), 0, read=True),
    "WRITE(12) past 2^31, 2^24 blocks":
        ScsiExchange(bytes.fromhex("aa0080000001010000000000"), 512, data_out=bytes(512)),
    "READ(16) at the top of the 64-bit range, 2^32-1 blocks":
        ScsiExchange(bytes.fromhex("8800fffffffffffffffeffffffff0000"), 0, read=True),
    "VERIFY(10)": ScsiExchange(bytes.fromhex("2f000000100000000800"), 0),
    "VERIFY(16) past 2^32 blocks": ScsiExchange(bytes.fromhex("8f000000000300000000000000100000"), 0),
    "READ CAPACITY(10) of a 128 GiB disk of 4 KiB blocks":
        ScsiExchange(bytes.fromhex("25000000000000000000"), 8, read=True,
                     data_in=struct.pack("!II", 0x01FFFFFF, 4096)),
    "deferred fixed sense, VALID and ILI, MEDIUM ERROR at an LBA":
        ScsiExchange(READ10_LBA0, 512, read=True, status=CHECK_CONDITION,
                     sense=fixed(0x20 | 0x3, 0x11, 0x00, code=0xF1, info=0x1234)),
    "fixed sense with FILEMARK and EOM set, DATA PROTECT":
        ScsiExchange(TUR, 0, status=CHECK_CONDITION, sense=fixed(0xC0 | 0x7, 0x27, 0x00)),
    "fixed sense with a vendor ASC/ASCQ, ABORTED COMMAND":
        ScsiExchange(TUR, 0, status=CHECK_CONDITION, sense=fixed(0xB, 0x80, 0x01)),
    "fixed sense, MISCOMPARE during verify":
        ScsiExchange(TUR, 0, status=CHECK_CONDITION, sense=fixed(0xE, 0x1D, 0x00)),
    "deferred descriptor sense, NOT READY, becoming ready":
        ScsiExchange(TUR, 0, status=CHECK_CONDITION, sense=descriptor(0x2, 0x04, 0x01, code=0x73)),
    "descriptor sense with an information descriptor, HARDWARE ERROR":
        ScsiExchange(READ10_LBA0, 512, read=True, status=CHECK_CONDITION,
                     sense=descriptor(0x4, 0x44, 0x00, bytes.fromhex("000a8000" "0000000000001234"))),
    "BUSY, no sense": ScsiExchange(TUR, 0, status=BUSY),
    "TASK SET FULL, no sense": ScsiExchange(TUR, 0, status=TASK_SET_FULL),
    "PR OUT RESERVE, WRITE EXCLUSIVE ALL REGISTRANTS":
        ScsiExchange(pr_out_cdb(0x01, 0x07), 24, data_out=pr_params(K3, 0)),
    "PR OUT RELEASE of an EXCLUSIVE ACCESS reservation":
        ScsiExchange(pr_out_cdb(0x02, 0x03), 24, data_out=pr_params(K1, 0)),
    "PR OUT CLEAR":
        ScsiExchange(pr_out_cdb(0x03, 0x00), 24, data_out=pr_params(K1, 0)),
    "PR OUT PREEMPT AND ABORT into EXCLUSIVE ACCESS ALL REGISTRANTS":
        ScsiExchange(pr_out_cdb(0x05, 0x08), 24, data_out=pr_params(K2, K1)),
    "PR OUT REGISTER AND IGNORE EXISTING KEY, ALL_TG_PT and APTPL":
        ScsiExchange(pr_out_cdb(0x06, 0x00), 24, data_out=pr_params(0, K3, flags=0x05)),
    "PR OUT REGISTER with SPEC_I_PT, for one FC port":
        ScsiExchange(pr_out_cdb(0x00, 0x00, 52), 52,
                     data_out=pr_params(0, K3, flags=0x08) + struct.pack("!I", 24) + FC_TRANSPORT_ID),
    "PR OUT REGISTER AND MOVE, APTPL, to an FC port":
        ScsiExchange(pr_out_cdb(0x07, 0x01, 48), 48,
                     data_out=register_and_move_params(K1, K3, False, True, 1, FC_TRANSPORT_ID)),
    "PR IN READ KEYS, three registrants":
        ScsiExchange(pr_in_cdb(0x00), 4096, read=True, data_in=struct.pack("!IIQQQ", 9, 24, K1, K2, K3)),
    "PR IN READ RESERVATION, none held":
        ScsiExchange(pr_in_cdb(0x01), 4096, read=True, data_in=struct.pack("!II", 3, 0)),
    "PR IN READ RESERVATION, EXCLUSIVE ACCESS REGISTRANTS ONLY":
        ScsiExchange(pr_in_cdb(0x01), 4096, read=True,
                     data_in=struct.pack("!IIQ4sBBH", 4, 16, K3, bytes(4), 0, 0x06, 0)),
}


# -- the named scenarios: what the bytes mean (SPC-3, SBC-3), value by value ------------------------------
@dataclass
class Case:
    name: str
    source: str  # a sample, or "edge" (EDGE[name])
    cdb: str = ""  # a sample's exchange: its CDB (hex)...
    nth: int = 0  # ...and which of those
    expect: Dict[str, object] = field(default_factory=dict)  # canonical name -> int or list of ints

    def expected(self) -> Dict[str, List[int]]:
        return {k: v if isinstance(v, list) else [v] for k, v in self.expect.items()}


def rw(op: int, lba: int, blocks: int, status: int = 0) -> dict:
    return dict(opcode=op, lba=lba, transfer_length=blocks, status=status)


def sense(key: int, asc: int, ascq: int, status: int = CHECK_CONDITION) -> dict:
    return {"status": status, "sense.key": key, "sense.asc": asc, "sense.ascq": ascq,
            "sense.asc_ascq": asc << 8 | ascq}


def pr_out(action: int, key: int, sa_key: int, scope_type: Optional[int] = None, aptpl: bool = False,
           all_tg_pt: bool = False) -> dict:
    out = {"opcode": 0x5F, "status": 0, "pr_out.service_action": action, "pr.reservation_key": key,
           "pr.service_action_reservation_key": sa_key}
    if scope_type is not None:
        out.update({"pr.scope": scope_type >> 4, "pr.type": scope_type & 0xF})
    out.update({k: 1 for k, on in (("pr.aptpl", aptpl), ("pr.all_tg_pt", all_tg_pt)) if on})
    return out


def pr_in(action: int, keys: Optional[List[int]] = None, scope_type: Optional[int] = None) -> dict:
    out = {"opcode": 0x5E, "status": 0, "pr_in.service_action": action}
    if keys:
        out["pr.reservation_key"] = keys
    if scope_type is not None:
        out.update({"pr.scope": scope_type >> 4, "pr.type": scope_type & 0xF})
    return out


EVENTS, SHARED = "rsvd_cluster_events", "rsvd_shared_disk"
CASES = [
    Case("INQUIRY, standard data: a direct access block device", EVENTS, "120000002400",
         expect={"opcode": 0x12, "status": 0, "inquiry.device_type": 0}),
    Case("PR OUT REGISTER NODE1's key, APTPL (type byte ignored)", EVENTS, "5f000500000000001800",
         expect=pr_out(0, 0, K1, 0x05, aptpl=True)),
    Case("PR OUT RESERVE, WRITE EXCLUSIVE REGISTRANTS ONLY", EVENTS, "5f010500000000001800",
         expect=pr_out(1, K1, 0, 0x05)),
    Case("PR IN READ RESERVATION: NODE1 holds it", EVENTS, "5e010000000000100000",
         expect=pr_in(1, [K1], 0x05)),
    Case("WRITE(10) refused with RESERVATION CONFLICT", EVENTS, "2a080000080000000800",
         expect=rw(0x2A, 2048, 8, RESERVATION_CONFLICT)),
    Case("PR OUT PREEMPT: NODE2 takes NODE1's reservation", EVENTS, "5f040500000000001800",
         expect=pr_out(4, K2, K1, 0x05)),
    Case("READ(10) answered UNIT ATTENTION, RESERVATIONS PREEMPTED (fixed sense)", EVENTS, "28000000000000000100",
         expect={**rw(0x28, 0, 1), **sense(0x6, 0x2A, 0x03)}),
    Case("PR IN READ FULL STATUS: NODE2 holds it", EVENTS, "5e030000000000100000",
         expect=pr_in(3, [K2], 0x05)),
    Case("PR IN REPORT CAPABILITIES", EVENTS, "5e020000000000100000", expect=pr_in(2)),
    Case("PR IN READ KEYS: NODE2 alone", EVENTS, "5e000000000000100000", expect=pr_in(0, [K2])),
    Case("READ CAPACITY(10) past 2^32 blocks: 0xFFFFFFFF", EVENTS, "25000000000000000000",
         expect={"opcode": 0x25, "status": 0, "capacity.returned_lba": 0xFFFFFFFF, "capacity.block_length": 512}),
    Case("READ CAPACITY(16)", EVENTS, "9e100000000000000000000000200000",
         expect={"opcode": 0x9E, "status": 0, "capacity.returned_lba": 0x07FFFFFF, "capacity.block_length": 512}),
    Case("SYNCHRONIZE CACHE(10) of the whole medium", EVENTS, "35000000000000000000", expect=rw(0x35, 0, 0)),
    Case("UNMAP of 2048 blocks at 2^20", EVENTS, "42000000000000001800",
         expect={"opcode": 0x42, "status": 0, "unmap.lba": 1 << 20, "unmap.blocks": 2048}),
    Case("WRITE SAME(16) with UNMAP", EVENTS, "93080000000000400000000010000000", expect=rw(0x93, 4 << 20, 4096)),
    Case("READ(16) past 2^32 blocks", EVENTS, "88000000000200000000000000080000", expect=rw(0x88, 1 << 33, 8)),
    Case("WRITE(16) past 2^32 blocks", EVENTS, "8a000000000200000000000000080000", expect=rw(0x8A, 1 << 33, 8)),
    Case("READ(12)", EVENTS, "a80000001000000000010000", expect=rw(0xA8, 4096, 1)),
    Case("READ(6)", EVENTS, "080000400100", expect=rw(0x08, 64, 1)),
    Case("SYNCHRONIZE CACHE(16), IMMED", EVENTS, "91020000000000000000000000000000", expect=rw(0x91, 0, 0)),
    Case("WRITE SAME(10)", EVENTS, "41000000200000001000", expect=rw(0x41, 8192, 16)),
    Case("INQUIRY for a VPD page the disk lacks: ILLEGAL REQUEST, INVALID FIELD IN CDB (descriptor sense)",
         EVENTS, "1201c7004000", expect={"opcode": 0x12, **sense(0x5, 0x24, 0x00)}),
    Case("READ(10) of 128 blocks at 2048", SHARED, "28000000080000008000", expect=rw(0x28, 2048, 128)),
    Case("WRITE(10) of 32 blocks at 4096", SHARED, "2a000000100000002000", expect=rw(0x2A, 4096, 32)),
    Case("PR IN READ KEYS: NODE1 and NODE2", SHARED, "5e000000000000100000",
         expect=pr_in(0, [K1, K2])),
    Case("PR OUT REGISTER, type byte 0", SHARED, "5f000000000000001800", expect=pr_out(0, 0, K1, 0x00)),
    # the edge cases
    Case("READ(6) at the top of its 21-bit LBA, 256 blocks", "edge", expect=rw(0x08, 0x1FFFFF, 0)),
    Case("WRITE(6) under 2^20", "edge", expect=rw(0x0A, 0x0ABCDE, 16)),
    Case("READ(10) at the last 32-bit LBA, 65535 blocks", "edge", expect=rw(0x28, 0xFFFFFFFF, 0xFFFF)),
    Case("WRITE(12) past 2^31, 2^24 blocks", "edge", expect=rw(0xAA, 0x80000001, 1 << 24)),
    Case("READ(16) at the top of the 64-bit range, 2^32-1 blocks", "edge",
         expect=rw(0x88, 2 ** 64 - 2, 2 ** 32 - 1)),
    Case("VERIFY(10)", "edge", expect=rw(0x2F, 0x1000, 8)),
    Case("VERIFY(16) past 2^32 blocks", "edge", expect=rw(0x8F, 3 << 32, 16)),
    Case("READ CAPACITY(10) of a 128 GiB disk of 4 KiB blocks", "edge",
         expect={"opcode": 0x25, "status": 0, "capacity.returned_lba": 0x01FFFFFF, "capacity.block_length": 4096}),
    Case("deferred fixed sense, VALID and ILI, MEDIUM ERROR at an LBA", "edge",
         expect={**rw(0x28, 0, 1), **sense(0x3, 0x11, 0x00)}),
    Case("fixed sense with FILEMARK and EOM set, DATA PROTECT", "edge",
         expect={"opcode": 0, **sense(0x7, 0x27, 0x00)}),
    Case("fixed sense with a vendor ASC/ASCQ, ABORTED COMMAND", "edge",
         expect={"opcode": 0, **sense(0xB, 0x80, 0x01)}),
    Case("fixed sense, MISCOMPARE during verify", "edge", expect={"opcode": 0, **sense(0xE, 0x1D, 0x00)}),
    Case("deferred descriptor sense, NOT READY, becoming ready", "edge",
         expect={"opcode": 0, **sense(0x2, 0x04, 0x01)}),
    Case("descriptor sense with an information descriptor, HARDWARE ERROR", "edge",
         expect={**rw(0x28, 0, 1), **sense(0x4, 0x44, 0x00)}),
    Case("BUSY, no sense", "edge", expect={"opcode": 0, "status": BUSY}),
    Case("TASK SET FULL, no sense", "edge", expect={"opcode": 0, "status": TASK_SET_FULL}),
    Case("PR OUT RESERVE, WRITE EXCLUSIVE ALL REGISTRANTS", "edge", expect=pr_out(1, K3, 0, 0x07)),
    Case("PR OUT RELEASE of an EXCLUSIVE ACCESS reservation", "edge", expect=pr_out(2, K1, 0, 0x03)),
    Case("PR OUT CLEAR", "edge", expect=pr_out(3, K1, 0, 0x00)),
    Case("PR OUT PREEMPT AND ABORT into EXCLUSIVE ACCESS ALL REGISTRANTS", "edge", expect=pr_out(5, K2, K1, 0x08)),
    Case("PR OUT REGISTER AND IGNORE EXISTING KEY, ALL_TG_PT and APTPL", "edge",
         expect=pr_out(6, 0, K3, 0x00, aptpl=True, all_tg_pt=True)),
    Case("PR OUT REGISTER with SPEC_I_PT, for one FC port", "edge",
         expect={**pr_out(0, 0, K3, 0x00), "pr.spec_i_pt": 1}),
    Case("PR OUT REGISTER AND MOVE, APTPL, to an FC port", "edge", expect=pr_out(7, K1, K3, 0x01, aptpl=True)),
    Case("PR IN READ KEYS, three registrants", "edge", expect=pr_in(0, [K1, K2, K3])),
    Case("PR IN READ RESERVATION, none held", "edge", expect=pr_in(1)),
    Case("PR IN READ RESERVATION, EXCLUSIVE ACCESS REGISTRANTS ONLY", "edge",
         expect=pr_in(1, [K3], 0x06)),
]

# Names that differ in wording: (canonical name, value) -> whose follows SPC-3.
NAME_DIFFERENCES = {
    ("sense.key", 0xB): "SPC-3 4.5.6 table 27 says ABORTED COMMAND (ours); the built-in says 'Command Aborted'",
}
# Values the built-in names and ours does not: none (ASC_ASCQ holds every code the built-in names;
# tests/test_asc_reference.py compares the names).
OURS_UNNAMED: set = set()


# -- decoding ----------------------------------------------------------------------------------------------
@dataclass
class Exchange:
    source: str
    scsi: ScsiExchange  # what both dissectors decode
    request_frame: int
    response_frame: int
    iscsi_frames: Tuple[int, int] = (0, 0)


@dataclass
class Value:
    number: int
    name: Optional[str]  # the value's name, for the NAMED ones


def _int(show: str) -> int:
    """A value as tshark shows it: decimal, 0x-hex, a boolean, or bytes (aa:bb:...)."""
    if show in ("True", "False"):
        return int(show == "True")
    if ":" in show:
        return int(show.replace(":", ""), 16)
    return int(show, 16) if show.lower().startswith("0x") else int(show)


_NAMED = re.compile(r"^(?:[.01 ]+= )?[^:]+: (?P<name>.*\S) \((?:0x[0-9a-fA-F]+|\d+)\)\s*$")


def _name(showname: str) -> Optional[str]:
    m = _NAMED.match(showname or "")
    return m.group("name") if m else None


def _pdml(pcap: Path, lua: bool) -> Dict[int, List[Tuple[str, Value]]]:
    """Per frame, the fields compared, in tree order: (field name, value)."""
    res = decoded.run(pcap, "-T", "pdml", lua=lua)
    assert res.returncode == 0, res.stderr
    wanted = OURS if lua else BUILTIN_WANTED
    out: Dict[int, List[Tuple[str, Value]]] = {}
    for pkt in ET.fromstring(res.stdout).findall("packet"):
        num = int(pkt.find("proto[@name='geninfo']/field[@name='num']").get("show"))
        for f in pkt.iter("field"):
            name = f.get("name")
            if name not in wanted or (not lua and f.get("value") is None and name not in GENERATED_OK):
                continue
            canon = OURS.get(name) or BUILTIN.get(name) or ("status" if name == STATUS_FALLBACK else None)
            out.setdefault(num, []).append((name, Value(_int(f.get("show")),
                                                        _name(f.get("showname")) if canon in NAMED else None)))
    return out


def _exchanges(source: str, pcap: Path) -> List[Exchange]:
    """The SCSI exchanges of an RSVD capture: the bytes of the messages our plugin decoded."""
    requests = {}
    out = []
    for m in decoded.messages(pcap):
        if m.abbrev == "tunnel_request":
            p = rsvd.TUNNEL_REQUEST.struct.parse(m.raw)
            if p.Header.OperationCode == "RSVD_TUNNEL_SCSI_OPERATION":
                requests[m.frame] = p.Payload
        elif m.abbrev == "tunnel_response" and m.request_in in requests:
            r = rsvd.TUNNEL_RESPONSE.struct.parse(m.raw).Payload
            if "ScsiStatus" not in r:  # a failed tunnel operation: no SCSI in it
                continue
            q = requests[m.request_in]
            read = q.DataIn == "SCSI_IOCTL_DATA_IN"
            out.append(Exchange(source, ScsiExchange(
                cdb=bytes(q.CDBBuffer[:q.CdbLength]), expected_length=q.DataTransferLength,
                data_out=q.DataBuffer if q.DataIn == "SCSI_IOCTL_DATA_OUT" else b"",
                data_in=r.DataBuffer if read else b"", read=read, status=int(r.ScsiStatus),
                sense=bytes(r.SenseDataEx[:r.SenseInfoExLength])), m.request_in, m.frame))
    return out


@dataclass
class Decoded:
    series: str
    exchanges: List[Exchange]
    ours: Dict[str, Dict[int, List[Tuple[str, Value]]]]  # source -> frame -> values
    builtin: Dict[int, List[Tuple[str, Value]]]

    def values(self, ex: Exchange) -> Tuple[Dict[str, List[Value]], Dict[str, List[Value]]]:
        """Ours and the built-in's values for one exchange, by canonical name."""
        ours: Dict[str, List[Value]] = {}
        for frame in (ex.request_frame, ex.response_frame):
            for name, v in self.ours[ex.source].get(frame, []):
                ours.setdefault(OURS[name], []).append(v)
        theirs: Dict[str, List[Value]] = {}
        fallback: List[Value] = []
        aliases = BY_OPCODE.get(ex.scsi.cdb[0], {})
        for frame in range(ex.iscsi_frames[0], ex.iscsi_frames[1] + 1):
            for name, v in self.builtin.get(frame, []):
                if name == STATUS_FALLBACK:
                    fallback.append(v)
                elif name in BUILTIN or name in aliases:
                    theirs.setdefault(BUILTIN.get(name) or aliases[name], []).append(v)
        if "status" not in theirs and fallback:
            theirs["status"] = fallback
        for side in (ours, theirs):
            for canon in FLAGS & set(side):
                side[canon] = [Value(1, None)] if any(v.number for v in side[canon]) else []
        return ours, theirs

    def find(self, case: Case) -> Exchange:
        if case.source == "edge":
            return [e for e in self.exchanges if e.source == "edge"][list(EDGE).index(case.name)]
        found = [e for e in self.exchanges if e.source == case.source and e.scsi.cdb.hex() == case.cdb]
        assert len(found) > case.nth, "%s: no exchange %d with CDB %s in %s" % (case.name, case.nth, case.cdb,
                                                                               case.source)
        return found[case.nth]


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> Dict[str, Path]:
    """The RSVD captures: the two samples and the edge cases (written into pytest's tmp)."""
    folder = tmp_path_factory.mktemp("scsi_reference")
    edge = folder / "rsvd_scsi_edge.pcapng"
    edge.write_bytes(rsvd_capture(list(EDGE.values())))
    return {EVENTS: samples.path(EVENTS), SHARED: samples.path(SHARED), "edge": edge}


@pytest.fixture(scope="module")
def _decodings() -> Dict[str, Decoded]:
    return {}


@pytest.fixture
def decoding(tshark, captures, _decodings) -> Decoded:
    """Both sides decoded by the tshark of this run of the matrix (once per version)."""
    if tshark.series not in _decodings:
        exchanges = [ex for source, pcap in captures.items() for ex in _exchanges(source, pcap)]
        edge = [ex for ex in exchanges if ex.source == "edge"]
        assert [ex.scsi for ex in edge] == list(EDGE.values()), "the edge capture does not carry EDGE"
        for ex in exchanges:  # one SCSI message per frame, or the values of two would mix
            for frame in (ex.request_frame, ex.response_frame):
                assert sum(frame in (e.request_frame, e.response_frame) for e in exchanges
                           if e.source == ex.source) == 1, (ex.source, frame)
        pcap, frames = iscsi_capture([ex.scsi for ex in exchanges])
        for ex, span in zip(exchanges, frames):
            ex.iscsi_frames = span
        iscsi = captures["edge"].parent / ("scsi_over_iscsi_%s.pcapng" % tshark.series)
        iscsi.write_bytes(pcap)
        ours = {source: _pdml(p, lua=True) for source, p in captures.items()}
        _decodings[tshark.series] = Decoded(tshark.series, exchanges, ours, _pdml(iscsi, lua=False))
    return _decodings[tshark.series]


def _numbers(values: Dict[str, List[Value]]) -> Dict[str, List[int]]:
    return {k: [v.number for v in vs] for k, vs in values.items() if vs}


def _builtin_expected(ex: ScsiExchange, meant: Dict[str, List[int]], series: str) -> Dict[str, List[int]]:
    """What the built-in shows for values that mean `meant`: the RULES applied."""
    out = {}
    for canon in FIELDS:
        rule = _rule(ex, canon, series)
        values = rule.builtin(ex, canon, meant.get(canon, [])) if rule else meant.get(canon, [])
        if values:
            out[canon] = values
    return out


def _case_param(case: Case):
    """A case ours decodes wrongly is a strict xfail (the RULES that say so are for EDGE's bytes)."""
    ex = EDGE.get(case.name) if case.source == "edge" else None
    wrong = [r for r in RULES if r.ours_wrong and ex is not None and r.applies(ex, "")
             and any(f in case.expect for f in r.fields)]
    marks = [pytest.mark.xfail(strict=True, reason=wrong[0].why)] if wrong else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_case_param(c) for c in CASES])
def test_scenario(decoding, case):
    """One named exchange: ours shows what the bytes mean, the built-in that or what RULES say."""
    ex = decoding.find(case)
    ours, theirs = (_numbers(side) for side in decoding.values(ex))
    meant = case.expected()
    assert theirs == _builtin_expected(ex.scsi, meant, decoding.series), "the built-in"
    assert ours == meant, "ours"


def test_every_exchange(decoding):
    """Every exchange: what one side shows and the other does not, or shows otherwise, is one of RULES."""
    compared = {canon: 0 for canon in FIELDS}
    met = set()
    problems = []
    for ex in decoding.exchanges:
        ours, theirs = (_numbers(side) for side in decoding.values(ex))
        for canon in FIELDS:
            o, t = ours.get(canon, []), theirs.get(canon, [])
            rule = _rule(ex.scsi, canon, decoding.series)
            expected = rule.builtin(ex.scsi, canon, o) if rule else o
            if rule and expected != o:
                met.add(rule.name)
            if t != expected:
                problems.append("%s frame %d (CDB %s) %s: ours %s, built-in %s" % (
                    ex.source, ex.request_frame, ex.scsi.cdb.hex(), canon, o, t))
            elif o and t:
                compared[canon] += 1
    assert not problems, "\n".join(problems)
    assert all(compared.values()), "never compared: %s" % [k for k, n in compared.items() if not n]
    applicable = {r.name for r in RULES if any(r.applies(ex.scsi, decoding.series) for ex in decoding.exchanges)}
    assert met == applicable, "rules never met: %s" % sorted(applicable - met)


def _words(name: str) -> List[str]:
    return re.findall(r"[A-Z0-9]+", name.upper().replace("&", " AND "))


def _same_name(a: str, b: str) -> bool:
    """The same words, but for abbreviations ("Excl" for EXCLUSIVE)."""
    wa, wb = _words(a), _words(b)
    return len(wa) == len(wb) and all(x.startswith(y) or y.startswith(x) for x, y in zip(wa, wb))


def test_value_names(decoding):
    """Where both name a value, the names agree but for NAME_DIFFERENCES."""
    named = 0
    problems = []
    unnamed, differing = set(), set()
    for ex in decoding.exchanges:
        ours, theirs = decoding.values(ex)
        for canon in NAMED:
            for o, t in zip(ours.get(canon, []), theirs.get(canon, [])):
                if o.number != t.number or not t.name or t.name.startswith("Unknown"):
                    continue
                if not o.name or o.name == "Unknown":
                    unnamed.add((canon, o.number))
                    continue
                named += 1
                known = NAME_DIFFERENCES.get((canon, o.number))
                if _same_name(o.name, t.name) == bool(known):
                    problems.append("%s 0x%x: ours %r, built-in %r%s" % (
                        canon, o.number, o.name, t.name, " (listed as differing)" if known else ""))
                if known:
                    differing.add((canon, o.number))
    assert not problems, "\n".join(problems)
    assert unnamed <= OURS_UNNAMED, "ours gives no name to %s" % sorted(unnamed - OURS_UNNAMED)
    assert differing == set(NAME_DIFFERENCES), "never met: %s" % sorted(set(NAME_DIFFERENCES) - differing)
    assert named > 100, named
