"""The Wireshark GUI with our plugins, under a private Xvfb: tests/wireshark/gui_smoke.py.

One GUI start per sample and GUI version (bookworm's 4.0; sid's 4.6 where its chroot has the
GUI installed): it loads both plugins, opens the sample at a frame of ours,
expands our tree, takes a screenshot (into tmp_path, never docs/) and quits with Ctrl+Q;
a Lua error dialog, a Lua error on stderr, a missing window or a hang fails it. One more
short start checks that a plugin with a syntax error is caught. Skipped where the GUI
tools are not installed:

    apt-get install -y --no-install-recommends wireshark xvfb xdotool x11-utils imagemagick
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import promised
import tsharks

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "tests" / "wireshark" / "gui_smoke.py"
SID = tsharks.CHROOTS / "sid"
GUIS = [pytest.param([], id="4.0"),
        pytest.param(["--chroot", str(SID)], id="4.6",
                     marks=pytest.mark.skipif(promised.sid_gui_missing() is not None,
                                              reason="GUI 4.6: %s" % promised.sid_gui_missing()))]
pytestmark = pytest.mark.skipif(bool(promised.gui_tools_missing()), reason="GUI smoke test needs %s; %s" % (
    ", ".join(promised.gui_tools_missing()), promised.GUI_APT))


def _smoke(*args, timeout=150):
    res = subprocess.run([sys.executable, str(SMOKE), *args], capture_output=True, text=True, timeout=timeout)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize("gui", GUIS)
@pytest.mark.parametrize("scenario,png", [("rsvd", "gui_rsvd_scsi_sense.png"),
                                          ("clusprep", "gui_clusprep_call.png")], ids=["rsvd", "clusprep"])
def test_gui_opens_sample_with_our_tree(scenario, png, gui, tmp_path):
    rc, out = _smoke("--scenario", scenario, *gui, "--screenshots", str(tmp_path))
    assert rc == 0, out
    assert "PASS %s" % scenario in out, out
    head = (tmp_path / png).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", out
    assert int.from_bytes(head[16:20], "big") >= 800, out  # the whole virtual screen, not an empty grab


def test_gui_smoke_catches_a_lua_error(tmp_path):
    """A plugin that does not load opens Wireshark's error dialog: the smoke test must fail, saying so."""
    broken = tmp_path / "msrsvd.lua"
    broken.write_text((ROOT / "dissectors" / "lua" / "msrsvd.lua").read_text() + "\nlocal x = = 1\n")
    rc, out = _smoke("--scenario", "rsvd", "--plugin", str(broken), "--timeout", "30", "--clean")
    assert rc == 1, out
    assert "FAIL rsvd: a dialog opened" in out, out
    # its text, as tshark with the same plugin gives it, when tshark is there
    if shutil.which("tshark"):
        assert "msrsvd.lua:" in out and "Lua" in out, out
