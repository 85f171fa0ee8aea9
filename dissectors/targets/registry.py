"""The targets `python -m dissectors` renders, in order. A target turns the protocols into
files, named relative to its own folder (the driver, dissectors.generate, says where that is);
adding one (a compiled plugin, say) means a Target here and a place in the driver."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

from dissectors.targets.docs import render_docs
from dissectors.targets.lua import render_lua
from dissectors.vocabulary.protocol import Protocol


@dataclass(frozen=True)
class Target:
    name: str
    render: Callable[[Sequence[Protocol]], Dict[str, str]]  # file name -> text
    shipped: bool  # its files ship with the package (the docs live in a checkout only)


def _lua(ps: Sequence[Protocol]) -> Dict[str, str]:
    return {"%s.lua" % p.name: render_lua(p) for p in ps}


def _docs(ps: Sequence[Protocol]) -> Dict[str, str]:
    return {"fields.md": render_docs(ps)}


TARGETS: List[Target] = [Target("lua", _lua, shipped=True), Target("docs", _docs, shipped=False)]
