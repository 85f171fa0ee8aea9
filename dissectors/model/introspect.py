"""Construct introspection: what the model asks of a construct tree (names, docs, rules,
integer shapes, bit widths, static offsets), in one place."""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

from construct import BitsInteger, BytesInteger, Enum, FlagsEnum, FormatField, Hex, Renamed, Struct, Switch, Transformed
from construct.core import Padded

from dissectors.vocabulary.wire import Checked, FieldName, Message, Named, Rule, Variants

_FMT_SIZE = {"B": 1, "H": 2, "I": 4, "L": 4, "Q": 8}


def iter_constructs(roots) -> Iterator:
    """Each construct reachable from `roots` once: struct fields, switch cases, variants,
    wrapped subcons and alternatives."""
    seen = set()
    stack = list(roots)
    while stack:
        sc = stack.pop()
        if sc is None or id(sc) in seen:
            continue
        seen.add(id(sc))
        yield sc
        stack.extend(getattr(sc, "subcons", []))
        if isinstance(sc, Switch):
            stack.extend(list(sc.cases.values()) + [sc.default])
        if isinstance(sc, Variants):
            stack.extend(v.subcon for v in sc.variants)
        stack.append(getattr(sc, "subcon", None))
        stack.append(getattr(sc, "otherwise", None))


def static_offset(msg: Message, path: str) -> Tuple[int, int]:
    """(offset, size) of a fixed-position field, e.g. "Header.RequestId" in a tunnel message."""
    sc, offset = msg.struct, 0
    for part in path.split("."):
        for sub in sc.subcons:
            name, _, inner = unwrap(sub)
            if name == part:
                sc = inner
                break
            offset += inner.sizeof()
        else:
            raise KeyError("%s has no field %s" % (msg.name, path))
    return offset, sc.sizeof()


def unwrap(sc) -> Tuple[str, str, Any]:
    name, doc = None, ""
    while isinstance(sc, (Renamed, Checked, Named)):
        if isinstance(sc, Renamed):
            name = name or sc.name
            doc = doc or (sc.docs or "")
        sc = sc.subcon
    return name, doc, sc


def rules_of(sc) -> List[Rule]:
    rules = []
    while isinstance(sc, (Renamed, Checked, Named)):
        if isinstance(sc, Checked):
            rules.extend(sc.rules)
        sc = sc.subcon
    return rules


def named_of(sc) -> Optional[FieldName]:
    """The shared filter name a field declares with Named, if any."""
    while isinstance(sc, (Renamed, Checked, Named)):
        if isinstance(sc, Named):
            return sc.field
        sc = sc.subcon
    return None


def int_shape(sc) -> Optional[Tuple[int, str]]:
    """(size, 'le'/'be') of a whole-byte integer construct, else None."""
    if isinstance(sc, FlagsEnum):
        return int_shape(sc.subcon)
    if isinstance(sc, FormatField) and sc.fmtstr[-1] in _FMT_SIZE:
        return _FMT_SIZE[sc.fmtstr[-1]], ("be" if sc.fmtstr[0] == ">" else "le")
    if isinstance(sc, BytesInteger) and isinstance(sc.length, int) and not sc.signed:
        return sc.length, ("le" if sc.swapped else "be")
    return None


def is_bitstruct(sc) -> bool:
    return isinstance(sc, Transformed) and isinstance(sc.subcon, Struct) and all(
        bit_width(unwrap(s)[2]) is not None for s in sc.subcon.subcons)


def bit_width(sc) -> Optional[int]:
    if isinstance(sc, Enum):
        sc = sc.subcon
    if isinstance(sc, Hex):
        sc = sc.subcon
    if isinstance(sc, BitsInteger) and isinstance(sc.length, int):
        return sc.length
    if type(sc).__name__ == "Flag" or sc.__class__.__name__ == "FlagClass":
        return 1
    if isinstance(sc, Padded) and isinstance(sc.length, int):
        return sc.length
    return None


def common_prefix(names: List[str]) -> str:
    if len(names) < 2:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    return p[: p.rfind("_") + 1]
