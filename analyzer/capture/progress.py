"""One progress bar for the whole job: bytes read out of the bytes the job will read, rate, ETA.

It does not need the readers' help: on Linux a thread samples, every quarter second, the read
position (/proc/PID/fdinfo/N) of each open descriptor of this process and its descendants (tshark,
mergecap, worker processes and their tsharks) whose target is an expected file. A caller that
reads in a way /proc cannot see reports bytes itself (advance) and says when a file is done
(finished), which makes the bar exact. Without /proc only finished files count.

Shown on stderr with rich, only when enabled (the caller passes sys.stderr.isatty()); disabled, it
starts no thread and prints nothing. Nothing here raises into the analysis.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, Dict, List, Optional

PROC = "/proc"
INTERVAL = 0.25

_current: Optional["Progress"] = None


def current() -> "Progress":
    """The job's Progress, so code deep in the pipeline (shards) can expect() files without a
    parameter threaded through; a disabled one when no job runs or in a worker process."""
    if _current is None or _current.pid != os.getpid():  # a forked worker inherits the parent's
        return Progress(False)
    return _current


class _File:
    __slots__ = ("path", "size", "weight", "seen", "done")

    def __init__(self, path: str, size: Optional[int], weight: float):
        self.path, self.size, self.weight, self.seen, self.done = path, size, weight, 0, False

    def total(self) -> float:
        return (self.size or 0) * self.weight

    def completed(self) -> float:
        size = self.size or 0
        return (size if self.done else min(self.seen, size)) * self.weight


def _size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except OSError:
        return None  # not there yet (a shard being written): stat again at each tick


def _key(path) -> str:
    # /proc/PID/fd links name the resolved absolute path
    return os.path.realpath(os.fspath(path))


def _children_files() -> bool:
    return os.path.exists("%s/%d/task/%d/children" % (PROC, os.getpid(), os.getpid()))


def descendants(root: int, children_files: Optional[bool] = None) -> List[int]:
    """root and every process below it (workers, their tsharks); vanished ones are skipped."""
    if children_files is None:
        children_files = _children_files()
    if not children_files:  # kernel without CONFIG_PROC_CHILDREN: ppid chains from every stat
        parent: Dict[int, List[int]] = {}
        for name in os.listdir(PROC):
            if not name.isdigit():
                continue
            try:
                with open("%s/%s/stat" % (PROC, name)) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parent.setdefault(ppid, []).append(int(name))
    pids, i = [root], 0
    while i < len(pids):
        pid, i = pids[i], i + 1
        if not children_files:
            pids += parent.get(pid, [])
            continue
        try:
            tasks = os.listdir("%s/%d/task" % (PROC, pid))
        except OSError:
            continue
        for tid in tasks:  # a child belongs to the thread that forked it
            try:
                with open("%s/%d/task/%s/children" % (PROC, pid, tid)) as f:
                    pids += [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
    return pids


def positions(pids: List[int], wanted) -> Dict[str, int]:
    """The furthest read position, per wanted path, over the pids' open descriptors."""
    seen: Dict[str, int] = {}
    for pid in pids:
        fds = "%s/%d/fd" % (PROC, pid)
        try:
            names = os.listdir(fds)
        except OSError:
            continue  # exited, or not ours to read
        for fd in names:
            link = "%s/%s" % (fds, fd)
            try:
                target = os.readlink(link)
                if target not in wanted:
                    continue
                with open("%s/%d/fdinfo/%s" % (PROC, pid, fd)) as f:
                    pos = int(f.readline().split()[1])  # "pos:\t123"
                if os.readlink(link) != target:
                    continue  # closed and reused between the two reads
            except (OSError, ValueError, IndexError):
                continue
            if pos > seen.get(target, -1):
                seen[target] = pos
    return seen


class _Ticking:
    """A daemon thread calling self.sample() every self.interval seconds until stopped; whatever
    sample raises is dropped (progress never breaks the analysis)."""

    interval: float
    _stop: threading.Event
    _thread: Optional[threading.Thread]

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a progress bar never breaks the analysis
                pass

    def _start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            self._thread = None


class Progress(_Ticking):
    """with Progress(sys.stderr.isatty(), expect=paths) as p: ... p.finished(path) ...; p.expect(more)."""

    def __init__(self, enabled: bool, expect=(), description: str = "analyzing", interval: float = INTERVAL,
                 console=None):
        self.enabled = enabled
        self.pid = os.getpid()
        self.description = description
        self.interval = interval
        self.console = console
        self.files: Dict[str, List[_File]] = {}  # a path given twice is read twice
        self.loose = 0  # advance() bytes tied to no file
        self.packets: Dict[str, int] = {}
        self.proc = os.path.isdir("%s/self/fdinfo" % PROC)
        self.ticks = 0
        self.tick_seconds = 0.0  # sampling cost, for measuring
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._bar = None
        self._task = None
        self._children: Optional[bool] = None  # /proc/PID/task/TID/children exists; None: look each time
        for path in expect:  # before the bar shows, so its first frame has the total
            self.expect(path)

    # -- what callers say ------------------------------------------------------------------

    def expect(self, path, size: Optional[int] = None, weight: float = 1) -> None:
        """The job will read `path` (size: its bytes, else its size on disk when known); weight
        counts its bytes that many times (a file read twice, or dearer to read)."""
        if not self.enabled:
            return
        key = _key(path)
        with self._lock:
            self.files.setdefault(key, []).append(_File(key, size if size is not None else _size(key), weight))

    def advance(self, nbytes: int, path=None) -> None:
        """Bytes the caller read itself; with `path`, they are that file's (its progress is the
        larger of these and the sampled position)."""
        if not self.enabled:
            return
        with self._lock:
            f = self._open(_key(path)) if path is not None else None
            if f is None:
                self.loose += nbytes
            else:
                f.seen += nbytes

    def finished(self, path) -> None:
        """`path` is read (or failed): it counts as whole from now on."""
        if not self.enabled:
            return
        with self._lock:
            f = self._open(_key(path))
            if f is not None:
                f.done = True

    def reached(self, path, position: int) -> None:
        """`path` has been read up to `position` by a reader this process cannot see (a Dask
        worker's tshark, through Reporter): as a sampled position."""
        if not self.enabled:
            return
        with self._lock:
            self._reach(_key(path), position)

    def _reach(self, key: str, position: int) -> None:
        f = self._open(key)
        if f is not None and position > f.seen:
            f.seen = position  # max so far: a seek back does not move the bar back

    def counter(self, name: str) -> Optional[Callable[[int], None]]:
        """A per-packet callback for analyze_capture: the packet count shows in the description."""
        if not self.enabled:
            return None

        def update(n: int) -> None:
            self.packets[name] = n
        return update

    def _open(self, key: str) -> Optional[_File]:
        return next((f for f in self.files.get(key, ()) if not f.done), None)

    # -- the bar ---------------------------------------------------------------------------

    def totals(self):
        """(completed, total) weighted bytes."""
        with self._lock:
            files = [f for fs in self.files.values() for f in fs]
            total = sum(f.total() for f in files)
            done = sum(f.completed() for f in files) + self.loose
        return min(done, total), total

    def shown(self):
        """(completed, total) as the bar shows them: the weighted fraction of the bytes of the
        files the job reads, each counted once (a split capture is read twice, with weights,
        but the user's file is its size)."""
        done, total = self.totals()
        with self._lock:
            real = sum(fs[0].size or 0 for fs in self.files.values() if fs) + self.loose
        if not total:
            return done, total
        return done / total * real, real

    def sample(self) -> None:
        """One tick: the read positions of the expected files, then the bar."""
        start = time.perf_counter()
        with self._lock:
            for fs in self.files.values():
                for f in fs:
                    if f.size is None:
                        f.size = _size(f.path)
            wanted = {k for k, fs in self.files.items() if any(not f.done for f in fs)}
        if self.proc and wanted:
            seen = positions(descendants(os.getpid(), self._children), wanted)
            with self._lock:
                for key, pos in seen.items():
                    self._reach(key, pos)
        self.tick_seconds += time.perf_counter() - start
        self.ticks += 1
        self._show()

    def _show(self) -> None:
        if self._bar is None:
            return
        done, total = self.shown()
        text = self.description
        if self.packets:
            text += " (%s packets)" % format(sum(list(self.packets.values())), ",")  # list: another thread may add a capture
        self._bar.update(self._task, completed=done, total=total or None, description=text)
        self._bar.refresh()

    def __enter__(self) -> "Progress":
        global _current
        if not self.enabled:
            return self
        try:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TaskProgressColumn,
                                       TextColumn, TimeRemainingColumn, TransferSpeedColumn)

            # stderr, not rich's default stdout: the JSON report goes there
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                            console=self.console or Console(stderr=True), transient=True,
                            auto_refresh=False, redirect_stdout=False)
            done, total = self.totals()
            self._task = self._bar.add_task(self.description, completed=done, total=total or None)
            self._bar.start()
        except Exception:  # noqa: BLE001
            self._bar = None
        self._children = self.proc and _children_files()
        self._start("progress")
        _current = self
        return self

    def __exit__(self, *exc) -> None:
        global _current
        if _current is self:
            _current = None
        self._halt()
        if self._bar is not None:
            try:
                self._bar.stop()
            except Exception:  # noqa: BLE001
                pass


class Reporter(_Ticking):
    """Where the bar cannot look (a task on another machine's Dask worker): how far this
    process's tsharks have read each of `paths` (its path here -> the name the bar knows it by),
    passed to `send(name, position)` each time it grows, every `interval` seconds, from a thread.
    Without /proc it sends nothing; nothing here raises into the analysis."""

    def __init__(self, paths: Dict[str, str], send: Callable[[str, int], None], interval: float = INTERVAL):
        self.names = {_key(p): name for p, name in paths.items()}
        self.send = send
        self.interval = interval
        self.sent: Dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def sample(self) -> None:
        for key, pos in positions(descendants(os.getpid()), set(self.names)).items():
            if pos > self.sent.get(key, 0):
                self.sent[key] = pos
                self.send(self.names[key], pos)

    def __enter__(self) -> "Reporter":
        if os.path.isdir("%s/self/fdinfo" % PROC):
            self._start("progress-reporter")
        return self

    def __exit__(self, *exc) -> None:
        self._halt()
