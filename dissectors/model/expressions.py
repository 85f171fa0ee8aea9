"""Expressions as data: what a decode step computes or tests, in no target's syntax.

The model builds these from construct's `this` expressions, from layout predicates and
from rules; each target renders them (dissectors.targets.lua.lua_expr for Lua).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union


@dataclass(frozen=True)
class Value:
    """A value already decoded in this message (a captured field), by its path."""

    path: Tuple[str, ...]


@dataclass(frozen=True)
class RequestValue:
    """A value of the matched request (this._params.request.<path>), by its 0-based position
    in the model's request_paths."""

    index: int


@dataclass(frozen=True)
class Const:
    value: Union[int, bool]


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * // % == != < > <= >=
    lhs: "Expr"
    rhs: "Expr"


@dataclass(frozen=True)
class Not:
    operand: "Expr"


@dataclass(frozen=True)
class AnyOf:
    operands: Tuple["Expr", ...]


@dataclass(frozen=True)
class Unnamed:
    """True when `value` has no name in the value table `table`."""

    table: str
    value: "Expr"


@dataclass(frozen=True)
class Shown:
    """A value as an expert item shows it: its name from `table` when it has one, else its number."""

    value: "Expr"
    table: Optional[str] = None


@dataclass(frozen=True)
class BytesLeftAre:
    """True when exactly `size` bytes remain in the structure (a layout chosen by size)."""

    size: int


@dataclass(frozen=True)
class ZeroAt:
    """True when the `size` bytes at `offset` from the cursor are present and all zero."""

    offset: int
    size: int


@dataclass(frozen=True)
class Always:
    pass


Expr = Union[Value, RequestValue, Const, BinOp, Not, AnyOf, Unnamed, Shown, BytesLeftAre, ZeroAt, Always]


def equals_any(x: Expr, values) -> Expr:
    terms = tuple(BinOp("==", x, Const(v)) for v in values)
    return terms[0] if len(terms) == 1 else AnyOf(terms)
