"""construct's compiled parse of a fixed-layout struct, without its per-field machinery.

construct's compiled parsers build a context Container per struct, read through a BytesIO and
wrap each value in a lambda: a tunnel header takes 1.8 µs, a READ(10) CDB 4.8 µs, and the
analyzer parses four or five of them per SCSI exchange (bench/python_per_packet.py). For the
views the analyzer reads on every message (decoding._view), this compiles the same construct
tree into straight-line code over the bytes: the same Containers, keys in the same order, the
same EnumIntegerStrings, EnumIntegers, flag Containers and bit fields as construct's compiled
code gives. It handles the constructs those views hold (integers, enums, flags, BitField,
bytes, BitStructs, padding, a Switch on a field read before it) and refuses any other
(NotImplementedError: the caller keeps construct's parser).

Every read is strict: bytes too short for the layout raise, and the caller then runs
construct's parser, so whatever construct does with short input (it reads what is there for
a trailing Bytes) stays what happens. tests/test_flat_parsers.py holds the two to the same
results on random and real messages.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List

from construct import (BitsInteger, Bytes, Container, Enum, EnumInteger, EnumIntegerString, Flag, FlagsEnum,
                       FormatField, Hex, Pass, Renamed, Struct, Switch, Transformed)
from construct.core import Padded
from construct.expr import Path
from construct.lib import bytes2bits

from dissectors.vocabulary.wire import Annotated, BitField


class _Code:
    """Source lines and the objects they name, for one compiled parser."""

    def __init__(self):
        self.lines: List[str] = []
        self.names: Dict[str, Any] = dict(Container=Container, EnumInteger=EnumInteger, ShortRead=ShortRead)
        self.count = 0

    def name(self, obj: Any, prefix: str) -> str:
        self.count += 1
        n = "%s_%d" % (prefix, self.count)
        self.names[n] = obj
        return n


class ShortRead(Exception):
    """The bytes end before the layout does."""


def _inner(sc):
    """What a wrapper compiles to in construct: its subcon's parse, unchanged."""
    while isinstance(sc, (Renamed, Annotated, Hex)):
        sc = sc.subcon
    return sc


def _value(sc, code: _Code, buf: str, at: str, out: List[str], indent: str, var: str) -> None:
    """Lines that set `var` to sc's value read from buf at offset variable `at`, and advance it."""
    sc = _inner(sc)
    if isinstance(sc, FormatField):
        s = struct.Struct(sc.fmtstr)
        f = code.name(s.unpack_from, "unpack")
        out.append("%s%s = %s(%s, %s)[0]" % (indent, var, f, buf, at))
        out.append("%s%s += %d" % (indent, at, s.size))
    elif isinstance(sc, BitField):
        n = sc.total // 8
        names = code.name({x: EnumIntegerString.new(x, k) for x, k in sc.decmapping.items()}, "names")
        out.append("%sif len(%s) < %s + %d: raise ShortRead" % (indent, buf, at, n))
        out.append("%sx = (int.from_bytes(%s[%s:%s + %d], 'big') & %d) >> %d" % (indent, buf, at, at, n, sc.mask,
                                                                              sc.shift))
        out.append("%s%s = %s.get(x, x)" % (indent, var, names))
        out.append("%s%s += %d" % (indent, at, n))
    elif isinstance(sc, Bytes) and isinstance(sc.length, int):
        out.append("%sif len(%s) < %s + %d: raise ShortRead" % (indent, buf, at, sc.length))
        out.append("%s%s = bytes(%s[%s:%s + %d])" % (indent, var, buf, at, at, sc.length))
        out.append("%s%s += %d" % (indent, at, sc.length))
    elif isinstance(sc, Enum):
        _value(sc.subcon, code, buf, at, out, indent, "x")
        mapping = code.name(dict(sc.decmapping), "enum")
        out.append("%s%s = %s.get(x)" % (indent, var, mapping))
        out.append("%sif %s is None: %s = EnumInteger(x)" % (indent, var, var))
    elif isinstance(sc, FlagsEnum):
        _value(sc.subcon, code, buf, at, out, indent, "x")
        out.append("%s%s = Container(%s)" % (indent, var, ", ".join(
            "%s=bool(x & %d == %d)" % (k, v, v) for k, v in sc.flags.items())))
    elif isinstance(sc, Padded) and sc.subcon is Pass and isinstance(sc.length, int):
        out.append("%sif len(%s) < %s + %d: raise ShortRead" % (indent, buf, at, sc.length))
        out.append("%s%s = None" % (indent, var))
        out.append("%s%s += %d" % (indent, at, sc.length))
    elif sc is Pass:
        out.append("%s%s = None" % (indent, var))
    elif sc is Flag:  # in a BitStruct: one bit, one byte of bytes2bits' output
        out.append("%sif len(%s) < %s + 1: raise ShortRead" % (indent, buf, at))
        out.append("%s%s = %s[%s] != 0" % (indent, var, buf, at))
        out.append("%s%s += 1" % (indent, at))
    elif isinstance(sc, BitsInteger) and isinstance(sc.length, int) and not sc.swapped and not sc.signed:
        out.append("%sif len(%s) < %s + %d: raise ShortRead" % (indent, buf, at, sc.length))
        out.append("%sx = 0" % indent)
        out.append("%sfor b in %s[%s:%s + %d]: x = (x << 1) | b" % (indent, buf, at, at, sc.length))
        out.append("%s%s = x" % (indent, var))
        out.append("%s%s += %d" % (indent, at, sc.length))
    elif isinstance(sc, Transformed) and sc.decodefunc is bytes2bits and isinstance(sc.decodeamount, int):
        n = sc.decodeamount
        bits = code.name(bytes2bits, "bytes2bits")
        out.append("%sif len(%s) < %s + %d: raise ShortRead" % (indent, buf, at, n))
        b2 = "bits_%d" % len(out)
        a2 = "at_%d" % len(out)
        out.append("%s%s, %s = %s(%s[%s:%s + %d]), 0" % (indent, b2, a2, bits, buf, at, at, n))
        _value(sc.subcon, code, b2, a2, out, indent, var)
        out.append("%s%s += %d" % (indent, at, n))
    elif isinstance(sc, Struct):
        r = "r_%d" % len(out)
        out.append("%s%s = Container()" % (indent, r))
        for sub in sc.subcons:
            name = getattr(sub, "name", None)
            if isinstance(_inner(sub), Switch):
                _switch(_inner(sub), code, buf, at, out, indent, "v", r)
            else:
                _value(sub, code, buf, at, out, indent, "v")
            if name is not None:
                out.append("%s%s[%r] = v" % (indent, r, name))
        out.append("%s%s = %s" % (indent, var, r))
    else:
        raise NotImplementedError(repr(sc))


def _switch(sc: Switch, code: _Code, buf: str, at: str, out: List[str], indent: str, var: str, parent: str) -> None:
    """A Switch keyed on a field its struct read before it (`this.OperationCode`)."""
    key = sc.keyfunc
    if not isinstance(key, Path) or repr(getattr(key, "_Path__parent", None)) != "this":
        raise NotImplementedError(repr(key))
    field = key._Path__field
    cases = {}
    for k, case in list(sc.cases.items()) + [(_DEFAULT, sc.default)]:
        if id(case) not in cases:
            cases[id(case)] = _function(case, code)
    table = code.name({k: cases[id(c)] for k, c in sc.cases.items()}, "cases")
    default = cases[id(sc.default)]
    out.append("%s%s, %s = %s.get(%s[%r], %s)(%s, %s)" % (indent, var, at, table, parent, field,
                                                         code.name(default, "default"), buf, at))


_DEFAULT = object()


def _function(sc, code: _Code) -> Callable:
    """sc's parse as a function (buf, at) -> (value, at)."""
    out: List[str] = []
    _value(sc, code, "buf", "at", out, "    ", "value")
    src = "def parse(buf, at):\n%s\n    return value, at\n" % "\n".join(out)
    scope = dict(code.names)
    exec(compile(src, "<flat_parsers>", "exec"), scope)
    return scope["parse"]


def compile_flat(sc) -> Callable[[bytes], Any]:
    """sc's parse of bytes from their start (what follows the layout is ignored), or
    NotImplementedError when sc holds a construct this does not compile. Raises ShortRead (or
    struct.error) when the bytes end first."""
    parse = _function(sc, _Code())

    def flat(raw: bytes):
        return parse(raw, 0)[0]

    return flat
