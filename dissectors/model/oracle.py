"""The oracle: the model's walk over a Python parse result, giving the (field name, value)
pairs a target's dissector must report, in order, for the differential tests.

It reads the same definitions as the generator, so it checks the targets against the
model, not the model against the spec: the references outside the project (impacket,
Wireshark's built-in dissectors, the specs' examples) do that.
"""
from __future__ import annotations

import uuid
from typing import Any, List, Tuple

from construct import (Array, Bytes, Enum, FlagsEnum, FixedSized, GreedyBytes, GreedyRange, Hex, Pass, Struct, Switch,
                       evaluate)

from dissectors.model.ndr import NdrModel, Node, Stub
from dissectors.model.introspect import bit_width, common_prefix, is_bitstruct, named_of, unwrap
from dissectors.model.structs import Model, snake
from dissectors.vocabulary.wire import (IfEquals, Message, Overlay, Parts, Present, Utf16String, Variants, When,
                                        int_value)


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


def flatten(model: Model, msg: Message, value, **params) -> List[Tuple[str, Any]]:
    """(field name, value) pairs in the order a generated dissector adds them.

    `params` are the parse's keyword arguments (e.g. request=...), which expressions
    read as `this._params`.
    """
    from construct import Container

    out: List[Tuple[str, Any]] = []
    _flatten_struct(model, msg.struct, msg, value, out, top=True, params=Container(params))
    return out


def _eval(expr, ctx, params):
    from construct import Container

    view = Container(ctx) if isinstance(ctx, dict) else Container()
    view._params = params
    try:
        return evaluate(expr, view)
    except (KeyError, AttributeError, TypeError):
        return None  # a missing request or field: the dissector takes the default too


def _flatten_struct(model, sc, owner, value, out, top=False, params=None):
    if top or id(sc) in model._by_struct:
        out.append(("%s.%s" % (model.proto, owner.abbrev), None))
    if isinstance(sc, Variants):
        name = value["_variant"]
        v = next(v for v in sc.variants if v.name == name)
        out.append(("%s.%s.layout" % (model.proto, owner.namespace), name))
        _flatten_struct(model, v.subcon, owner, value, out, params=params)
        return
    if not isinstance(sc, Struct):
        _flatten_item(model, "Value", sc, owner, value, out, value, params)
        return
    for sub in sc.subcons:
        name, doc, inner = unwrap(sub)
        if inner is Pass:
            continue
        _flatten_item(model, name, inner, owner, value[name], out, value, params, named_of(sub))


def _flatten_item(model, name, inner, owner, v, out, ctx, params=None, named=None):
    abbrev = ("%s.%s" % (model.proto, named.name) if named is not None
              else "%s.%s.%s" % (model.proto, owner.namespace, snake(name)))
    if isinstance(inner, Parts):
        whole = int_value(v)
        out.append((abbrev, whole))
        for part in inner.parts:
            shift = (part.mask & -part.mask).bit_length() - 1
            out.append(("%s.%s" % (model.proto, part.field.name) if part.field is not None
                        else "%s.%s" % (abbrev, snake(part.name)), (whole & part.mask) >> shift))
        return
    if isinstance(inner, Hex):
        inner = inner.subcon
    if id(inner) in model._by_struct:
        _flatten_struct(model, inner, model._by_struct[id(inner)], v, out, params=params)
        return
    if isinstance(inner, (Present, When, Overlay)):  # parsed to None when absent
        if v is not None:
            _flatten_item(model, name, inner.subcon, owner, v, out, ctx, params)
        return
    if isinstance(inner, IfEquals):
        sc = inner._pick(ctx)
        if sc is not None:
            _flatten_item(model, name, sc, owner, v, out, ctx, params)
        return
    if isinstance(inner, Switch):
        key = _eval(inner.keyfunc, ctx, params)
        sc = inner.cases.get(key, inner.default)
        if sc is None or sc is Pass:
            return
        if isinstance(sc, Switch):  # a switch within a switch reads the same context
            _flatten_item(model, name, sc, owner, v, out, ctx, params)
            return
        if id(sc) in model._by_struct:
            _flatten_struct(model, sc, model._by_struct[id(sc)], v, out, params=params)
        else:
            _flatten_struct(model, sc, owner, v, out, params=params)
        return
    if isinstance(inner, (Struct, Variants)):
        _flatten_struct(model, inner, owner, v, out, params=params)
        return
    if isinstance(inner, FixedSized):
        _flatten_item(model, name, inner.subcon, owner, v, out, ctx, params)
        return
    if isinstance(inner, (Array, GreedyRange)):
        for el in v:
            if id(inner.subcon) in model._by_struct or isinstance(inner.subcon, (Struct, Variants)):
                _flatten_item(model, name, inner.subcon, owner, el, out, ctx, params)
            else:
                out.append((abbrev, _plain(el)))
        return
    if isinstance(inner, FlagsEnum):
        total = sum(mask for flag, mask in inner.flags.items() if v.get(flag))
        out.append((abbrev, total))
        prefix = common_prefix(list(inner.flags))
        for flag, mask in inner.flags.items():
            bit = "%s.%s" % (abbrev, snake(flag[len(prefix):]))
            if v.get(flag) or not model.fields[bit].only_set:  # the model says which bits show when clear
                out.append((bit, bool(v.get(flag))))
        return
    if is_bitstruct(inner):
        subs = inner.subcon.subcons
        widths = [bit_width(unwrap(s)[2]) for s in subs]
        whole, shift = 0, sum(widths)
        parts = []
        for sub, width in zip(subs, widths):
            cname, _, cinner = unwrap(sub)
            cnamed = named_of(sub)
            shift -= width
            if cname is None:
                continue
            x = int_value(v[cname])
            whole |= int(x) << shift
            if cnamed is not None:
                parts.append(("%s.%s" % (model.proto, cnamed.name), int(x)))
            elif width == 1 and not isinstance(cinner, Enum):
                bit = "%s.%s" % (abbrev, snake(cname))
                if x or not model.fields[bit].only_set:
                    parts.append((bit, bool(x)))
            else:
                parts.append(("%s.%s" % (abbrev, snake(cname)), int(x)))
        out.append((abbrev, whole))
        out.extend(parts)
        return
    if isinstance(inner, Utf16String) and evaluate(inner.length, ctx) == 0:
        return  # the dissector shows no empty string
    if (inner is GreedyBytes or isinstance(inner, Bytes)) and v == b"":
        return  # nor empty variable-length bytes
    out.append((abbrev, _plain(v)))


# -- the Python view of the same fields ------------------------------------------------------
def flatten_stub(nm: NdrModel, stub: Stub, value) -> List[Tuple[str, Any]]:
    """(field, value) pairs the dissector shows for a parsed stub, NDR plumbing left out."""
    out: List[Tuple[str, Any]] = [(stub.node.f.abbrev, None)]
    for child in stub.node.members:
        _flat(nm, child, value.get(child.name), out)
    return out


def _flat(nm, node: Node, v, out):
    k = node.kind
    if k == "prim":
        out.append((node.f.abbrev, v))
        if node.flags:
            for bit in node.f.bits:
                if v & bit.mask or not bit.only_set:
                    out.append((bit.abbrev, bool(v & bit.mask)))
    elif k in ("guid", "wstr", "fwstr"):
        out.append((node.f.abbrev, v))
    elif k == "bstr":
        if v is not None:
            out.append((node.f.abbrev, v))
    elif k == "struct":
        out.append((node.f.abbrev, None))
        for m in node.members:
            if m.kind == "union":
                for value, arm in m.arms:
                    if arm.name in v:
                        _flat(nm, arm, v[arm.name], out)
            else:
                _flat(nm, m, v[m.name], out)
    elif k == "ptr":
        if v is not None:
            _flat(nm, node.element, v, out)
    elif k == "carray":
        if node.f is not None:  # bytes
            if len(v):
                out.append((node.f.abbrev, bytes(v)))
                if node.content is not None:
                    try:
                        out.extend(flatten(nm.model, node.content, node.content.parse(bytes(v))))
                    except Exception:  # noqa: BLE001 - a malformed buffer shows what parsed, as a generated dissector does
                        pass
        else:
            for x in v:
                _flat(nm, node.element, x, out)
    elif k == "safearray":
        if v is None:
            return
        out.append(("%s.safearray" % nm.proto, None))
        if node.sf_type == 0x10:
            _flat(nm, node.element, v, out)
        else:
            for x in v:
                if node.sf_type == 0x24:
                    out.append(("%s.brecord" % nm.proto, None))
                _flat(nm, node.element, x, out)
    else:
        raise NotImplementedError(k)
