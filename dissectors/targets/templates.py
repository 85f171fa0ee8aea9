"""Where the targets' jinja2 templates live: templates/ in a checkout, the installed copy
(dissectors/_templates) otherwise."""
from __future__ import annotations

from pathlib import Path

import jinja2

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKAGE_DIR.parent


def template_dir() -> Path:
    """The folder holding one subfolder of templates per target."""
    for d in (REPO_DIR / "templates", PACKAGE_DIR / "_templates"):
        if d.is_dir() and any(d.glob("*/*.j2")):
            return d
    raise FileNotFoundError("templates/ not found beside the dissectors package")


def environment(target: str) -> jinja2.Environment:
    """The templates of one target (templates/<target>/)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir() / target)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False, lstrip_blocks=False)
