"""The tsharks the dissector tests run against: the system one (Debian bookworm: 4.0, Lua 5.2)
and, where tests/wireshark/setup.sh built their chroots, trixie's 4.4 and sid's 4.6 (Lua 5.4).

A test module marked `pytestmark = pytest.mark.tshark_matrix` runs once per version; a version
that is not here shows as skipped with the command that would bring it.
"""
from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
CHROOT_TSHARK = HERE / "wireshark" / "chroot_tshark.py"
CHROOTS = Path(os.environ.get("WIRESHARK_CHROOTS", "/var/cache/msrsvd-clusprep/chroots"))
SERIES = {"4.0": None, "4.4": "trixie", "4.6": "sid"}  # series -> chroot suite (None: the system tshark)


@dataclass(frozen=True)
class Tshark:
    series: str  # "4.0", "4.4", "4.6"
    argv: Tuple[str, ...]  # the command that stands for `tshark`
    version: str  # as `tshark -v` says, e.g. "4.6.9"
    lua: str  # e.g. "Lua 5.4.9"

    @property
    def exe(self) -> str:
        """One executable path, for `analyze --tshark`: the system binary or a tshark-SUITE link
        (in this session's own folder: another checkout's suite may run at the same time)."""
        if len(self.argv) == 1:
            return self.argv[0]
        link = _links() / ("tshark-" + SERIES[self.series])
        if not link.exists():
            link.symlink_to(CHROOT_TSHARK)
        return str(link)

    def at_least(self, series: str) -> bool:
        return tuple(map(int, self.version.split("."))) >= tuple(map(int, series.split(".")))

    def __str__(self) -> str:
        return "tshark %s (%s)" % (self.version, self.lua)


@functools.lru_cache(maxsize=None)
def _links() -> Path:
    folder = tempfile.mkdtemp(prefix="msrsvd-tsharks-")
    atexit.register(shutil.rmtree, folder, True)
    return Path(folder)


def _probe(argv: Tuple[str, ...]) -> Optional[Tuple[str, str]]:
    try:
        res = subprocess.run([*argv, "-v"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    m = re.search(r"TShark \(Wireshark\) (\d+\.\d+\.\d+)", res.stdout)
    lua = re.search(r"\bLua\s+(\d+\.\d+(?:\.\d+)?)", res.stdout)
    return (m.group(1), "Lua " + lua.group(1) if lua else "no Lua") if m else None


@functools.lru_cache(maxsize=None)
def found() -> List[Tuple[str, Optional[Tshark], str]]:
    """(series, tshark or None, why it is missing) for every series of the matrix."""
    out = []
    for series, suite in SERIES.items():
        if suite is None:
            exe = shutil.which("tshark")
            argv = (exe,) if exe else None
            why = "" if exe else "tshark is not installed (apt-get install -y tshark)"
        elif not (CHROOTS / suite / ".complete").exists():
            argv, why = None, "no %s chroot in %s (run: bash tests/wireshark/setup.sh)" % (suite, CHROOTS)
        elif os.geteuid() != 0:
            argv, why = None, "the %s chroot needs root to enter (run the tests as root)" % suite
        else:
            argv, why = (sys.executable, str(CHROOT_TSHARK), suite), ""
        probed = _probe(argv) if argv else None
        if argv and probed is None:
            why = "%s does not run" % " ".join(argv)
        if probed and not probed[0].startswith(series + "."):
            why, probed = "%s is %s, not %s" % (" ".join(argv), probed[0], series), None
        out.append((series, Tshark(series, argv, *probed) if probed else None, why))
    return out


def system() -> Optional[Tshark]:
    return found()[0][1]


def available() -> List[Tshark]:
    return [t for _, t, _ in found() if t is not None]
