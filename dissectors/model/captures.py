"""Typed captures: what each decoder keeps of the values it reads, and the static type of every
expression over them (as Kaitai's TypeDetector does), so that a mismatch stops the generator
and a compiled target can declare its captured values as typed structures.

A decoder's schema maps each captured name to a type: an integer (width in bits, signedness),
text, bytes, a GUID, or a record (the schema of the sub-decoder(s) whose values it holds).
The names a decoder merges into its caller's values are the caller's: a decoder that wraps a
bare Switch (`shares_values`) writes into them, and a layout variant's values are copied into
them. Where two paths give one name two types, the generator stops.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

from dissectors.model import expressions as X
from dissectors.model import structs as S


@dataclass(frozen=True)
class Int:
    bits: int
    signed: bool = False


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Text:
    pass


@dataclass(frozen=True)
class Raw:
    """Bytes, or a GUID."""

    kind: str  # bytes, guid


@dataclass(frozen=True)
class Record:
    """The values a sub-decoder kept, by name."""

    decoders: Tuple[str, ...]


Type = Union[Int, Bool, Text, Raw, Record]


class CaptureTypeError(ValueError):
    pass


@dataclass
class Schemas:
    """Each decoder's captured names and their types, and each expression's type."""

    model: "S.Model"
    of: Dict[str, Dict[str, Type]] = field(default_factory=dict)  # decoder -> name -> type
    scope: Dict[str, str] = field(default_factory=dict)  # decoder -> the decoder whose values it reads and writes

    def lookup(self, decoder: str, path: Tuple[str, ...]) -> Type:
        """The type of `path` in the values `decoder` reads."""
        names = self.of[self.scope.get(decoder, decoder)]
        t: Optional[Type] = None
        for i, part in enumerate(path):
            t = names.get(part)
            if t is None:
                raise CaptureTypeError("%s: %s is not a value it keeps (has: %s)" % (
                    decoder, ".".join(path[:i + 1]), ", ".join(sorted(names)) or "none"))
            if i + 1 < len(path):
                if not isinstance(t, Record):
                    raise CaptureTypeError("%s: %s is %s, not a structure, so %s is unknown" % (
                        decoder, ".".join(path[:i + 1]), describe(t), path[i + 1]))
                names = self.record_names(t)
        return t

    def record_names(self, r: Record) -> Dict[str, Type]:
        out: Dict[str, Type] = {}
        for d in r.decoders:
            _merge(out, self.of[d], "the record of %s" % "/".join(r.decoders))
        return out


def describe(t: Type) -> str:
    if isinstance(t, Int):
        return "a %d-bit %s integer" % (t.bits, "signed" if t.signed else "unsigned")
    if isinstance(t, Record):
        return "a structure"
    if isinstance(t, Raw):
        return "a GUID" if t.kind == "guid" else "bytes"
    return {Bool: "a truth value", Text: "text"}[type(t)]


def _merge(into: Dict[str, Type], names: Dict[str, Type], where: str) -> None:
    for name, t in names.items():
        have = into.get(name)
        if have is None or have == t:
            into[name] = t
        elif isinstance(have, Int) and isinstance(t, Int) and have.signed == t.signed:
            into[name] = Int(max(have.bits, t.bits), t.signed)  # one name, two widths (seed and Windows layouts)
        elif isinstance(have, Record) and isinstance(t, Record):
            into[name] = Record(tuple(dict.fromkeys(have.decoders + t.decoders)))
        else:
            raise CaptureTypeError("%s: %s is %s in one place and %s in another" % (where, name, describe(have),
                                                                                    describe(t)))


def _scalar_type(it: "S.Scalar") -> Type:
    f = it.f
    if f.ftype.startswith(("uint", "int")) or f.ftype == "bool":
        if it.bitfield:
            return Int(max(1, (it.bitfield[1] - 1).bit_length()))
        return Int(8 * it.size, f.ftype.startswith("int"))
    if f.ftype == "string":
        return Text()
    return Raw(f.ftype)


def schemas(model: "S.Model") -> Schemas:
    """Every decoder's schema, then every expression typed against it: raises CaptureTypeError."""
    out = Schemas(model)

    def own(d: "S.Decoder") -> Dict[str, Type]:
        if d.name in out.of:
            return out.of[d.name]
        names: Dict[str, Type] = {}
        out.of[d.name] = names  # first, so a recursive structure terminates
        walk(d.steps, names, d.name)
        return names

    def sub(name: Optional[str], caller: str, names: Dict[str, Type]) -> Optional[Record]:
        """A sub-decoder's values: a record, or (wrapping a bare Switch) merged into the caller's."""
        if not name:
            return None
        d = model.decoders[name]
        if d.shares_values:  # it reads and writes the values its caller reads
            out.scope.setdefault(name, out.scope.get(caller, caller))
        own(d)
        if d.shares_values:
            _merge(names, out.of[name], caller)
            return None
        return Record((name,))

    def capture(into, x: Optional[X.Value], t: Optional[Type], where: str) -> None:
        if x is not None and t is not None:
            _merge(into, {x.path[0]: t}, where)

    def walk(steps: list, names: Dict[str, Type], d: str) -> None:
        for s in steps:
            if isinstance(s, S.Run):
                for it in s.items:
                    if isinstance(it, S.RunOverlay):
                        capture(names, it.capture, sub(it.decoder, d, names), d)
                    elif it.capture is not None and it.capture_children:  # a BitStruct: its fields by name
                        key = "%s.%s" % (d, it.capture.path[0])
                        out.of[key] = {c.name: Int(c.width) for c in it.children}
                        capture(names, it.capture, Record((key,)), d)
                    elif it.capture is not None:
                        capture(names, it.capture, _scalar_type(it), d)
            elif isinstance(s, (S.Call, S.OverlayStep)):
                capture(names, s.capture, sub(s.decoder, d, names), d)
            elif isinstance(s, S.SwitchStep):
                arms = [sub(dec, d, names) for dec in [dec for _, dec in s.cases] + [s.default] if dec]
                kept = tuple(r.decoders[0] for r in arms if r is not None)
                capture(names, s.capture, Record(kept) if kept else None, d)
            elif isinstance(s, S.VariantsStep):  # a variant's values are copied into the caller's
                for _, dec, _, _ in s.choices:
                    r = sub(dec, d, names)
                    if r is not None:
                        _merge(names, out.of[dec], d)
            elif isinstance(s, S.PresentStep):
                walk(s.steps, names, d)
            elif isinstance(s, S.IfStep):
                walk(s.then, names, d)
                walk(s.otherwise, names, d)
            elif isinstance(s, S.FixedStep):
                sub(s.decoder, d, names)
            elif isinstance(s, S.ArrayStep) and isinstance(s.element, str):
                sub(s.element, d, names)

    for d in list(model.decoders.values()):
        own(d)
    _check_expressions(out)
    return out


def type_of(out: Schemas, decoder: str, e: "X.Expr") -> Type:
    """The static type of `e` evaluated in `decoder`; raises CaptureTypeError on a mismatch."""
    if isinstance(e, X.Value):
        return out.lookup(decoder, e.path)
    if isinstance(e, X.RequestValue):
        return request_type(out, out.model.request_paths[e.index])
    if isinstance(e, X.Const):
        return Bool() if isinstance(e.value, bool) else Int(max(8, e.value.bit_length()), e.value < 0)
    if isinstance(e, X.BinOp):
        lhs, rhs = type_of(out, decoder, e.lhs), type_of(out, decoder, e.rhs)
        if e.op in ("==", "!="):
            if not (isinstance(lhs, Int) and isinstance(rhs, Int)) and type(lhs) is not type(rhs):
                raise CaptureTypeError("%s: %s compares %s with %s" % (decoder, _text(e, out), describe(lhs),
                                                                      describe(rhs)))
            return Bool()
        for side in (lhs, rhs):
            if not isinstance(side, Int):
                raise CaptureTypeError("%s: %s needs integers, not %s" % (decoder, _text(e, out), describe(side)))
        if e.op in ("<", ">", "<=", ">="):
            return Bool()
        return Int(64, lhs.signed or rhs.signed or e.op == "-")
    if isinstance(e, X.Not):
        return _truth(out, decoder, e.operand, e)
    if isinstance(e, X.AnyOf):
        for o in e.operands:
            _truth(out, decoder, o, e)
        return Bool()
    if isinstance(e, (X.Unnamed, X.Shown)):
        t = type_of(out, decoder, e.value)
        if not isinstance(t, Int) and not (isinstance(e, X.Shown) and e.table is None and isinstance(t, Text)):
            raise CaptureTypeError("%s: %s names values of %s" % (decoder, _text(e, out), describe(t)))
        return Bool() if isinstance(e, X.Unnamed) else t
    if isinstance(e, (X.BytesLeftAre, X.ZeroAt, X.Always)):
        return Bool()
    raise CaptureTypeError("%s: expression %r has no type" % (decoder, e))


def request_type(out: Schemas, path: Tuple[str, ...]) -> Type:
    """A matched request's value: typed in every message decoder that keeps the path, which
    must agree (the binding hands any request's values to its response)."""
    found: List[Type] = []
    for d in out.model.decoders.values():
        if d.message is not None and path[0] in out.of[d.name]:
            try:
                found.append(out.lookup(d.name, path))
            except CaptureTypeError:
                continue
    if not found:
        raise CaptureTypeError("the request's %s is kept by no request structure" % ".".join(path))
    merged: Dict[str, Type] = {}
    for t in found:
        _merge(merged, {".".join(path): t}, "the request's values")
    return merged[".".join(path)]


def _truth(out: Schemas, decoder: str, e, whole) -> Type:
    t = type_of(out, decoder, e)
    if not isinstance(t, Bool):
        raise CaptureTypeError("%s: %s tests %s, not a truth value" % (decoder, _text(whole, out), describe(t)))
    return t


def _text(e, out: Optional[Schemas] = None) -> str:
    """An expression as the definitions wrote it, to name it in a message."""
    def t(e) -> str:
        if isinstance(e, X.Value):
            return ".".join(e.path)
        if isinstance(e, X.RequestValue):
            return "request." + ".".join(out.model.request_paths[e.index]) if out else "request[%d]" % e.index
        if isinstance(e, X.Const):
            return str(e.value)
        if isinstance(e, X.BinOp):
            return "(%s %s %s)" % (t(e.lhs), e.op, t(e.rhs))
        if isinstance(e, X.Not):
            return "not %s" % t(e.operand)
        return type(e).__name__
    return "`%s`" % t(e)


def _check_expressions(out: Schemas) -> None:
    """Every expression of every decoder, typed where it is used: tests are truth values, lengths,
    counts and switch keys integers, a check's shown value an integer or text."""
    def need(d: str, e, want, what: str) -> None:
        if e is None:
            return
        t = type_of(out, d, e)
        if not isinstance(t, want):
            raise CaptureTypeError("%s: %s %s is %s" % (d, what, _text(e, out), describe(t)))

    def walk(d: str, steps: list) -> None:
        for s in steps:
            if isinstance(s, S.Run):
                for it in s.items:
                    if isinstance(it, S.RunOverlay):
                        need(d, it.cond, Bool, "the condition")
                        continue
                    for c in list(it.checks) + [c for child in it.children for c in child.checks]:
                        need(d, c.cond, Bool, "the check")
                        need(d, c.arg, (Int, Text), "the value shown by")
            elif isinstance(s, (S.VarBytes, S.VarString)):
                need(d, s.length, Int, "the length")
            elif isinstance(s, S.FixedStep):
                need(d, s.length, Int, "the length")
            elif isinstance(s, S.ArrayStep):
                need(d, s.count, Int, "the count")
            elif isinstance(s, S.SwitchStep):
                need(d, s.on, Int, "the switch key")
            elif isinstance(s, S.IfStep):
                need(d, s.cond, Bool, "the condition")
                walk(d, s.then)
                walk(d, s.otherwise)
            elif isinstance(s, S.PresentStep):
                walk(d, s.steps)
            elif isinstance(s, S.VariantsStep):
                for cond, _, _, _ in s.choices:
                    need(d, cond, Bool, "the layout test")

    for d in out.model.decoders.values():
        walk(d.name, d.steps)


def check_summaries(out: Schemas, summaries: dict) -> None:
    """The Info column's values (Protocol.summaries) are values their message keeps: its path,
    and of each detail at least one of the paths it tries (or, for a request's detail, one some
    request keeps)."""
    by_abbrev = {m.abbrev: m for m in out.model.messages}
    for abbrev, s in summaries.items():
        dec = out.model.decoder_for(by_abbrev[abbrev])
        out.lookup(dec, tuple(s.path.split(".")))
        for d in s.details:
            errors = []
            for path in d.paths:
                try:
                    if d.request:
                        request_type(out, tuple(path.split(".")))
                    else:
                        out.lookup(dec, tuple(path.split(".")))
                    break
                except CaptureTypeError as e:
                    errors.append(str(e))
            else:
                raise CaptureTypeError("%s's Info: none of %s is kept (%s)" % (abbrev, ", ".join(d.paths),
                                                                              "; ".join(errors)))
