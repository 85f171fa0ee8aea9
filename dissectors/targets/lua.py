"""The Lua target: a protocol's model rendered into a Wireshark Lua plugin through
templates/lua/. The only module that knows Lua syntax besides those templates."""
from __future__ import annotations

import hashlib

import jinja2

from dissectors.model import build_model
from dissectors.model import expressions as X
from dissectors.model.bindings import CONTEXTS_CAP, RAW_CAP, Names
from dissectors.model.structs import ARRAY_CAP, Model
from dissectors.targets.templates import environment
from dissectors.vocabulary.ndr import MAX_ELEMENTS
from dissectors.vocabulary.protocol import Protocol

BUILD_MARK = "@BUILD@"  # replaced by the digest of the rendered plugin


def lua_str(s) -> str:
    """A Lua string literal; escapes keep generated files ASCII."""
    out = []
    for ch in str(s):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend("\\%d" % b for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


_OPS = {"!=": "~="}


def lua_expr(e) -> str:
    """A model expression (dissectors.model.expressions) as Lua over the decoder's locals: the
    captured values `v`, the request context `ctx`, the buffer `tvb`, cursor `off`, limit `lim`."""
    if isinstance(e, X.Value):
        return "v." + ".".join(e.path)
    if isinstance(e, X.RequestValue):
        return "reqval(ctx, %d)" % (e.index + 1)  # Lua tables count from 1
    if isinstance(e, X.Const):
        return ("true" if e.value else "false") if isinstance(e.value, bool) else str(e.value)
    if isinstance(e, X.BinOp):
        if e.op == "//":
            return "math.floor((%s) / (%s))" % (lua_expr(e.lhs), lua_expr(e.rhs))
        return "(%s %s %s)" % (lua_expr(e.lhs), _OPS.get(e.op, e.op), lua_expr(e.rhs))
    if isinstance(e, X.Not):
        return "not (%s)" % lua_expr(e.operand)
    if isinstance(e, X.AnyOf):
        return " or ".join(lua_expr(o) for o in e.operands)
    if isinstance(e, X.Unnamed):
        return "%s[%s] == nil" % (e.table, lua_expr(e.value))
    if isinstance(e, X.Shown):
        x = lua_expr(e.value)
        return ('%s[%s] or string.format("0x%%X", %s)' % (e.table, x, x)) if e.table else "tostring(%s)" % x
    if isinstance(e, X.BytesLeftAre):
        return "lim - off == %d" % e.size
    if isinstance(e, X.ZeroAt):
        return "peek_zero(tvb, off + %d, %d, lim)" % (e.offset, e.size)
    if isinstance(e, X.Always):
        return "true"
    raise NotImplementedError("expression %r" % (e,))


def _env() -> jinja2.Environment:
    env = environment("lua")
    env.filters["lua_str"] = lua_str
    env.filters["lua"] = lua_expr
    return env


def render_lua(p: Protocol, model: Model = None) -> str:
    model = model or build_model(p)

    def lua_path(path: str) -> str:
        return "{ %s }" % ", ".join(lua_str(part) for part in path.split("."))

    def show(d) -> str:
        if d.request:
            paths = "reqs = { %s }" % ", ".join(str(model.request_paths.index(tuple(x.split("."))) + 1) for x in d.paths)
        else:
            paths = "paths = { %s }" % ", ".join(lua_path(x) for x in d.paths)
        parts = [paths, "label = %s" % lua_str(d.label), "fmt = %s" % lua_str(d.fmt), "sep = %s" % lua_str(d.sep)]
        if d.names:
            parts.append("names = %s" % model.value_table(d.names))
        if d.hide:
            parts.append("hide = { %s }" % ", ".join("[%d] = true" % v for v in d.hide))
        if d.when:
            where = ("req = %d" % (model.request_paths.index(tuple(d.when[0].split("."))) + 1) if d.request
                     else "path = %s" % lua_path(d.when[0]))
            parts.append("when = { %s, set = { %s } }" % (where, ", ".join("[%d] = true" % v for v in sorted(d.when[1]))))
        if d.ranges:
            parts.append("ranges = { %s }" % ", ".join("{ %d, %d, %s }" % (lo, hi, lua_str(f)) for lo, hi, f in d.ranges))
        return "{ %s }" % ", ".join(parts)

    def _summary(s) -> str:
        f = model.fields[s.field]
        path = ", ".join(lua_str(part) for part in s.path.split("."))
        details = "{ %s }" % ", ".join(show(d) for d in s.details)
        return "{ { %s }, %s, %s }" % (path, model.value_table(f.values), details)

    # rendered now: the value tables they name are written at the top of the file
    rendered = {abbrev: _summary(s) for abbrev, s in p.summaries.items()}

    def summary(msg) -> str:
        return rendered.get(msg.abbrev, "nil") if msg is not None else "nil"

    def transaction(entry) -> str:
        tx = model.binding.transactions.get(entry.name)
        return "nil" if tx is None else "{ %d, %d, %s }" % (tx[0], tx[1], lua_str(tx[2]))

    fields = list(model.fields.values())
    for f in fields:  # flag_bits adds an item per set bit: the only display of flags this target has
        if any(not b.only_set for b in f.bits):
            raise ValueError("%s: its bits must show only when set (FieldDef.only_set) for the Lua target" % f.abbrev)
    template = _env().get_template("%s_binding.lua.j2" % p.binding)

    if p.status_names:
        model.value_table(p.status_names)  # declared before the template asks for its name
    if p.open_statistics:  # a test names a message the binding decodes, or the transport's own
        known = {m.abbrev for m in p.messages} | {"%s request" % p.binding, "%s response" % p.binding}
        for c in p.open_statistics.counters:
            for t in c.tests:
                if t.on not in known:
                    raise ValueError("%s: counter %s tests %r, which is none of %s" % (p.name, c.column, t.on, sorted(known)))
    # what a tap of the binding listens to: the frames of the transport that carries the messages
    tap_filter = {"smb2": "smb2", "dcerpc": "dcerpc"}.get(p.binding, p.name)
    kw = dict(proto=p, model=model, binding=model.binding, fields=fields, summary=summary, transaction=transaction, lua_path=lua_path,
              N=Names(p).keys(),
              tap_filter=tap_filter,
              cap=ARRAY_CAP, raw_cap=RAW_CAP, contexts_cap=CONTEXTS_CAP)
    if getattr(model, "ndr", None) is not None:
        kw.update(stubs=model.ndr.pairs(), max_elements=MAX_ELEMENTS, hresults=p.hresults, info_fields=p.info_fields)
    text = template.render(**kw)
    # The load guard's build id: a digest of everything else in the file.
    return text.replace(BUILD_MARK, hashlib.sha256(text.encode()).hexdigest()[:16])
