"""Wire-format vocabulary that construct lacks, shared by every protocol definition.

Each class here parses and builds in Python like any construct, and the model
(`dissectors.model`) knows how to turn it into decode steps every target renders. Protocol modules use only
these and construct's own Struct, integers, Hex, Enum, FlagsEnum, Bytes, Array and
Switch, so the generator never needs to know a protocol.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from construct import (
    Adapter,
    Bytes,
    Construct,
    ExplicitError,
    Struct,
    Subconstruct,
    Transformed,
    evaluate,
    stream_read,
    stream_write,
)

__all__ = [
    "Guid",
    "Utf16String",
    "Present",
    "Overlay",
    "When",
    "Checked",
    "Rule",
    "must_equal",
    "must_be_at_most",
    "must_be_one_of",
    "must_be_known",
    "warn_when",
    "BitField",
    "Ascii",
    "IfEquals",
    "int_value",
    "Variants",
    "Variant",
    "RemainingIs",
    "PeekZero",
    "Otherwise",
    "message",
    "Message",
    "BOOLEAN8",
    "stream_remaining",
]


def _transformed_emitparse(self, code):
    """construct compiles a BitStruct's Struct but not the Transformed around it (bytes to bits), so
    the whole BitStruct fell back to the interpreted parse; this is that parse, compiled: the same
    strict read, the same transform, the subcon on the transformed bytes in the same context."""
    from construct.lib import bytes2bits, swapbytes

    funcs = {bytes2bits: "bytes2bits", swapbytes: "swapbytes"}
    if self.decodefunc not in funcs or not isinstance(self.decodeamount, int):
        raise NotImplementedError
    fname = "parse_transformed_%s" % code.allocateId()
    n = self.decodeamount
    code.append("""
        def %s(io, this):
            data = io.read(%d)
            if len(data) != %d:
                raise StreamError("expected %d, found %%d" %% len(data))
            return restream(%s(data), lambda io: (%s))
    """ % (fname, n, n, n, funcs[self.decodefunc], _strict(code, self.subcon)))
    return "%s(io, this)" % fname


if "_emitparse" not in Transformed.__dict__:  # construct 2.10 has none
    Transformed._emitparse = _transformed_emitparse


_lenient_bytes = Bytes._emitparse


def _bytes_emitparse(self, code):
    """construct's compiled Bytes reads what is there (a short buffer parses); the interpreted one
    fails. Below the constructs compiled here (interpreted before), reads stay strict, as they were."""
    if not getattr(code, "strict", False):
        return _lenient_bytes(self, code)
    return "%s(io, %s)" % (_emit_read(code), _emit_value(self.length))


Bytes._emitparse = _bytes_emitparse


def _strict(code, subcon) -> str:
    """subcon compiled with strict reads, with a parser cache of its own (an instance compiled both
    ways gets both functions)."""
    saved = code.parsercache, getattr(code, "strict", False)
    if not saved[1]:
        code.parsercache = code.__dict__.setdefault("strictcache", {})
        code.strict = True
    try:
        return subcon._compileparse(code)
    finally:
        code.parsercache, code.strict = saved


def _emit_value(value) -> str:
    """Source for an int or a `this.` expression; anything else (a lambda) cannot be compiled."""
    from construct.expr import ExprMixin

    if isinstance(value, int) or isinstance(value, ExprMixin):
        return repr(value)
    raise NotImplementedError


def _emit_read(code) -> str:
    """A strict read for compiled parsers (the interpreted stream_read's check), emitted once."""
    code.append("""
        def read_exactly(io, n):
            if n < 0:
                raise StreamError("length must be non-negative, found %d" % n)
            data = io.read(n)
            if len(data) != n:
                raise StreamError("stream read less than specified amount, expected %d, found %d" % (n, len(data)))
            return data
    """)
    return "read_exactly"


def stream_remaining(stream) -> int:
    """Bytes left in a seekable stream: what a generated decoder calls the bytes left in its buffer."""
    here = stream.tell()
    stream.seek(0, 2)
    end = stream.tell()
    stream.seek(here)
    return end - here


class Guid(Adapter):
    """A 16-byte GUID in Microsoft's mixed-endian layout (MS-DTYP 2.3.4.2); Wireshark's FT_GUID."""

    def __init__(self):
        super().__init__(Bytes(16))

    def _decode(self, obj, context, path):
        return uuid.UUID(bytes_le=bytes(obj))

    def _emitparse(self, code):
        code.append("from uuid import UUID as uuid_UUID")
        return "uuid_UUID(bytes_le=%s(io, 16))" % _emit_read(code)

    def _encode(self, obj, context, path):
        if isinstance(obj, str):
            obj = uuid.UUID(obj)
        return obj.bytes_le


class Utf16String(Construct):
    """UTF-16LE text in a buffer of `length` bytes (an int or a `this.` expression).

    The value is the text up to the first NUL, so a NUL-terminated name in a fixed
    buffer (MS-RSVD's InitiatorHostName) and an exact-length string both read
    naturally. Building pads with NULs to `length`.
    """

    def __init__(self, length):
        super().__init__()
        self.length = length

    def _length(self, context):
        n = evaluate(self.length, context)
        if n < 0:
            raise ExplicitError("negative string length %d" % n)
        return n

    def _parse(self, stream, context, path):
        raw = stream_read(stream, self._length(context), path)
        text = raw[: len(raw) - (len(raw) % 2)].decode("utf-16-le", errors="replace")
        return text.split("\x00", 1)[0]

    def _build(self, obj, stream, context, path):
        n = self._length(context)
        raw = obj.encode("utf-16-le")
        if len(raw) > n:
            raise ExplicitError("string of %d bytes does not fit in %d" % (len(raw), n), path=path)
        stream_write(stream, raw + b"\x00" * (n - len(raw)), n, path)
        return obj

    def _sizeof(self, context, path):
        return self._length(context)

    def _emitparse(self, code):
        fname = "parse_utf16_%s" % code.allocateId()
        code.append("""
            def %s(io, this):
                n = %s
                if n < 0:
                    raise ExplicitError("negative string length %%d" %% n)
                raw = %s(io, n)
                return raw[: len(raw) - (len(raw) %% 2)].decode("utf-16-le", errors="replace").split("\\x00", 1)[0]
        """ % (fname, _emit_value(self.length), _emit_read(code)))
        return "%s(io, this)" % fname


class Present(Subconstruct):
    """`subcon` when bytes remain, else None.

    RSVD servers answer a failed tunnel operation with the bare header (§3.2.5.5.1),
    so response payloads are present only when the buffer goes on.
    """

    def _parse(self, stream, context, path):
        if stream_remaining(stream) == 0:
            return None
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            return None
        return self.subcon._build(obj, stream, context, path)

    def _emitparse(self, code):
        fname = "parse_present_%s" % code.allocateId()
        code.append("""
            def %s(io, this):
                here = io.tell()
                io.seek(0, 2)
                end = io.tell()
                io.seek(here)
                if end == here:
                    return None
                return %s
        """ % (fname, _strict(code, self.subcon)))
        return "%s(io, this)" % fname


def int_value(v) -> int:
    """An integer, or an Enum's parsed value (EnumIntegerString), as an int."""
    return getattr(v, "intvalue", v)


class IfEquals(Subconstruct):
    """`subcon` when `key` (a `this.` expression) equals `value`, else `otherwise`.

    Unlike construct's If, it compares Enum-parsed values by number, so the same
    definition parses and builds whether callers use names or integers.
    """

    def __init__(self, key, value: int, subcon, otherwise=None):
        super().__init__(subcon)
        self.key, self.value, self.otherwise = key, value, otherwise

    def _pick(self, context):
        if int_value(evaluate(self.key, context)) == self.value:
            return self.subcon
        return self.otherwise

    def _parse(self, stream, context, path):
        sc = self._pick(context)
        return None if sc is None else sc._parsereport(stream, context, path)

    def _emitparse(self, code):
        key = _emit_value(self.key)
        other = "None" if self.otherwise is None else _strict(code, self.otherwise)
        return "((%s) if getattr(%s, 'intvalue', %s) == %r else (%s))" % (
            _strict(code, self.subcon), key, key, self.value, other)

    def _build(self, obj, stream, context, path):
        sc = self._pick(context)
        return None if sc is None else sc._build(obj, stream, context, path)


class When(Subconstruct):
    """`subcon` when `cond` (a construct expression over plain integers, e.g.
    `this.SenseInfoExLength > 0`) holds, else nothing. For Enum values use IfEquals."""

    def __init__(self, cond, subcon):
        super().__init__(subcon)
        self.cond = cond
        self.flagbuildnone = getattr(subcon, "flagbuildnone", False)

    def _parse(self, stream, context, path):
        return self.subcon._parsereport(stream, context, path) if evaluate(self.cond, context) else None

    def _emitparse(self, code):
        return "((%s) if %s else None)" % (_strict(code, self.subcon), _emit_value(self.cond))

    def _build(self, obj, stream, context, path):
        return self.subcon._build(obj, stream, context, path) if evaluate(self.cond, context) else None


@dataclass(frozen=True)
class Rule:
    """What the spec says a field's value must (or should not) be.

    kind "malformed": a violation makes the message malformed (expert error);
    kind "warning": the value is legal but worth flagging (expert warning).
    test: "equals", "at_most", "one_of" (values), "known" (has a value name),
    "is" (warn when the value is one of `values`). `text` may hold one %s, filled
    with the value's name. Names in `values` are resolved through the field's Enum.
    """

    kind: str
    test: str
    values: Tuple = ()
    text: str = ""
    spec: str = ""
    # Warnings about one message: only the most specific shows (the highest rank; the first of
    # equals), so one event (a CHECK CONDITION, its sense key, its ASC) is one expert item.
    rank: int = 0

    def violated(self, value, names: Optional[Dict[int, str]] = None) -> bool:
        x = int_value(value)
        vals = [self._num(v, names) for v in self.values]
        if self.test == "equals":
            return x != vals[0]
        if self.test == "at_most":
            return x > vals[0]
        if self.test == "one_of":
            return x not in vals
        if self.test == "known":
            return not (names and x in names)
        if self.test == "is":
            return x in vals
        raise ValueError(self.test)

    @staticmethod
    def _num(v, names):
        if isinstance(v, str):
            return next(k for k, n in (names or {}).items() if n == v)
        return v


def must_equal(value, spec: str, text: str = "must be %s") -> Rule:
    return Rule("malformed", "equals", (value,), text, spec)


def must_be_at_most(value, spec: str, text: str = "must be at most %s") -> Rule:
    return Rule("malformed", "at_most", (value,), text, spec)


def must_be_one_of(*values, spec: str, text: str = "must be one of %s") -> Rule:
    return Rule("malformed", "one_of", tuple(values), text, spec)


def must_be_known(spec: str, text: str = "is not a value the specification defines") -> Rule:
    return Rule("malformed", "known", (), text, spec)


def warn_when(values, spec: str, text: str, rank: int = 0) -> Rule:
    return Rule("warning", "is", tuple(values), text, spec, rank)


class Annotated(Subconstruct):
    """`subcon` unchanged in Python, parsed, built and compiled as it is; what a subclass adds is
    for the dissector."""

    def _parse(self, stream, context, path):
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj, stream, context, path):
        return self.subcon._build(obj, stream, context, path)

    def _emitparse(self, code):
        return self.subcon._compileparse(code)


class Checked(Annotated):
    """`subcon` with the Rules its value is held to (expert info in the dissector)."""

    def __init__(self, subcon, *rules: Rule):
        super().__init__(subcon)
        self.rules = list(rules)


# Predicates that pick a layout variant. Each has a Python `test`, and the model
# (dissectors.model.structs) turns it into a decode step each target renders; keep them in step.
@dataclass(frozen=True)
class RemainingIs:
    """The rest of the buffer is exactly `size` bytes."""

    size: int

    def test(self, stream) -> bool:
        return stream_remaining(stream) == self.size


@dataclass(frozen=True)
class PeekZero:
    """Bytes [offset, offset+size) from here exist and are all zero."""

    offset: int
    size: int

    def test(self, stream) -> bool:
        here = stream.tell()
        if stream_remaining(stream) < self.offset + self.size:
            return False
        stream.seek(here + self.offset)
        data = stream.read(self.size)
        stream.seek(here)
        return data == b"\x00" * self.size


@dataclass(frozen=True)
class Otherwise:
    """Always true; put it last."""

    def test(self, stream) -> bool:
        return True


@dataclass
class Variant:
    name: str
    when: Any
    subcon: Construct
    note: str = ""


class Variants(Construct):
    """One of several layouts of the same message, chosen by looking at the bytes.

    Used where the seed spec and what Windows sends disagree; the parse result
    carries `_variant` (the chosen variant's name), and building needs it too.
    """

    def __init__(self, *variants: Variant):
        super().__init__()
        self.variants = list(variants)

    def _choose(self, stream) -> Variant:
        for v in self.variants:
            if v.when.test(stream):
                return v
        raise ExplicitError("no layout variant matches")

    def _parse(self, stream, context, path):
        v = self._choose(stream)
        obj = v.subcon._parsereport(stream, context, path)
        obj["_variant"] = v.name
        return obj

    def _emitparse(self, code):
        # The predicates are Python objects: linked by their id, as construct links what it cannot emit.
        fname = "parse_variants_%s" % code.allocateId()
        block = "\n            def %s(io, this):" % fname
        for v in self.variants:
            code.linkedinstances[id(v.when)] = v.when
            block += """
                if linkedinstances[%d].test(io):
                    obj = %s
                    obj["_variant"] = %r
                    return obj""" % (id(v.when), _strict(code, v.subcon), v.name)
        block += """
                raise ExplicitError("no layout variant matches")
        """
        code.append(block)
        return "%s(io, this)" % fname

    def _build(self, obj, stream, context, path):
        name = obj.get("_variant", self.variants[0].name)
        for v in self.variants:
            if v.name == name:
                return v.subcon._build(obj, stream, context, path)
        raise ExplicitError("unknown layout variant %r" % name, path=path)


class BitField(Adapter):
    """One value in some bits of a 1-4 byte big-endian integer, the rest of which is
    reserved: `BitField(8, 3, 5)` is the low five bits of a byte (SCSI CDBs are full of
    these). With `values`, names as an Enum would; decoded names are EnumIntegerStrings.
    """

    def __init__(self, total: int, lead: int, width: int, values: Optional[Dict[str, int]] = None):
        from construct import BytesInteger

        super().__init__(BytesInteger(total // 8))
        self.total, self.lead, self.width = total, lead, width
        self.shift = total - lead - width
        self.mask = ((1 << width) - 1) << self.shift
        self.values = dict(values or {})
        self.decmapping = {v: k for k, v in self.values.items()}

    def _decode(self, obj, context, path):
        from construct import EnumIntegerString

        x = (obj & self.mask) >> self.shift
        return EnumIntegerString.new(x, self.decmapping[x]) if x in self.decmapping else x

    def _encode(self, obj, context, path):
        x = self.values[obj] if isinstance(obj, str) and not hasattr(obj, "intvalue") else int_value(obj)
        return (int(x) << self.shift) & self.mask

    def _emitparse(self, code):
        # Compiled like construct's Enum (shared EnumIntegerStrings), with the strict read of the
        # interpreted parse: construct's compiled BytesInteger would take a short read.
        fname = "parse_bitfield_%s" % code.allocateId()
        n = self.total // 8
        names = ", ".join("%r: EnumIntegerString.new(%r, %r)" % (x, x, k) for x, k in self.decmapping.items())
        code.append("""
            %s_names = {%s}
            def %s(io):
                data = io.read(%d)
                if len(data) != %d:
                    raise StreamError("expected %d, found %%d" %% len(data))
                x = (int.from_bytes(data, "big") & %d) >> %d
                return %s_names.get(x, x)
        """ % (fname, names, fname, n, n, n, self.mask, self.shift, fname))
        return "%s(io)" % fname


class Ascii(Construct):
    """Space-padded ASCII text in `length` bytes (SCSI INQUIRY data); trailing spaces kept."""

    def __init__(self, length):
        super().__init__()
        self.length = length

    def _parse(self, stream, context, path):
        raw = stream_read(stream, evaluate(self.length, context), path)
        return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace")

    def _build(self, obj, stream, context, path):
        n = evaluate(self.length, context)
        stream_write(stream, obj.encode("ascii").ljust(n, b" ")[:n], n, path)
        return obj

    def _sizeof(self, context, path):
        return evaluate(self.length, context)


class Overlay(Subconstruct):
    """`subcon` read from the next `size` bytes without consuming them.

    For a buffer that the spec names as one field but that has a structure of its own
    (MS-RSVD's CDBBuffer holds a SCSI CDB; SenseDataEx holds sense data): the field
    stays as the spec names it, and the overlay shows what it means.
    """

    def __init__(self, size: Optional[int], subcon, option: Optional[str] = None):
        super().__init__(subcon)
        self.size = size  # None: to the end of the buffer
        self.option = option  # a Protocol option that can switch the dissector's reading off
        self.flagbuildnone = True  # it writes nothing, so building needs no value for it

    def _parse(self, stream, context, path):
        import io

        here = stream.tell()
        data = stream.read() if self.size is None else stream.read(self.size)
        stream.seek(here)
        try:  # in the enclosing context, so `this` sees the fields around the overlay
            return self.subcon._parsereport(io.BytesIO(data), context, path)
        except Exception:  # a region that does not parse simply has no overlay
            return None

    def _build(self, obj, stream, context, path):
        return obj

    def _sizeof(self, context, path):
        return 0


def citation(proto_spec: str, holder) -> str:
    """'MS-RSVD 2.2.5.1' for a structure's bare section; a full citation ('SPC-3 6.4') as it is."""
    return "%s %s" % (proto_spec, holder.spec) if holder.spec[:1].isdigit() else holder.spec


@dataclass
class Message:
    """A named structure from a spec table: what the generator turns into a subtree.

    abbrev names its subtree field (`msrsvd.<abbrev>`) and, unless `prefix` is given,
    the middle part of its fields' names (`msrsvd.<abbrev>.<field>`); spec is the
    section whose table the Struct follows, or a full citation ("SPC-3 6.4").
    """

    name: str
    abbrev: str
    spec: str
    struct: Struct
    doc: str = ""
    prefix: Optional[str] = None  # shared field namespace, e.g. every CDB under "scsi.cdb"

    @property
    def namespace(self) -> str:
        return self.prefix or self.abbrev

    def citation(self, proto_spec: str) -> str:
        return citation(proto_spec, self)

    # Python parse/build go straight to the construct.
    def parse(self, data: bytes, **kw):
        return self.struct.parse(data, **kw)

    def build(self, obj, **kw) -> bytes:
        return self.struct.build(obj, **kw)

    def sizeof(self, **kw) -> int:
        return self.struct.sizeof(**kw)


def message(name: str, abbrev: str, spec: str, *fields, doc: str = "", prefix: Optional[str] = None) -> Message:
    """Declare a spec structure. A lone `Variants` stands for the whole structure."""
    if len(fields) == 1 and isinstance(fields[0], Variants):
        struct = fields[0]
    else:
        struct = Struct(*fields)
    return Message(name=name, abbrev=abbrev, spec=spec, struct=struct, doc=doc, prefix=prefix)


# A one-byte BOOLEAN as MS-DTYP defines it. Shown with value names rather than as
# FT_BOOLEAN so a value other than 0 or 1 stays visible (§3.2.5.1 rejects those).
def BOOLEAN8():
    from construct import Enum, Int8ul

    return Enum(Int8ul, FALSE=0, TRUE=1)


# -- names Wireshark users filter on ---------------------------------------------------------
@dataclass(frozen=True)
class FieldName:
    """One filter name for a value several structures carry (`scsi.lba` whatever the CDB
    size), chosen once, with the built-in dissector's name for the same value (for
    docs/fields.md). `name` is under the protocol's: "scsi.lba" is `msrsvd.scsi.lba`."""

    name: str
    label: str
    desc: str
    builtin: str = ""  # e.g. "scsi.sbc.rdwr10.lba"


class Named(Annotated):
    """`subcon`, shown and filtered as `field` wherever it appears."""

    def __init__(self, field: FieldName, subcon):
        super().__init__(subcon)
        self.field = field


@dataclass(frozen=True)
class Part:
    """A masked part of an integer, shown beneath it (ASC in ADDITIONAL SENSE CODE/QUALIFIER)."""

    name: str
    mask: int
    field: Optional[FieldName] = None
    doc: str = ""


class Parts(Annotated):
    """An integer shown whole, with its value names, and as masked parts beneath it. Python
    sees the whole value; the parts are for the dissector."""

    def __init__(self, subcon, *parts: Part):
        super().__init__(subcon)
        self.parts = list(parts)
