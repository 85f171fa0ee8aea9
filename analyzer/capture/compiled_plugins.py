"""The compiled export plugins (python -m dissectors build --export-only) that analyze's tshark
loads instead of the Lua plugins, where one is built for that tshark and current: tshark then
takes the analyzer's fields from C, with the same rows (tests/test_c_target.py compares them).

tshark loads a compiled plugin only from a plugin folder, and as root from none of the personal
ones, so: not as root, and through the private HOME analyze gives tshark, where the plugin is
linked in. ANALYZE_PLUGINS=lua keeps the Lua plugins whatever is built; ANALYZE_PLUGINS=c
requires a compiled one of each protocol and says which is missing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List

from dissectors import plugin_paths

FORCE = "ANALYZE_PLUGINS"  # "lua": never the compiled ones; "c": always, or an error


class NoCompiledPlugin(Exception):
    pass


def series(version) -> str:
    return "%d.%d" % tuple(version[:2])


def usable(tshark) -> Dict[str, Path]:
    """proto -> its compiled export plugin, for the protocols that have a current one for this tshark."""
    mode = os.environ.get(FORCE, "").lower()
    if sys.platform.startswith("win") or mode == "lua":
        return {}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if mode == "c":
            raise NoCompiledPlugin("%s=c: tshark run as root loads no compiled plugin; run analyze as another user"
                                   % FORCE)
        return {}  # root: tshark loads no personal plugin
    found = {}
    for lua in plugin_paths.lua_paths():
        so = plugin_paths.export_plugin(lua.stem, series(tshark.version))
        if so is not None:
            found[lua.stem] = so
    missing = [lua.stem for lua in plugin_paths.lua_paths() if lua.stem not in found]
    if mode == "c" and missing:
        raise NoCompiledPlugin("%s=c: no current compiled export plugin of %s for tshark %s in %s (build them: python -m "
                               "dissectors build --export-only)" % (FORCE, " and ".join(missing), series(tshark.version),
                                                                    plugin_paths.export_plugin_dir(series(tshark.version))))
    return found


def link_into(home: str, tshark, plugins: Dict[str, Path]) -> None:
    """The plugins linked where a tshark with this HOME looks for personal plugins."""
    if not plugins:
        return
    folder = plugin_paths.compiled_plugin_dir(series(tshark.version), {"HOME": home})
    folder.mkdir(parents=True, exist_ok=True)
    for proto, so in plugins.items():
        link = folder / so.name
        if not link.is_symlink() or os.readlink(link) != str(so):
            tmp = folder / (so.name + ".%d" % os.getpid())
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(so)
            os.replace(tmp, link)  # at once: a tshark starting beside sees the old link or the new


def notes(tshark) -> List[str]:
    """Why a compiled plugin that is there is not used (nothing to say when the Lua was asked for)."""
    if os.environ.get(FORCE, "").lower() == "lua":
        return []
    out = []
    for lua in plugin_paths.lua_paths():
        so = plugin_paths.export_plugin_dir(series(tshark.version)) / ("%s.so" % lua.stem)
        if so.is_file() and plugin_paths.export_plugin(lua.stem, series(tshark.version)) is None:
            out.append("note: %s was built from another version of the definitions; analyze uses the Lua plugin "
                       "(rebuild: python -m dissectors build --export-only)" % so)
        elif so.is_file() and hasattr(os, "geteuid") and os.geteuid() == 0:
            out.append("note: %s is not used: tshark run as root loads no compiled plugin; analyze uses the Lua "
                       "plugin (run analyze as another user to use it)" % so)
    return out
