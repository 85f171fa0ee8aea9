"""The C target: a compiled Wireshark plugin from the same model as the Lua (issue 26).

What it renders today: the fields (hf_register_info with value_string and range_string tables),
the expert items (ei_register_info) and the preferences of any protocol, and the decoders of its
structures (every decode step of dissectors.model.structs, checks included), reached through the
port binding or the SMB2 binding (exchanges and request values, stored errors, refusals, the
statistics' tshark -z reports; not their Statistics-menu windows). The DCE/RPC binding and the NDR interpreter are still the Lua target's alone:
render_c refuses a protocol that needs them.

Captured values live in a small bag per decoder (name -> integer or sub-bag), bounded by the
number of names the decoder's schema has (dissectors.model.captures); expressions are C over it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

import jinja2

from dissectors.model import build_model
from dissectors.model import expressions as X
from dissectors.model.bindings import CONTEXTS_CAP, RAW_CAP, Names
from dissectors.model import structs as S
from dissectors.model.structs import ARRAY_CAP, Model
from dissectors.targets.templates import environment
from dissectors.vocabulary.protocol import Protocol

BINDINGS = ("port", "smb2")  # the bindings this target renders (SMB2: without the statistics' GUI windows)
EXPORT_ONLY = ("smb2", "dcerpc")  # and those it renders as only the analyzer's export (render_c(export_only=True))
ENCODING = {"le": "ENC_LITTLE_ENDIAN", "be": "ENC_BIG_ENDIAN"}
# What the SMB2 binding reads of each PDU's bytes beside its smb2.cmd instead of asking Wireshark
# (templates/c/smb2_binding.c.j2, from_header and stream_of): fields on every SMB2 frame, costly
# to have built
SMB2_FROM_BYTES = ("response", "ntstatus", "msgid", "session", "fid", "stream")
# What the DCE/RPC export does not read: a call's times come from the frame (pinfo), the native
# path's object and padding are the Lua's alone
DCERPC_EXPORT_UNREAD = ("time", "object", "pad")
FT = {"uint8": "FT_UINT8", "uint16": "FT_UINT16", "uint24": "FT_UINT24", "uint32": "FT_UINT32",
      "uint64": "FT_UINT64", "int8": "FT_INT8", "int16": "FT_INT16", "int32": "FT_INT32", "int64": "FT_INT64",
      "bool": "FT_BOOLEAN", "string": "FT_STRING", "guid": "FT_GUID", "bytes": "FT_BYTES", "none": "FT_NONE",
      "framenum": "FT_FRAMENUM", "relative_time": "FT_RELATIVE_TIME"}


def c_str(s: str) -> str:
    """A C string literal (UTF-8 bytes, escaped)."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\%03o" % b)
    return '"%s"' % "".join(out)


class CapturedNames:
    """Captured names as C enumerators: N_<name>."""

    def __init__(self, model: Model):
        names = sorted({n for scope in model.captures.of.values() for n in scope})
        for n in names:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n):
                raise NotImplementedError("captured name %r is not a C identifier" % n)
        self.all = names
        self.most = max([len(s) for s in model.captures.of.values()] + [1])


def c_expr(e, model: Model) -> str:
    """A model expression as C over the decoder's bag `v` (gint64 arithmetic, as Lua's numbers)."""
    if isinstance(e, X.Value):
        x = "v"
        for part in e.path[:-1]:
            x = "cv_rec(st, %s, N_%s)" % (x, part)
        return "cv_int(st, %s, N_%s)" % (x, e.path[-1])
    if isinstance(e, X.RequestValue):  # the port binding matches no requests: none is known (Lua's nil)
        return "cv_request(st, %d)" % e.index
    if isinstance(e, X.Const):
        return ("TRUE" if e.value else "FALSE") if isinstance(e.value, bool) else "G_GINT64_CONSTANT(%d)" % e.value
    if isinstance(e, X.BinOp):
        lhs, rhs = c_expr(e.lhs, model), c_expr(e.rhs, model)
        if e.op == "//":
            return "cv_floordiv(st, %s, %s)" % (lhs, rhs)
        if e.op == "%":
            return "cv_mod(st, %s, %s)" % (lhs, rhs)
        return "(%s %s %s)" % (lhs, e.op, rhs)
    if isinstance(e, X.Not):
        return "!(%s)" % c_expr(e.operand, model)
    if isinstance(e, X.AnyOf):
        return "(%s)" % " || ".join(c_expr(o, model) for o in e.operands)
    if isinstance(e, X.Unnamed):
        return "(try_val_to_str((guint32)%s, %s) == NULL)" % (c_expr(e.value, model), e.table)
    if isinstance(e, X.Shown):
        x = c_expr(e.value, model)
        if e.table:
            return "shown_named(st->pinfo, %s, %s)" % (x, e.table)
        return "shown_number(st->pinfo, %s)" % x
    if isinstance(e, X.BytesLeftAre):
        return "(lim - off == %d)" % e.size
    if isinstance(e, X.ZeroAt):
        return "peek_zero(tvb, off + %d, %d, lim)" % (e.offset, e.size)
    if isinstance(e, X.Always):
        return "TRUE"
    raise NotImplementedError("expression %r" % (e,))


def c_format(fmt: str) -> str:
    """A Lua string.format of one integer as a C format literal for a gint64."""
    parts = re.split(r"(%[-0-9.]*[dxXu])", fmt)
    out = []
    for part in parts:
        if re.fullmatch(r"%[-0-9.]*[dxXu]", part):
            out.append('"%s" G_GINT64_MODIFIER "%s"' % (part[:-1], part[-1]))
        elif part:
            if "%" in part.replace("%%", ""):
                raise NotImplementedError("format %r: only integer conversions" % fmt)
            out.append(c_str(part))
    return " ".join(out) or '""'


@dataclass
class Detail:
    """One Show of a Summary, ready for the C template."""

    paths: List[List[str]]  # each path tried in order (names); empty when it reads the request
    request: bool
    reqs: List[int]  # when it reads the request: the model's request_paths tried in order
    when_req: Optional[int]  # ... and the request path `when` reads
    prefix: str  # sep and label, as the Lua joins them
    names: Optional[str]  # the value table's name
    ranges: List[Tuple[int, int, str]]  # lo, hi, C format of x - lo
    fmt: str  # C format
    hide: List[int]
    when: Optional[Tuple[List[str], List[int]]]  # the path (this message's) and the values that show it


def details(model: Model, s) -> List[Detail]:
    out = []
    index = lambda path: model.request_paths.index(tuple(path.split(".")))  # noqa: E731
    for d in s.details:
        when = None
        if d.when:
            when = ([] if d.request else d.when[0].split("."), sorted(d.when[1]))
        out.append(Detail(paths=[] if d.request else [p.split(".") for p in d.paths], request=d.request,
                          reqs=[index(p) for p in d.paths] if d.request else [],
                          when_req=index(d.when[0]) if d.request and d.when else None,
                          prefix=d.sep + (d.label + " " if d.label else ""),
                          names=model.value_table(d.names) if d.names else None,
                          ranges=[(lo, hi, c_format(f)) for lo, hi, f in d.ranges], fmt=c_format(d.fmt),
                          hide=list(d.hide), when=when))
    return out


def c_bytes(b: bytes) -> str:
    return '"%s"' % "".join("\\x%02x" % x for x in b)


def _env() -> jinja2.Environment:
    env = environment("c")
    env.filters["c_str"] = c_str
    env.filters["c_bytes"] = c_bytes
    return env


def render_c(p: Protocol, model: Model = None, export_only: bool = False) -> str:
    """One protocol as a C plugin source file. With export_only, a plugin that adds only what
    `analyze` reads of it (its export preference's fields) and decodes nothing."""
    if export_only and p.binding not in EXPORT_ONLY:
        raise NotImplementedError("%s: the C target renders an export-only plugin for the %s binding only, not %s"
                                  % (p.name, "/".join(EXPORT_ONLY), p.binding))
    if not export_only and p.binding not in BINDINGS:
        raise NotImplementedError("%s: the C target renders the %s binding only so far, not %s%s"
                                  % (p.name, "/".join(BINDINGS), p.binding,
                                     " (its export for analyze: --export-only)" if p.binding in EXPORT_ONLY else ""))
    model = model or build_model(p)
    if export_only and p.binding == "smb2" and model.binding.export is None:
        raise NotImplementedError("%s: no export preference (ExportForAnalyzer) to render" % p.name)
    if p.status_names:
        model.value_table(p.status_names)  # declared before the template asks for its name
    shows = {abbrev: details(model, s) for abbrev, s in p.summaries.items()}  # names their tables first
    names = CapturedNames(model)
    env = _env()
    env.filters["c"] = lambda e: c_expr(e, model)
    return env.get_template("plugin.c.j2").render(
        proto=p, model=model, fields=list(model.fields.values()), subtrees=_subtrees(model), names=names, FT=FT,
        ENC=ENCODING, cap=ARRAY_CAP, N=Names(p).keys(), binding=model.binding, raw_cap=RAW_CAP,
        contexts_cap=CONTEXTS_CAP, summaries=p.summaries, details=shows, export_only=export_only,
        unwanted=_unwanted(p, export_only), stubs=model.ndr.pairs() if getattr(model, "ndr", None) else {})


def _unwanted(p: Protocol, export_only: bool) -> tuple:
    """The binding's reads the rendered plugin does not ask Wireshark for."""
    if p.binding == "smb2":
        return () if export_only else SMB2_FROM_BYTES
    return DCERPC_EXPORT_UNREAD if p.binding == "dcerpc" else ()


def _subtrees(model: Model) -> list:
    """The fields whose items hold others (a structure, a flags word, a BitStruct): one ett each."""
    keys = {f.key for f in model.fields.values() if f.ftype == "none"}

    def walk(steps):
        for s in steps:
            items = s.items if isinstance(s, S.Run) else [s.element] if isinstance(s, S.ArrayStep) else []
            keys.update(it.f.key for it in items if isinstance(it, S.Scalar) and (it.flags or it.children))
            for inner in (getattr(s, "steps", None), getattr(s, "then", None), getattr(s, "otherwise", None)):
                if inner:
                    walk(inner)

    for d in model.decoders.values():
        walk(d.steps)
    return sorted(keys)

