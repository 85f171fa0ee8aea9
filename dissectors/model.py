"""The generator's model: construct trees walked into field definitions and decode steps.

This module knows construct and `dissectors.wire`, never a protocol. It produces

- `FieldDef`s: one per Wireshark field (name, type, base, value names, bits, doc);
- `Decoder`s: one per `Message`, a list of steps the Lua templates render;
- `flatten()`: the same walk over a Python parse result, giving the (field name,
  value) pairs the Lua dissector reports, for the differential tests.
"""
from __future__ import annotations

import operator
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from construct import (
    Bytes,
    Enum,
    FlagsEnum,
    FormatField,
    GreedyBytes,
    Hex,
    Renamed,
    Struct,
    Switch,
)
from construct import evaluate
from construct.expr import BinExpr, Path

from .wire import Guid, IfEquals, Message, Otherwise, PeekZero, Present, RemainingIs, Utf16String, Variants, int_value

_INT_FT = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}
_FMT_SIZE = {"B": 1, "H": 2, "I": 4, "L": 4, "Q": 8}


def snake(name: str) -> str:
    """Spec name to field-name part: RequestId -> request_id, Is4kAligned -> is_4k_aligned."""
    s = re.sub(r"(?<=[a-z])(?=\d+[a-z])", "_", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", s)
    return s.lower()


def lua_key(abbrev: str) -> str:
    """A Lua table key for a field name: msrsvd.header.request_id -> header_request_id."""
    return abbrev.split(".", 1)[1].replace(".", "__")


@dataclass
class FieldDef:
    abbrev: str
    label: str
    ftype: str  # uint8/16/32/64, guid, bytes, string, bool, none
    base: str = "NONE"  # DEC, HEX, NONE; for bool, the parent width
    values: Optional[Dict[int, str]] = None
    mask: int = 0
    desc: str = ""
    spec: str = ""
    structure: str = ""
    bits: List["FieldDef"] = field(default_factory=list)
    note: str = ""  # where the seed and Windows differ

    @property
    def key(self) -> str:
        return lua_key(self.abbrev)

    @property
    def size(self) -> int:
        return {"uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8}.get(self.ftype, 0)


# -- decode steps -----------------------------------------------------------------
@dataclass
class Scalar:
    """A fixed-size item at a constant offset from the cursor."""

    f: FieldDef
    rel: int
    size: int
    capture: Optional[str] = None  # Lua lvalue to store the integer value in


@dataclass
class Run:
    """Consecutive fixed-size items; one bounds check covers them all."""

    items: List[Scalar]
    size: int


@dataclass
class VarBytes:
    f: FieldDef
    length: Optional[str]  # Lua expression; None means "to the end of the buffer"


@dataclass
class VarString:
    f: FieldDef
    length: str


@dataclass
class Call:
    decoder: str  # Lua function name
    capture: Optional[str]


@dataclass
class SwitchStep:
    on: str
    cases: List[Tuple[int, Optional[str]]]  # value -> decoder name (None: nothing to decode)
    default: Optional[str]
    capture: Optional[str]


@dataclass
class PresentStep:
    steps: list


@dataclass
class IfStep:
    cond: str
    then: list
    otherwise: list


@dataclass
class VariantsStep:
    layout: FieldDef
    choices: List[Tuple[str, str, str, str]]  # (Lua condition, decoder, variant name, note)


@dataclass
class Decoder:
    name: str  # Lua function name
    message: Optional[Message]  # None for an anonymous struct inlined under a message
    tree_field: Optional[FieldDef]
    steps: list
    owner: str  # message abbrev whose fields these are
    label: str = ""  # how expert items name it: "SVHDX_TUNNEL_SCSI_REQUEST (MS-RSVD 2.2.5.11)"

    @property
    def fixed_size(self) -> Optional[int]:
        """The byte size when every step is fixed, so the subtree needs no set_len."""
        if all(isinstance(s, Run) for s in self.steps):
            return sum(s.size for s in self.steps)
        return None


class Model:
    """Everything the templates need for one protocol."""

    def __init__(self, proto: str, spec: str, messages: Sequence[Message]):
        self.proto = proto
        self.spec = spec
        self.messages = list(messages)
        self.fields: Dict[str, FieldDef] = {}
        self.decoders: Dict[str, Decoder] = {}
        self.value_tables: Dict[Tuple, str] = {}
        self._by_struct = {id(m.struct): m for m in self.messages}
        self._captured = self._referenced_names()
        self._anon = 0
        for m in self.messages:
            self.decoder_for(m)

    # -- helpers ---------------------------------------------------------------
    def _referenced_names(self) -> set:
        names = set()

        def expr_names(e):
            if isinstance(e, Path):
                names.add(e._Path__field)
                if e._Path__parent is not None:
                    expr_names(e._Path__parent)
            elif isinstance(e, BinExpr):
                expr_names(e.lhs)
                expr_names(e.rhs)

        def visit(sc, seen):
            if id(sc) in seen:
                return
            seen.add(id(sc))
            for attr in ("length", "keyfunc", "count", "key"):
                expr_names(getattr(sc, attr, None))
            if isinstance(sc, Struct):
                for s in sc.subcons:
                    visit(s, seen)
            if isinstance(sc, Switch):
                for c in list(sc.cases.values()) + [sc.default]:
                    visit(c, seen)
            if isinstance(sc, Variants):
                for v in sc.variants:
                    visit(v.subcon, seen)
            if hasattr(sc, "subcon"):
                visit(sc.subcon, seen)
            if getattr(sc, "otherwise", None) is not None:
                visit(sc.otherwise, seen)

        seen = set()
        for m in self.messages:
            visit(m.struct, seen)
        names.discard(None)
        return names

    def value_table(self, values: Dict[int, str]) -> str:
        key = tuple(sorted(values.items()))
        if key not in self.value_tables:
            self.value_tables[key] = "VS%d" % (len(self.value_tables) + 1)
        return self.value_tables[key]

    def add_field(self, fd: FieldDef) -> FieldDef:
        have = self.fields.get(fd.abbrev)
        if have is None:
            self.fields[fd.abbrev] = fd
            return fd
        if have.ftype != fd.ftype:
            ints = ("uint8", "uint16", "uint32", "uint64")
            if have.ftype in ints and fd.ftype in ints:
                # One name, two widths (seed vs Windows layout): keep the wider type.
                if ints.index(fd.ftype) > ints.index(have.ftype):
                    have.ftype = fd.ftype
                if fd.desc and fd.desc not in have.desc:
                    have.desc = have.desc + " / " + fd.desc
                return have
            raise ValueError("field %s declared as %s and %s" % (fd.abbrev, have.ftype, fd.ftype))
        if fd.desc and fd.desc not in have.desc:
            have.desc = have.desc + " / " + fd.desc
        return have

    def expr(self, e) -> str:
        """A construct `this` expression as Lua over the captured-values table `v`."""
        if isinstance(e, int):
            return str(e)
        if isinstance(e, Path):
            parts = []
            p = e
            while p is not None and p._Path__field is not None:
                parts.append(p._Path__field)
                p = p._Path__parent
            return "v." + ".".join(reversed(parts))
        if isinstance(e, BinExpr):
            ops = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.floordiv: "//"}
            op = ops.get(e.op)
            if op is None:
                raise NotImplementedError("expression operator %r" % e.op)
            if op == "//":
                return "math.floor((%s) / (%s))" % (self.expr(e.lhs), self.expr(e.rhs))
            return "(%s %s %s)" % (self.expr(e.lhs), op, self.expr(e.rhs))
        raise NotImplementedError("expression %r" % (e,))

    # -- the walk ----------------------------------------------------------------
    def decoder_for(self, msg: Message) -> str:
        name = "d_" + msg.abbrev
        if name in self.decoders:
            return name
        tree = self.add_field(FieldDef(
            abbrev="%s.%s" % (self.proto, msg.abbrev), label=msg.name, ftype="none", desc=msg.doc or msg.name,
            spec="%s %s" % (self.spec, msg.spec), structure=msg.name))
        dec = Decoder(name=name, message=msg, tree_field=tree, steps=[], owner=msg.abbrev,
                      label="%s (%s %s)" % (msg.name, self.spec, msg.spec))
        self.decoders[name] = dec  # registered first, so recursion terminates
        dec.steps = self.steps_for(msg.struct, msg)
        return name

    def anonymous_decoder(self, sc, owner: Message, hint: str) -> Optional[str]:
        """A decoder for a non-message struct whose fields belong to `owner`."""
        if id(sc) in self._by_struct:
            return self.decoder_for(self._by_struct[id(sc)])
        if isinstance(sc, Struct) and not sc.subcons:
            return None
        self._anon += 1
        name = "d_%s_%s%d" % (owner.abbrev, hint, self._anon)
        dec = Decoder(name=name, message=None, tree_field=None, steps=[], owner=owner.abbrev,
                      label="%s (%s %s)" % (owner.name, self.spec, owner.spec))
        self.decoders[name] = dec
        dec.steps = self.steps_for(sc, owner)
        return name

    def steps_for(self, sc, owner: Message) -> list:
        if isinstance(sc, Variants):
            layout = self.add_field(FieldDef(
                abbrev="%s.%s.layout" % (self.proto, owner.abbrev), label="Layout", ftype="string",
                desc="Which of the known layouts of %s these bytes follow" % owner.name,
                spec="%s %s" % (self.spec, owner.spec), structure=owner.name))
            choices = []
            for v in sc.variants:
                dec = self.anonymous_decoder(v.subcon, owner, v.name + "_")
                choices.append((self.condition(v.when), dec, v.name, v.note))
            return [VariantsStep(layout=layout, choices=choices)]
        if not isinstance(sc, Struct):
            raise NotImplementedError("top-level %s" % type(sc).__name__)
        steps: list = []
        run: List[Scalar] = []
        rel = 0

        def flush():
            nonlocal run, rel
            if run:
                steps.append(Run(items=run, size=rel))
            run, rel = [], 0

        for sub in sc.subcons:
            name, doc, inner = unwrap(sub)
            capture = ("v." + name) if name in self._captured else None
            fixed = self.fixed_field(name, doc, inner, owner)
            if fixed is not None:
                fd, size = fixed
                run.append(Scalar(f=fd, rel=rel, size=size, capture=capture if fd.ftype.startswith("uint") else None))
                rel += size
                continue
            flush()
            steps.append(self.variable_step(name, doc, inner, owner, capture))
        flush()
        return steps

    def condition(self, when) -> str:
        if isinstance(when, RemainingIs):
            return "lim - off == %d" % when.size
        if isinstance(when, PeekZero):
            return "peek_zero(tvb, off + %d, %d, lim)" % (when.offset, when.size)
        if isinstance(when, Otherwise):
            return "true"
        raise NotImplementedError("variant predicate %r" % (when,))

    def _field(self, owner: Message, name: str, doc: str, **kw) -> FieldDef:
        return self.add_field(FieldDef(
            abbrev="%s.%s.%s" % (self.proto, owner.abbrev, snake(name)), label=name, desc=doc or name,
            spec="%s %s" % (self.spec, owner.spec), structure=owner.name, **kw))

    def fixed_field(self, name, doc, inner, owner) -> Optional[Tuple[FieldDef, int]]:
        base = "DEC"
        if isinstance(inner, Hex):
            base, inner = "HEX", inner.subcon
        if isinstance(inner, FormatField):
            size = _FMT_SIZE[inner.fmtstr[-1]]
            return self._field(owner, name, doc, ftype=_INT_FT[size], base=base), size
        if isinstance(inner, Enum) and isinstance(inner.subcon, FormatField):
            size = _FMT_SIZE[inner.subcon.fmtstr[-1]]
            values = {int(k): str(v) for k, v in inner.decmapping.items()}
            return self._field(owner, name, doc, ftype=_INT_FT[size], base="HEX", values=values), size
        if isinstance(inner, FlagsEnum) and isinstance(inner.subcon, FormatField):
            size = _FMT_SIZE[inner.subcon.fmtstr[-1]]
            fd = self._field(owner, name, doc, ftype=_INT_FT[size], base="HEX")
            if not fd.bits:
                prefix = common_prefix(list(inner.flags))
                for flag, mask in inner.flags.items():
                    fd.bits.append(self.add_field(FieldDef(
                        abbrev="%s.%s" % (fd.abbrev, snake(flag[len(prefix):])), label=flag, ftype="bool",
                        base=str(size * 8), mask=mask, desc="%s (0x%08X)" % (flag, mask), spec=fd.spec,
                        structure=fd.structure)))
            return fd, size
        if isinstance(inner, Guid):
            return self._field(owner, name, doc, ftype="guid"), 16
        if isinstance(inner, Bytes) and isinstance(inner.length, int):
            return self._field(owner, name, doc, ftype="bytes"), inner.length
        if isinstance(inner, Utf16String) and isinstance(inner.length, int):
            return None  # strings take the variable path (they need their NUL trimmed)
        return None

    def variable_step(self, name, doc, inner, owner, capture):
        if inner is GreedyBytes:
            return VarBytes(f=self._field(owner, name, doc, ftype="bytes"), length=None)
        if isinstance(inner, Bytes):
            return VarBytes(f=self._field(owner, name, doc, ftype="bytes"), length=self.expr(inner.length))
        if isinstance(inner, Utf16String):
            return VarString(f=self._field(owner, name, doc, ftype="string"), length=self.expr(inner.length))
        if id(inner) in self._by_struct:
            return Call(decoder=self.decoder_for(self._by_struct[id(inner)]), capture=capture)
        if isinstance(inner, (Struct, Variants)):
            return Call(decoder=self.anonymous_decoder(inner, owner, snake(name) + "_"), capture=capture)
        if isinstance(inner, Switch):
            return self.switch_step(inner, owner, capture, name)
        if isinstance(inner, Present):
            return PresentStep(steps=[self.variable_step(name, doc, inner.subcon, owner, capture)])
        if isinstance(inner, IfEquals):
            return IfStep(cond="%s == %d" % (self.expr(inner.key), inner.value),
                          then=[self.variable_step(name, doc, inner.subcon, owner, capture)],
                          otherwise=[self.variable_step(name, doc, inner.otherwise, owner, capture)]
                          if inner.otherwise is not None else [])
        raise NotImplementedError("%s: %s" % (name, type(inner).__name__))

    def switch_step(self, sw: Switch, owner: Message, capture, name) -> SwitchStep:
        on = self.expr(sw.keyfunc)
        # Keys may be Enum names; the walk needs their integers.
        mapping = self._enum_for(sw.keyfunc, owner)
        cases = []
        for k, sc in sw.cases.items():
            value = mapping[k] if isinstance(k, str) else int(k)
            cases.append((value, self.anonymous_decoder(sc, owner, snake(name) + "_")))
        default = self.anonymous_decoder(sw.default, owner, snake(name) + "_default_") if sw.default is not None else None
        return SwitchStep(on=on, cases=sorted(cases), default=default, capture=capture)

    def _enum_for(self, keyfunc, owner) -> Dict[str, int]:
        mapping: Dict[str, int] = {}

        def scan(sc, seen):
            if id(sc) in seen:
                return
            seen.add(id(sc))
            if isinstance(sc, Enum):
                mapping.update({k: int(v) for k, v in sc.encmapping.items()})
            for s in getattr(sc, "subcons", []):
                scan(s, seen)
            if hasattr(sc, "subcon"):
                scan(sc.subcon, seen)

        scan(owner.struct, set())
        return mapping


def unwrap(sc) -> Tuple[str, str, Any]:
    name, doc = None, ""
    while isinstance(sc, Renamed):
        name = name or sc.name
        doc = doc or (sc.docs or "")
        sc = sc.subcon
    return name, doc, sc


def common_prefix(names: List[str]) -> str:
    if len(names) < 2:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    return p[: p.rfind("_") + 1]


# -- Python view of the same fields ---------------------------------------------------
def _plain(v):
    if v is None:
        return None
    if isinstance(v, str) and hasattr(v, "intvalue"):  # EnumIntegerString
        return v.intvalue
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def flatten(model: Model, msg: Message, value) -> List[Tuple[str, Any]]:
    """(field name, value) pairs in the order the Lua dissector adds them."""
    out: List[Tuple[str, Any]] = []
    _flatten_struct(model, msg.struct, msg, value, out, top=True)
    return out


def _flatten_struct(model, sc, owner, value, out, top=False):
    if top or id(sc) in model._by_struct:
        out.append(("%s.%s" % (model.proto, owner.abbrev), None))
    if isinstance(sc, Variants):
        name = value["_variant"]
        v = next(v for v in sc.variants if v.name == name)
        out.append(("%s.%s.layout" % (model.proto, owner.abbrev), name))
        _flatten_struct(model, v.subcon, owner, value, out)
        return
    for sub in sc.subcons:
        name, doc, inner = unwrap(sub)
        _flatten_item(model, name, inner, owner, value[name], out, value)


def _flatten_item(model, name, inner, owner, v, out, ctx):
    abbrev = "%s.%s.%s" % (model.proto, owner.abbrev, snake(name))
    if isinstance(inner, Hex):
        inner = inner.subcon
    if id(inner) in model._by_struct:
        m = model._by_struct[id(inner)]
        _flatten_struct(model, inner, m, v, out)
        return
    if isinstance(inner, Present):
        if v is not None:
            _flatten_item(model, name, inner.subcon, owner, v, out, ctx)
        return
    if isinstance(inner, IfEquals):
        sc = inner._pick(ctx)
        if sc is not None:
            _flatten_item(model, name, sc, owner, v, out, ctx)
        return
    if isinstance(inner, Switch):
        # The chosen case is a message (its own subtree) or an anonymous struct.
        key = evaluate(inner.keyfunc, ctx)
        sc = inner.cases.get(key, inner.default)
        if id(sc) in model._by_struct:
            _flatten_struct(model, sc, model._by_struct[id(sc)], v, out)
        else:
            _flatten_struct(model, sc, owner, v, out)
        return
    if isinstance(inner, (Struct, Variants)):
        _flatten_struct(model, inner, owner, v, out)
        return
    if isinstance(inner, FlagsEnum):
        total = sum(mask for flag, mask in inner.flags.items() if v.get(flag))
        out.append((abbrev, total))
        prefix = common_prefix(list(inner.flags))
        for flag, mask in inner.flags.items():
            if v.get(flag):  # the dissector shows set bits only
                out.append(("%s.%s" % (abbrev, snake(flag[len(prefix):])), True))
        return
    if isinstance(inner, Utf16String) and evaluate(inner.length, ctx) == 0:
        return  # the dissector shows no empty string
    if (inner is GreedyBytes or isinstance(inner, Bytes)) and v == b"":
        return  # nor empty variable-length bytes
    out.append((abbrev, _plain(v)))
