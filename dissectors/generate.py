"""The compiler's driver: every registered protocol, through the model, into each registered
target's files (dissectors.targets.registry: dissectors/lua/<proto>.lua, docs/fields.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dissectors import definitions
from dissectors.plugin_paths import LUA_DIR
from dissectors.targets.registry import TARGETS
from dissectors.targets.templates import REPO_DIR
from dissectors.vocabulary.protocol import Protocol

DOCS_PATH = REPO_DIR / "docs" / "fields.md"


def places() -> Dict[str, Path]:
    """Where each target's files go (read at each call: a test may move them)."""
    return {"lua": LUA_DIR, "docs": DOCS_PATH.parent}


def protocols() -> List[Protocol]:
    return definitions.protocols()


def outputs(ps: Optional[Sequence[Protocol]] = None, shipped_only: bool = False) -> Dict[Path, str]:
    """Every target's files, rendered (only those that ship with the package, if asked)."""
    ps = list(ps) if ps is not None else protocols()
    where = places()
    files = {}
    for t in TARGETS:
        if t.shipped or not shipped_only:
            files.update({where[t.name] / name: text for name, text in t.render(ps).items()})
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
    for path, text in outputs(shipped_only=not (REPO_DIR / "templates").exists()).items():
        if not path.exists() or path.read_text() != text:
            bad.append(path)
    return bad
