"""What the README promises the tests run on, and what of it is missing here.

The README's test command runs every test on tshark 4.0, 4.4 and 4.6 (the C target's plugins
compiled for each) and in the Wireshark GUI (4.0 and 4.6), with Lua 5.2-5.4, the Python test
extras and ../shared beside the clone. Outside CI a missing piece skips its tests, each skip
naming the command that brings it. Under CI=true nothing promised may be skipped: the session
stops at once naming what is missing (conftest), and any skip not marked `does_not_apply` fails.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

import c_plugins
import tsharks

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SETUP = "bash .ci/setup --tests"
PIP_TEST = "pip install -e '.[test]'"
NOT_HERE = "does not apply here: "  # a skip that CI accepts: the test cannot be meant on this machine

GUI_TOOLS = {"wireshark": "wireshark", "Xvfb": "xvfb", "xdotool": "xdotool", "xprop": "x11-utils",
             "import": "imagemagick"}
GUI_APT = "apt-get install -y --no-install-recommends wireshark xvfb xdotool x11-utils imagemagick"
TEST_MODULES = {"impacket": "impacket", "Cryptodome": "pycryptodomex", "nbclient": "nbclient", "nbformat": "nbformat",
                "ipykernel": "ipykernel", "matplotlib": "matplotlib", "distributed": "dask[distributed]",
                "dissect.etl": "dissect.etl"}


def does_not_apply(reason: str) -> None:
    """Skip a test that cannot be meant here (root where a permission is tested, no /proc); CI accepts it."""
    pytest.skip(NOT_HERE + reason)


def module(name: str):
    """A test extra, imported; skipped (failed under CI) with the command that installs it."""
    if importlib.util.find_spec(name) is None:
        pytest.skip("the Python module %s is not installed (%s)" % (name, PIP_TEST), allow_module_level=True)
    return importlib.import_module(name)


def gui_tools_missing() -> List[str]:
    return ["%s (%s)" % (tool, pkg) for tool, pkg in GUI_TOOLS.items() if not shutil.which(tool)]


def sid_gui_missing() -> Optional[str]:
    """Why the 4.6 GUI of the sid chroot cannot run here, or None when it can."""
    sid = tsharks.CHROOTS / "sid"
    if not (sid / ".complete").is_file():
        return "no sid chroot (bash tests/wireshark/setup.sh sid)"
    if not (sid / "usr" / "bin" / "wireshark").exists():
        return "no GUI in the sid chroot (WITH_GUI=sid bash tests/wireshark/setup.sh)"
    if os.geteuid() != 0:
        return "entering the sid chroot needs root (run the tests as root)"
    return None


def missing() -> List[Tuple[str, str]]:
    """(what, why and the command that brings it) for each promised piece this machine lacks."""
    out = [("tshark %s" % series, why) for series, t, why in tsharks.found() if t is None]
    for series, t, _ in tsharks.found():  # the C target's plugins, compiled for each tshark
        why = c_plugins.missing(t) if t is not None else None
        if why:
            out.append(("the C build for tshark %s" % series, why))
    tools = gui_tools_missing()
    if tools:
        out.append(("the Wireshark GUI 4.0", "%s missing (%s)" % (", ".join(tools), GUI_APT)))
    sid = sid_gui_missing()
    if sid:
        out.append(("the Wireshark GUI 4.6", sid))
    for v in ("5.2", "5.3", "5.4"):
        if not (shutil.which("lua" + v) and shutil.which("luac" + v)):
            out.append(("Lua %s" % v, "lua%s and luac%s are not on the PATH (apt-get install lua%s)" % (v, v, v)))
    for name, dist in TEST_MODULES.items():
        if importlib.util.find_spec(name) is None:
            out.append(("the Python module %s" % name, "not installed (%s, or pip install '%s')" % (PIP_TEST, dist)))
    import test_wireshark_checkers as checkers  # the C target's code, checked by Wireshark's own tools

    if not all((checkers.CHECKERS / name).is_file() for name in checkers.PINNED):
        out.append(("Wireshark's checkers", "checkhf.pl and checkAPIs.pl are not in %s (%s)"
                    % (checkers.CHECKERS, checkers.SETUP)))
    if not (SHARED / "specs").is_dir() or not (SHARED / "conformance").is_dir():
        out.append(("../shared", "%s holds no specs/ and conformance/ (the shared folder belongs beside the clone)"
                    % SHARED))
    return out
