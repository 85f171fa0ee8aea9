"""Compiled plugins (the C target) for every tshark of the matrix (tests/tsharks.py), each built
against that version's own development files: the host's gcc and pkg-config for the system 4.0
(as `python -m dissectors build` does), the chroot's for 4.4 and 4.6 (tests/wireshark/setup.sh
installs them there). A plugin goes into a HOME of the test's own, where that tshark, run as a
user other than root (as root it loads no personal plugin), finds it: for the system tshark a
folder in /tmp that `nobody` can read, for a chroot's a folder in the chroot's /tmp that
chroot_tshark.py's `wstest` gets as HOME (CHROOT_TSHARK_HOME). Test plumbing only: the real
user path is dissectors/build.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import tsharks
from dissectors import build, plugin_paths

SETUP = "bash tests/wireshark/setup.sh"


def _chroot(t: tsharks.Tshark) -> Optional[Path]:
    suite = tsharks.SERIES[t.series]
    return (tsharks.CHROOTS / suite).resolve() if suite else None


def missing(t: tsharks.Tshark) -> Optional[str]:
    """Why plugins cannot be compiled for t here (None: they can)."""
    root = _chroot(t)
    if root is None:
        if not (shutil.which("gcc") and shutil.which("pkg-config")
                and subprocess.run(["pkg-config", "--exists", "wireshark"]).returncode == 0):
            return "no gcc or no Wireshark development files on this machine (apt-get install -y %s)" \
                % build.DEV_PACKAGES
        return None
    if not (root / "usr" / "bin" / "gcc").exists() or not (root / "usr" / "bin" / "pkg-config").exists() or \
            _in(root, ["pkg-config", "--exists", "wireshark"]).returncode != 0:
        return "the %s chroot has no C build packages (%s) (run: %s)" % (tsharks.SERIES[t.series],
                                                                           build.DEV_PACKAGES, SETUP)
    return None


def _in(root: Path, argv: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", *argv],
                          capture_output=True, text=True, timeout=600)


@dataclass
class Home:
    """A HOME for one tshark's personal plugins."""

    tshark: tsharks.Tshark
    host: Path  # the folder, as this process sees it
    inside: str  # the same folder as that tshark sees it
    root: Optional[Path]  # the chroot, or None for the system tshark

    def sibling(self, name: str) -> "Home":
        """Another HOME beside this one (removed with it)."""
        host = self.host.parent / name
        host.mkdir(mode=0o755, exist_ok=True)
        return Home(self.tshark, host, str(Path(self.inside).parent / name), self.root)

    def plugin_dir(self) -> Path:
        """plugins/<major.minor>/epan/ (the host path), for the version of the files it compiles with."""
        if self.root is None:
            return build.personal_plugin_dir(self.host)
        version = _in(self.root, ["pkg-config", "--modversion", "wireshark"]).stdout.strip()
        return plugin_paths.compiled_plugin_dir(".".join(version.split(".")[:2]), {"HOME": str(self.host)})

    def compile(self, source: str, name: str, sanitize: bool = False) -> Path:
        """name.so from source, in this HOME's plugin folder; readable by the user tshark runs as."""
        out = self.plugin_dir()
        if self.root is None:
            so = build.compile_plugin(source, name, out, sanitize)
        else:
            out.mkdir(parents=True, exist_ok=True)
            src = self.host / (name + ".c")
            src.write_text(source)
            so = out / (name + ".so")
            inside = lambda p: "/" + str(p.relative_to(self.root))  # noqa: E731
            cmd = build.compile_command("gcc", inside(src), inside(so), [], sanitize)
            res = _in(self.root, ["sh", "-c", 'exec "$@" $(pkg-config --cflags --libs wireshark)', "sh", *cmd])
            if res.returncode != 0:
                raise build.BuildError("%s did not compile in %s:\n%s" % (name, self.root, res.stderr[-4000:]))
            src.unlink()
        for p in [self.host, *self.host.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return so

    def sanitizer_env(self) -> Dict[str, str]:
        """What runs a --sanitize plugin: the runtimes of the gcc that built it preloaded, leaks not
        reported (Wireshark keeps its own memory to the end), wmem allocating each block apart."""
        def lib(name):
            argv = ["gcc", "-print-file-name=%s" % name]
            res = subprocess.run(argv, capture_output=True, text=True) if self.root is None else _in(self.root, argv)
            return res.stdout.strip()

        return dict(LD_PRELOAD=" ".join(lib(n) for n in ("libasan.so", "libubsan.so")),
                    ASAN_OPTIONS="detect_leaks=0", WIRESHARK_DEBUG_WMEM_OVERRIDE="simple")

    def run(self, args: List[str], env_extra: Optional[Dict[str, str]] = None, timeout: int = 600
            ) -> subprocess.CompletedProcess:
        """That tshark with this HOME's plugins and nothing of anyone's configuration, as a user
        other than root; env_extra reaches tshark (for the chroots, with /proc mounted inside)."""
        extra = dict(env_extra or {})
        if self.root is None:
            env = dict(HOME=str(self.host), XDG_CONFIG_HOME=str(self.host / ".config"), LANG="C.UTF-8", **extra)
            cmd = ["env", "-i", "PATH=" + os.environ["PATH"], *("%s=%s" % kv for kv in env.items()),
                   *self.tshark.argv, *args]
            if os.geteuid() == 0:
                cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
            return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout,
                                  env={"PATH": os.environ["PATH"]})
        env = dict(PATH=os.environ["PATH"], CHROOT_TSHARK_HOME=self.inside,
                   **{"CHROOT_TSHARK_ENV_" + k: v for k, v in extra.items()})
        if extra:
            env["CHROOT_TSHARK_PROC"] = "1"  # AddressSanitizer reads /proc
        return subprocess.run([*self.tshark.argv, *args], capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=env)


class Workspace:
    """A folder for one tshark's HOMEs: in /tmp, or in its chroot's /tmp."""

    def __init__(self, t: tsharks.Tshark):
        self.tshark, self.root = t, _chroot(t)
        tmp = (self.root / "tmp") if self.root else Path("/tmp")
        self.folder = Path(tempfile.mkdtemp(prefix="ctarget-", dir=str(tmp)))
        self.folder.chmod(0o755)

    def home(self, name: str) -> Home:
        host = self.folder / name
        host.mkdir(mode=0o755)
        inside = "/" + str(host.relative_to(self.root)) if self.root else str(host)
        return Home(self.tshark, host, inside, self.root)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
