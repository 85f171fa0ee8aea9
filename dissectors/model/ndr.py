"""The model of NDR: interfaces expanded into field definitions and decode nodes.

Each method's request and response parameter list is expanded, per use, into a tree of
`Node`s: one per NDR construct, each naming the field it fills (`<proto>.<method>.<param>`;
a named structure's members `<proto>.<type>.<member>`, whatever method carries it). A target
renders the nodes (the Lua one as tables a small NDR interpreter walks with the deferral
rules of `dissectors.vocabulary.ndr`); dissectors.model.oracle walks them over a Python
parse. Byte buffers with a packed layout inside call the decoders dissectors.model.structs
makes for those messages.

The plumbing of NDR (referent ids, counts, discriminants, and MS-OAUT's BSTR and SAFEARRAY
headers where a method carries them) goes into shared fields (`<proto>.ndr.*`,
`<proto>.bstr.*`, `<proto>.safearray.*`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from dissectors.vocabulary import ndr, oaut
from dissectors.model.structs import FieldDef, Model, citation, describe, snake
from dissectors.vocabulary.idl import Interface, Method

MAX_ELEMENTS = ndr.MAX_ELEMENTS


@dataclass
class Node:
    kind: str  # prim, guid, struct, union, ptr, carray, wstr, fwstr, bstr, safearray, params
    f: Optional[FieldDef] = None
    size: int = 0  # prim: bytes; fwstr: units
    align: int = 1
    signed: bool = False
    members: List["Node"] = field(default_factory=list)
    arms: List[Tuple[int, "Node"]] = field(default_factory=list)
    switch_size: int = 0
    on: Optional[int] = None  # a union: the 0-based position, in its struct, of the member it switches on
    element: Optional["Node"] = None
    ref: bool = False  # a [ref] pointer (never NULL)
    top: bool = False  # a top-level [ref] pointer: no wire form
    varying: bool = False
    conformant: bool = False  # a struct whose last member's count is hoisted
    decoder: Optional[str] = None  # a byte buffer's packed content
    content: Any = None  # the content's Message, for flatten
    sf_type: int = 0
    min_size: int = 1
    name: str = ""  # the IDL member name, for Python values
    label: str = ""
    flags: Optional[Dict[str, int]] = None
    hresult: bool = False  # the method's HRESULT return value: its failure is the call's (expert info, Info)


@dataclass
class Stub:
    interface: Interface
    method: Method
    direction: str  # "request" or "response"
    node: Node
    params: ndr.Params


class NdrModel:
    """Fields and nodes for every method of `interfaces`; the fields join `model`'s."""

    def __init__(self, model: Model, interfaces: List[Interface], orpcthis=None, orpcthat=None,
                 hresult_names: Dict[int, str] = None, type_names: Dict[str, str] = None):
        self.model = model
        self.type_names = type_names or {}  # IDL type -> field namespace, from the protocol's conformance
        self.proto = model.proto
        self.spec = model.spec
        self.interfaces = interfaces
        self.hresult = ndr.Prim("I", "HRESULT", values=hresult_names or {})
        self.stubs: List[Stub] = []
        self.generic = self._generic_fields()
        self._add("%s.hresult" % self.proto, "ReturnValue", "uint32", "HEX", self.hresult.values or None,
                  desc="The HRESULT the method returned (0: S_OK)", spec=self.spec, structure="(calls)")
        for itf in interfaces:
            for m in itf.methods:
                if not m.used_on_wire:
                    continue
                for direction in ("request", "response"):
                    params = (m.request(orpcthis if itf.dcom else None) if direction == "request"
                              else m.response(orpcthat if itf.dcom else None, self.hresult))
                    self.stubs.append(Stub(itf, m, direction, self._params(itf, m, direction, params), params))

    def pairs(self) -> Dict[Tuple[str, int], Tuple[Stub, Stub]]:
        """(interface name, opnum) -> its request and response stubs, for the methods used on the wire."""
        out: Dict[Tuple[str, int], list] = {}
        for s in self.stubs:
            out.setdefault((s.interface.name, s.method.opnum), [None, None])[s.direction == "response"] = s
        return {k: (v[0], v[1]) for k, v in out.items()}

    # -- fields ----------------------------------------------------------------------
    def _add(self, abbrev, label, ftype, display="NONE", values=None, desc="", spec="", structure="", **kw):
        made_up = describe(label, structure, ftype)
        return self.model.add_field(FieldDef(abbrev=abbrev, label=label, ftype=ftype, display=display, values=values,
                                             desc=desc or made_up, spec=spec, structure=structure,
                                             generated_desc=(made_up,), described_in=(structure,), **kw))

    def _generic_fields(self) -> Dict[str, FieldDef]:
        p, g = self.proto, {}
        rpce, oaut_spec = "MS-RPCE 2.2.5 / C706 14", "MS-OAUT"
        ndr_fields = [
            ("ndr.referent_id", "Referent ID", "uint32", "HEX", None, rpce),
            ("ndr.max_count", "Max count", "uint32", "DEC", None, rpce),
            ("ndr.offset", "Offset", "uint32", "DEC", None, rpce),
            ("ndr.actual_count", "Actual count", "uint32", "DEC", None, rpce),
            ("ndr.switch", "Union discriminant", "uint32", "DEC", None, rpce),
        ]
        oaut_fields = [
            ("bstr.flags", "fFlags (byte length)", "uint32", "DEC", None, oaut_spec + " 2.2.23.2"),
            ("bstr.size", "clSize", "uint32", "DEC", None, oaut_spec + " 2.2.23.2"),
            ("safearray", "SAFEARRAY", "none", "NONE", None, oaut_spec + " 2.2.30.10"),
            ("safearray.c_dims", "cDims", "uint16", "DEC", None, oaut_spec + " 2.2.30.10"),
            ("safearray.f_features", "fFeatures", "uint16", "HEX", None, oaut_spec + " 2.2.30.10"),
            ("safearray.cb_elements", "cbElements", "uint32", "DEC", None, oaut_spec + " 2.2.30.10"),
            ("safearray.c_locks", "cLocks", "uint32", "DEC", None, oaut_spec + " 2.2.30.10"),
            ("safearray.sf_type", "sfType", "uint32", "HEX", oaut.SF_TYPES, oaut_spec + " 2.2.30.10"),
            ("safearray.size", "Size", "uint32", "DEC", None, oaut_spec + " 2.2.30.10"),
            ("safearray.c_elements", "cElements", "uint32", "DEC", None, oaut_spec + " 2.2.30.1"),
            ("safearray.l_lbound", "lLbound", "int32", "DEC", None, oaut_spec + " 2.2.30.1"),
            ("brecord", "wireBRECORD", "none", "NONE", None, oaut_spec + " 2.2.28.2.1"),
            ("brecord.flags", "fFlags", "uint32", "HEX", None, oaut_spec + " 2.2.28.2.1"),
            ("brecord.size", "clSize", "uint32", "DEC", None, oaut_spec + " 2.2.28.2.1"),
            ("brecord.rec_info", "pRecInfo (OBJREF)", "bytes", "NONE", None, oaut_spec + " 2.2.28.2.1"),
        ]
        uses_oaut = self._uses_oaut()
        for key, label, ftype, display, values, spec in ndr_fields + (oaut_fields if uses_oaut else []):
            g[key] = self._add("%s.%s" % (p, key), label, ftype, display, values, spec=spec, structure="(NDR)")
        if not uses_oaut:
            return g
        bits = []
        for name, mask in oaut.FADF.items():
            bits.append(self._add("%s.safearray.f_features.%s" % (p, snake(name[5:].title().replace("_", ""))),
                                  name, "bool", bool_width=16, only_set=True, mask=mask, spec=oaut_spec + " 2.2.30.10",
                                  structure="(NDR)"))
        g["safearray.f_features"].bits = bits
        return g

    def _uses_oaut(self) -> bool:
        """Whether any method carries a BSTR or SAFEARRAY: only then are MS-OAUT's fields declared."""
        seen, stack = set(), []
        for itf in self.interfaces:
            for m in itf.methods:
                stack += [t for _, t, _ in m.request(None).members + m.response(None, self.hresult).members]
        while stack:
            t = stack.pop()
            if t is None or id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(t, (oaut.Bstr, oaut.SafeArray)):
                return True
            stack += [sub for _, sub, _ in getattr(t, "members", ())]
            stack += [arm for _, arm, _ in getattr(t, "cases", {}).values()]
            stack += [getattr(t, "subcon", None), getattr(t, "element", None)]
        return False

    def _prim_field(self, t: ndr.Prim, abbrev, label, spec, structure) -> FieldDef:
        ftype = ("int%d" if t.signed else "uint%d") % (8 * t.size)
        display = "HEX" if (t.values or t.flags or t.idl == "HRESULT") else "DEC"
        f = self._add(abbrev, label, ftype, display, t.values or None, spec=spec, structure=structure)
        if t.flags and not f.bits:
            f.bits = [self._add("%s.%s" % (abbrev, snake(name.lower().title().replace("_", ""))), name, "bool",
                                bool_width=8 * t.size, only_set=True, mask=mask, spec=spec, structure=structure)
                      for name, mask in t.flags.items()]
        return f

    # -- expansion ---------------------------------------------------------------------
    def _params(self, itf: Interface, m: Method, direction: str, params: ndr.Params) -> Node:
        spec = "%s %s" % (self.spec, m.spec)
        prefix = "%s.%s" % (self.proto, snake(m.name))
        item = self._add(prefix, m.name, "none", desc="The parameters of %s.%s, request or response" % (itf.name, m.name),
                         spec=spec,
                         structure="%s.%s" % (itf.name, m.name))
        node = Node("params", f=item)
        for name, t, _ in params.members:
            if name == "ReturnValue":
                abbrev = "%s.hresult" % self.proto
            else:
                abbrev = "%s.%s" % (prefix, snake(name))
            child = self.expand(t, abbrev, name, spec, "%s.%s" % (itf.name, m.name), top=True)
            child.name = name
            child.hresult = name == "ReturnValue" and t is self.hresult
            node.members.append(child)
        return node

    def expand(self, t, abbrev: str, label: str, spec: str, structure: str, top: bool = False) -> Node:
        node = self._expand(t, abbrev, label, spec, structure, top)
        node.label = label  # names the parameter in expert items
        return node

    def _expand(self, t, abbrev: str, label: str, spec: str, structure: str, top: bool = False) -> Node:
        if isinstance(t, ndr.Prim):
            return Node("prim", f=self._prim_field(t, abbrev, label, spec, structure), size=t.size, align=t.size,
                        signed=t.signed, min_size=t.size, flags=t.flags)
        if isinstance(t, ndr.GuidType):
            return Node("guid", f=self._add(abbrev, label, "guid", spec=spec, structure=structure, encoding="le"), align=4,
                        min_size=16)
        if isinstance(t, ndr.Struct):
            sspec = citation(self.spec, t) if not t.spec.startswith("MS-") else t.spec
            # A named type's fields are named once, by the type, wherever it travels
            # (clusprep.disk_id.disk_guid in every method that carries a CPREP_DISKID).
            abbrev = "%s.%s" % (self.proto, self.type_names.get(t.name) or snake(t.name))
            structure = t.name
            spec = sspec
            item = self._add(abbrev, label, "none", desc="%s (%s)" % (t.name, sspec), spec=sspec, structure=structure)
            node = Node("struct", f=item, align=t.align, conformant=t.conformant, min_size=t.min_size)
            names = [name for name, _, _ in t.members]
            for name, sub, _ in t.members:
                if name is None:  # an anonymous union: its arms' fields join the struct's
                    u = self._union(sub, abbrev, spec, structure)
                    u.on = names.index(sub.on)
                    u.label = label
                    node.members.append(u)
                    continue
                child = self.expand(sub, "%s.%s" % (abbrev, snake(name)), name, spec, structure)
                child.name = name
                node.members.append(child)
            return node
        if isinstance(t, ndr.Pointer):
            inner = self.expand(t.subcon, abbrev, label, spec, structure)
            return Node("ptr", element=inner, ref=t.kind == "ref", top=top and t.kind == "ref", align=4, min_size=4)
        if isinstance(t, ndr.ConfArray):
            if t.is_bytes:
                node = self._bytes(t.content, abbrev, label, spec, structure)
                node.varying, node.align, node.min_size = t.varying, 4, 4
                return node
            el = self.expand(t.element, abbrev, label, spec, structure)
            return Node("carray", element=el, varying=t.varying, align=4, min_size=4)
        if isinstance(t, ndr.WString):
            return Node("wstr", f=self._add(abbrev, label, "string", spec=spec, structure=structure, encoding="utf-16le"), align=4,
                        min_size=12)
        if isinstance(t, ndr.FixedWString):
            return Node("fwstr", f=self._add(abbrev, label, "string", spec=spec, structure=structure, encoding="utf-16le"), size=t.n,
                        align=2, min_size=2 * t.n)
        if isinstance(t, oaut.Bstr):
            return Node("bstr", f=self._add(abbrev, label, "string", spec=spec, structure=structure, encoding="utf-16le"), align=4,
                        min_size=4)
        if isinstance(t, oaut.SafeArray):
            if t.sf_type == 0x10:
                el = self._bytes(t.content, abbrev, label, spec, structure)
            else:
                el = self.expand(t.element, abbrev, label, spec, structure)
            return Node("safearray", element=el, sf_type=t.sf_type, align=4, min_size=4,
                        size=t.unit.size if t.unit is not None else 0)
        raise NotImplementedError("NDR type %r" % (t,))

    def _bytes(self, content, abbrev, label, spec, structure) -> Node:
        """A byte array: one bytes field, and the packed layout inside it when there is one."""
        return Node("carray", f=self._add(abbrev, label, "bytes", spec=spec, structure=structure), size=1,
                    decoder=self.model.decoder_for(content) if content is not None else None, content=content)

    def _union(self, u: ndr.Union, prefix: str, spec: str, structure: str) -> Node:
        node = Node("union", align=u.align, switch_size=u.switch_type.size, min_size=u.switch_type.size)
        for value, (name, t, _) in sorted(u.cases.items()):
            child = self.expand(t, "%s.%s" % (prefix, snake(name)), name, spec, structure)
            child.name = name
            node.arms.append((value, child))
        return node
