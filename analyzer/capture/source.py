"""Capture source: tshark, found and version-checked, run with the generated
plugins, streaming only the fields the analyzer needs.

Why two ways in (measured by bench/analyze_throughput.py): pyshark's packet objects are what
notebooks want (`packets()`), but parsing its XML runs at about 220 packets/s, so the batch
path reads `tshark -T fields` line by line instead. The msrsvd plugin runs with its export
preference: it hands over each RSVD message's first bytes (`msrsvd.raw`), which the analyzer
decodes with the same definitions the plugin was generated from; the clusprep plugin names
each call and hands over the stub it decoded (`clusprep.stub`).

Always this checkout's plugins (`-X lua_script:`), never a copy `python -m dissectors install`
put in the personal plugin folder: tshark runs in `tshark_env()`, where that folder is an
empty one but the user's configuration (profiles, preferences, keys) is still read.
"""
from __future__ import annotations

import atexit
import functools
import gzip
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

from dissectors import plugin_paths
from dissectors.definitions import csvp, rsvd
from dissectors.model.bindings import Names, binding

from . import compiled_plugins, work_folders
from . import etl as etl_reader

MIN_TSHARK = (4, 0)
INSTALL_HINT = "install it (DEBIAN_FRONTEND=noninteractive apt-get install -y tshark) or pass --tshark PATH"

RSVD, CLUSPREP = Names(rsvd.PROTOCOL), Names(csvp.PROTOCOL)  # the plugins' field names, from the model

# The fields of one output line, in order. Per-frame lists use AGGREGATOR.
FIELDS = [
    "frame.number", "frame.time_epoch", "frame.interface_id", "tcp.stream", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.srcport", "tcp.dstport",
    # SMB2: once per message header, or once per message of the commands that carry them
    "smb2.cmd", "smb2.flags.response", "smb2.msg_id", "smb2.sesid", "smb2.tid", "smb2.nt_status", "smb2.fid",
    "smb2.ioctl.function", "smb2.dialect", "smb2.tree", "smb.create_options", "smb2.client_guid",
    # READ and WRITE requests: where and how much (an I/O error's byte range)
    "smb2.file_offset", "smb2.read_length", "smb2.write_length",
    # SMB 3 encryption: one per TRANSFORM_HEADER, decrypted or not
    "smb2.header.transform.msg_size",
    # msrsvd (its contract with analyze, dissectors.model.bindings.binding): the RSVD messages and
    # open contexts; the name of each CREATE request that carries a context, as UTF-16LE bytes
    # (smb2.filename is missing in a CREATE request on 4.6's first pass, and a name's text may hold
    # AGGREGATOR); each such CREATE's create contexts (the EAs beside the open context); the name of
    # a CREATE that ends in :SharedVirtualDisk without the context; faults the plugin caught
    *binding(rsvd.PROTOCOL).exported,
    # DCE/RPC: binds (which interface each context is: ClusPrep's or another's) and requests
    "dcerpc.pkt_type", "dcerpc.cn_call_id", "dcerpc.cn_ctx_id", "dcerpc.auth_level", "dcerpc.obj_id",
    "dcerpc.opnum", "dcerpc.cn_status", "dcerpc.cn_flags", "dcerpc.auth_type", "dcerpc.cn_bind_to_uuid",
    # ClusPrep (its contract): once per call the plugin recognised, and faults it caught
    *binding(csvp.PROTOCOL).exported,
]
COL = {name: i for i, name in enumerate(FIELDS)}
AGGREGATOR = "\x1f"  # never in a file name or a share path

PREFERENCES = RSVD.preference("export", True) + RSVD.preference("scsi", False) + RSVD.preference("exchanges", False)


# tshark 4.4 and later print text fields C-escaped in -T fields: a share \\sofs\vhdx comes out
# with every backslash doubled (measured: 4.0.17 does not, 4.4.19 and 4.6.9 do). The text
# columns we read are unescaped.
ESCAPES_TEXT = (4, 4)
TEXT_COLUMNS = [COL["smb2.tree"]]
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


class CaptureError(Exception):
    """A problem the user can fix, with the fix in the message (exit code 2)."""


class CommandError(CaptureError):
    """A CaptureError of the command, not of one capture (an option tshark refuses, plugins that do not
    load): it would be the same for every capture, so the CLI stops at the first."""


@dataclass
class Tshark:
    path: str
    version: tuple

    @property
    def version_text(self) -> str:
        return ".".join(str(x) for x in self.version)


def _usual_places() -> List[str]:
    """Where tshark is when it is not on the PATH (pyshark's list, without its config.ini)."""
    if sys.platform.startswith("win"):
        return [os.path.join(os.environ[env], "Wireshark", "tshark.exe")
                for env in ("ProgramFiles", "ProgramFiles(x86)") if os.environ.get(env)]
    places = ["/usr/bin/tshark", "/usr/sbin/tshark", "/usr/lib/tshark/tshark", "/usr/local/bin/tshark"]
    if sys.platform.startswith("darwin"):
        places.append("/Applications/Wireshark.app/Contents/MacOS/tshark")
    return places


def find_tshark(path: Optional[str] = None) -> Tshark:
    """The tshark named by the user, else the one on the PATH, else one in the usual places.

    Not pyshark's discovery: it prefers a config.ini in the working directory to the PATH (a
    folder of captures must never choose the program we run) and, given a path, looks for a
    file named `tshark` beside it rather than the file itself.
    """
    if path:
        if not os.path.exists(path):
            raise CaptureError("tshark not found at %s (no such file): %s" % (path, INSTALL_HINT))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise CaptureError("--tshark %s is not an executable file; name the tshark program itself (chmod +x it "
                               "if it is a wrapper)" % path)
        found = os.path.abspath(path)  # a bare name is this file, never a search of the PATH
    else:
        found = shutil.which("tshark") or next(
            (p for p in _usual_places() if os.path.isfile(p) and os.access(p, os.X_OK)), None)
        if found is None:
            raise CaptureError("tshark not found: " + INSTALL_HINT)
    try:
        out = subprocess.run([found, "-v"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise CaptureError("cannot run %s (%s): %s" % (found, e, INSTALL_HINT)) from None
    m = re.search(r"\bTShark\b.*?\b(\d+)\.(\d+)\.(\d+)", out.splitlines()[0] if out else "")
    if not m:  # e.g. "TShark (Wireshark) 4.0.17 (Git v4.0.17 ...)"
        raise CaptureError("%s is not tshark (its -v does not say TShark and a version): %s" % (found, INSTALL_HINT))
    version = tuple(int(x) for x in m.groups())
    if version[:2] < MIN_TSHARK:
        raise CaptureError("tshark %s is too old; the plugins need 4.0 or later: %s"
                           % (".".join(map(str, version)), INSTALL_HINT))
    return Tshark(found, version)


# The first bytes of the capture formats Windows and Wireshark users have: pcap (both byte
# orders, micro- and nanosecond), pcapng, Network Monitor 1.x and 2.x, snoop.
_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
           b"\x0a\x0d\x0d\x0a", b"GMBU", b"RTSS", b"snoo"}
# tshark reads these compressed, and so does the check: gzip's magic, then the capture's.
_GZIP, _ZSTD, _LZ4 = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18"
ETL_HINT = ("an ETW trace (netsh trace / pktmon): analyze reads pktmon's with dissect.etl, which is not installed "
            "(.venv/bin/pip install -e '.[etl]' in the checkout); or convert it first, with `pktmon etl2pcap FILE.etl --out "
            "FILE.pcapng` on Windows, or etl2pcapng")


def check_capture(path: Path, etl: bool = True) -> None:
    """A capture tshark can read, else one line saying what it is and what to do. etl: an ETL file
    passes when dissect.etl can read it (analyzer.capture.etl converts it); else it gets the hint."""
    if not path.exists():
        raise CaptureError("%s: no such file" % path)
    if path.is_dir():
        raise CaptureError("%s is a directory; give a capture file, or --merge to read its files as one capture" % path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:2] == _GZIP:
            with gzip.open(path, "rb") as f:
                magic = f.read(4)
    except (OSError, EOFError) as e:
        raise CaptureError("%s: cannot read it (%s)" % (path, getattr(e, "strerror", None) or e)) from None
    if not magic:
        raise CaptureError("%s is empty" % path)
    if magic in _MAGICS or magic in (_ZSTD, _LZ4):  # zstd and lz4: tshark says what is inside
        return
    if path.suffix.lower() == ".etl":
        if etl and etl_reader.available():
            return
        raise CaptureError("%s is %s" % (path, ETL_HINT))
    raise CaptureError("%s is not a capture file (pcap, pcapng, Network Monitor or snoop, possibly gzip-compressed); "
                       "save it from Wireshark or convert it with editcap" % path)


WINDOWS = sys.platform.startswith("win")


HOME_VARIABLE = "ANALYZE_EMPTY_HOME"


_home_lock = threading.Lock()


def _empty_home() -> str:
    """A private, empty home folder for this process's tshark runs, removed at exit. Worker
    processes (analyze --jobs) use their parent's: they end without running atexit. One
    however many threads ask at once (the shards' tsharks start together)."""
    with _home_lock:
        inherited = os.environ.get(HOME_VARIABLE)
        if inherited and os.path.isdir(inherited) and not os.path.islink(inherited) and (
                not hasattr(os, "getuid") or os.stat(inherited).st_uid == os.getuid()):
            return inherited
        path = work_folders.make("home")
        atexit.register(shutil.rmtree, path, True)
        os.environ[HOME_VARIABLE] = path
        return path


def tshark_env(environ: Optional[Mapping[str, str]] = None, config: bool = True) -> Dict[str, str]:
    """The environment to run tshark in: no personal Lua plugin loads, the user's configuration
    (profiles, preferences, keys, disabled protocols) does unless config is False.

    On Linux and macOS tshark finds personal plugins under $HOME/.local/lib/wireshark/plugins and
    the configuration under $XDG_CONFIG_HOME/wireshark (else ~/.config/wireshark, else a legacy
    ~/.wireshark). So HOME becomes an empty folder and XDG_CONFIG_HOME (or, for a legacy
    ~/.wireshark, WIRESHARK_CONFIG_DIR) keeps pointing at the user's configuration; with
    config=False (the tests) it points into the empty folder too, so nothing of the user's
    profile, such as the `rsvd` that install disables, changes a decode.

    On Windows the plugin folder is inside the configuration folder (%APPDATA%\\Wireshark\\plugins):
    the environment stays as it is and plugin_args() leaves out a plugin that loads from there.
    """
    env = dict(os.environ if environ is None else environ)
    if WINDOWS:
        return env
    if config:
        found = plugin_paths.personal_config_dir(env)
        if not env.get("WIRESHARK_CONFIG_DIR") and found.name == ".wireshark":
            env["WIRESHARK_CONFIG_DIR"] = str(found)  # legacy folder: found through HOME otherwise
        env["XDG_CONFIG_HOME"] = str(plugin_paths.config_home(env))
    else:
        env.pop("WIRESHARK_CONFIG_DIR", None)
        env["XDG_CONFIG_HOME"] = os.path.join(_empty_home(), ".config")
    env["HOME"] = _empty_home()
    return env


# tshark 4.4 and later load no Lua plugin when run as root, saying only "Running as user root".
ROOT_HINT = ": tshark 4.4 and later run no Lua plugin as root; run analyze as a regular user"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def plugin_args(compiled=()) -> List[str]:
    """-X lua_script: for each generated plugin; on Windows not for one whose installed copy
    tshark loads from the personal plugin folder anyway (a second load would clash); nor for one
    whose compiled export plugin tshark loads instead (`compiled`: analyzer.capture.compiled_plugins)."""
    installed = {c.source for c in plugin_paths.installed_copies()} if WINDOWS else set()
    args = []
    for p in plugin_paths.lua_paths():
        if p.stem in compiled:
            continue
        if not p.exists():
            raise CaptureError("%s is missing: run python -m dissectors" % p)
        if p not in installed:
            args += ["-X", "lua_script:%s" % p]
    return args


def installed_copy_notes() -> List[str]:
    """One line per plugin copy in the personal plugin folder that differs from this checkout's."""
    notes = []
    for c in plugin_paths.installed_copies():
        if c.current:
            continue
        if WINDOWS:
            notes.append("note: the %s installed in %s differs from this checkout's; on Windows tshark loads it "
                         "in place of the checkout's; run `python -m dissectors install` to update it"
                         % (c.path.name, c.path.parent))
        else:
            notes.append("note: the %s installed in %s differs from this checkout's; analyze uses the checkout's; "
                         "run `python -m dissectors install` to update the GUI's copy" % (c.path.name, c.path.parent))
    return notes


def command(tshark: Tshark, path: Path, decrypt: Sequence[str] = ()) -> List[str]:
    try:
        compiled = compiled_plugins.usable(tshark)
    except compiled_plugins.NoCompiledPlugin as e:
        raise CaptureError(str(e)) from None
    compiled_plugins.link_into(_empty_home(), tshark, compiled)  # the HOME tshark_env() gives tshark
    cmd = [tshark.path, "-n", "-r", str(path), *plugin_args(compiled), "--disable-protocol", "rsvd", *PREFERENCES,
           *decrypt,
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=" + AGGREGATOR,
           "-E", "quote=n"]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


@dataclass
class Run:
    """One tshark run over a capture: rows as they come, then how it ended."""

    tshark: Tshark
    path: Path
    decrypt: Sequence[str] = ()  # -o options that give tshark keys (analyzer.capture.keys)
    feed: Optional[List[str]] = None  # a command whose stdout is the capture (mergecap), read as -r -
    truncated: bool = False
    errors: List[str] = field(default_factory=list)
    dissector_bugs: List[tuple] = field(default_factory=list)  # (frame or None, tshark's line)
    frames: int = 0

    def rows(self) -> Iterator[List[str]]:
        escaped = self.tshark.version >= ESCAPES_TEXT
        feeder = None
        if self.feed is not None:
            feeder = subprocess.Popen(self.feed, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc = subprocess.Popen(command(self.tshark, Path("-") if feeder else self.path, self.decrypt),
                                stdin=feeder.stdout if feeder else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8", errors="replace", bufsize=1 << 20, env=tshark_env())
        if feeder is not None:
            feeder.stdout.close()  # tshark holds it now; mergecap sees a closed pipe if tshark stops
        try:
            for line in proc.stdout:
                cols = columns(line, escaped)
                if cols is not None:
                    self.frames += 1
                    yield cols
        finally:
            proc.stdout.close()
            stderr = proc.stderr.read()
            proc.stderr.close()
            code = proc.wait()
            if feeder is not None:
                said = feeder.stderr.read().decode("utf-8", "replace")
                feeder.stderr.close()
                if feeder.wait() != 0:
                    self.errors += ["mergecap: " + line.strip() for line in said.splitlines() if line.strip()]
                    if any("cut short" in line or "damaged" in line for line in said.splitlines()):
                        self.truncated = True
        self.ended(stderr, code)

    def ended(self, stderr: str, code: int) -> None:
        """What tshark said on stderr and its exit code: truncation, dissector bugs, other lines,
        or (when it read nothing) the error that stops this capture or the whole command."""
        damage = []
        for line in map(normalized, stderr.splitlines()):
            if cut_short(line):
                self.truncated = True
                damage.append(line)
            elif "Dissector bug" in line:
                m = re.search(r"in packet (\d+)", line)
                self.dissector_bugs.append((int(m.group(1)) if m else None, line))
            elif line and "Running as user" not in line:
                self.errors.append(line)
        if self.truncated and self.frames == 0:  # a partial capture gets its report; an unreadable one, this
            said = re.sub(r'^tshark: The file "[^"]*" ', "it ", damage[0]) if damage else "it is damaged"
            raise CaptureError("%s is damaged: tshark read no packet of it (%s)%s" % (
                self.path, said.rstrip("."), NETMON_CUT if _is_netmon(self.path) else ""))
        if code != 0 and not self.truncated and self.frames == 0:
            said = "; ".join(self.errors) or "exit %d" % code
            ours = any(n.proto + "." in said for n in (RSVD, CLUSPREP))
            if "Invalid -o flag" in said or "Error loading table" in said or (
                    "-o flag" in said and "unknown preference" in said and not ours):
                raise CommandError("tshark refused a key or option: %s; correct or leave out that option" % said)
            if ("aren't valid" in said or "unknown preference" in said) and ours:
                raise CommandError("tshark %s did not load the plugins (%s)%s" % (
                    self.tshark.version_text, said, ROOT_HINT if _is_root() and self.tshark.version >= (4, 4) else ""))
            raise CaptureError("tshark could not read %s: %s; open it in Wireshark to see why, or re-save it with "
                               "editcap" % (self.path, said))


# GLib's prefix on tshark's warnings: " ** (tshark:PID) HH:MM:SS.micro [Domain LEVEL] -- "
_GLIB_PREFIX = re.compile(r"^\*\*\s*\([^()]*:\d+\)\s*(?:\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\s*)?(?:\[[^\]]*\]\s*)?(?:--\s*)?")


def normalized(line: str) -> str:
    """A line of tshark's stderr without the process id and clock GLib puts before a warning, so
    two runs (or a split run and a whole one) say the same."""
    return _GLIB_PREFIX.sub("", line.strip())


NETMON_CUT = ("; a Network Monitor file keeps the table of its frames at its end, so one cut short shows none of "
              "them: copy the file again from where it was captured")


def _is_netmon(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"GMBU", b"RTSS")
    except OSError:
        return False


def cut_short(line: str) -> bool:
    """Whether a line of tshark's stderr says it stopped reading there (the rest is unread)."""
    return "cut short in the middle of a packet" in line or "appears to be damaged or corrupt" in line


_N_FIELDS = len(FIELDS)  # columns() runs for every line


def columns(line: str, escaped: bool) -> Optional[List[str]]:
    """One -T fields line as its FIELDS, text columns unescaped; None for a line that is not a row."""
    cols = line.rstrip("\n").split("\t")
    if len(cols) != _N_FIELDS:
        return None
    if escaped:
        for i in TEXT_COLUMNS:
            if "\\" in cols[i]:
                cols[i] = unescape(cols[i])
    return cols


def packets(path, display_filter: Optional[str] = None, tshark_path: Optional[str] = None, keys=None):
    """pyshark packets with both plugins loaded, for notebooks (slow: about 220 packets/s).
    keys: an analyzer.capture.keys.Keys, to decrypt."""
    capture = _file_capture()  # imports pyshark: without it, fails before tshark is looked for
    tshark = find_tshark(tshark_path)
    check_capture(Path(path), etl=False)  # pyshark hands the file to tshark as it is
    return capture(str(path), display_filter=display_filter, tshark_path=_for_pyshark(tshark.path),
                   custom_parameters=plugin_args() + ["--disable-protocol", "rsvd"]  # the built-in
                   + (keys.args() if keys else []))  # mis-decodes (README)


@functools.lru_cache(maxsize=None)
def _file_capture():
    """pyshark's FileCapture, except that a tshark which has read the whole file is waited for, not killed.

    pyshark (0.6) kills its tshark once it has read the packets, even a tshark that has ended on
    its own at the end of the file. The kill goes through subprocess.Popen.send_signal, which first
    polls the process (waitpid); in a thread other than the main one (analyzer.output.notebook.packets_of
    runs pyshark in a worker thread, for Jupyter) asyncio's ThreadedChildWatcher has a thread
    blocked in waitpid on the same process, and when the poll reaps it first asyncio logs "Unknown
    child process pid N, will report returncode 255". Waiting for the ended tshark lets asyncio
    reap it alone, and its exit status is the real one."""
    import asyncio

    import pyshark

    class FileCapture(pyshark.FileCapture):
        async def _cleanup_subprocess(self, process):
            if getattr(self, "_eof_reached", False) and process.returncode is None:
                try:
                    await asyncio.wait_for(process.wait(), 30)  # its output ended: it is exiting
                except asyncio.TimeoutError:
                    pass  # then pyshark kills it, as before
            return await super()._cleanup_subprocess(process)

    return FileCapture


@functools.lru_cache(maxsize=None)
def _for_pyshark(path: str) -> str:
    """A path whose folder holds `path` under the name `tshark`: pyshark runs the file named
    tshark beside the path it is given (else its config.ini's, else the PATH's).

    pyshark (0.6) cannot pass an environment to tshark, so on Linux and macOS that `tshark` is a
    small script that sets tshark_env()'s variables and runs `path`."""
    folder = work_folders.make("tshark")
    atexit.register(shutil.rmtree, folder, True)
    if WINDOWS:
        if os.path.basename(path).lower() == "tshark.exe":
            return path
        os.symlink(os.path.abspath(path), os.path.join(folder, "tshark.exe"))
        return os.path.join(folder, "tshark.exe")
    env = tshark_env()
    lines = ["#!/bin/sh", "# tshark for pyshark: this checkout's plugins only (analyzer.capture.source.tshark_env)"]
    for name in ("HOME", "XDG_CONFIG_HOME", "WIRESHARK_CONFIG_DIR"):
        if env.get(name) != os.environ.get(name):
            lines.append("%s=%s; export %s" % (name, shlex.quote(env[name]), name))
    lines.append('exec %s "$@"' % shlex.quote(os.path.abspath(path)))
    script = os.path.join(folder, "tshark")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(script, 0o755)
    return script
