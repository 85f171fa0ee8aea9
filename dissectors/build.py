"""`python -m dissectors build`: the C target (dissectors/targets/c.py) compiled against the
installed Wireshark's development files, for that exact version, into Wireshark's personal
plugin folder (plugins/<major.minor>/epan/), which tshark loads when run as a user other than
root (as root it loads no personal plugin).

The C target renders the port and SMB2 bindings (the SMB2 one without its statistics' GUI windows): of
the shipped protocols msrsvd builds, and clusprep (the DCE/RPC binding) is left to its Lua plugin,
said in a note. A Lua plugin of the same protocol installed beside it steps aside (its load
guard). With --export-only it builds, for the SMB2 binding, the plugin `analyze` loads instead
of the Lua one (only the fields it reads, the export preference's), into a folder of its own.
"""
from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from dissectors.vocabulary.protocol import Protocol

DEV_PACKAGES = "libwireshark-dev libglib2.0-dev pkg-config gcc"
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]


class BuildError(Exception):
    pass


def _pkg_config(*args: str) -> str:
    if shutil.which("pkg-config") is None:
        raise BuildError("pkg-config is not installed: apt-get install -y %s" % DEV_PACKAGES)
    res = subprocess.run(["pkg-config", *args, "wireshark"], capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError("Wireshark's development files are missing (%s): apt-get install -y %s"
                         % (res.stderr.strip().splitlines()[0] if res.stderr.strip() else "pkg-config wireshark failed",
                            DEV_PACKAGES))
    return res.stdout.strip()


def wireshark_version() -> str:
    """major.minor of the Wireshark the development files are for (its plugins' folder name)."""
    return ".".join(_pkg_config("--modversion").split(".")[:2])


def personal_plugin_dir(home: Optional[Path] = None) -> Path:
    """Where the installed Wireshark looks for a user's compiled dissector plugins (under `home`)."""
    from dissectors import plugin_paths

    return plugin_paths.compiled_plugin_dir(wireshark_version(), {"HOME": str(home)} if home else None)


def compile_command(cc: str, src: str, target: str, flags: Sequence[str], sanitize: bool = False) -> List[str]:
    """The compiler's command line for one plugin (flags: pkg-config's for wireshark)."""
    return [cc, "-shared", "-fPIC", "-O2", "-g", "-Wall", "-Werror=implicit-function-declaration",
            "-Wno-unused-function", *(SANITIZE if sanitize else []), "-o", target, src, *flags]


def compile_plugin(source: str, name: str, out_dir: Path, sanitize: bool = False) -> Path:
    """One plugin's C source compiled into out_dir/<name>.so."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BuildError("no C compiler: apt-get install -y %s" % DEV_PACKAGES)
    flags = _pkg_config("--cflags").split() + _pkg_config("--libs").split()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / (name + ".c")
        src.write_text(source)
        target = out_dir / (name + ".so")
        res = subprocess.run(compile_command(cc, str(src), str(target), flags, sanitize), capture_output=True,
                             text=True)
        if res.returncode != 0:
            raise BuildError("%s did not compile:\n%s" % (name, res.stderr[-4000:]))
    return target


def load_protocols(module: Optional[str]) -> List[Protocol]:
    """The shipped protocols, or the PROTOCOL of a module named by import path or file."""
    if module is None:
        from dissectors import generate

        return generate.protocols()
    if module.endswith(".py") or "/" in module:
        path = Path(module).resolve()
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = mod
        spec.loader.exec_module(mod)
    else:
        mod = importlib.import_module(module)
    if not hasattr(mod, "PROTOCOL"):
        raise BuildError("%s has no PROTOCOL" % module)
    return [mod.PROTOCOL]


def build(protocols: Sequence[Protocol], dest: Optional[Path] = None, sanitize: bool = False,
          export_only: bool = False, notes: Optional[List[str]] = None) -> List[Path]:
    """Render, compile and install each protocol's plugin; a protocol the C target cannot render yet
    stops the build with what it lacks. With export_only, the plugins `analyze` loads instead of
    the Lua ones (their export fields only) go to its private folder (plugin_paths.export_plugin_dir),
    each with the fingerprint of what it was built from; a protocol without one is left to its Lua
    plugin (said in `notes`)."""
    from dissectors import plugin_paths
    from dissectors.targets.c import BINDINGS, EXPORT_ONLY, render_c

    sources, refused = {}, []
    notes = notes if notes is not None else []
    for p in protocols:
        if export_only and p.binding not in EXPORT_ONLY:
            notes.append("%s: no export-only C plugin for the %s binding yet; analyze uses its Lua plugin"
                         % (p.name, p.binding))
            continue
        if not export_only and p.binding not in BINDINGS:  # the others are still built
            refused.append("%s: the C target does not render the %s binding yet (its Lua plugin, python -m "
                           "dissectors install, does all of it)" % (p.name, p.binding))
            continue
        try:
            sources[p.name] = render_c(p, export_only=export_only)
        except NotImplementedError as e:
            raise BuildError("%s (the Lua plugin, python -m dissectors install, does all of it)" % e) from None
        if not export_only and (p.response_times or p.open_statistics):
            notes.append("%s: its statistics' windows in Wireshark's Statistics menu are still the Lua plugin's only "
                         "(tshark -z %s works)" % (p.name, ", -z ".join("%s,%s" % (p.name, s.name) for s in
                                                                        (p.response_times, p.open_statistics) if s)))
    if refused and not sources:
        raise BuildError("; ".join(refused))
    notes.extend(refused)
    if export_only:
        out = Path(dest) if dest else plugin_paths.export_plugin_dir(wireshark_version())
    else:
        out = Path(dest) if dest else personal_plugin_dir()
    built = []
    for name, src in sources.items():
        so = compile_plugin(src, name, out, sanitize)
        if export_only:
            so.with_suffix(".so.fingerprint").write_text(plugin_paths.export_fingerprint(name) + "\n")
        built.append(so)
    return built
