"""The three kinds of mutation, each a few small named mutators.

Every mutator takes a random.Random seeded for its variant, so a variant is the same bytes
on every run. See fuzz.py's docstring for why each one matters.
"""
from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import capture
from capture import Capture
from locate import RSVD_CTL_CODES, Located, Target
from dissectors.definitions import csvp, rsvd, scsi

KINDS = ("corrupt", "truncate", "struct")

# -- a. editcap byte corruption ----------------------------------------------------------------
RATES = (0.002, 0.01, 0.05)
# Ethernet 14 + IPv4 20 + TCP 20 = 54; then SMB2: NetBIOS 4, header 64 (58..121), IOCTL body
# 56 in a request (its input buffer, the RSVD tunnel header, at 178) and 48 in a response
# (170), the tunnel payload 16 bytes further. DCE/RPC: common header 16 (54..69), request
# header 8 (stub at 78), ORPCTHIS 32 (the method's own parameters at 110).
OFFSETS = {"rsvd": (58, 122, 170, 178, 194), "clusprep": (70, 78, 86, 110)}
OFFSETS["mixed"] = tuple(sorted(set(OFFSETS["rsvd"]) | set(OFFSETS["clusprep"])))  # a merge of both (fuzz.py --shards-check)


def editcap_corrupt(rng: random.Random, src: Path, dst: Path, family: str) -> Tuple[str, List[str]]:
    rate, offset, seed = rng.choice(RATES), rng.choice(OFFSETS[family]), rng.randrange(1, 2 ** 31)
    cmd = ["editcap", "-E", str(rate), "-o", str(offset), "--seed", str(seed), str(src), str(dst)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("editcap failed (%d): %s" % (res.returncode, res.stderr.strip()))
    return "editcap -E %s -o %d --seed %d" % (rate, offset, seed), cmd


# -- b. truncation ---------------------------------------------------------------------------------
def frame_cut(rng: random.Random, cap: Capture, loc: Located) -> str:
    """Shorten 1-3 packets' captured length (an EPB stays valid: caplen < original length)."""
    packets = cap.packets
    carrying = [i for i in loc.frames if len(packets[i].data) > 54]
    any_payload = [i for i, p in enumerate(packets) if len(p.data) > 54] or list(range(len(packets)))
    cuts = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        i = rng.choice(carrying if carrying and rng.random() < 0.8 else any_payload)
        n = len(packets[i].data)
        if n <= 1:
            continue
        where = rng.random()
        if where < 0.3:  # inside the headers: Ethernet, IP, TCP, NetBIOS/DCE-RPC, SMB2
            keep = rng.randrange(1, min(n, 140))
        else:
            keep = rng.randrange(1, n)
        packets[i].data = packets[i].data[:keep]
        cuts.append("frame %d %d->%d" % (i + 1, n, keep))
    return "frame_cut " + ", ".join(cuts)


def file_cut(rng: random.Random, data: bytes) -> Tuple[str, bytes]:
    """Cut the whole file at a byte offset: an incomplete last block (or a broken header)."""
    if rng.random() < 0.05:
        at = rng.randrange(0, min(len(data), 60))  # into the section or interface header
    else:
        at = rng.randrange(60, len(data))
    return "file_cut at %d of %d" % (at, len(data)), data[:at]


# -- c. structure-aware -------------------------------------------------------------------------------
def _extremes(t: Target) -> List[int]:
    top = (1 << (8 * t.size)) - 1
    v = t.value or 0
    return [0, 1, top, top - 1, top >> 1, (top >> 1) + 1, 0xFF, 0xFFFF, 0x7FFF, 0x10000,
            v + 1, max(v - 1, 0), v * 2 + 1, v + 0x100, v + 0x10000]


OPCODES = sorted(rsvd.OPERATION_CODES.values())
STATUSES = ([0, 0x00000103, 0xC0000001, 0xC0000022, 0x80000005] + sorted(rsvd.ERROR_CODES.values())
            + [rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"] | k for k in (1, 2, 0x7F, 0xFF)]
            + [0x1C010002, 0x1C010003, 0x1C00001A, 0x000006F7, 0x00000005])  # DCE/RPC fault statuses
SCSI_OPCODES = sorted(set(scsi.OPERATION_CODES.values()))
HRESULTS = sorted(csvp.HRESULTS)


def _write(cap: Capture, t: Target, value: int) -> str:
    capture.overwrite(cap, t.stream, t.off, t.pack(value))
    return "%s %s->0x%X (frames %s)" % (t.name, "0x%X" % t.value if t.value is not None else "?", value & (
        (1 << (8 * t.size)) - 1), ",".join(str(f + 1) for f in t.frames()))


def _pick(rng, targets: List[Target]) -> Target:
    return rng.choice(targets)


# Each: (roles it needs, how to pick the new value). Value pickers return an int.
def _v_extreme(rng, t):
    return rng.choice(_extremes(t))


def _v_opcode(rng, t):
    return rng.choice([o for o in OPCODES if o != t.value] + [0, 0x02001000, 0x02001007, 0x02002001, 0xFFFFFFFF])


def _v_other_known_opcode(rng, t):  # a response whose code differs from its request's
    return rng.choice([o for o in OPCODES if o != t.value])


def _v_status(rng, t):
    return rng.choice(STATUSES + [rng.getrandbits(32)])


def _v_ctl(rng, t):
    return rng.choice(t.choices or tuple(c for c in RSVD_CTL_CODES if c != t.value))


def _v_scsi(rng, t):
    return rng.choice([o for o in SCSI_OPCODES if o != t.value] + [rng.getrandbits(8)])


def _v_word(rng, t):
    return rng.choice((0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF))


def _v_pointer(rng, t):
    if t.value:  # a referent that is there becomes NULL, or an id the stub never resolves
        return rng.choice((0, 0, 0xFFFFFFFF, t.value + 0x1000))
    return rng.choice((0x00020000, 0x0002FFFC, 0xFFFFFFFF))  # NULL becomes a pointer to nowhere


def _v_discriminant(rng, t):
    wrong_arm = list(t.choices)  # another arm the union has: valid, but not what the bytes hold
    if wrong_arm and rng.random() < 0.6:
        return rng.choice(wrong_arm)
    return rng.choice(((t.value or 0) + 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF))  # no arm at all


def _v_choice_or_random(rng, t):
    return rng.choice(list(t.choices) + [rng.getrandbits(8 * t.size), (1 << (8 * t.size)) - 1]) if t.choices else \
        rng.choice([rng.getrandbits(8 * t.size), (1 << (8 * t.size)) - 1, 0])


def _v_hresult(rng, t):
    return rng.choice(HRESULTS + [0x80004005, 0x00000001, rng.getrandbits(32)])


VALUE_MUTATORS: Dict[str, Tuple[Tuple[str, ...], Callable, Optional[Callable[[Target], bool]]]] = {
    # name: (roles, value picker, extra filter)
    "length_extreme": (("length",), _v_extreme, None),
    "rsvd_opcode": (("opcode",), _v_opcode, None),
    "rsvd_response_opcode": (("opcode",), _v_other_known_opcode, lambda t: t.response),
    "status": (("status",), _v_status, None),
    "smb2_ctl_swap": (("ctl_code",), _v_ctl, None),
    "scsi_opcode": (("scsi_opcode",), _v_scsi, None),
    "int_extreme": (("int", "ndr_int"), _v_extreme, None),
    "ndr_count": (("count",), _v_extreme, None),
    "ndr_pointer": (("pointer",), _v_pointer, None),
    "ndr_discriminant": (("discriminant",), _v_discriminant, None),
    "ndr_word": (("word",), _v_word, None),
    "dcerpc_opnum": (("opnum",), _v_choice_or_random, None),
    "dcerpc_ctx_id": (("ctx_id",), _v_choice_or_random, None),
    "dcerpc_call_id": (("call_id",), _v_choice_or_random, None),
    "smb2_message_id": (("smb2_msg_id",), _v_choice_or_random, None),
    "rsvd_request_id": (("request_id",), _v_choice_or_random, None),
    "hresult": (("hresult",), _v_hresult, None),
}


def _value_targets(loc: Located, name: str) -> List[Target]:
    roles, _, extra = VALUE_MUTATORS[name]
    return [t for t in loc.by_role(*roles) if extra is None or extra(t)]


def string_no_nul(rng, cap: Capture, loc: Located) -> Optional[str]:
    """A UTF-16 string whose terminating NUL (and every other NUL) is gone."""
    ts = loc.by_role("string")
    if not ts:
        return None
    t = rng.choice(ts)
    fill = rng.choice((b"A\x00", b"\xff\xff", b"\x00\xd8"))  # a letter, U+FFFF, a lone high surrogate
    value = (fill * (t.size // 2 + 1))[:t.size]
    capture.overwrite(cap, t.stream, t.off, value)
    return "%s: %d bytes of %s, no NUL (frames %s)" % (t.name, t.size, fill.hex(), ",".join(
        str(f + 1) for f in t.frames()))


def _count_pairs(loc: Located) -> List[Tuple[Target, Target]]:
    """(max_count, actual_count) of each conformant varying array or string."""
    counts = loc.by_role("count")
    pairs = []
    for i, t in enumerate(counts):
        if t.name.split()[-1].startswith("max_count@"):
            for u in counts[i + 1:i + 3]:
                if u.stream is t.stream and 0 < u.off - t.off <= 8 and "actual_count@" in u.name:
                    pairs.append((t, u))
    return pairs


def ndr_count_disagree(rng, cap: Capture, loc: Located) -> Optional[str]:
    """A conformance (max_count) that disagrees with the varying part's actual_count: the array's
    two counts, or offset + actual_count past max_count."""
    pairs = _count_pairs(loc)
    if not pairs:
        return None
    mx, actual = rng.choice(pairs)
    m, a = mx.value or 0, actual.value or 0
    how = rng.randrange(4)
    if how == 0:
        return _write(cap, actual, m + rng.choice((1, 2, 64, 0x10000)))  # more elements than conformance
    if how == 1:
        return _write(cap, mx, max(a - rng.choice((1, 2)), 0))  # conformance below the actual count
    if how == 2:
        return _write(cap, actual, max(a - 1, 0))  # fewer elements than the bytes that follow
    return _write(cap, mx, a + rng.choice((1, 0x100, 0x7FFFFFFF)))  # conformance above: a "huge" array


STRUCT_SPECIAL = {"string_no_nul": (string_no_nul, lambda loc: bool(loc.by_role("string"))),
                  "ndr_count_disagree": (ndr_count_disagree, lambda loc: bool(_count_pairs(loc)))}


def struct_mutators(loc: Located) -> List[str]:
    """The structure-aware mutators that have something to mutate in this capture."""
    return ([n for n in VALUE_MUTATORS if _value_targets(loc, n)]
            + [n for n, (_, applies) in STRUCT_SPECIAL.items() if applies(loc)])


def struct_mutate(rng: random.Random, cap: Capture, loc: Located, name: str) -> str:
    """Apply mutator `name` 1-3 times (more than one fault in a capture, as real damage has)."""
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if name in STRUCT_SPECIAL:
            d = STRUCT_SPECIAL[name][0](rng, cap, loc)
        else:
            t = _pick(rng, _value_targets(loc, name))
            mask = (1 << (8 * t.size)) - 1
            for _ in range(8):  # a value that differs from what is there
                value = VALUE_MUTATORS[name][1](rng, t) & mask
                if value != t.value:
                    break
            d = _write(cap, t, value)
        if d:
            done.append(d)
    return name + ": " + "; ".join(done)
