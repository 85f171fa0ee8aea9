"""The compiler's driver: every registered protocol, through the model, into each target's
files (dissectors/lua/<proto>.lua, docs/fields.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dissectors import definitions
from dissectors.plugin_paths import LUA_DIR
from dissectors.targets.docs import render_docs
from dissectors.targets.lua import render_lua
from dissectors.targets.templates import REPO_DIR
from dissectors.vocabulary.protocol import Protocol

DOCS_PATH = REPO_DIR / "docs" / "fields.md"


def protocols() -> List[Protocol]:
    return definitions.protocols()


def outputs(ps: Optional[Sequence[Protocol]] = None) -> Dict[Path, str]:
    ps = list(ps) if ps is not None else protocols()
    files = {LUA_DIR / ("%s.lua" % p.name): render_lua(p) for p in ps}
    files[DOCS_PATH] = render_docs(ps)
    return files


def write() -> List[Path]:
    written = []
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def stale() -> List[Path]:
    """Committed outputs that differ from a fresh render (docs only in a checkout)."""
    bad = []
    for path, text in outputs().items():
        if path == DOCS_PATH and not (REPO_DIR / "templates").exists():
            continue
        if not path.exists() or path.read_text() != text:
            bad.append(path)
    return bad
