"""construct's compiled parse of a fixed-layout struct, without its per-field machinery.

construct's compiled parsers build a context Container per struct, read through a BytesIO and
wrap each value in a lambda: a tunnel header takes 1.8 µs, a READ(10) CDB 4.8 µs, and the
analyzer parses four or five of them per SCSI exchange (bench/python_per_packet.py). For the
views the analyzer reads on every message (decoding._layout), this turns the same construct
tree into a plan: each run of fixed-size fields one struct.unpack_from, then per field a
converter (an enum's name, a flags Container, a bit field), and a Switch dispatched on a field
read before it. It gives the same Containers, keys in the same order, the same
EnumIntegerStrings, EnumIntegers, flag Containers and bit fields as construct's compiled code,
and refuses any construct it does not know (NotImplementedError: the caller keeps construct's
parser). No code is generated: nothing here is compiled or evaluated from text.

Every read is strict: bytes too short for the layout raise struct.error, and the caller then
runs construct's parser, so whatever construct does with short input (it reads what is there
for a trailing Bytes) stays what happens. tests/test_flat_parsers.py holds the two to the same
results on random bytes and every CDB.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, List, Optional, Tuple

from construct import (BitsInteger, Bytes, Container, Enum, EnumInteger, EnumIntegerString, Flag, FlagsEnum,
                       FormatField, Hex, Pass, Renamed, Struct, Switch, Transformed)
from construct.core import Padded
from construct.expr import Path
from construct.lib import bytes2bits

from dissectors.vocabulary.wire import Annotated, BitField

ShortRead = struct.error  # what a strict read of too few bytes raises


def _inner(sc):
    """What a wrapper compiles to in construct: its subcon's parse, unchanged."""
    while isinstance(sc, (Renamed, Annotated, Hex)):
        sc = sc.subcon
    return sc


def _enum(mapping) -> Callable[[int], Any]:
    def name(x):
        v = mapping.get(x)
        return v if v is not None else EnumInteger(x)
    return name


CACHED = 1024  # flag and bit-struct values remembered per field (a copy of one is 6x quicker to make)


def _remembered(make: Callable[[Any], Container]) -> Callable[[Any], Container]:
    """make(x), from a copy of the Container made for the same x before: callers may change the
    one they get. At most CACHED values a field (the wire chooses them)."""
    seen = {}

    def container(x):
        r = seen.get(x)
        if r is None:
            r = make(x)
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
    if isinstance(sc, FormatField):
        return sc.fmtstr[1:], sc.fmtstr[0], None
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

    def finish(self):
        s = struct.Struct((self.order or "<") + "".join(self.formats))
        return s.unpack_from, s.size, self.fields


def _struct(sc: Struct) -> Callable[[bytes, int], Tuple[Container, int]]:
    steps: List[tuple] = []  # ("run", unpack_from, size, fields) or ("switch", name, key, cases, default)
    run = _Run()
    for sub in sc.subcons:
        name, inner = getattr(sub, "name", None), _inner(sub)
        if isinstance(inner, Switch):
            key = inner.keyfunc
            if not isinstance(key, Path) or repr(getattr(key, "_Path__parent", None)) != "this":
                raise NotImplementedError(repr(key))
            if run.formats:
                steps.append(("run",) + run.finish())
                run = _Run()
            parsers = {}
            for case in list(inner.cases.values()) + [inner.default]:
                if id(case) not in parsers:
                    parsers[id(case)] = _parser(case)
            steps.append(("switch", name, key._Path__field, {k: parsers[id(c)] for k, c in inner.cases.items()},
                          parsers[id(inner.default)]))
            continue
        fmt, order, conv = _field(inner)
        if fmt.endswith("x") and name is not None:  # construct keeps a named padding's None
            raise NotImplementedError("a named padding")
        if not run.fits(order):
            steps.append(("run",) + run.finish())
            run = _Run()
        run.add(name, fmt, order, conv)
    if run.formats:
        steps.append(("run",) + run.finish())

    def parse(buf, at):
        r = Container()
        for step in steps:
            if step[0] == "run":
                _, unpack, size, fields = step
                for (name, conv), v in zip(fields, unpack(buf, at)):
                    if name is not None:
                        r[name] = conv(v) if conv is not None else v
                at += size
            else:
                _, name, key, cases, default = step
                v, at = cases.get(r[key], default)(buf, at)
                if name is not None:
                    r[name] = v
        return r, at
    return parse


def _none(buf, at):
    return None, at


def _parser(sc) -> Callable[[bytes, int], Tuple[Any, int]]:
    sc = _inner(sc)
    if sc is Pass:
        return _none
    if isinstance(sc, Struct):
        return _struct(sc)
    raise NotImplementedError(repr(sc))


def compile_flat(sc) -> Callable[[bytes], Any]:
    """sc's parse of bytes from their start (what follows the layout is ignored), or
    NotImplementedError when sc holds a construct this does not handle. Raises struct.error
    (ShortRead) when the bytes end first."""
    parse = _parser(sc)

    def flat(raw: bytes):
        return parse(raw, 0)[0]
    return flat
