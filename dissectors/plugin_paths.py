"""Where the plugins are: the generated Lua files of this checkout, and the copies installed where
Wireshark loads them. generate writes the first, install copies them to the second, and the
analyzer runs tshark with the first (and on Windows minds the second); all ask here.

Where Wireshark looks (wsutil/filesystem.c; on Linux measured with `tshark -G folders`):

  Linux, macOS  plugins        $HOME/.local/lib/wireshark/plugins
                configuration  $XDG_CONFIG_HOME/wireshark (default ~/.config/wireshark), or a
                               legacy ~/.wireshark when only that one exists
  Windows       plugins        %APPDATA%\\Wireshark\\plugins
                configuration  %APPDATA%\\Wireshark

WIRESHARK_CONFIG_DIR moves the configuration. On Linux and macOS it leaves the plugin folder
where HOME puts it; on Windows the plugin folder is a subfolder of the configuration folder,
so it moves with it.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional

from dissectors import definitions

LUA_DIR = Path(__file__).resolve().parent / "lua"  # dissectors/lua/<proto>.lua


def lua_paths() -> List[Path]:
    """The generated plugin of each registered protocol."""
    return [LUA_DIR / ("%s.lua" % p.name) for p in definitions.protocols()]


def _windows() -> bool:
    return sys.platform.startswith("win")


def _home(environ: Mapping[str, str]) -> Path:
    """The home folder glib's g_get_home_dir() reports: HOME, else the password database."""
    home = environ.get("HOME")
    if home:
        return Path(home)
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return Path.home()


def config_home(environ: Optional[Mapping[str, str]] = None) -> Path:
    """glib's g_get_user_config_dir() on Linux and macOS: XDG_CONFIG_HOME, else ~/.config."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("XDG_CONFIG_HOME") or _home(environ) / ".config")


def _windows_config(environ: Mapping[str, str]) -> Path:
    if environ.get("APPDATA"):
        return Path(environ["APPDATA"]) / "Wireshark"
    if environ.get("USERPROFILE"):
        return Path(environ["USERPROFILE"]) / "Application Data" / "Wireshark"
    return Path("C:\\") / "Wireshark"


def personal_config_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """Wireshark's "Personal configuration" folder: the default profile, holding disabled_protos."""
    environ = os.environ if environ is None else environ
    if environ.get("WIRESHARK_CONFIG_DIR"):
        return Path(environ["WIRESHARK_CONFIG_DIR"])
    if _windows():
        return _windows_config(environ)
    xdg = config_home(environ) / "wireshark"
    legacy = _home(environ) / ".wireshark"
    if not xdg.is_dir() and legacy.is_dir():
        return legacy
    return xdg


def personal_plugin_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    """Wireshark's "Personal Lua Plugins" folder (Help > About Wireshark > Folders)."""
    environ = os.environ if environ is None else environ
    if _windows():
        return personal_config_dir(environ) / "plugins"
    return _home(environ) / ".local" / "lib" / "wireshark" / "plugins"


@dataclass
class InstalledCopy:
    path: Path  # the copy in the plugin folder
    source: Path  # the checkout's generated file
    current: bool  # byte for byte the checkout's

    @property
    def stale(self) -> bool:
        return not self.current


def installed_copies(dest=None) -> List[InstalledCopy]:
    """Our plugin files present in the personal plugin folder (or dest), each compared with the
    checkout's generated file."""
    dest = Path(dest) if dest else personal_plugin_dir()
    out = []
    for src in lua_paths():
        path = dest / src.name
        try:
            if not path.is_file():
                continue
            current = src.is_file() and path.read_bytes() == src.read_bytes()
        except OSError:
            current = False
        out.append(InstalledCopy(path, src, current))
    return out


def compiled_plugin_dir(series: str, environ: Optional[Mapping[str, str]] = None) -> Path:
    """Where Wireshark <series> (major.minor) looks for a user's compiled dissector plugins."""
    return personal_plugin_dir(environ) / series / "epan"


# -- compiled export plugins (python -m dissectors build --export-only) ------------------------
# Only `analyze` loads them, through the private HOME it gives tshark: never Wireshark's personal
# folder, where an export-only plugin would clash with the Lua one and decode nothing.
def export_plugin_dir(series: str, environ: Optional[Mapping[str, str]] = None) -> Path:
    """Where the export plugins built for Wireshark <series> (major.minor) live."""
    environ = os.environ if environ is None else environ
    cache = Path(environ.get("XDG_CACHE_HOME") or _home(environ) / ".cache")
    return cache / "msrsvd-clusprep" / "export-plugins" / series


@functools.lru_cache(maxsize=None)  # analyze asks for every tshark it starts; the files do not change meanwhile
def export_fingerprint(proto: str) -> str:
    """What an export plugin of `proto` was built from: its Lua plugin (the model, rendered) and
    the C target's code and templates. A plugin whose recorded fingerprint differs is stale."""
    import hashlib

    from dissectors.targets.templates import template_dir

    h = hashlib.sha256()
    parts = [LUA_DIR / ("%s.lua" % proto), Path(__file__).resolve().parent / "targets" / "c.py"]
    parts += sorted((template_dir() / "c").glob("*.j2"))
    for p in parts:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def export_plugin(proto: str, series: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The export plugin of `proto` for Wireshark <series>, if one is built and current."""
    so = export_plugin_dir(series, environ) / ("%s.so" % proto)
    stamp = so.with_suffix(".so.fingerprint")
    try:
        if so.is_file() and stamp.read_text().strip() == export_fingerprint(proto):
            return so
    except OSError:
        pass
    return None
