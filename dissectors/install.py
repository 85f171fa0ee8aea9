"""Put the generated plugins where Wireshark loads them, and take them away again.

Where Wireshark looks for them is dissectors.plugin_paths'.

The built-in `rsvd` is disabled through the profile's `disabled_protos`: one protocol filter
name per line, a line that starts with `#` is a comment (Wireshark skips it; checked with tshark 4.0), and a last line without a
newline is ignored. Install appends a comment line of its own and `rsvd` below it; uninstall
removes exactly those two lines. When Wireshark itself rewrites the file (Analyze > Enabled
Protocols > OK) the comment is lost, and uninstall then leaves `rsvd` alone and says so.

Colouring rules (Protocol.color_rules: MS-RSVD errors, ClusPrep failures) go first into the
profile's colorfilters; see COLORFILTERS below.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from dissectors import definitions
from dissectors.plugin_paths import installed_copies, lua_paths, personal_config_dir, personal_plugin_dir

DISABLED_PROTOS = "disabled_protos"
BUILTIN = "rsvd"
MARKER = ("# added by `python -m dissectors install`: msrsvd replaces the built-in rsvd; "
          "`python -m dissectors uninstall` removes this line and the next")
VERIFY = 'tshark -G protocols | grep -E "msrsvd|clusprep"'


class InstallError(Exception):
    """A folder or file we cannot write or read: the message names it (exit code 2)."""


@dataclass
class Action:
    """One thing install or uninstall did (or found already done)."""

    what: str
    path: Path

    def __str__(self) -> str:
        return "%s %s" % (self.what, self.path)


# --- disabled_protos -----------------------------------------------------------------------

def _line_name(line: str) -> Optional[str]:
    """The protocol a disabled_protos line names, read the way Wireshark reads it
    (epan/disabled_protos.c): a name ended by '#' is a comment, not a protocol."""
    s = line.lstrip()
    name = ""
    for ch in s:
        if ch.isspace():
            break
        if ch == "#":
            return None
        name += ch
    return name or None


def _our_lines(lines: List[str]) -> List[int]:
    """Indexes of the lines install added: each marker, and the `rsvd` right after it."""
    ours = []
    for i, line in enumerate(lines):
        if line.strip() == MARKER:
            ours.append(i)
            if i + 1 < len(lines) and lines[i + 1].strip() == BUILTIN:
                ours.append(i + 1)
    return ours


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""
    except OSError as e:
        raise InstallError("cannot read %s: %s" % (path, e.strerror or e)) from None


def _write(path: Path, text: str) -> None:
    """Write text whole or not at all (a temporary file renamed over the old one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not text.strip():
            if path.exists():
                path.unlink()
            return
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise InstallError("cannot write %s: %s" % (e.filename or path, e.strerror or e)) from None


def _disable_builtin(config_dir: Path) -> Action:
    path = config_dir / DISABLED_PROTOS
    text = _read(path)
    lines = text.splitlines(keepends=True)
    ours = _our_lines(lines)
    if len(ours) >= 2 and lines[ours[1]].strip() == BUILTIN:
        return Action("built-in rsvd already disabled (by an earlier install) in", path)
    kept = [line for i, line in enumerate(lines) if i not in ours]  # orphan markers
    if any(_line_name(line) == BUILTIN for line in kept):
        if kept != lines:
            _write(path, "".join(kept))
        return Action("built-in rsvd already disabled (by your own line, which uninstall keeps) in", path)
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"  # Wireshark ignores a last line without a newline
    _write(path, body + MARKER + "\n" + BUILTIN + "\n")
    return Action("disabled the built-in rsvd: added `rsvd` to", path)


def _enable_builtin(config_dir: Path) -> Action:
    """Remove the lines install added; a line of the user's stays."""
    path = config_dir / DISABLED_PROTOS
    text = _read(path)
    lines = text.splitlines(keepends=True)
    ours = _our_lines(lines)
    kept = [line for i, line in enumerate(lines) if i not in ours]
    removed = any(lines[i].strip() == BUILTIN for i in ours)
    if ours:
        _write(path, "".join(kept))
    if any(_line_name(line) == BUILTIN for line in kept):
        return Action("built-in rsvd stays disabled: install did not add its `rsvd` line (or Wireshark rewrote "
                      "the file since); remove it by hand or under Analyze > Enabled Protocols, in", path)
    if removed:
        return Action("re-enabled the built-in rsvd: removed the `rsvd` install added to", path)
    return Action("built-in rsvd is enabled; nothing to undo in", path)


# --- colorfilters -----------------------------------------------------------------------------
# The profile's colorfilters (View > Coloring Rules): one rule a line, `@name@filter@[fg][bg]`, the
# first rule a frame matches colours it, `#` starts a comment. A personal colorfilters replaces
# Wireshark's defaults (its global colorfilters) whole, so when there is none install writes the
# defaults below its own rules, after a COPIED comment; uninstall removes its rules (by name) and,
# when the rest is still that untouched copy, the file.
COLORFILTERS = "colorfilters"
COPIED = ("# added by `python -m dissectors install`: Wireshark's default colouring rules, copied from %s "
          "(this file replaces them); `python -m dissectors uninstall` removes the file while it holds only them")


def color_rules() -> List[str]:
    """Our colouring rules as colorfilters lines, from the definitions (Protocol.color_rules)."""
    rgb = lambda c: "[%d,%d,%d]" % tuple(c)  # noqa: E731
    return ["@%s@%s@%s%s" % (r.name, r.filter, rgb(r.foreground), rgb(r.background))
            for p in definitions.protocols() for r in p.color_rules]


def _rule_name(line: str) -> Optional[str]:
    s = line.strip().lstrip("!")
    return s.split("@")[1] if s.startswith("@") and s.count("@") >= 3 else None


def global_colorfilters(tshark: str = "tshark") -> Optional[Path]:
    """Wireshark's default colouring rules: colorfilters in its global configuration folder."""
    import subprocess
    try:
        out = subprocess.run([tshark, "-G", "folders"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Global configuration:"):
            path = Path(line.split(":", 1)[1].strip()) / COLORFILTERS
            return path if path.is_file() else None
    return None


def _add_colors(config_dir: Path, defaults: Optional[Path]) -> Action:
    path = config_dir / COLORFILTERS
    ours = color_rules()
    names = {_rule_name(r) for r in ours}
    if path.exists():
        lines = [line for line in _read(path).splitlines(keepends=True) if _rule_name(line) not in names]
        head = [line for line in lines if line.startswith("#")]
        rest = [line for line in lines if not line.startswith("#")]
    elif defaults is None:
        return Action("no colouring rules added (Wireshark's default colorfilters not found, and a colorfilters "
                      "file would replace them) for", path)
    else:
        head, rest = [COPIED % defaults + "\n"], [_read(defaults)]
    _write(path, "".join(head) + "".join(r + "\n" for r in ours) + "".join(rest))
    return Action("colouring rules %s first in" % ", ".join(sorted(names)), path)


def _remove_colors(config_dir: Path, defaults: Optional[Path]) -> Action:
    path = config_dir / COLORFILTERS
    if not path.exists():
        return Action("no colouring rules to remove in", path)
    names = {_rule_name(r) for r in color_rules()}
    lines = _read(path).splitlines(keepends=True)
    kept = [line for line in lines if _rule_name(line) not in names]
    if kept and kept[0].startswith(COPIED.split("%s")[0]) and defaults is not None and \
            "".join(kept[1:]) == _read(defaults):
        try:
            path.unlink()
        except OSError as e:
            raise InstallError("cannot remove %s: %s" % (path, e.strerror or e)) from None
        return Action("removed the colorfilters install wrote (Wireshark's defaults apply again):", path)
    if kept != lines:
        _write(path, "".join(kept))
        return Action("removed our colouring rules from", path)
    return Action("no colouring rules of ours in", path)


# --- install / uninstall ---------------------------------------------------------------------

def install(dest=None, config_dir=None, keep_builtin_rsvd: bool = False) -> List[Action]:
    """Copy the generated plugins into dest (default: the personal Lua plugin folder) and, unless
    keep_builtin_rsvd, disable the built-in rsvd in config_dir's disabled_protos (default: the
    personal configuration). Safe to repeat; with keep_builtin_rsvd an earlier install's
    `rsvd` line is taken out again."""
    dest = Path(dest) if dest else personal_plugin_dir()
    config_dir = Path(config_dir) if config_dir else personal_config_dir()
    actions = []
    sources = lua_paths()
    for src in sources:
        if not src.exists():
            raise InstallError("%s is missing: run python -m dissectors first" % src)
    before = {c.path: c.current for c in installed_copies(dest)} if dest.is_dir() else {}
    for src in sources:
        target = dest / src.name
        if before.get(target):
            actions.append(Action("unchanged", target))
            continue
        try:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        except OSError as e:
            raise InstallError("cannot write %s: %s" % (e.filename or target, e.strerror or e)) from None
        actions.append(Action("updated (was stale)" if target in before else "installed", target))
    if keep_builtin_rsvd:
        action = _enable_builtin(config_dir)
        if action.what.startswith("built-in rsvd is enabled"):
            action = Action("kept the built-in rsvd enabled (--keep-builtin-rsvd); not touched:", action.path)
        actions.append(action)
    else:
        actions.append(_disable_builtin(config_dir))
    actions.append(_add_colors(config_dir, global_colorfilters()))
    return actions


def uninstall(dest=None, config_dir=None) -> List[Action]:
    """Remove our plugin files from dest (default: the personal Lua plugin folder) and the
    `rsvd` line install added to config_dir's disabled_protos; nothing else."""
    dest = Path(dest) if dest else personal_plugin_dir()
    config_dir = Path(config_dir) if config_dir else personal_config_dir()
    actions = []
    for src in lua_paths():
        target = dest / src.name
        if not target.exists():
            actions.append(Action("not installed", target))
            continue
        try:
            target.unlink()
        except OSError as e:
            raise InstallError("cannot remove %s: %s" % (target, e.strerror or e)) from None
        actions.append(Action("removed", target))
    actions.append(_enable_builtin(config_dir))
    actions.append(_remove_colors(config_dir, global_colorfilters()))
    return actions
