"""The model of construct structures: trees walked into field definitions and decode steps.

This module knows construct and `dissectors.vocabulary.wire`, never a protocol or a target.
It produces

- `FieldDef`s: one per field a dissector registers (name, type, display, encoding, value names,
  bits, doc);
- `Decoder`s: one per `Message` (and per anonymous struct), lists of steps whose tests and
  lengths are expressions as data (dissectors.model.expressions), which a target renders.

dissectors.model.oracle walks the same trees over a Python parse, for the differential tests.
"""
from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from construct import (
    Array,
    FixedSized,
    GreedyRange,
    Bytes,
    Enum,
    FlagsEnum,
    GreedyBytes,
    Hex,
    Struct,
    Switch,
)
from construct.core import Pass
from construct.expr import BinExpr, Path

from dissectors.model import expressions as X
from dissectors.model.introspect import (
    named_of,
    bit_width,
    common_prefix,
    int_shape,
    is_bitstruct,
    iter_constructs,
    rules_of,
    unwrap,
)
from dissectors.vocabulary.wire import (
    citation,
    FieldName,
    Parts,
    Ascii,
    BitField,
    Rule,
    Guid,
    IfEquals,
    Message,
    Otherwise,
    Overlay,
    PeekZero,
    Present,
    RemainingIs,
    Utf16String,
    Variants,
    When,
)

INT_TYPES = ("uint8", "uint16", "uint24", "uint32", "uint64")
ARRAY_CAP = 4096  # the most elements an array shows; the buffer bounds it anyway


def int_ftype(size: int) -> str:
    return {1: "uint8", 2: "uint16", 3: "uint24", 4: "uint32"}.get(size, "uint64")


def snake(name: str) -> str:
    """Spec name to field-name part: RequestId -> request_id, Is4kAligned -> is_4k_aligned,
    localUnicastIPs -> local_unicast_ips, ConnectedToiSCSI -> connected_to_iscsi."""
    s = re.sub(r"i([A-Z]{2,})(?=[A-Z][a-z]|[^A-Za-z]|$)", lambda m: "I" + m.group(1).lower(), name)  # iSCSI, iSNS: one word
    s = re.sub(r"([A-Z]{2,})s(?=[A-Z]|$)", lambda m: m.group(1).capitalize() + "s", s)  # plural acronyms
    s = re.sub(r"(?<=[a-z])(?=\d+[a-z])", "_", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", s)
    return s.lower()


def ident(abbrev: str) -> str:
    """An identifier for a field, for any target: msrsvd.header.request_id -> header__request_id."""
    return abbrev.split(".", 1)[1].replace(".", "__")


@dataclass
class FieldDef:
    abbrev: str
    label: str
    ftype: str  # uint8/16/24/32/64, int32, guid, bytes, string, bool, framenum, relative_time, none
    display: str = "NONE"  # integers: DEC or HEX (Wireshark's BASE_DEC, BASE_HEX); NONE for the rest
    bool_width: int = 0  # a bool with a mask: the bits of the integer it is part of; 0 stands alone
    encoding: str = ""  # strings: "ascii" or "utf-16le"; guids: "le" (MS-DTYP 2.3.4: Data1-3 little-endian)
    frametype: str = ""  # framenum: "REQUEST" or "RESPONSE", the frame it points to
    only_set: bool = False  # a flag bit: shown when set, absent when clear (a display choice, not a value)
    values: Optional[Dict[int, str]] = None
    mask: int = 0
    desc: str = ""
    spec: str = ""
    structure: str = ""
    bits: List["FieldDef"] = field(default_factory=list)
    builtin: str = ""  # the built-in dissector's name for the same value, where there is one
    generated_desc: Tuple[str, ...] = ()  # descriptions the model made up, which a written one replaces
    described_in: Tuple[str, ...] = ()  # the structures a made-up description names
    shared: bool = False  # a FieldName several structures fill: every masked use adds its value
    ranges: List[Tuple[int, int, str]] = field(default_factory=list)  # names of value ranges (Protocol.value_ranges)

    @property
    def key(self) -> str:
        return ident(self.abbrev)

    def problems(self) -> List[str]:
        """What a target could not render from this field as declared: each setting belongs to
        one kind of field, and every target reads it from here rather than guessing."""
        out = []
        integer = self.ftype.startswith(("uint", "int"))
        if self.display not in (("DEC", "HEX") if integer else ("NONE",)):
            out.append("display %s on a %s" % (self.display, self.ftype))
        if self.ftype == "bool":
            if self.bool_width not in (0, 8, 16, 24, 32, 64) or bool(self.mask) != bool(self.bool_width) or (
                    self.mask >> self.bool_width):
                out.append("mask %#x in a %d-bit bool" % (self.mask, self.bool_width))
        elif self.bool_width or self.only_set:
            out.append("bool settings on a %s" % self.ftype)
        encodings = {"string": ("", "ascii", "utf-16le"), "guid": ("le",)}.get(self.ftype, ("",))
        if self.encoding not in encodings:
            out.append("encoding %r on a %s" % (self.encoding, self.ftype))
        if (self.frametype in ("REQUEST", "RESPONSE")) != (self.ftype == "framenum"):
            out.append("frametype %r on a %s" % (self.frametype, self.ftype))
        return ["%s: %s" % (self.abbrev, p) for p in out]


# -- decode steps -----------------------------------------------------------------
@dataclass
class Check:
    """A Rule as data: when `cond` holds, an expert item whose text names the value."""

    kind: str  # "malformed" or "warning"
    cond: X.Expr
    message: str  # one %s: the value (by name where it has one)
    arg: X.Shown
    rank: int = 0  # warnings: of one message's, only the highest rank's shows (Rule.rank)


@dataclass
class BitChild:
    f: FieldDef
    name: str
    shift: int
    width: int
    checks: List[Check] = field(default_factory=list)
    by_value: bool = False  # a shared field: added with its shifted value, not through a mask


@dataclass
class Scalar:
    """A fixed-size item at a constant offset from the cursor."""

    f: FieldDef
    rel: int
    size: int
    endian: str = "le"  # "le" or "be"
    capture: Optional[X.Value] = None  # where the value is kept, for expressions and checks
    children: List[BitChild] = field(default_factory=list)  # bit fields of a BitStruct
    capture_children: bool = False
    flags: bool = False  # a FlagsEnum: show its set bits
    bitfield: Optional[Tuple[int, int]] = None  # (divisor, modulus) of a BitField value
    checks: List[Check] = field(default_factory=list)
    by_value: bool = False  # a shared field: a BitField added with its value, not through a mask


@dataclass
class RunOverlay:
    """An Overlay inside a run: decoded at cursor + rel when the whole run is present."""

    rel: int
    size: int  # 0: it consumes nothing
    decoder: Optional[str]
    capture: Optional[X.Value]
    overlay_size: int = 0  # the bytes it reads
    cond: Optional[X.Expr] = None  # from a When around the Overlay
    option: Optional[str] = None  # the plugin preference that enables it


@dataclass
class Run:
    """Consecutive fixed-size items; one bounds check covers them all."""

    items: List[Scalar]
    size: int


@dataclass
class VarBytes:
    f: FieldDef
    length: Optional[X.Expr]  # None means "to the end of the buffer"


@dataclass
class VarString:
    f: FieldDef  # its encoding: utf-16le
    length: X.Expr
    to_nul: bool = True  # the text ends at the first NUL (a fixed buffer's padding is not text)


@dataclass
class Call:
    decoder: str
    capture: Optional[X.Value]


@dataclass
class OverlayStep:
    size: int
    decoder: str
    capture: Optional[X.Value]
    option: Optional[str] = None


@dataclass
class ArrayStep:
    count: Optional[X.Expr]  # None: as many as fit
    element: Any  # a Scalar (rel 0) or a decoder name
    size: int  # element size when fixed, else 0
    label: str


@dataclass
class FixedStep:
    """A sub-structure confined to the next `length` bytes, which it consumes whole."""

    length: X.Expr
    decoder: Optional[str]
    label: str


@dataclass
class SwitchStep:
    on: X.Expr
    cases: List[Tuple[int, Optional[str]]]
    default: Optional[str]
    capture: Optional[X.Value]


@dataclass
class PresentStep:
    steps: list


@dataclass
class IfStep:
    cond: X.Expr
    then: list
    otherwise: list


@dataclass
class VariantsStep:
    layout: FieldDef
    choices: List[Tuple[X.Expr, Optional[str], str, str]]  # (condition, decoder, variant name, note)


@dataclass
class Decoder:
    name: str
    message: Optional[Message]
    tree_field: Optional[FieldDef]
    steps: list
    owner: str
    label: str = ""
    shares_values: bool = False  # wraps a bare Switch: its expressions read the caller's values

    @property
    def fixed_size(self) -> Optional[int]:
        """The byte size when every step is fixed, so the subtree needs no set_len."""
        if all(isinstance(s, Run) for s in self.steps):
            return sum(s.size for s in self.steps)
        return None


_KINDS = {"uint8": "a 1-byte integer", "uint16": "a 2-byte integer", "uint24": "a 3-byte integer",
          "uint32": "a 4-byte integer", "uint64": "an 8-byte integer", "int32": "a 4-byte signed integer",
          "bytes": "bytes", "string": "text", "guid": "a GUID", "bool": "a flag", "none": "a structure"}


def describe(name: str, structure: str, ftype: str) -> str:
    """What a field the spec leaves undocumented holds, where: more than its name."""
    if name.lower().startswith(("reserved", "obsolete", "junk")):
        return "A part of %s the spec reserves or retired (%s); not interpreted" % (structure, _KINDS.get(ftype, "a value"))
    return "%s of %s: %s" % (name, structure, _KINDS.get(ftype, "a value"))


class Model:
    """Everything the templates need for one protocol."""

    def __init__(self, proto: str, spec: str, messages: Sequence[Message], captures: Iterable[str] = ()):
        self.proto = proto
        self.spec = spec
        self.messages = list(messages)
        self.fields: Dict[str, FieldDef] = {}
        self.decoders: Dict[str, Decoder] = {}
        self.value_tables: Dict[Tuple, str] = {}
        self.rules: List[Tuple[FieldDef, Rule, Check]] = []  # for the reference
        self.request_paths: List[Tuple[str, ...]] = []  # what responses read of their request
        self.experts: list = []  # the plugin's expert items (bindings.experts; build_model sets them)
        self._by_struct = {id(m.struct): m for m in self.messages}
        self._captured = self._referenced_names() | set(captures)
        for m in self.messages:
            self.decoder_for(m)

    # -- helpers ---------------------------------------------------------------
    def _referenced_names(self) -> set:
        """Every field name an expression mentions: a decoder must keep those values."""
        names = set()

        def expr_names(e):
            if isinstance(e, Path):
                names.add(e._Path__field)
                if e._Path__parent is not None:
                    expr_names(e._Path__parent)
            elif isinstance(e, BinExpr):
                expr_names(e.lhs)
                expr_names(e.rhs)

        for sc in iter_constructs(m.struct for m in self.messages):
            for attr in ("length", "keyfunc", "count", "key", "cond"):
                expr_names(getattr(sc, attr, None))
        names.discard(None)
        names.discard("_params")
        return names

    def value_table(self, values: Dict[int, str]) -> str:
        """A value table's identifier, from what it holds (its first name and a digest of all of it),
        not from when it was made: adding a table leaves every other name as it was."""
        key = tuple(sorted(values.items()))
        name = self.value_tables.get(key)
        if name is None:
            hint = re.sub(r"[^A-Za-z0-9]+", "_", key[0][1]).strip("_")[:28] if key else "none"
            name = "VS_%s_%s" % (hint, hashlib.sha1(repr(key).encode()).hexdigest()[:6])
            self.value_tables[key] = name
        return name

    def add_field(self, fd: FieldDef) -> FieldDef:
        have = self.fields.get(fd.abbrev)
        if have is None:
            self.fields[fd.abbrev] = fd
            return fd
        same_shape = have.ftype == fd.ftype and have.mask == fd.mask
        if not same_shape and have.ftype in INT_TYPES and fd.ftype in INT_TYPES and not have.mask and not fd.mask:
            # One name, two widths (seed vs Windows layout, CDB sizes): keep the wider type.
            if INT_TYPES.index(fd.ftype) > INT_TYPES.index(have.ftype):
                have.ftype = fd.ftype
            same_shape = True
        if not same_shape:
            raise ValueError("field %s declared as %s/%#x and %s/%#x" % (
                fd.abbrev, have.ftype, have.mask, fd.ftype, fd.mask))
        if fd.values:
            clash = {k for k, v in fd.values.items() if (have.values or {}).get(k, v) != v}
            if clash:
                raise ValueError("field %s: value %s named %r and %r" % (
                    fd.abbrev, min(clash), have.values[min(clash)], fd.values[min(clash)]))
            have.values = {**(have.values or {}), **fd.values}
        if fd.desc in fd.generated_desc:
            if fd.desc != have.desc and have.desc in have.generated_desc and fd.structure not in have.described_in:
                # made up for several structures: name them all
                have.described_in += (fd.structure,)
                have.desc = describe(have.label, ", ".join(have.described_in), have.ftype)
                have.generated_desc += (have.desc,)
        elif fd.desc and fd.desc != have.desc:
            if have.desc in have.generated_desc:
                have.desc = fd.desc
            else:  # one name, one meaning: the definitions must say it once
                raise ValueError("field %s described as %r and as %r; give both uses one description" % (
                    fd.abbrev, have.desc, fd.desc))
        return have

    def expr(self, e, owner: Optional[Message] = None) -> X.Expr:
        """A construct `this` expression as data over the captured values (and the request's)."""
        if isinstance(e, bool):
            return X.Const(e)
        if isinstance(e, int):
            return X.Const(e)
        if isinstance(e, str):
            mapping = self._enum_values(owner) if owner is not None else {}
            if e not in mapping:
                raise NotImplementedError("string %r in an expression is not an enum name" % e)
            return X.Const(mapping[e])
        if isinstance(e, Path):
            parts = []
            p = e
            while p is not None and p._Path__field is not None:
                parts.append(p._Path__field)
                p = p._Path__parent
            parts.reverse()
            if parts[0] == "_params":
                if len(parts) < 3 or parts[1] != "request":
                    raise NotImplementedError("only this._params.request.<path> is known: %r" % (e,))
                path = tuple(parts[2:])
                if path not in self.request_paths:
                    self.request_paths.append(path)
                return X.RequestValue(self.request_paths.index(path))
            return X.Value(tuple(parts))
        if isinstance(e, BinExpr):
            ops = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.mod: "%",
                   operator.floordiv: "//", operator.eq: "==", operator.ne: "!=", operator.lt: "<",
                   operator.gt: ">", operator.le: "<=", operator.ge: ">="}
            if e.op not in ops:
                raise NotImplementedError("expression operator %r" % e.op)
            return X.BinOp(ops[e.op], self.expr(e.lhs, owner), self.expr(e.rhs, owner))
        raise NotImplementedError("expression %r" % (e,))

    # -- the walk ----------------------------------------------------------------
    def decoder_for(self, msg: Message) -> str:
        name = "d_" + msg.abbrev.replace(".", "_")
        if name in self.decoders:
            return name
        tree = self.add_field(FieldDef(
            abbrev="%s.%s" % (self.proto, msg.abbrev), label=msg.name, ftype="none", desc=msg.doc or "The %s structure (%s)" % (msg.name, citation(self.spec, msg)),
            spec=citation(self.spec, msg), structure=msg.name))
        dec = Decoder(name=name, message=msg, tree_field=tree, steps=[], owner=msg.abbrev,
                      label="%s (%s)" % (msg.name, citation(self.spec, msg)))
        self.decoders[name] = dec  # registered first, so recursion terminates
        dec.steps = self.steps_for(msg.struct, msg)
        return name

    def anonymous_decoder(self, sc, owner: Message, hint: str) -> Optional[str]:
        """A decoder for a non-message struct whose fields belong to `owner`."""
        if id(sc) in self._by_struct:
            return self.decoder_for(self._by_struct[id(sc)])
        if isinstance(sc, Struct) and not sc.subcons:
            return None
        if sc is Pass:
            return None
        # named by owner and hint, numbered only among its namesakes: a structure added elsewhere
        # renames nothing
        base = ("d_%s_%s" % (owner.abbrev.replace(".", "_"), hint)).rstrip("_")
        name, n = base, 1
        while name in self.decoders:
            n += 1
            name = "%s_%d" % (base, n)
        dec = Decoder(name=name, message=None, tree_field=None, steps=[], owner=owner.abbrev,
                      label="%s (%s)" % (owner.name, citation(self.spec, owner)))
        self.decoders[name] = dec
        if not isinstance(sc, (Struct, Variants)):
            sc = Struct("Value" / sc)
            dec.shares_values = True
        dec.steps = self.steps_for(sc, owner)
        return name

    def steps_for(self, sc, owner: Message) -> list:
        if isinstance(sc, Variants):
            layout = self.add_field(FieldDef(
                abbrev="%s.%s.layout" % (self.proto, owner.namespace), label="Layout", ftype="string",
                desc="Which of the known layouts of %s these bytes follow" % owner.name,
                spec=citation(self.spec, owner), structure=owner.name))
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
            if inner is Pass:
                continue
            rules = rules_of(sub)
            capture = X.Value((name,)) if (name in self._captured or rules) else None
            cond = None
            if isinstance(inner, When) and isinstance(inner.subcon, Overlay) and inner.subcon.size is not None:
                cond, inner = self.expr(inner.cond, owner), inner.subcon  # stays in the run
            if isinstance(inner, Overlay) and inner.size is not None:
                run.append(RunOverlay(rel=rel, size=0, decoder=self.anonymous_decoder(
                    inner.subcon, owner, snake(name) + "_"), capture=capture, overlay_size=inner.size, cond=cond,
                    option=inner.option))
                continue
            scalar = self.scalar(name, doc, inner, owner, capture, named_of(sub))
            if rules and scalar is None:
                raise NotImplementedError("%s: rules on a variable-size field" % name)
            if scalar is not None:
                scalar.checks = [self.check(r, scalar.capture, scalar.f, owner) for r in rules]
                scalar.rel = rel
                run.append(scalar)
                rel += scalar.size
                continue
            flush()
            steps.append(self.variable_step(name, doc, inner, owner, capture, named_of(sub)))
        flush()
        return steps

    def check(self, rule: Rule, x: X.Value, f: FieldDef, owner: Message) -> Check:
        c = self._check(rule, x, f, owner)
        if not any(have is f and r == rule for have, r, _ in self.rules):
            self.rules.append((f, rule, c))
        return c

    def _check(self, rule: Rule, x: X.Value, f: FieldDef, owner: Message) -> Check:
        names = f.values or {}

        def num(v):
            return Rule._num(v, names)

        def shown(v):
            v = num(v)
            return "%s (%#x)" % (names[v], v) if v in names else str(v)

        arg = X.Shown(x, self.value_table(names) if names else None)
        label = "%s %s" % (owner.name, f.label)
        tail = " [%s]" % rule.spec
        vals = [num(v) for v in rule.values]
        if rule.test == "equals":
            return Check(rule.kind, X.BinOp("!=", x, X.Const(vals[0])),
                         "%s is %%s; it must be %s%s" % (label, shown(vals[0]), tail), arg)
        if rule.test == "at_most":
            return Check(rule.kind, X.BinOp(">", x, X.Const(vals[0])),
                         "%s is %%s; at most %d is allowed%s" % (label, vals[0], tail), arg)
        if rule.test == "one_of":
            return Check(rule.kind, X.Not(X.equals_any(x, vals)),
                         "%s is %%s; it must be one of %s%s" % (label, ", ".join(shown(v) for v in vals), tail), arg)
        if rule.test == "known":
            return Check(rule.kind, X.Unnamed(self.value_table(names), x),
                         "%s %%s is not defined by the specification%s" % (label, tail), arg)
        if rule.test == "is":
            return Check(rule.kind, X.equals_any(x, vals), rule.text + tail, arg, rule.rank)
        raise NotImplementedError(rule.test)

    def condition(self, when) -> X.Expr:
        if isinstance(when, RemainingIs):
            return X.BytesLeftAre(when.size)
        if isinstance(when, PeekZero):
            return X.ZeroAt(when.offset, when.size)
        if isinstance(when, Otherwise):
            return X.Always()
        raise NotImplementedError("variant predicate %r" % (when,))

    def _field(self, owner: Message, name: str, doc: str, named: Optional[FieldName] = None, **kw) -> FieldDef:
        if named is not None:
            return self.shared_field(named, citation(self.spec, owner), **kw)
        made_up = describe(name, owner.name, kw.get("ftype", ""))
        return self.add_field(FieldDef(
            abbrev="%s.%s.%s" % (self.proto, owner.namespace, snake(name)), label=name, desc=doc or made_up,
            spec=citation(self.spec, owner), structure=owner.name, generated_desc=(made_up,),
            described_in=(owner.name,), **kw))

    def shared_field(self, named: FieldName, spec: str, ftype: str, values=None, mask: int = 0, **kw) -> FieldDef:
        """A FieldName's one field: the widest integer any use needs, never a mask (a masked
        use adds its value), every use's value names, the spec sections of every use."""
        fd = self.add_field(FieldDef(abbrev="%s.%s" % (self.proto, named.name), label=named.label, ftype=ftype,
                                     display=kw.get("display", "DEC"), values=values, desc=named.desc, spec=spec,
                                     structure="(filter names)", builtin=named.builtin, shared=True))
        if spec not in fd.spec.split(", "):
            fd.spec = fd.spec + ", " + spec
        return fd

    def scalar(self, name, doc, inner, owner, capture, named: Optional[FieldName] = None) -> Optional[Scalar]:
        """A fixed-size item, or None when `inner` is variable."""
        if isinstance(inner, Parts):
            return self.parts(name, doc, inner, owner, capture, named)
        display = "DEC"
        if isinstance(inner, Hex):
            display, inner = "HEX", inner.subcon
        values = None
        if isinstance(inner, Enum):
            values = {int(k): str(v) for k, v in inner.decmapping.items()}
            display, inner = "HEX", inner.subcon
        integer = int_shape(inner)
        if integer is not None and not isinstance(inner, FlagsEnum):
            size, endian = integer
            fd = self._field(owner, name, doc, named, ftype=int_ftype(size), display=display, values=values)
            return Scalar(f=fd, rel=0, size=size, endian=endian, capture=capture)
        if isinstance(inner, FlagsEnum):
            size, endian = int_shape(inner.subcon)
            fd = self._field(owner, name, doc, ftype=int_ftype(size), display="HEX")
            if not fd.bits:
                prefix = common_prefix(list(inner.flags))
                for flag, mask in inner.flags.items():
                    fd.bits.append(self.add_field(FieldDef(
                        abbrev="%s.%s" % (fd.abbrev, snake(flag[len(prefix):])), label=flag, ftype="bool",
                        bool_width=size * 8, only_set=True, mask=mask, desc="%s (0x%08X)" % (flag, mask),
                        spec=fd.spec, structure=fd.structure)))
            return Scalar(f=fd, rel=0, size=size, endian=endian, capture=capture, flags=True)
        if is_bitstruct(inner):
            return self.bitstruct(name, doc, inner, owner, capture)
        if isinstance(inner, BitField):
            values = {v: k for k, v in inner.values.items()} or None
            size = inner.total // 8
            if named is not None:  # one field for every use: the value, shifted, not a mask
                fd = self._field(owner, name, doc, named, ftype=int_ftype(size), display="HEX" if values else "DEC",
                                 values=values)
                return Scalar(f=fd, rel=0, size=size, endian="be", capture=capture,
                              bitfield=(2 ** inner.shift, 2 ** inner.width), by_value=True)
            fd = self._field(owner, name, doc, ftype=int_ftype(size), display="HEX" if values else "DEC",
                             values=values, mask=inner.mask)
            return Scalar(f=fd, rel=0, size=size, endian="be", capture=capture,
                          bitfield=(2 ** inner.shift, 2 ** inner.width))
        if isinstance(inner, Ascii) and isinstance(inner.length, int):
            return Scalar(f=self._field(owner, name, doc, named, ftype="string", encoding="ascii"), rel=0,
                          size=inner.length)
        if isinstance(inner, Guid):
            return Scalar(f=self._field(owner, name, doc, named, ftype="guid", encoding="le"), rel=0, size=16)
        if isinstance(inner, Bytes) and isinstance(inner.length, int):
            return Scalar(f=self._field(owner, name, doc, named, ftype="bytes"), rel=0, size=inner.length)
        return None

    def parts(self, name, doc, inner: Parts, owner, capture, named) -> Scalar:
        """An integer shown whole with its value names, its masked parts beneath it."""
        whole = self.scalar(name, doc, inner.subcon, owner, capture, named)
        if whole is None or whole.size > 4 or whole.endian != "be":
            raise NotImplementedError("%s: Parts of a %d-byte %s integer" % (name, whole.size, whole.endian))
        bits = whole.size * 8
        for part in inner.parts:
            shift = (part.mask & -part.mask).bit_length() - 1
            width = bin(part.mask).count("1")
            if part.field is not None:
                f = self.shared_field(part.field, whole.f.spec.split(", ")[0], ftype=int_ftype((width + 7) // 8),
                                      display="HEX")
            else:
                f = self.add_field(FieldDef(
                    abbrev="%s.%s" % (whole.f.abbrev, snake(part.name)), label=part.name, ftype=whole.f.ftype,
                    display="HEX", mask=part.mask, desc=part.doc or part.name, spec=whole.f.spec,
                    structure=whole.f.structure))
            whole.children.append(BitChild(f=f, name=part.name, shift=shift, width=width,
                                           by_value=part.field is not None))
        assert all(c.shift + c.width <= bits for c in whole.children)
        return whole

    def bitstruct(self, name, doc, inner, owner, capture) -> Scalar:
        """A BitStruct: one big-endian integer shown whole, its bit fields masked beneath."""
        subs = inner.subcon.subcons
        widths = [bit_width(unwrap(s)[2]) for s in subs]
        total = sum(widths)
        if total % 8:
            raise NotImplementedError("%s: %d bits is not whole bytes" % (name, total))
        size = total // 8
        parent = self._field(owner, name, doc, ftype=int_ftype(size), display="HEX")
        children = []
        shift = total
        for sub, width in zip(subs, widths):
            cname, cdoc, cinner = unwrap(sub)
            crules = rules_of(sub)
            cnamed = named_of(sub)
            shift -= width
            if cname is None:
                continue  # Padding
            mask = ((1 << width) - 1) << shift
            values = None
            if isinstance(cinner, Enum):
                values = {int(k): str(v) for k, v in cinner.decmapping.items()}
            if cnamed is not None:  # a shared field: its value, shifted, whatever the parent
                f = self.shared_field(cnamed, parent.spec, ftype=int_ftype((width + 7) // 8),
                                      display="HEX" if values else "DEC", values=values)
            elif width == 1 and values is None:
                f = FieldDef(abbrev="%s.%s" % (parent.abbrev, snake(cname)), label=cname, ftype="bool",
                             bool_width=total, only_set=True, mask=mask, desc=cdoc or describe(cname, parent.label, "bool"), spec=parent.spec,
                             structure=parent.structure)
            else:
                f = FieldDef(abbrev="%s.%s" % (parent.abbrev, snake(cname)), label=cname, ftype=int_ftype(size),
                             display="HEX" if values else "DEC", values=values, mask=mask,
                             desc=cdoc or describe(cname, parent.label, int_ftype(size)),
                             spec=parent.spec, structure=parent.structure)
            child = BitChild(f=self.add_field(f), name=cname, shift=shift, width=width, by_value=cnamed is not None)
            child.checks = [self.check(r, X.Value((name, cname)), child.f, owner) for r in crules]
            children.append(child)
        wanted = capture is not None or any(c.name in self._captured or c.checks for c in children)
        return Scalar(f=parent, rel=0, size=size, endian="be", capture=X.Value((name,)) if wanted else None,
                      children=children, capture_children=wanted)

    def variable_step(self, name, doc, inner, owner, capture, named: Optional[FieldName] = None):
        if inner is GreedyBytes:
            return VarBytes(f=self._field(owner, name, doc, ftype="bytes"), length=None)
        if isinstance(inner, Bytes):
            return VarBytes(f=self._field(owner, name, doc, ftype="bytes"), length=self.expr(inner.length, owner))
        if isinstance(inner, Utf16String):
            return VarString(f=self._field(owner, name, doc, ftype="string", encoding="utf-16le"),
                             length=self.expr(inner.length, owner))
        if id(inner) in self._by_struct:
            return Call(decoder=self.decoder_for(self._by_struct[id(inner)]), capture=capture)
        if isinstance(inner, (Struct, Variants)):
            return Call(decoder=self.anonymous_decoder(inner, owner, snake(name) + "_"), capture=capture)
        if isinstance(inner, Switch):
            return self.switch_step(inner, owner, capture, name)
        if isinstance(inner, Present):
            return PresentStep(steps=[self.variable_step(name, doc, inner.subcon, owner, capture)])
        if isinstance(inner, IfEquals):
            return IfStep(cond=X.BinOp("==", self.expr(inner.key, owner), X.Const(inner.value)),
                          then=[self.variable_step(name, doc, inner.subcon, owner, capture)],
                          otherwise=[self.variable_step(name, doc, inner.otherwise, owner, capture)]
                          if inner.otherwise is not None else [])
        if isinstance(inner, When):
            return IfStep(cond=self.expr(inner.cond, owner),
                          then=[self.variable_step(name, doc, inner.subcon, owner, capture)], otherwise=[])
        if isinstance(inner, FixedSized):
            return FixedStep(length=self.expr(inner.length, owner),
                             decoder=self.anonymous_decoder(inner.subcon, owner, snake(name) + "_"), label=name)
        if isinstance(inner, GreedyRange):
            el = self.scalar(name, doc, inner.subcon, owner, None, named)
            if el is not None:
                return ArrayStep(count=None, element=el, size=el.size, label=name)
            return ArrayStep(count=None, element=self.anonymous_decoder(inner.subcon, owner, snake(name) + "_"),
                             size=0, label=name)
        if isinstance(inner, Overlay):
            return OverlayStep(size=inner.size, decoder=self.anonymous_decoder(inner.subcon, owner, snake(name) + "_"),
                               capture=capture, option=inner.option)
        if isinstance(inner, Array):
            count = None if inner.count is None else self.expr(inner.count, owner)
            el = self.scalar(name, doc, inner.subcon, owner, None, named)
            if el is not None:
                return ArrayStep(count=count, element=el, size=el.size, label=name)
            return ArrayStep(count=count, element=self.anonymous_decoder(inner.subcon, owner, snake(name) + "_"),
                             size=0, label=name)
        raise NotImplementedError("%s: %s" % (name, type(inner).__name__))

    def switch_step(self, sw: Switch, owner: Message, capture, name) -> SwitchStep:
        on = self.expr(sw.keyfunc, owner)
        mapping = self._enum_values(owner)
        cases = []
        for k, sc in sw.cases.items():
            value = mapping[k] if isinstance(k, str) else int(k)
            cases.append((value, self.anonymous_decoder(sc, owner, snake(name) + "_")))
        default = self.anonymous_decoder(sw.default, owner, snake(name) + "_default_") if sw.default is not None else None
        return SwitchStep(on=on, cases=sorted(cases), default=default, capture=capture)

    def _enum_values(self, owner: Message) -> Dict[str, int]:
        """Every Enum and BitField value name in the protocol; switch keys and comparisons
        may use names. A name two enums give different values is left out, never guessed."""
        if not hasattr(self, "_enum_cache"):
            mapping: Dict[str, int] = {}
            conflicts = set()
            for sc in iter_constructs(m.struct for m in self.messages):
                names = {}
                if isinstance(sc, Enum):
                    names = {k: int(v) for k, v in sc.encmapping.items()}
                elif isinstance(sc, BitField):
                    names = sc.values
                for k, v in names.items():
                    if mapping.get(k, v) != v:
                        conflicts.add(k)
                    mapping[k] = v
            for k in conflicts:
                del mapping[k]
            self._enum_cache = mapping
        return self._enum_cache
