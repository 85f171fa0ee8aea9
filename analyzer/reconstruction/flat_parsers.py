"""construct's compiled parse of a fixed-layout struct, without its per-field machinery.

construct's compiled parsers build a context Container per struct, read through a BytesIO and
wrap each value in a lambda: a tunnel header takes 1.8 µs, a READ(10) CDB 4.8 µs, and the
analyzer parses four or five of them per SCSI exchange (bench/python_per_packet.py). For the
views the analyzer reads on every message (decoding._layout), and for whole tunnel messages,
this turns the same construct tree into a plan: each run of fixed-size fields one
struct.unpack_from, then per field a converter (an enum's name, a flags Container, a bit field,
a GUID), a nested Struct, the rest of the bytes (GreedyBytes), a Switch or an IfEquals on fields
read before it (this.A.B), and the message Variants chosen by the bytes left (RemainingIs,
PeekZero, Otherwise). It gives the same Containers, keys in the same order, the same
EnumIntegerStrings, EnumIntegers, flag Containers and bit fields as construct's compiled code,
and refuses any construct it does not know (NotImplementedError: the caller keeps construct's
parser). A Switch or IfEquals branch it does not know does not refuse the whole layout: the
branch raises Unsupported when the bytes take it, and the caller runs construct on those bytes.
No code is generated: nothing here is compiled or evaluated from text.

Every read is strict: bytes too short for the layout raise struct.error (ShortRead; Unsupported
is one too), and the caller then runs construct's parser, so whatever construct does with short input (it reads what is there
for a trailing Bytes) stays what happens. tests/test_flat_parsers.py holds the two to the same
results on random bytes and every CDB.
"""
from __future__ import annotations

import struct
import uuid
from operator import itemgetter
from typing import Any, Callable, List, Optional, Tuple

from construct import (BitsInteger, Bytes, Container, Enum, EnumInteger, EnumIntegerString, Flag, FlagsEnum,
                       FormatField, GreedyBytes, Hex, Pass, Renamed, Struct, Switch, Transformed)
from construct.core import Padded
from construct.expr import Path
from construct.lib import bytes2bits

from dissectors.vocabulary.wire import Annotated, BitField, Guid, IfEquals, Otherwise, PeekZero, RemainingIs, Variants

ShortRead = struct.error  # what a strict read of too few bytes raises


class Unsupported(struct.error):
    """The bytes took a Switch or IfEquals branch with a construct this module does not know: the
    caller parses them with construct, as it does bytes too short (a ShortRead)."""


def _inner(sc):
    """What a wrapper compiles to in construct: its subcon's parse, unchanged."""
    while isinstance(sc, (Renamed, Annotated, Hex)):
        sc = sc.subcon
    return sc


def _enum(mapping) -> Callable[[int], Any]:
    def name(x):
        v = mapping.get(x)
        return v if v is not None else EnumInteger(x)
    name.lookup = mapping.get  # runs inline it: name(x) without the call (_Run.finish)
    return name


def _guid(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes_le=raw)


CACHED = 1024  # flag and bit-struct values remembered per field (a copy of one is 6x quicker to make)


def _remembered(make: Callable[[Any], Container]) -> Callable[[Any], Container]:
    """make(x), from a copy of the Container made for the same x before: callers may change the
    one they get. At most CACHED values a field (the wire chooses them)."""
    seen = {}

    def container(x):
        r = seen.get(x)
        if r is None:
            r = dict(make(x))  # kept as a plain dict: the quickest to copy into a Container
            if len(seen) < CACHED:
                seen[x] = r
        return Container(r)
    return container


def _flags(flags) -> Callable[[int], Container]:
    items = list(flags.items())
    return _remembered(lambda x: Container([(k, x & v == v) for k, v in items]))


def _bit_field(sc: BitField) -> Callable[[bytes], Any]:
    names = {x: EnumIntegerString.new(x, k) for x, k in sc.decmapping.items()}
    mask, shift = sc.mask, sc.shift

    def value(raw):
        x = (int.from_bytes(raw, "big") & mask) >> shift
        return names.get(x, x)
    return value


def _bit_struct(sc: Struct, nbytes: int) -> Callable[[bytes], Container]:
    """A BitStruct over `nbytes` bytes: each field's bits of their big-endian integer."""
    fields: List[Tuple[Optional[str], int, int, Optional[Callable]]] = []  # name, shift, mask, converter
    total, used = nbytes * 8, 0
    for sub in sc.subcons:
        inner, conv = _inner(sub), None
        if isinstance(inner, Enum):
            inner, conv = _inner(inner.subcon), _enum(dict(inner.decmapping))
            if inner is Flag:  # construct names the bit; a bool here would not
                raise NotImplementedError("an Enum over a Flag")
        if inner is Flag:
            width, conv = 1, bool
        elif isinstance(inner, BitsInteger) and isinstance(inner.length, int) and not inner.swapped \
                and not inner.signed and inner.length > 0:
            width = inner.length
        elif isinstance(inner, Padded) and inner.subcon is Pass and isinstance(inner.length, int):
            if getattr(sub, "name", None) is not None:  # construct keeps a named padding's None
                raise NotImplementedError("a named padding")
            used += inner.length
            continue
        else:
            raise NotImplementedError(repr(inner))
        used += width
        fields.append((getattr(sub, "name", None), total - used, (1 << width) - 1, conv))
    if used != total:
        raise NotImplementedError("a BitStruct of %d bits in %d bytes" % (used, nbytes))

    def make(raw):
        x = int.from_bytes(raw, "big")
        r = Container()
        for name, shift, mask, conv in fields:
            v = (x >> shift) & mask
            if name is not None:
                r[name] = conv(v) if conv is not None else v
        return r
    return _remembered(make)


def _field(sc) -> Tuple[str, Optional[str], Optional[Callable]]:
    """A fixed-size field as (struct format without byte order, its byte order or None when any
    will do, converter of the unpacked value or None)."""
    sc = _inner(sc)
    if isinstance(sc, FormatField):  # a byte reads the same in either order: it joins any run
        return sc.fmtstr[1:], sc.fmtstr[0] if struct.calcsize(sc.fmtstr) > 1 else None, None
    if isinstance(sc, Enum):
        fmt, order, conv = _field(sc.subcon)
        if conv is not None:
            raise NotImplementedError(repr(sc))
        return fmt, order, _enum(dict(sc.decmapping))
    if isinstance(sc, FlagsEnum):
        fmt, order, conv = _field(sc.subcon)
        if conv is not None:
            raise NotImplementedError(repr(sc))
        return fmt, order, _flags(sc.flags)
    if isinstance(sc, BitField):
        return "%ds" % (sc.total // 8), None, _bit_field(sc)
    if isinstance(sc, Guid):  # Adapter over Bytes(16): its compiled parse is UUID(bytes_le=...)
        return "16s", None, _guid
    if isinstance(sc, Bytes) and isinstance(sc.length, int):
        return "%ds" % sc.length, None, None
    if isinstance(sc, Padded) and sc.subcon is Pass and isinstance(sc.length, int):
        return "%dx" % sc.length, None, None  # unnamed only: _struct refuses a named one
    if isinstance(sc, Transformed) and sc.decodefunc is bytes2bits and isinstance(sc.decodeamount, int) \
            and isinstance(sc.subcon, Struct):
        return "%ds" % sc.decodeamount, None, _bit_struct(sc.subcon, sc.decodeamount)
    raise NotImplementedError(repr(sc))


class _Run:
    """Consecutive fixed-size fields of one byte order: one unpack_from, then their converters."""

    def __init__(self):
        self.order: Optional[str] = None
        self.formats: List[str] = []
        self.fields: List[Tuple[str, Optional[Callable]]] = []  # one per value (padding has none)

    def fits(self, order: Optional[str]) -> bool:
        return order is None or self.order is None or order == self.order

    def add(self, name: Optional[str], fmt: str, order: Optional[str], conv) -> None:
        self.order = self.order or order
        self.formats.append(fmt)
        if not fmt.endswith("x"):
            self.fields.append((name, conv))

    def finish(self) -> tuple:
        """The run as a step of _struct's plan: ("run", unpack_from, size, fields), each field
        (name, an enum's lookup or None, another converter or None): an enum's name is looked up
        inline, without a call."""
        s = struct.Struct((self.order or "<") + "".join(self.formats))
        fields = tuple((name, getattr(conv, "lookup", None), None if hasattr(conv, "lookup") else conv)
                       for name, conv in self.fields)
        return _RUN, s.unpack_from, s.size, fields


_RUN, _SWITCH, _VALUE = 0, 1, 2  # the steps of a struct's plan


def _key(expr) -> Tuple[str, ...]:
    """The fields a `this.A.B` expression reads from the struct's own values; anything else (a
    parent's or a parameter's, a computed expression) is refused."""
    if not isinstance(expr, Path):
        raise NotImplementedError(repr(expr))
    fields = []
    while expr._Path__parent is not None:
        fields.append(expr._Path__field)
        expr = expr._Path__parent
    if expr._Path__name != "this" or not fields or any(not isinstance(f, str) or f.startswith("_") for f in fields):
        raise NotImplementedError(repr(expr))
    return tuple(reversed(fields))


def _getter(path: Tuple[str, ...]) -> Callable[[dict], Any]:
    if len(path) == 1:
        return itemgetter(path[0])
    first, rest = path[0], path[1:]

    def get(r):
        v = r[first]
        for f in rest:
            v = v[f]
        return v
    return get


def _unsupported(why: str):
    def value(buf, at, r):
        raise Unsupported(why)
    return value


def _branch(sc, known: dict):
    """A Switch or IfEquals branch as value(buf, at, r), one per construct; a branch this module
    does not know raises Unsupported when taken."""
    p = known.get(id(sc))
    if p is None:
        try:
            p = _value(_inner(sc))
            if p is None:
                raise NotImplementedError(repr(sc))
        except NotImplementedError as e:
            p = _unsupported(str(e))
        known[id(sc)] = p
    return p


def _value(inner) -> Optional[Callable[[Any, int, dict], Tuple[Any, int]]]:
    """A field whose size the bytes decide, as value(buf, at, r) -> (its value, where it ends), r
    the Container of the struct it is in (what this.A.B reads); None for a fixed-size one."""
    if isinstance(inner, Switch):
        get, known = _getter(_key(inner.keyfunc)), {}
        cases = {k: _branch(c, known) for k, c in inner.cases.items()}
        default = _branch(inner.default, known)
        return lambda buf, at, r: cases.get(get(r), default)(buf, at, r)
    if isinstance(inner, IfEquals):
        get, known, value = _getter(_key(inner.key)), {}, inner.value
        then = _branch(inner.subcon, known)
        otherwise = _branch(inner.otherwise, known) if inner.otherwise is not None else _none

        def pick(buf, at, r):
            k = get(r)
            return (then if getattr(k, "intvalue", k) == value else otherwise)(buf, at, r)
        return pick
    if inner is Pass:
        return _none
    if isinstance(inner, (Struct, Variants)):
        return _parser(inner)  # its own Container (what its this.X read): it takes r and ignores it
    if inner is GreedyBytes:
        return lambda buf, at, r: (buf[at:], len(buf))
    return None


def _dynamic(name: Optional[str], inner) -> Optional[tuple]:
    """A field whose size the bytes decide, as a step of _struct's plan; None for a fixed-size one."""
    if isinstance(inner, Switch):  # the commonest, dispatched inline
        known = {}
        cases = {k: _branch(c, known) for k, c in inner.cases.items()}
        return _SWITCH, name, _getter(_key(inner.keyfunc)), (cases, _branch(inner.default, known))
    value = _value(inner)
    return None if value is None else (_VALUE, name, value, None)


def _struct(sc: Struct) -> Callable[[bytes, int], Tuple[Container, int]]:
    steps: List[tuple] = []  # (_RUN, unpack_from, size, fields), (_SWITCH, name, key, (cases, default)),
    # or (_VALUE, name, value(buf, at, r) -> (value, end), None)
    run = _Run()
    for sub in sc.subcons:
        name, inner = getattr(sub, "name", None), _inner(sub)
        step = _dynamic(name, inner)
        if step is not None:
            if run.formats:
                steps.append(run.finish())
                run = _Run()
            steps.append(step)
            continue
        fmt, order, conv = _field(inner)
        if fmt.endswith("x") and name is not None:  # construct keeps a named padding's None
            raise NotImplementedError("a named padding")
        if not run.fits(order):
            steps.append(run.finish())
            run = _Run()
        run.add(name, fmt, order, conv)
    if run.formats:
        steps.append(run.finish())

    if len(steps) == 1 and steps[0][0] is _RUN:  # one run (a header, a CDB's fields): parse's loop, alone
        _, unpack, size, fields = steps[0]

        def parse_run(buf, at, _r=None):  # _r: see _value
            r = Container()
            for (name, lookup, conv), v in zip(fields, unpack(buf, at)):
                if name is not None:
                    if lookup is not None:
                        x = lookup(v)
                        r[name] = x if x is not None else EnumInteger(v)
                    else:
                        r[name] = conv(v) if conv is not None else v
            return r, at + size
        return parse_run

    def parse(buf, at, _r=None):  # _r: see _value
        r = Container()
        for kind, a, b, c in steps:
            if kind is _RUN:  # a: unpack_from, b: size, c: fields
                for (name, lookup, conv), v in zip(c, a(buf, at)):
                    if name is not None:
                        if lookup is not None:
                            x = lookup(v)
                            r[name] = x if x is not None else EnumInteger(v)
                        else:
                            r[name] = conv(v) if conv is not None else v
                at += b
            else:  # a: name, b: the key (_SWITCH) or the value (_VALUE)
                if kind is _SWITCH:
                    v, at = c[0].get(b(r), c[1])(buf, at, r)
                else:
                    v, at = b(buf, at, r)
                if a is not None:
                    r[a] = v
        return r, at
    return parse


def _none(buf, at, r=None):
    return None, at


def _variants(sc: Variants) -> Callable[[bytes, int], Tuple[Container, int]]:
    """The first variant whose predicate holds on the bytes left, its value with `_variant` set."""
    chosen = []
    for v in sc.variants:
        when = v.when
        if isinstance(when, RemainingIs):
            test = (lambda size: lambda buf, at: len(buf) - at == size)(when.size)
        elif isinstance(when, PeekZero):
            test = (lambda start, end: lambda buf, at: len(buf) - at >= end
                    and not any(buf[at + start:at + end]))(when.offset, when.offset + when.size)
        elif isinstance(when, Otherwise):
            test = None
        else:
            raise NotImplementedError(repr(when))
        chosen.append((test, _parser(v.subcon), v.name))

    def parse(buf, at, _r=None):  # _r: see _value
        for test, sub, name in chosen:
            if test is None or test(buf, at):
                obj, at = sub(buf, at)
                obj["_variant"] = name
                return obj, at
        raise Unsupported("no layout variant matches")  # construct says so, in its words
    return parse


def _parser(sc) -> Callable[[bytes, int], Tuple[Any, int]]:
    sc = _inner(sc)
    if sc is Pass:
        return _none
    if isinstance(sc, Struct):
        return _struct(sc)
    if isinstance(sc, Variants):
        return _variants(sc)
    raise NotImplementedError(repr(sc))


def compile_flat(sc) -> Callable[[bytes], Any]:
    """sc's parse of bytes from their start (what follows the layout is ignored), or
    NotImplementedError when sc holds a construct this does not handle. Raises struct.error
    (ShortRead, or Unsupported for a branch it does not handle) when the bytes end first."""
    parse = _parser(sc)

    def flat(raw: bytes):
        return parse(raw, 0)[0]
    flat.at = parse  # parse(buf, at) -> (value, end): the layout read from buf[at:], without the slice
    return flat
