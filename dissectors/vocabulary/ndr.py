"""NDR 2.0 transfer syntax (C706 ch. 14, MS-RPCE 2.2.5), 32-bit little-endian, as construct types.

Each type here parses and builds bytes in Python like any construct, and
`dissectors.model.ndr` turns it into the target-neutral stub decoders. Definitions read like
their IDL:

    CPREP_DISKID = Struct("CPREP_DISKID", "2.2.2",
        "DiskIdType" / CPREP_DISKID_ENUM,
        Union(on="DiskIdType", cases={0: "DiskSignature" / ULONG, ...}))

What the wire carries, and where:

- Natural alignment, counted from the start of the stub (so ORPCTHIS, which sits
  inside the stub, shifts nothing).
- Pointers: a top-level [ref] pointer (a parameter) has no wire form, its referent
  follows at once; every other pointer is a 4-byte referent id, 0 for NULL, and an
  embedded pointer's referent is deferred to the end of the construction that holds
  it. Reader and Writer keep a stack of deferral lists; a referent is itself a
  construction, so its own deferred referents follow it before the next one: the
  order pidl's NDR_SCALARS/NDR_BUFFERS passes give.
- Conformant arrays: max_count, then the elements; in a structure the count is
  hoisted to the structure's start (C706 14.3.7.1). Varying parts add offset and
  actual_count. [string] wchar_t* is a conformant varying array of UTF-16 units.
- Enums are 16-bit on the wire unless [v1_enum]; a non-encapsulated union's
  discriminant is sent again, in the switch type and at its own alignment, and the
  arm follows at the arm's alignment (no union-wide alignment in NDR32).
- MS-OAUT's BSTR and SAFEARRAY are in dissectors.vocabulary.oaut, built on these.

Wire counts never drive unbounded work: every count is checked against the bytes
left before anything is allocated.
"""
from __future__ import annotations

import struct as _struct
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from construct import Construct, Container, ExplicitError, Renamed, SizeofError

MAX_ELEMENTS = 65536  # the most elements any array may claim, whatever the bytes say


class NdrError(ExplicitError):
    """The bytes do not follow NDR or the IDL: a short stub, a hostile count, a bad arm."""


# -- the byte cursor and the deferral stack -----------------------------------------------
class Reader:
    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0
        self.frames: List[list] = []

    def align(self, n: int) -> None:
        self.pos += (-self.pos) % n

    def take(self, n: int, what: str = "") -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NdrError("NDR: %s needs %d bytes at offset %d, %d left" % (
                what or "item", n, self.pos, len(self.data) - self.pos))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def num(self, fmt: str, what: str = ""):
        size = _struct.calcsize("<" + fmt)
        self.align(size)
        return _struct.unpack("<" + fmt, self.take(size, what))[0]

    def count(self, n: int, min_size: int, what: str) -> int:
        left = len(self.data) - self.pos
        if n > MAX_ELEMENTS or n * max(min_size, 0) > left:
            raise NdrError("NDR: %s claims %d elements, %d bytes left" % (what, n, left))
        return n

    def defer(self, job: Callable[[], None]) -> None:
        self.frames[-1].append(job)

    def construction(self, fn: Callable[[], Any]) -> Any:
        """Run `fn`, then the referents it deferred, each as a construction of its own."""
        self.frames.append([])
        v = fn()
        jobs = self.frames.pop()
        for job in jobs:
            self.construction(job)
        return v


class Writer:
    def __init__(self):
        self.buf = bytearray()
        self.frames: List[list] = []
        self.next_referent = 0x00020000  # what Windows starts from

    def align(self, n: int) -> None:
        self.buf += b"\0" * ((-len(self.buf)) % n)

    def put(self, b: bytes) -> None:
        self.buf += b

    def num(self, fmt: str, v) -> None:
        size = _struct.calcsize("<" + fmt)
        self.align(size)
        self.buf += _struct.pack("<" + fmt, v)

    def referent(self) -> int:
        r = self.next_referent
        self.next_referent += 4
        return r

    def defer(self, job: Callable[[], None]) -> None:
        self.frames[-1].append(job)

    def construction(self, fn: Callable[[], None]) -> None:
        self.frames.append([])
        fn()
        jobs = self.frames.pop()
        for job in jobs:
            self.construction(job)


def members(items) -> List[Tuple[Optional[str], "NdrType", str]]:
    """(name, type, doc) from `"Name" / type` items; a bare Union is anonymous."""
    out = []
    for it in items:
        if isinstance(it, Renamed):
            out.append((it.name, it.subcon, it.docs or ""))
        else:
            out.append((None, it, ""))
    return out


class NdrType(Construct):
    """Base: pull() reads the scalars and defers referents; push() writes the same way."""

    align = 1
    min_size = 1  # the fewest bytes one element can take, for count checks

    def pull(self, r: Reader, ctx: Any, put: Callable[[Any], None]):
        raise NotImplementedError

    def push(self, w: Writer, v, ctx: Any) -> None:
        raise NotImplementedError

    # A top-level [ref] pointer has no wire form; everything else pulls the same.
    def pull_top(self, r: Reader, ctx, put):
        return self.pull(r, ctx, put)

    def push_top(self, w: Writer, v, ctx) -> None:
        self.push(w, v, ctx)

    def _parse(self, stream, context, path):
        start = stream.tell()
        r = Reader(stream.read())
        box = {}
        r.construction(lambda: box.__setitem__("v", self.pull_top(r, context, lambda x: box.__setitem__("v", x))))
        stream.seek(start + r.pos)
        return box["v"]

    def _build(self, obj, stream, context, path):
        w = Writer()
        w.construction(lambda: self.push_top(w, obj, context))
        stream.write(bytes(w.buf))
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("NDR types have no fixed size")


# -- primitives --------------------------------------------------------------------------
class Prim(NdrType):
    """An integer of NDR's base types; `values` names an enum's values, `flags` a mask's bits."""

    def __init__(self, fmt: str, idl: str, values: Optional[Dict[int, str]] = None,
                 flags: Optional[Dict[str, int]] = None):
        super().__init__()
        self.fmt, self.idl, self.values, self.flags = fmt, idl, values, flags
        self.size = _struct.calcsize("<" + fmt)
        self.align = self.min_size = self.size
        self.signed = fmt.islower()

    def pull(self, r, ctx, put):
        return r.num(self.fmt, self.idl)

    def push(self, w, v, ctx):
        if isinstance(v, str):
            names = {n: k for k, n in (self.values or {}).items()}
            if v not in names:
                raise NdrError("%s has no value named %r" % (self.idl, v))
            v = names[v]
        w.num(self.fmt, int(v))

    def named(self, values: Dict[int, str]) -> "Prim":
        return Prim(self.fmt, self.idl, values=values)

    def with_flags(self, flags: Dict[str, int]) -> "Prim":
        return Prim(self.fmt, self.idl, flags=flags)


small = Prim("b", "small")
byte = Prim("B", "byte")
UCHAR = Prim("B", "unsigned char")
BOOLEAN = Prim("B", "BOOLEAN")
boolean = Prim("B", "boolean")
short = Prim("h", "short")
USHORT = Prim("H", "unsigned short")
wchar_t = Prim("H", "wchar_t")
long_ = Prim("i", "long")
LONG = Prim("i", "LONG")
BOOL = Prim("i", "BOOL")
int_ = Prim("i", "int")
ULONG = Prim("I", "unsigned long")
DWORD = Prim("I", "DWORD")
hyper = Prim("q", "hyper")
ULONGLONG = Prim("Q", "ULONGLONG")


def Enum16(values: Dict[int, str]) -> Prim:
    """An IDL enum: NDR sends it in 16 bits (C706 14.2.5); [v1_enum] would make it 32."""
    return Prim("H", "enum", values=values)


def V1Enum(values: Dict[int, str]) -> Prim:
    return Prim("I", "v1_enum", values=values)


class GuidType(NdrType):
    """GUID (MS-DTYP 2.3.4): Data1..Data4, aligned to 4, shown as a string."""

    align = 4
    min_size = 16

    def pull(self, r, ctx, put):
        r.align(4)
        return str(uuid.UUID(bytes_le=r.take(16, "GUID")))

    def push(self, w, v, ctx):
        w.align(4)
        w.put(uuid.UUID(str(v)).bytes_le)


GUID = GuidType()


# -- constructed types -------------------------------------------------------------------
class Struct(NdrType):
    """An IDL struct; a trailing conformant array makes it a conformant struct."""

    def __init__(self, name: str, spec: str, *items, doc: str = ""):
        super().__init__()
        self.name, self.spec, self.doc = name, spec, doc
        self.members = members(items)
        self.align = max([t.align for _, t, _ in self.members] + [1])
        self.min_size = sum(t.min_size for _, t, _ in self.members if not isinstance(t, ConfArray))
        last = self.members[-1][1] if self.members else None
        self.conformant = isinstance(last, ConfArray)
        if self.conformant:
            self.align = max(self.align, 4)

    def pull(self, r, ctx, put):
        hoisted = None
        if self.conformant:
            hoisted = r.num("I", self.name + " conformance")
        r.align(self.align)
        c = Container()
        for name, t, _ in self.members:
            if hoisted is not None and t is self.members[-1][1]:
                c[name] = t.pull_elements(r, hoisted, c, lambda x, n=name: c.__setitem__(n, x))
                continue
            v = t.pull(r, c, lambda x, n=name: c.__setitem__(n, x))
            if name is None:
                c.update(v)
            else:
                c[name] = v
        return c

    def push(self, w, v, ctx):
        if self.conformant:
            last_name, last = self.members[-1][0], self.members[-1][1]
            w.num("I", len(last.coerce(v[last_name])))
        w.align(self.align)
        for name, t, _ in self.members:
            if self.conformant and t is self.members[-1][1]:
                t.push_elements(w, v[name], v)
            elif name is None:
                t.push(w, v, v)
            else:
                t.push(w, v[name], v)


class Union(NdrType):
    """A non-encapsulated union [switch_is(on)]: the discriminant, again, then the arm.

    It is anonymous inside its struct (its arm's field joins the struct's), as in the
    MS-CSVP IDL. The arm follows the discriminant on the wire; a mismatch with the
    struct's switch field is an error.
    """

    def __init__(self, on: str, cases: Dict[int, Any], switch_type: Prim = None, default=None):
        super().__init__()
        self.on = on
        self.switch_type = switch_type
        self.cases = {k: members([sc])[0] for k, sc in cases.items()}
        self.default = members([default])[0] if default is not None else None
        arms = [t for _, t, _ in self.cases.values()]
        self.arm_align = max([t.align for t in arms] + [1])

    def bind(self, switch_type: Prim) -> "Union":
        self.switch_type = switch_type
        return self

    @property
    def align(self):
        return max(self.arm_align, self.switch_type.align)

    @property
    def min_size(self):
        return self.switch_type.size

    def arm(self, d):
        return self.cases.get(d, self.default)

    # NDR32 aligns the discriminant to itself and the arm to the arm (MS-RPCE 2.2.5.3.4.4
    # leaves the union-wide alignment to NDR64); impacket and Samba agree.
    def pull(self, r, ctx, put):
        d = self.switch_type.pull(r, ctx, None)
        if ctx is not None and self.on in ctx and ctx[self.on] != d:
            raise NdrError("union discriminant %d differs from %s %d" % (d, self.on, ctx[self.on]))
        arm = self.arm(d)
        if arm is None:
            raise NdrError("no union arm for %s %d" % (self.on, d))
        name, t, _ = arm
        target = ctx if ctx is not None else Container()  # anonymous: the arm joins the struct
        target[name] = t.pull(r, target, lambda x: target.__setitem__(name, x))
        return Container({name: target[name]})

    def push(self, w, v, ctx):
        d = ctx[self.on]
        if isinstance(d, str):
            d = {n: k for k, n in (self.switch_type.values or {}).items()}[d]
        self.switch_type.push(w, d, ctx)
        name, t, _ = self.arm(d)
        t.push(w, v[name], v)


class Pointer(NdrType):
    """A [unique] (NULL allowed) or [ref] pointer; embedded, its referent is deferred."""

    align = 4
    min_size = 4

    def __init__(self, subcon: NdrType, kind: str):
        super().__init__()
        self.subcon, self.kind = subcon, kind

    def pull(self, r, ctx, put):
        ref = r.num("I", "referent id")
        if ref == 0:
            if self.kind == "ref":
                raise NdrError("NDR: a [ref] pointer is NULL")
            return None
        r.defer(lambda: put(self.subcon.pull(r, ctx, put)))
        return None

    def push(self, w, v, ctx):
        if v is None:
            if self.kind == "ref":
                raise NdrError("a [ref] pointer cannot be NULL")
            w.num("I", 0)
            return
        w.num("I", w.referent())
        w.defer(lambda: self.subcon.push(w, v, ctx))

    def pull_top(self, r, ctx, put):
        if self.kind == "ref":
            return self.subcon.pull_top(r, ctx, put)
        return self.pull(r, ctx, put)

    def push_top(self, w, v, ctx):
        if self.kind == "ref":
            self.subcon.push_top(w, v, ctx)
        else:
            self.push(w, v, ctx)


def Unique(subcon: NdrType) -> Pointer:
    return Pointer(subcon, "unique")


def Ref(subcon: NdrType) -> Pointer:
    return Pointer(subcon, "ref")


class ConfArray(NdrType):
    """[size_is(n)] T a[] (conformant) or, with varying=True, also [length_is(m)].

    Bytes come back as `bytes`; `content` names the packed structure (a
    dissectors.vocabulary.wire Message) the bytes hold, for the dissector and the analyzer.
    """

    align = 4
    min_size = 4

    def __init__(self, element: NdrType, varying: bool = False, content=None):
        super().__init__()
        self.element, self.varying, self.content = element, varying, content
        self.is_bytes = isinstance(element, Prim) and element.size == 1

    def coerce(self, v):
        return v

    def pull(self, r, ctx, put):
        n = r.num("I", "max_count")
        return self.pull_elements(r, n, ctx, put)

    def pull_elements(self, r, n, ctx, put):
        if self.varying:
            offset = r.num("I", "offset")
            actual = r.num("I", "actual_count")
            if offset + actual > n:
                raise NdrError("NDR: offset %d + actual_count %d exceeds max_count %d" % (offset, actual, n))
            n = actual
        r.count(n, self.element.min_size, "array")
        if self.is_bytes:
            return r.take(n, "array")
        out = [None] * n
        for i in range(n):
            out[i] = self.element.pull(r, ctx, lambda x, i=i: out.__setitem__(i, x))
        return out

    def push(self, w, v, ctx):
        w.num("I", len(v))
        self.push_elements(w, v, ctx)

    def push_elements(self, w, v, ctx):
        if self.varying:
            w.num("I", 0)
            w.num("I", len(v))
        if self.is_bytes:
            w.put(bytes(v))
            return
        for x in v:
            self.element.push(w, x, ctx)


class WString(NdrType):
    """[string] wchar_t* / LPWSTR referent: a conformant varying array of UTF-16 units,
    NUL included; Python sees the text without the NUL."""

    align = 4
    min_size = 12

    def pull(self, r, ctx, put):
        n = r.num("I", "max_count")
        offset = r.num("I", "offset")
        actual = r.num("I", "actual_count")
        if offset + actual > n:
            raise NdrError("NDR: string offset %d + actual_count %d exceeds max_count %d" % (offset, actual, n))
        r.count(actual, 2, "string")
        return r.take(2 * actual, "string").decode("utf-16-le", "replace").split("\0", 1)[0]

    def push(self, w, v, ctx):
        units = (v + "\0").encode("utf-16-le")
        w.num("I", len(units) // 2)
        w.num("I", 0)
        w.num("I", len(units) // 2)
        w.put(units)


class FixedWString(NdrType):
    """wchar_t name[n]: n UTF-16 units inline; the text ends at the first NUL."""

    align = 2

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.min_size = 2 * n

    def pull(self, r, ctx, put):
        r.align(2)
        return r.take(2 * self.n, "wchar_t[%d]" % self.n).decode("utf-16-le", "replace").split("\0", 1)[0]

    def push(self, w, v, ctx):
        units = v.encode("utf-16-le")[: 2 * self.n]
        w.align(2)
        w.put(units + b"\0" * (2 * self.n - len(units)))


class Params(NdrType):
    """A method's [in] or [out] parameters, in IDL order; each is a top-level construction."""

    def __init__(self, *items):
        super().__init__()
        self.members = members(items)

    def pull_top(self, r, ctx, put):
        c = Container()
        for name, t, _ in self.members:
            def one(t=t, name=name):
                c[name] = t.pull_top(r, c, lambda x: c.__setitem__(name, x))
            r.construction(one)
        return c

    def push_top(self, w, v, ctx):
        for name, t, _ in self.members:
            w.construction(lambda t=t, name=name: t.push_top(w, v[name], v))

    def pull(self, r, ctx, put):
        return self.pull_top(r, ctx, put)

    def push(self, w, v, ctx):
        self.push_top(w, v, ctx)


def zero(t: NdrType):
    """The value a server marshals for an [out] parameter it left untouched (a failed call)."""
    if isinstance(t, Prim):
        return 0
    if isinstance(t, GuidType):
        return str(uuid.UUID(int=0))
    if isinstance(t, Struct):
        c = Container()
        for name, sub, _ in t.members:
            if name is None:
                arm_value = min(sub.cases)
                c[sub.cases[arm_value][0]] = zero(sub.cases[arm_value][1])
            else:
                c[name] = zero(sub)
        for name, sub, _ in t.members:
            if isinstance(sub, Union):
                c[sub.on] = min(sub.cases)
        return c
    if isinstance(t, Pointer):
        return zero(t.subcon) if t.kind == "ref" else None
    if isinstance(t, ConfArray):
        return b"" if t.is_bytes else []
    if isinstance(t, (WString, FixedWString)):
        return ""
    return None  # BSTR, SAFEARRAY: NULL
