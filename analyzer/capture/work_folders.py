"""The folders a run writes its work into (shards, a merge, the workers' rows, tshark's empty
home), named after the process that made them: host, PID namespace, PID and start time.

A run removes its own folders as it ends, on Ctrl-C, SIGTERM or SIGHUP too (analyzer.capture.stopping).
A SIGKILL or a power cut cannot be helped, so making the first folder in a directory also
removes those of this user and host whose process no longer exists. A folder of a live run,
of another user, of another host (a --work-dir on NFS) or of another PID namespace is never
touched, nor one whose name does not say its owner (made before names did).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
from typing import List, Optional

PREFIX = "analyze-"
KINDS = ("home", "tshark", "shards", "merge", "parts", "dask", "etl")
# analyze-KIND-HOST.NS.PID.START-RANDOM (tempfile's random part has no "-"; a host name may have ".")
_NAME = re.compile(r"^analyze-(?:%s)-(?P<host>[A-Za-z0-9.-]*)\.(?P<ns>\d+)\.(?P<pid>\d+)\.(?P<start>\d+)-[a-z0-9_]+$"
                   % "|".join(KINDS))
_LINUX = sys.platform.startswith("linux")
_reaped = set()  # directories this process has cleaned already
_lock = threading.Lock()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:63]


def _namespace(pid: object = "self") -> int:
    """The inode of the PID namespace `pid` lives in (0 where /proc does not say)."""
    try:
        return os.stat("/proc/%s/ns/pid" % pid).st_ino
    except OSError:
        return 0


def _started(pid: object = "self") -> Optional[int]:
    """When process `pid` started, in clock ticks since boot (Linux); None: no such process."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the name in parentheses may hold spaces
        return int(fields[19])  # field 22 of proc(5); these start at field 3
    except (OSError, IndexError, ValueError):
        return None


def owner(pid: Optional[int] = None) -> str:
    """HOST.NS.PID.START of process `pid` (default: this one); NS and START are 0 where there is no /proc."""
    key = "self" if pid is None else pid
    return "%s.%d.%d.%d" % (_host(), _namespace(key) if _LINUX else 0, os.getpid() if pid is None else pid,
                            (_started(key) or 0) if _LINUX else 0)


def make(kind: str, directory: Optional[str] = None) -> str:
    """A new folder of this process, under `directory` (default: the system temp folder); the
    first one made there also removes those dead runs left (reap)."""
    assert kind in KINDS, kind
    reap(directory)
    return tempfile.mkdtemp(prefix="%s%s-%s-" % (PREFIX, kind, owner()), dir=directory)


def _alive(ns: int, pid: int, start: int) -> bool:
    """Whether the process that made a folder may still run (when in doubt, it does)."""
    if _LINUX:
        if ns != _namespace():  # another container's PIDs: not ours to judge
            return True
        started = _started(pid)
        return started is not None and (start == 0 or started == start)  # else the PID was reused
    if sys.platform.startswith("win"):
        return True  # os.kill(pid, 0) would end the process there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def dead(name: str) -> bool:
    """Whether `name` is a work folder of a run of this host whose process no longer exists."""
    m = _NAME.match(name)
    if not m or m["host"] != _host():
        return False
    return not _alive(int(m["ns"]), int(m["pid"]), int(m["start"]))


def reap(directory: Optional[str] = None) -> List[str]:
    """Remove the work folders that runs of this user and host left in `directory` when they
    died; once a process per directory. Returns the paths removed."""
    where = os.path.abspath(directory or tempfile.gettempdir())
    with _lock:
        if where in _reaped:
            return []
        _reaped.add(where)
    removed = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = list(os.scandir(where))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or not dead(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed
