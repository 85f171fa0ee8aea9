"""Where the fields are: every RSVD message and ClusPrep stub of a capture, parsed with the
definitions the plugins are generated from, each integer and string field with its byte
position in the capture.

Nothing here hard-codes a field offset of RSVD or ClusPrep. The definitions are parsed while
their leaf readers are watched:

- RSVD (`dissectors.definitions.rsvd`, `.scsi`, `dissectors.vocabulary.wire`, all `construct`): every
  FormatField / BytesInteger read and every `wire.Utf16String` records its stream position
  and its construct path ("Payload.Cdb.Fields.AllocationLength"); `wire.Overlay` sub-streams
  (a CDB inside CDBBuffer, sense data inside SenseDataEx) are given their base offset.
- ClusPrep (`dissectors.definitions.csvp` over `dissectors.vocabulary.ndr`): every `ndr.Reader.num` (referent ids,
  max_count/offset/actual_count, hoisted conformance, union discriminants, plain scalars)
  and every `Reader.take` of string units, with NDR's own labels.

Only the transports are decoded by hand, as the samples build them (samples/network.py,
samples/smb2.py, samples/dcerpc.py): NetBIOS session framing, the SMB2 header, IOCTL and
CREATE bodies (MS-SMB2 2.2.13-14, 2.2.31-32) to find the RSVD buffers, and the DCE/RPC
connection-oriented PDUs (C706 12.6) to find the stubs, their interface and opnum.
"""
from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import construct.core as cc

from capture import Capture, Stream, tcp_streams
from dissectors.definitions import csvp, dcom, rsvd
from dissectors.vocabulary import ndr, oaut, wire

IOCTLS = {e.function: e for e in rsvd.PROTOCOL.ioctls}
RSVD_CTL_CODES = sorted(IOCTLS)
OPEN_CONTEXT = rsvd.PROTOCOL.create_contexts[0]
INTERFACES = {i.uuid.lower(): i for i in csvp.INTERFACES}


@dataclass
class Target:
    """One field that a structure-aware mutator may overwrite in place."""

    stream: Stream
    off: int  # stream offset of its first byte
    size: int
    role: str  # length, count, opcode, status, scsi_opcode, ctl_code, enum..., see ROLES in mutators
    name: str  # where it is, for the report: "tunnel_response.Header.OperationCode"
    value: Optional[int] = None  # the integer it holds (None for strings)
    pack: Optional[Callable[[int], bytes]] = None  # integer -> its wire bytes
    response: bool = False
    choices: Tuple[int, ...] = ()  # the other values it can meaningfully take (opnums, union arms...)

    def frames(self) -> List[int]:
        return self.stream.frames(self.off, self.size)


@dataclass
class Located:
    targets: List[Target] = field(default_factory=list)
    frames: List[int] = field(default_factory=list)  # frame indexes that carry an RSVD message or a stub
    rsvd_messages: int = 0
    clusprep_stubs: int = 0
    sealed_stubs: int = 0

    def by_role(self, *roles: str) -> List[Target]:
        return [t for t in self.targets if t.role in roles]


def _packer(fmt: str, size: int) -> Callable[[int], bytes]:
    mask = (1 << (8 * size)) - 1
    unsigned = fmt[0] + {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
    return lambda v: struct.pack(unsigned, v & mask)


def _int_packer(size: int, little: bool) -> Callable[[int], bytes]:
    return lambda v: (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little" if little else "big")


# -- construct: watch the leaf readers -------------------------------------------------------
class ConstructTrace:
    """While active, every integer and UTF-16 string construct reads is recorded as
    (offset in the top stream, size, path, value or None, packer)."""

    def __init__(self):
        self.records: List[tuple] = []
        self.bases: Dict[int, int] = {}
        self.keep: List[io.BytesIO] = []  # substreams stay alive, so their id()s stay unique

    def _base(self, stream) -> int:
        return self.bases.get(id(stream), 0)

    def __enter__(self):
        trace = self
        self.saved = (cc.FormatField._parse, cc.BytesInteger._parse, wire.Utf16String._parse, wire.Overlay._parse)
        ff, bi, us, _ = self.saved

        def format_field(self, stream, context, path):
            pos = stream.tell()
            v = ff(self, stream, context, path)
            if isinstance(v, int) and self.length in (1, 2, 4, 8):
                trace.records.append((trace._base(stream) + pos, self.length, path, v, _packer(self.fmtstr, self.length)))
            return v

        def bytes_integer(self, stream, context, path):
            pos = stream.tell()
            v = bi(self, stream, context, path)
            n = stream.tell() - pos
            if n > 0:
                trace.records.append((trace._base(stream) + pos, n, path, v, _int_packer(n, bool(self.swapped))))
            return v

        def utf16(self, stream, context, path):
            pos = stream.tell()
            v = us(self, stream, context, path)
            n = stream.tell() - pos
            if n >= 2:
                trace.records.append((trace._base(stream) + pos, n, path, None, None))
            return v

        def overlay(self, stream, context, path):
            here = stream.tell()
            data = stream.read() if self.size is None else stream.read(self.size)
            stream.seek(here)
            sub = io.BytesIO(data)
            trace.keep.append(sub)
            trace.bases[id(sub)] = trace._base(stream) + here
            try:
                return self.subcon._parsereport(sub, context, path)
            except Exception:  # noqa: BLE001 - as wire.Overlay: a region that does not parse has no overlay
                return None

        cc.FormatField._parse, cc.BytesInteger._parse = format_field, bytes_integer
        wire.Utf16String._parse, wire.Overlay._parse = utf16, overlay
        return self

    def __exit__(self, *exc):
        cc.FormatField._parse, cc.BytesInteger._parse, wire.Utf16String._parse, wire.Overlay._parse = self.saved


def clean_path(path: str) -> str:
    parts = [p.strip() for p in str(path).split("->")]
    out: List[str] = []
    for p in parts:
        if not p or p.startswith("("):
            continue
        if not out or out[-1] != p:
            out.append(p)
    return ".".join(out)


def construct_fields(msg, raw: bytes) -> List[tuple]:
    """Every (offset, size, path, value, packer) that parsing `raw` as `msg` reads, as far as it parses."""
    with ConstructTrace() as t:
        try:
            msg.struct.parse(raw)
        except Exception:  # noqa: BLE001 - a malformed sample message: keep the fields read so far
            pass
    return [(o, n, clean_path(p), v, pk) for o, n, p, v, pk in t.records if o + n <= len(raw)]


def rsvd_role(path: str, value) -> str:
    last = path.split(".")[-1]
    if value is None:
        return "string"
    if path == "Header.OperationCode":
        return "opcode"
    if path == "Header.Status":
        return "status"
    if path == "Header.RequestId":
        return "request_id"
    if ".Cdb." in "." + path + "." and last == "OperationCode":
        return "scsi_opcode"
    if any(k in last for k in ("Length", "Count", "Size")):
        return "length"
    return "int"


# -- SMB2 -> RSVD ------------------------------------------------------------------------------
def _u16(b, o):
    return struct.unpack_from("<H", b, o)[0]


def _u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def _u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def _smb2_messages(s: Stream):
    """(stream offset of the SMB2 header, its length) for each SMB2 message, compounds split."""
    d = s.data
    pos = 0
    while pos + 4 <= len(d):
        length = int.from_bytes(d[pos + 1:pos + 4], "big")
        end = pos + 4 + length
        if end > len(d):
            return
        if d[pos] == 0:
            h = pos + 4
            while h + 64 <= end and d[h:h + 4] == b"\xfeSMB":
                nxt = _u32(d, h + 20)
                mend = h + nxt if nxt else end
                if mend > end or mend <= h:
                    break
                yield h, mend - h
                if not nxt:
                    break
                h = mend
        pos = end


def _add_construct(loc: Located, s: Stream, base: int, raw: bytes, msg, label: str, response: bool) -> None:
    for o, n, path, v, pk in construct_fields(msg, raw):
        loc.targets.append(Target(s, base + o, n, rsvd_role(path, v), "%s.%s" % (label, path), v, pk, response))


def locate_rsvd(s: Stream, loc: Located) -> None:
    d = bytes(s.data)
    first = len(loc.targets)
    for h, mlen in _smb2_messages(s):
        cmd = _u16(d, h + 12)
        response = bool(_u32(d, h + 16) & 1)
        body = h + 64
        if response and cmd in (5, 11):  # which request a CREATE or IOCTL response answers
            loc.targets.append(Target(s, h + 24, 8, "smb2_msg_id", "smb2_response.MessageId", _u64(d, h + 24),
                                      _packer("<", 8), True))
        if cmd == 11 and mlen >= 64 + 56:  # IOCTL
        # request: CtlCode @4, InputOffset @24, InputCount @28; response: OutputOffset @32, OutputCount @36
            size = _u16(d, body)
            if size != (49 if response else 57):
                continue  # an error or interim response: no IOCTL body
            ctl = _u32(d, body + 4)
            if ctl not in IOCTLS:
                continue
            boff, bcnt = (body + 32, body + 36) if response else (body + 24, body + 28)
            start, count = h + _u32(d, boff), _u32(d, bcnt)
            end = min(start + count, h + mlen)
            e = IOCTLS[ctl]
            msg = e.response if response else e.request
            kind = "ioctl_response" if response else "ioctl_request"
            loc.targets.append(Target(s, body + 4, 4, "ctl_code", kind + ".CtlCode", ctl, _packer("<", 4), response,
                                      tuple(c for c in RSVD_CTL_CODES if c != ctl)))
            loc.targets.append(Target(s, bcnt, 4, "length", kind + (".OutputCount" if response else ".InputCount"),
                                      count, _packer("<", 4), response))
            if start < end and msg is not None:
                loc.rsvd_messages += 1
                loc.frames += s.frames(start, end - start)
                _add_construct(loc, s, start, d[start:end], msg, msg.abbrev, response)
        elif cmd == 5:  # CREATE: the SVHDX_OPEN_DEVICE_CONTEXT, in a request (or echoed in a response)
            size = _u16(d, body)
            if size != (89 if response else 57):
                continue
            coff, clen = (_u32(d, body + 80), _u32(d, body + 84)) if response else (_u32(d, body + 48), _u32(d, body + 52))
            c, cend = h + coff, min(h + coff + clen, h + mlen)
            while coff and c + 16 <= cend:
                nxt, noff, nlen = _u32(d, c), _u16(d, c + 4), _u16(d, c + 6)
                doff, dlen = _u16(d, c + 10), _u32(d, c + 12)
                if d[c + noff:c + noff + nlen] == OPEN_CONTEXT.tag and doff:
                    start, end = c + doff, min(c + doff + dlen, cend)
                    loc.targets.append(Target(s, c + 12, 4, "length", "create_context.DataLength", dlen,
                                              _packer("<", 4), response))
                    if start < end:
                        loc.rsvd_messages += 1
                        loc.frames += s.frames(start, end - start)
                        _add_construct(loc, s, start, d[start:end], OPEN_CONTEXT.message, OPEN_CONTEXT.message.abbrev,
                                       response)
                if not nxt:
                    break
                c += nxt
    # the other ids of this direction are what a swap picks: the response then answers another request
    for role in ("smb2_msg_id", "request_id"):
        mine = [t for t in loc.targets[first:] if t.role == role]
        ids = sorted({t.value for t in mine})
        for t in mine:
            t.choices = tuple(i for i in ids if i != t.value)


# -- DCE/RPC -> ClusPrep --------------------------------------------------------------------
class NdrTrace:
    """While active, every ndr.Reader.num and string take is recorded as (offset, size, label, value, cases)."""

    def __init__(self):
        self.records: List[tuple] = []
        self.pending: List[tuple] = []
        self.content = None  # the packed layout (dissectors.definitions.csvp_buffers) the next byte array holds

    def __enter__(self):
        trace = self
        self.saved = (ndr.Reader.num, ndr.Reader.take, ndr.Union.pull, ndr.ConfArray.pull_elements,
                      oaut.SafeArray.pull_array, ndr.Reader.__init__)
        num, take, upull, conf_elements, safearray, init = self.saved
        next_base = [0]  # a record NDR-encoded inside pRecord gets a Reader of its own: where it starts

        def traced_init(self, data):
            init(self, data)
            self.fuzz_base, next_base[0] = next_base[0], 0

        def traced_num(self, fmt, what=""):
            size = struct.calcsize("<" + fmt)
            self.align(size)
            pos = self.fuzz_base + self.pos
            label, cases = trace.pending.pop() if trace.pending else (what, ())
            v = num(self, fmt, what)
            trace.records.append((pos, size, label, v, cases, fmt))
            return v

        def traced_take(self, n, what=""):
            pos = self.fuzz_base + self.pos
            b = take(self, n, what)
            if what == "pRecord":
                next_base[0] = pos
            if what in ("string", "BSTR") and n >= 2:
                trace.records.append((pos, n, what, None, (), None))
            elif what in ("array", "SAFEARRAY") and trace.content is not None:
                trace.records.append((pos, n, "content", trace.content, (), None))
                trace.content = None
            return b

        def traced_conf_elements(self, r, n, ctx, put):
            trace.content = self.content if self.is_bytes else None
            return conf_elements(self, r, n, ctx, put)

        def traced_safearray(self, r):
            trace.content = self.content if self.unit is not None and self.unit.size == 1 else None
            return safearray(self, r)

        def traced_union(self, r, ctx, put):
            trace.pending = [("union discriminant", tuple(sorted(self.cases)))]
            return upull(self, r, ctx, put)

        (ndr.Reader.num, ndr.Reader.take, ndr.Union.pull, ndr.ConfArray.pull_elements,
         oaut.SafeArray.pull_array, ndr.Reader.__init__) = (traced_num, traced_take, traced_union,
                                                           traced_conf_elements, traced_safearray, traced_init)
        return self

    def __exit__(self, *exc):
        (ndr.Reader.num, ndr.Reader.take, ndr.Union.pull, ndr.ConfArray.pull_elements,
         oaut.SafeArray.pull_array, ndr.Reader.__init__) = self.saved


COUNT_LABELS = ("max_count", "actual_count", "offset", "BSTR max_count", "BSTR clSize", "cElements", "Size",
                "cDims", "cbElements", "clSize", "ulCntData", "ulCntData conformance", "SAFEARRAY conformance")
DISCRIMINANT_LABELS = ("union discriminant", "sfType")  # sfType: SAFEARRAY's encapsulated union


def ndr_role(label: str, value) -> str:
    if value is None:
        return "string"
    if label in ("referent id", "pRecord", "pRecInfo"):
        return "pointer"
    if label in DISCRIMINANT_LABELS:
        return "discriminant"
    if label in COUNT_LABELS or label.endswith(" conformance"):
        return "count"
    if label == "HRESULT":
        return "hresult"
    return "ndr_int"


def ndr_fields(params, stub: bytes) -> List[tuple]:
    with NdrTrace() as t:
        try:
            params.parse(stub)
        except Exception:  # noqa: BLE001 - a malformed sample stub: keep what was read
            pass
    return t.records


@dataclass
class _Call:
    stream: Stream
    pdus: List[int] = field(default_factory=list)  # stream offsets of its PDUs
    pieces: List[Tuple[int, int]] = field(default_factory=list)  # stub pieces: (stream offset, length)
    ctx_id: int = 0
    opnum: Optional[int] = None
    sealed: bool = False
    done: bool = False

    def stub(self) -> bytes:
        return b"".join(bytes(self.stream.data[o:o + n]) for o, n in self.pieces)

    def stream_offset(self, stub_off: int) -> int:
        for o, n in self.pieces:
            if stub_off < n:
                return o + stub_off
            stub_off -= n
        raise IndexError(stub_off)

    def contiguous(self, stub_off: int, size: int) -> Optional[int]:
        """The stream offset of stub bytes [stub_off, stub_off+size) when one fragment holds them all."""
        try:
            first, last = self.stream_offset(stub_off), self.stream_offset(stub_off + size - 1)
        except IndexError:
            return None
        return first if last - first == size - 1 else None


def _pdus(s: Stream):
    d = s.data
    pos = 0
    while pos + 16 <= len(d):
        if d[pos] != 5 or d[pos + 1] != 0 or d[pos + 4] & 0xF0 != 0x10:
            return  # not connection-oriented DCE/RPC, or big-endian integers
        frag_len = _u16(d, pos + 8)
        if frag_len < 16 or pos + frag_len > len(d):
            return
        yield pos, frag_len
        pos += frag_len


def locate_clusprep(streams: Dict[Tuple, Stream], loc: Located) -> None:
    contexts: Dict[Tuple, Dict[int, str]] = {}  # connection -> ctx_id -> interface uuid
    calls: Dict[Tuple, _Call] = {}  # (connection, call_id, is_response)
    order: List[Tuple] = []
    for (src, dst), s in streams.items():
        conn = tuple(sorted((src, dst)))
        d = s.data
        for pos, frag_len in _pdus(s):
            ptype, flags = d[pos + 2], d[pos + 3]
            auth_len, call_id = _u16(d, pos + 10), _u32(d, pos + 12)
            if ptype in (11, 14) and frag_len >= 28:  # bind, alter_context
                n, c = d[pos + 24], pos + 28
                for _ in range(n):
                    if c + 24 > pos + frag_len:
                        break
                    ctx_id, n_ts = _u16(d, c), d[c + 2]
                    contexts.setdefault(conn, {})[ctx_id] = str(uuid.UUID(bytes_le=bytes(d[c + 4:c + 20])))
                    c += 24 + 20 * n_ts
                continue
            if ptype not in (0, 2, 3) or frag_len < 24:
                continue
            response = ptype != 0
            key = (conn, call_id, response)
            call = calls.get(key)
            if call is None or call.done:
                call = calls[key] = _Call(s)
                order.append(key)
            call.pdus.append(pos)
            call.ctx_id = _u16(d, pos + 20)
            tag = "dcerpc_response" if response else "dcerpc_request"
            loc.targets.append(Target(s, pos + 16, 4, "length", tag + ".alloc_hint", _u32(d, pos + 16),
                                      _packer("<", 4), response))
            if ptype == 3:
                loc.targets.append(Target(s, pos + 24, 4, "status", "dcerpc_fault.status", _u32(d, pos + 24),
                                          _packer("<", 4), True))
                call.done = True
                continue
            if not response:
                call.opnum = _u16(d, pos + 22)
            head = pos + 24 + (16 if not response and flags & 0x80 else 0)
            end = pos + frag_len
            if auth_len:
                trailer = end - auth_len - 8
                if trailer < head:
                    continue
                call.sealed = call.sealed or d[trailer + 1] == 6  # RPC_C_AUTHN_LEVEL_PKT_PRIVACY
                end = max(head, trailer - d[trailer + 2])
            call.pieces.append((head, end - head))
            if flags & 0x02:  # PFC_LAST_FRAG
                call.done = True
    # Every response names its request's call id; the other ids of the connection are what a swap picks.
    ids_by_conn: Dict[Tuple, List[int]] = {}
    for conn, call_id, _ in calls:
        ids_by_conn.setdefault(conn, [])
        if call_id not in ids_by_conn[conn]:
            ids_by_conn[conn].append(call_id)
    for key in order:
        conn, call_id, response = key
        call = calls[key]
        req = calls.get((conn, call_id, False))
        ifuuid = contexts.get(conn, {}).get(call.ctx_id)
        itf = INTERFACES.get(ifuuid) if ifuuid else None
        d = call.stream.data
        for pos in call.pdus:
            if response:
                others = tuple(i for i in ids_by_conn[conn] if i != call_id)
                loc.targets.append(Target(call.stream, pos + 12, 4, "call_id", "dcerpc_response.call_id", call_id,
                                          _packer("<", 4), True, others))
            else:
                ops = tuple(m.opnum for m in itf.methods) if itf else ()
                opnum = _u16(d, pos + 22)
                loc.targets.append(Target(call.stream, pos + 22, 2, "opnum", "dcerpc_request.opnum", opnum,
                                          _packer("<", 2), False, tuple(o for o in ops if o != opnum)))
            ctx_ids = tuple(c for c in contexts.get(conn, {}) if c != call.ctx_id)
            loc.targets.append(Target(call.stream, pos + 20, 2, "ctx_id", "dcerpc.ctx_id", call.ctx_id,
                                      _packer("<", 2), response, ctx_ids))
        stub = call.stub()
        if not stub:
            continue
        opnum = req.opnum if req is not None else call.opnum
        method = itf.method(opnum) if itf is not None and opnum is not None else None
        loc.frames += [f for o, n in call.pieces if n for f in call.stream.frames(o, n)]
        name = "%s.%s.%s" % (itf.name if itf else "?", method.name if method else "opnum%s" % opnum,
                             "response" if response else "request")
        orpc = (8 if response else 32) if itf is not None and itf.dcom else 0
        for w in range(orpc, len(stub) - 3, 4):  # every aligned word past ORPCTHIS/ORPCTHAT
            o = call.contiguous(w, 4)
            if o is None:
                continue
            loc.targets.append(Target(call.stream, o, 4, "word", "%s stub+%d" % (name, w), _u32(stub, w),
                                      _packer("<", 4), response))
        if call.sealed:
            loc.sealed_stubs += 1
            continue
        if method is None:
            continue
        loc.clusprep_stubs += 1
        params = (method.response(dcom.ORPCTHAT if itf.dcom else None) if response
                  else method.request(dcom.ORPCTHIS if itf.dcom else None))
        for off, size, label, v, cases, fmt in ndr_fields(params, stub):
            o = call.contiguous(off, size)
            if o is None:
                continue
            if label == "content":  # a packed layout inside a byte array: its own fields, by construct
                for co, cn, path, cv, pk in construct_fields(v, stub[off:off + size]):
                    loc.targets.append(Target(call.stream, o + co, cn, rsvd_role(path, cv),
                                              "%s %s.%s@%d" % (name, v.name, path, off + co), cv, pk, response))
                continue
            pk = _packer("<", size) if v is not None else None
            loc.targets.append(Target(call.stream, o, size, ndr_role(label, v), "%s %s@%d" % (name, label, off), v,
                                      pk, response, tuple(c for c in cases if c != v)))


def locate(cap: Capture) -> Located:
    loc = Located()
    streams = tcp_streams(cap)
    for (src, dst), s in streams.items():
        if 445 in (src[1], dst[1]):
            locate_rsvd(s, loc)
    locate_clusprep({k: s for k, s in streams.items() if 445 not in (k[0][1], k[1][1])}, loc)
    loc.frames = sorted(set(loc.frames))
    return loc
