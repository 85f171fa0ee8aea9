#!/usr/bin/env python3
"""GUI smoke test: the Wireshark GUI (Qt) opens a sample with exactly this repository's Lua
plugins, under a private Xvfb, shows a frame with our protocol tree expanded, takes a
screenshot and quits.

    .venv/bin/python tests/wireshark/gui_smoke.py [--scenario rsvd|clusprep ...]
        [--screenshots DIR] [--wireshark PATH] [--plugin PATH ...] [--chroot DIR]

Scenarios (default: both, one GUI start each):
  rsvd      samples/rsvd_cluster_events.pcapng, frame 46: an RSVD SCSI tunnel response with
            CHECK_CONDITION sense data (UNIT ATTENTION, RESERVATIONS PREEMPTED)
  clusprep  samples/clusprep_storage.pcapng, frame 11: a CprepDiskGetProps response
--sample/--frame/--filter run one custom capture instead.

It fails (exit 1, a line saying why) when a dialog opens (Wireshark shows Lua load and init
errors in one; the message then quotes what tshark with the same plugins says), when
Wireshark's stderr has a Lua error, a Lua traceback or a "Dissector bug" of one of our
protocols, when the main window with the capture never appears, or when Wireshark does not
quit on Ctrl+Q. Lua errors raised while dissecting only show in the GUI's tree, so a small
watchdog Lua (test instrumentation, loaded after the plugins; --no-watchdog leaves it out)
taps Wireshark's `_ws.lua.error` item and writes each one to stderr. Every wait has a
timeout; a scenario takes about 6 s. Exit 2: a tool is missing or the arguments are wrong.
The temporary folder (Wireshark's stderr, a FAILED-*.png screenshot) is kept on failure.

Isolation: HOME and XDG_CONFIG_HOME point into a fresh temporary folder whose profile
(preferences, recent, recent_common, and disabled_protos with the built-in rsvd off, as
`install` does) is written here, so no personal profile, personal
plugin or installed copy of our plugins loads, and nothing persists. Plugins and sample are
copied into that folder. Run as root, Wireshark runs as the unprivileged system user
`wsgui` (made with useradd when missing), since Wireshark warns about (4.0) or refuses
(4.6) Lua as root. With --chroot DIR the GUI inside that Debian chroot runs instead, as the
chroot's user `wstest`; the X server is reached over its abstract socket.

Needs: Xvfb (xvfb), xdotool, xprop (x11-utils), import (imagemagick) for screenshots, and
wireshark (bookworm: wireshark + wireshark-qt; sid: wireshark). Standard library only.

    apt-get install -y --no-install-recommends wireshark xvfb xdotool x11-utils imagemagick
    chroot /var/cache/msrsvd-clusprep/chroots/sid apt-get install -y --no-install-recommends wireshark
"""
from __future__ import annotations

import argparse
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
PLUGINS = [REPO / "dissectors" / "lua" / "msrsvd.lua", REPO / "dissectors" / "lua" / "clusprep.lua"]
OUR_PROTOCOLS = ("msrsvd", "clusprep")
GUI_USER = "wsgui"  # made here when missing (system user)
CHROOT_USER = "wstest"  # made by tests/wireshark/setup.sh inside the chroots

READY_TIMEOUT = 45.0  # main window with the capture's name in its title
SETTLE = 1.0  # after that, at least, for the packet list to fill and -g to select the frame
IDLE = 1.0  # ... and until wireshark has used no CPU for this long
EXIT_TIMEOUT = 15.0  # after Ctrl+Q
TOTAL_BUDGET = 110.0  # a scenario never runs longer than this


@dataclass
class Scenario:
    name: str
    sample: Path
    frame: int
    dfilter: Optional[str]
    screenshot: str  # file name under --screenshots
    what: str


SCENARIOS: Dict[str, Scenario] = {
    "rsvd": Scenario("rsvd", REPO / "samples" / "rsvd_cluster_events.pcapng", 46, "msrsvd.scsi.sense",
                     "gui_rsvd_scsi_sense.png",
                     "RSVD_TUNNEL_SCSI response with CHECK_CONDITION sense data (UNIT ATTENTION)"),
    "clusprep": Scenario("clusprep", REPO / "samples" / "clusprep_storage.pcapng", 11, "clusprep",
                         "gui_clusprep_call.png", "IClusterStorage2 CprepDiskGetProps response"),
}

# Wireshark's stderr: these lines fail the run.
STDERR_FATAL = [
    re.compile(r"Lua:? ?Error", re.I),
    re.compile(r"stack traceback", re.I),
    re.compile(r"\.lua:\d+:"),
    re.compile(r"\blua_pcall\b|\bluaL_", re.I),
    re.compile(r"Dissector bug, protocol (%s)\w*" % "|".join(OUR_PROTOCOLS), re.I),
]


class SmokeFailure(Exception):
    pass


def log(msg: str) -> None:
    print("gui_smoke: " + msg, flush=True)


# --------------------------------------------------------------------------------- X server

class Xvfb:
    """A private Xvfb on a free display number (-displayfd), killed on close."""

    def __init__(self, width: int, height: int, logdir: Path):
        self.proc: Optional[subprocess.Popen] = None
        self.display = ""
        r, w = os.pipe()
        self._log = open(logdir / "xvfb.log", "wb")
        try:
            self.proc = subprocess.Popen(
                ["Xvfb", "-displayfd", str(w), "-screen", "0", "%dx%dx24" % (width, height),
                 "-nolisten", "tcp", "-noreset", "-dpi", "96"],
                pass_fds=(w,), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(w)
        try:
            buf = b""
            deadline = time.monotonic() + 20
            while not buf.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    raise SmokeFailure("Xvfb did not report a display within 20 s (log: %s)" % self._log.name)
                chunk = os.read(r, 64)
                if not chunk:
                    raise SmokeFailure("Xvfb exited at start: %s" % _tail(Path(self._log.name)))
                buf += chunk
        finally:
            os.close(r)
        self.display = ":" + buf.decode().strip()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class X:
    """xdotool / xprop / import against one display."""

    def __init__(self, display: str):
        self.env = dict(os.environ, DISPLAY=display)
        self.env.pop("XAUTHORITY", None)

    def run(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(list(args), 124, "", "timed out")

    def windows(self) -> List[Tuple[str, str, bool]]:
        """Visible Wireshark windows: (id, title, is_dialog)."""
        res = self.run("xdotool", "search", "--onlyvisible", "--classname", "wireshark")
        out = []
        for wid in res.stdout.split():
            p = self.run("xprop", "-id", wid, "WM_NAME", "_NET_WM_NAME", "_NET_WM_WINDOW_TYPE", "WM_TRANSIENT_FOR").stdout
            m = re.search(r'^_NET_WM_NAME\([^)]*\) = "(.*)"$', p, re.M) or re.search(r'^WM_NAME\([^)]*\) = "(.*)"$', p, re.M)
            title = m.group(1) if m else ""
            dialog = "_NET_WM_WINDOW_TYPE_DIALOG" in p or re.search(r"^WM_TRANSIENT_FOR\(WINDOW\): window id", p, re.M) is not None
            if re.search(r"\bLua\b|Error", title, re.I):
                dialog = True
            out.append((wid, title, dialog))
        return out

    def key(self, wid: str, *keys: str) -> None:
        self.run("xdotool", "windowfocus", "--sync", wid, timeout=5)
        for k in keys:
            self.run("xdotool", "key", "--delay", "80", k)
            time.sleep(0.25)

    def click(self, x: int, y: int) -> None:
        # no --sync: it waits for a motion that never comes when the pointer is already there
        self.run("xdotool", "mousemove", str(x), str(y), "sleep", "0.2", "click", "1")

    def screenshot(self, path: Path) -> bool:
        # no time stamps in the file: the same screen gives the same bytes
        res = self.run("import", "-window", "root", "-strip", "-define", "png:exclude-chunks=date,time",
                       str(path), timeout=30)
        return res.returncode == 0 and path.is_file()


# --------------------------------------------------------------------------------- running

@dataclass
class Runner:
    """Who runs Wireshark, and where: the host (as root: user wsgui) or a chroot (user wstest)."""
    root: Optional[Path]  # chroot dir, or None
    uid: int
    gid: int
    wireshark: str
    tshark: Optional[str]

    def inside(self, p: Path) -> str:
        """A host path as the GUI sees it."""
        if self.root is None:
            return str(p)
        return "/" + str(p.resolve().relative_to(self.root.resolve()))

    def argv(self, env: Dict[str, str], cmd: Sequence[str]) -> List[str]:
        envv = ["/usr/bin/env", "-i"] + ["%s=%s" % kv for kv in env.items()]
        if self.root is not None:
            return ["chroot", "--userspec=%d:%d" % (self.uid, self.gid), str(self.root)] + envv + list(cmd)
        if self.uid != os.geteuid():
            return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid, "--init-groups", "--"] + envv + list(cmd)
        return envv + list(cmd)


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    log("creating system user %s for the GUI (Wireshark should not run Lua as root)" % name)
    res = subprocess.run(["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", name],
                         capture_output=True, text=True)
    try:
        return pwd.getpwnam(name)  # made now, or by a run beside this one
    except KeyError:
        raise SmokeFailure("useradd %s failed: %s" % (name, res.stderr.strip()))


def make_runner(args) -> Runner:
    if args.chroot:
        root = Path(args.chroot)
        if os.geteuid() != 0:
            raise SmokeFailure("--chroot needs root")
        ws = args.wireshark or "/usr/bin/wireshark"
        if not (root / ws.lstrip("/")).exists():
            raise SmokeFailure("no %s in %s (install the GUI there: chroot %s apt-get install -y "
                               "--no-install-recommends wireshark)" % (ws, root, root))
        ent = None
        for line in (root / "etc" / "passwd").read_text().splitlines():
            f = line.split(":")
            if f[0] == CHROOT_USER:
                ent = (int(f[2]), int(f[3]))
        if ent is None:
            raise SmokeFailure("no user %s in %s/etc/passwd (tests/wireshark/setup.sh makes it)" % (CHROOT_USER, root))
        tshark = "/usr/bin/tshark" if (root / "usr/bin/tshark").exists() else None
        return Runner(root, ent[0], ent[1], ws, tshark)
    ws = args.wireshark or shutil.which("wireshark")
    if not ws or not os.access(ws, os.X_OK):
        raise SmokeFailure("wireshark not found (apt-get install wireshark, or --wireshark PATH)")
    ws = os.path.abspath(ws)
    sib = os.path.join(os.path.dirname(ws), "tshark")
    tshark = sib if os.access(sib, os.X_OK) else shutil.which("tshark")
    if os.geteuid() == 0:
        pw = _ensure_user(GUI_USER)
        return Runner(None, pw.pw_uid, pw.pw_gid, ws, tshark)
    return Runner(None, os.getuid(), os.getgid(), ws, tshark)


PREFERENCES = """\
# gui_smoke.py: a throwaway profile
gui.layout_type: 1
gui.layout_content_1: PLIST
gui.layout_content_2: PDETAILS
gui.layout_content_3: NONE
gui.packet_list_show_minimap: FALSE
gui.update.enabled: FALSE
gui.ask_unsaved: FALSE
gui.fileopen.preview: 0
gui.column.format: "No.", "%m", "Time", "%t", "Source", "%s", "Destination", "%d", "Protocol", "%p", "Length", "%L", "Info", "%i"
"""

RECENT_COMMON = """\
gui.geometry_main_x: 0
gui.geometry_main_y: 0
gui.geometry_main_width: {w}
gui.geometry_main_height: {h}
gui.geometry_main_maximized: FALSE
privs.warn_if_elevated: FALSE
sys.warn_if_no_capture: FALSE
gui.last_used_profile: Default
"""

RECENT = """\
gui.toolbar_main_show: FALSE
gui.filter_toolbar_show: TRUE
gui.packet_list_show: TRUE
gui.tree_view_show: TRUE
gui.byte_view_show: FALSE
gui.packet_diagram_show: FALSE
gui.statusbar_show: TRUE
gui.geometry_main_upper_pane: {upper}
column.width:
        %m, 60,
        %t, 90,
        %s, 100,
        %d, 100,
        %p, 80,
        %L, 60,
        %i, -1
"""


# Loaded after the plugins under test (unless --no-watchdog): a tap on Wireshark's own
# `_ws.lua.error` expert item, which the GUI only draws into the tree, writes each Lua error
# raised while dissecting to stderr, where the check below finds it.
WATCHDOG = """\
-- gui_smoke.py watchdog (test instrumentation, not a plugin under test)
local message = Field.new("_ws.expert.message")
local tap = Listener.new(nil, "_ws.lua.error")
local told = 0
function tap.packet(pinfo)
  for _, f in ipairs({ message() }) do
    local text = tostring(f.value)
    if told < 20 and text:find("Lua Error", 1, true) then
      told = told + 1
      io.stderr:write(string.format("gui_smoke watchdog: frame %d: %s\\n", pinfo.number, text))
      io.stderr:flush()
    end
  end
end
"""
WATCHDOG_NAME = "zz_gui_smoke_watchdog.lua"


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    return "\n".join("    " + l for l in lines[-n:]) or "    (empty)"


def _stage(runner: Runner, plugins: Sequence[Path], sample: Path, w: int, h: int, upper: int) -> Path:
    """The private folder: plugins, sample, HOME with a written profile; readable by the GUI user."""
    parent = None
    if runner.root is not None:
        parent = runner.root / "tmp"
    tmp = Path(tempfile.mkdtemp(prefix="gui-smoke-", dir=parent))
    os.chmod(tmp, 0o755)
    (tmp / "in").mkdir(mode=0o755)
    for p in list(plugins) + [sample]:
        dest = tmp / "in" / p.name
        shutil.copyfile(p, dest)
        os.chmod(dest, 0o644)
    (tmp / "in" / WATCHDOG_NAME).write_text(WATCHDOG)
    os.chmod(tmp / "in" / WATCHDOG_NAME, 0o644)
    home = tmp / "home"
    prof = home / ".config" / "wireshark"
    prof.mkdir(parents=True)
    (home / "run").mkdir(mode=0o700)
    (prof / "preferences").write_text(PREFERENCES)
    # as `python -m dissectors install` does: Wireshark's built-in rsvd off (it mis-decodes these layouts)
    (prof / "disabled_protos").write_text("rsvd\n")
    (prof / "recent_common").write_text(RECENT_COMMON.format(w=w, h=h))
    (prof / "recent").write_text(RECENT.format(upper=upper))
    for dirpath, dirnames, filenames in os.walk(home):
        for n in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            os.chown(n, runner.uid, runner.gid)
    return tmp


def _lua_diagnosis(runner: Runner, tmp: Path, plugin_args: List[str], sample: str) -> str:
    """What tshark (same plugins, same user) says: the text of the GUI's error dialog."""
    if not runner.tshark:
        return ""
    env = {"HOME": runner.inside(tmp / "home"), "XDG_CONFIG_HOME": runner.inside(tmp / "home" / ".config"),
           "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    cmd = runner.argv(env, [runner.tshark, *plugin_args, "-r", sample, "-c", "1", "-T", "fields", "-e", "frame.number"])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return ""
    lines = [l for l in res.stderr.splitlines() if "could be dangerous" not in l and l.strip()]
    return ("\n  tshark with the same plugins says:\n" + "\n".join("    " + l for l in lines[:10])) if lines else ""


def run_scenario(sc: Scenario, args, runner: Runner, x: X, plugins: Sequence[Path], shots: Optional[Path],
                 w: int, h: int) -> float:
    t0 = time.monotonic()
    deadline = t0 + TOTAL_BUDGET
    tmp = _stage(runner, plugins, sc.sample, w, h, args.list_pane)
    keep = args.keep
    proc: Optional[subprocess.Popen] = None
    err_path = tmp / "wireshark.stderr"
    fail_dir = shots or (None if args.clean else tmp)

    def fail_shot() -> str:
        """A screenshot of the failure, where one can be kept: ' (screenshot: PATH)'."""
        if fail_dir is None or not shutil.which("import"):
            return ""
        path = fail_dir / ("FAILED-" + sc.screenshot)
        return " (screenshot: %s)" % path if x.screenshot(path) else ""
    try:
        plugin_args: List[str] = []
        for p in plugins:
            plugin_args += ["-X", "lua_script:" + runner.inside(tmp / "in" / p.name)]
        if not args.no_watchdog:
            plugin_args += ["-X", "lua_script:" + runner.inside(tmp / "in" / WATCHDOG_NAME)]
        sample = runner.inside(tmp / "in" / sc.sample.name)
        cmd = [runner.wireshark, *plugin_args, "-r", sample, "-g", str(sc.frame)]
        if sc.dfilter:
            cmd += ["-Y", sc.dfilter]
        env = {
            "DISPLAY": x.env["DISPLAY"], "HOME": runner.inside(tmp / "home"),
            "XDG_CONFIG_HOME": runner.inside(tmp / "home" / ".config"),
            "XDG_RUNTIME_DIR": runner.inside(tmp / "home" / "run"),
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "xcb",
            "QT_ACCESSIBILITY": "0", "NO_AT_BRIDGE": "1",
        }
        argv = runner.argv(env, cmd)
        if args.verbose:
            log("run: " + " ".join(shlex.quote(a) for a in argv))
        with open(tmp / "wireshark.stdout", "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)

        def check_dialogs(stage: str) -> Optional[str]:
            main = None
            for wid, title, dialog in x.windows():
                if dialog:
                    raise SmokeFailure("%s: a dialog opened %s, titled %r%s%s" % (
                        sc.name, stage, title, fail_shot(), _lua_diagnosis(runner, tmp, plugin_args, sample)))
                if sc.sample.name in title:
                    main = wid
            return main

        # 1. the main window, titled with the capture's name
        main = None
        ready_by = min(deadline, time.monotonic() + args.timeout)
        while main is None:
            if proc.poll() is not None:
                raise SmokeFailure("%s: wireshark exited with status %s before its window appeared; stderr:\n%s"
                                   % (sc.name, proc.returncode, _tail(err_path)))
            main = check_dialogs("while loading")
            if main is None:
                if time.monotonic() > ready_by:
                    raise SmokeFailure("%s: no window titled with %s within %.0f s%s; stderr:\n%s"
                                       % (sc.name, sc.sample.name, args.timeout, fail_shot(), _tail(err_path)))
                time.sleep(0.3)
        t_ready = time.monotonic() - t0
        # 2. let it read and filter the capture and go to the frame (a dialog may still come):
        #    until its CPU time stops growing
        def settle(stage: str, at_least: float) -> None:
            t_end = time.monotonic() + at_least
            last, quiet_since = _cpu_ticks(proc.pid), time.monotonic()
            while True:
                time.sleep(0.3)
                check_dialogs(stage)
                if proc.poll() is not None:
                    raise SmokeFailure("%s: wireshark exited (status %s) %s; stderr:\n%s"
                                       % (sc.name, proc.returncode, stage, _tail(err_path)))
                now, ticks = time.monotonic(), _cpu_ticks(proc.pid)
                if ticks - last > 3:  # more than 30 ms of CPU in 300 ms: still busy
                    quiet_since = now
                last = ticks
                if now >= t_end and now - quiet_since >= IDLE:
                    return
                if now > deadline - EXIT_TIMEOUT:
                    raise SmokeFailure("%s: wireshark still busy %s after %.0f s" % (sc.name, stage, now - t0))

        settle("after loading", SETTLE)
        if args.verbose:
            log("%s: idle after %.1f s" % (sc.name, time.monotonic() - t0))
        # 3. the details pane: collapse all, select the last top-level item (our protocol),
        #    expand it with its subtrees, optionally move down to an item of interest
        y_details = h - 60  # empty space in the details pane, above the status bar
        x.run("xdotool", "windowfocus", "--sync", main, timeout=5)
        x.click(w // 2, y_details)
        time.sleep(0.5)
        # (the first key only gives the tree a current item: Home, then End)
        keys = ["Home", "End", "shift+Right"] + ["Down"] * args.down
        x.key(main, *keys)
        if args.verbose:
            log("%s: keys sent after %.1f s" % (sc.name, time.monotonic() - t0))
        settle("after expanding the tree", 0.5)
        if args.verbose:
            log("%s: idle again after %.1f s" % (sc.name, time.monotonic() - t0))
        # 4. screenshot
        if shots is not None:
            png = shots / sc.screenshot
            if not x.screenshot(png):
                raise SmokeFailure("%s: import -window root did not write %s" % (sc.name, png))
            size = _png_size(png)
            if size != (w, h):
                raise SmokeFailure("%s: screenshot %s is %s, not %dx%d" % (sc.name, png, size, w, h))
        stderr_check(sc, err_path)
        # 5. quit with Ctrl+Q, and wait
        t_quit = time.monotonic()
        x.key(main, "ctrl+q")
        exit_by = min(deadline + 10, time.monotonic() + EXIT_TIMEOUT)
        while proc.poll() is None and time.monotonic() < exit_by:
            time.sleep(0.2)
        if proc.poll() is None:
            wins = x.windows()
            raise SmokeFailure("%s: wireshark did not quit within %.0f s of Ctrl+Q; windows: %s%s"
                               % (sc.name, EXIT_TIMEOUT, [t for _, t, _ in wins], fail_shot()))
        if proc.returncode != 0:
            raise SmokeFailure("%s: wireshark exited with status %d; stderr:\n%s" % (sc.name, proc.returncode, _tail(err_path)))
        stderr_check(sc, err_path)
        if args.verbose:
            log("%s: quit took %.1f s" % (sc.name, time.monotonic() - t_quit))
        took = time.monotonic() - t0
        log("PASS %s: %s, frame %d (window after %.1f s, %.1f s in all)%s" % (
            sc.name, sc.sample.name, sc.frame, t_ready, took, ", screenshot %s" % (shots / sc.screenshot) if shots else ""))
        return took
    except SmokeFailure:
        keep = not args.clean
        raise
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait(10)
        if keep:
            log("kept %s (wireshark.stderr, profile)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def stderr_check(sc: Scenario, err_path: Path) -> None:
    bad = []
    for line in err_path.read_text(errors="replace").splitlines():
        if any(p.search(line) for p in STDERR_FATAL):
            bad.append(line)
    if bad:
        more = "\n    (%d more lines in %s)" % (len(bad) - 8, err_path) if len(bad) > 8 else ""
        raise SmokeFailure("%s: Lua error on wireshark's stderr:\n%s%s" % (
            sc.name, "\n".join("    " + l for l in bad[:8]), more))


def _png_size(path: Path) -> Optional[Tuple[int, int]]:
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                    help="which built-in scenario(s) to run (default: all)")
    ap.add_argument("--sample", help="a custom capture instead of the scenarios (with --frame)")
    ap.add_argument("--frame", type=int, default=1, help="frame to select with --sample (default 1)")
    ap.add_argument("--filter", dest="dfilter", help="display filter for --sample")
    ap.add_argument("--screenshots", metavar="DIR", help="write the PNG screenshots here")
    ap.add_argument("--wireshark", metavar="PATH", help="the wireshark binary (default: from PATH)")
    ap.add_argument("--plugin", metavar="PATH", action="append",
                    help="Lua plugin to load (repeatable); replaces the default msrsvd.lua + clusprep.lua")
    ap.add_argument("--no-watchdog", action="store_true",
                    help="do not load the watchdog Lua that reports Lua errors raised while dissecting")
    ap.add_argument("--chroot", metavar="DIR", help="run the wireshark GUI inside this chroot (as %s)" % CHROOT_USER)
    ap.add_argument("--geometry", default="1280x1024", help="virtual screen and window size (default 1280x1024)")
    ap.add_argument("--list-pane", type=int, default=60,
                    help="recent gui.geometry_main_upper_pane: the packet list's height, which Wireshark "
                         "scales with the window (default 60: about 6 rows at 1280x1024)")
    ap.add_argument("--down", type=int, default=None,
                    help="after expanding, move the selection this many rows down (default per scenario)")
    ap.add_argument("--timeout", type=float, default=READY_TIMEOUT, help="seconds to wait for the window (default 45)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (kept anyway on failure)")
    ap.add_argument("--clean", action="store_true", help="remove the temporary folder even on failure")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    m = re.fullmatch(r"(\d+)x(\d+)", args.geometry)
    if not m:
        ap.error("--geometry must be WIDTHxHEIGHT")
    w, h = int(m.group(1)), int(m.group(2))

    missing = [t for t in ("Xvfb", "xdotool", "xprop") if not shutil.which(t)]
    if args.screenshots and not shutil.which("import"):
        missing.append("import")
    if missing:
        print("gui_smoke: missing %s (apt-get install xvfb xdotool x11-utils imagemagick)" % ", ".join(missing),
              file=sys.stderr)
        return 2

    plugins = [Path(p).resolve() for p in args.plugin] if args.plugin else PLUGINS
    for p in plugins:
        if not p.is_file():
            print("gui_smoke: no plugin %s" % p, file=sys.stderr)
            return 2
    if len({p.name for p in plugins}) != len(plugins):
        print("gui_smoke: plugins must have distinct file names", file=sys.stderr)
        return 2

    if args.sample:
        sample = Path(args.sample).resolve()
        if not sample.is_file():
            print("gui_smoke: no sample %s" % sample, file=sys.stderr)
            return 2
        scenarios = [Scenario(sample.stem, sample, args.frame, args.dfilter, "gui_%s.png" % sample.stem, "custom")]
    else:
        scenarios = [SCENARIOS[n] for n in (args.scenario or sorted(SCENARIOS, reverse=True))]
    if args.down is None:
        args.down = 0

    shots = None
    if args.screenshots:
        shots = Path(args.screenshots).resolve()
        shots.mkdir(parents=True, exist_ok=True)

    try:
        runner = make_runner(args)
    except SmokeFailure as e:
        print("gui_smoke: " + str(e), file=sys.stderr)
        return 2

    t0 = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="gui-smoke-x-"))
    xvfb = None
    failed = []
    try:
        xvfb = Xvfb(w, h, logdir)
        x = X(xvfb.display)
        log("Xvfb on %s (%dx%d); %s as uid %d%s; plugins: %s" % (
            xvfb.display, w, h, runner.wireshark, runner.uid, " in chroot %s" % runner.root if runner.root else "",
            ", ".join(p.name for p in plugins)))
        for sc in scenarios:
            try:
                run_scenario(sc, args, runner, x, plugins, shots, w, h)
            except SmokeFailure as e:
                failed.append(sc.name)
                print("gui_smoke: FAIL " + str(e), file=sys.stderr, flush=True)
    except SmokeFailure as e:
        print("gui_smoke: FAIL " + str(e), file=sys.stderr)
        return 1
    finally:
        if xvfb is not None:
            xvfb.close()
        shutil.rmtree(logdir, ignore_errors=True)
    log("%d passed, %d failed in %.1f s" % (len(scenarios) - len(failed), len(failed), time.monotonic() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    try:  # standalone (it may run where this repository's packages are not importable)
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: a line and the shell's 130, no traceback
        print("gui_smoke.py: interrupted", file=sys.stderr)
        sys.exit(130)
