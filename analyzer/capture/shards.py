"""One capture over several tsharks (analyze --jobs N): split by connection (analyzer.capture.split), one
tshark per shard writing its rows to a file, and the rows merged back in capture order, with
the capture's own frame numbers and TCP stream numbers. What reads the rows sees what a single
tshark gives: the same rows, in the same order.

The shards run wherever `executor` runs them: here, each tshark reads its shard from a pipe
that the split's second pass writes into as it goes (threads only wait on them), so the tsharks
start once the first pass is done; or a dask.distributed client whose workers read shard files
from a folder they can all reach. The merge reads each rows file while its tshark is still
writing it, so reconstruction overlaps dissection.
"""
from __future__ import annotations

import concurrent.futures
import fcntl
import heapq
import re
import shutil
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from . import progress, stopping, work_folders
from .source import AGGREGATOR, COL, ESCAPES_TEXT, Run, Tshark, columns, command, cut_short, tshark_env
from .split import NoRoom, Split, Unsplittable, plan, split

STREAM = COL["tcp.stream"]
SPLIT_ABOVE_MB = 16  # below this, a second tshark's start (plugins loaded: ~0.4 s) costs more than it saves
DISSECTION_WEIGHT = 5
POLL = 0.01  # seconds between looks at a rows file its tshark is still writing
PIPE_BYTES = 1 << 20  # a fed tshark's pipe (Linux allows up to 1 MB unprivileged)


# On two cores a big capture is split in two all the same: a tshark over it all slows as it grows
# (bench/scale.py, 2 cores: --jobs 3 against --jobs 1 took 1.10x on 158 MB, 0.86x on 792 MB and
# 0.78x on 1.6 GB, where the whole trace's tshark reached 2.6 GB and its halves 1.4 GB each)
TWO_CORES_SPLIT_MB = 512


@dataclass
class Sharding:
    """How analyze spreads one capture of at least `above_mb` MB over `jobs` cores: one core runs
    this process (merging the rows and reconstructing, as busy as a tshark: bench/scale.py), the
    others a tshark each, except that two cores split a capture of TWO_CORES_SPLIT_MB or more over
    two tsharks; on an `executor` (a Dask cluster's workers) all `jobs` run tsharks."""

    jobs: int = 1
    above_mb: float = SPLIT_ABOVE_MB
    directory: Optional[Path] = None
    executor: Optional[object] = None
    alone: bool = True  # the capture has the `jobs` cores to itself (not one of several analyzed at once)

    @property
    def tsharks(self) -> int:
        return self.jobs if self.executor is not None else self.jobs - 1

    def tsharks_for(self, *paths: Path) -> int:
        """The tsharks for these files (their size decides on two cores), 0 or 1 when they are not split."""
        try:
            size = sum(p.stat().st_size for p in paths)
        except OSError:
            return 0
        if size < self.above_mb * 1e6:
            return 0
        if self.executor is None and self.alone and self.jobs == 2 and size >= max(TWO_CORES_SPLIT_MB,
                                                                                   self.above_mb) * 1e6:
            return 2
        return self.tsharks

    def applies(self, *paths: Path) -> bool:
        return self.tsharks_for(*paths) > 1


def dissect(tshark: Tshark, shard: str, rows: str, decrypt: Sequence[str]) -> Tuple[str, int]:
    """tshark over one shard, its rows into `rows`: (what it said on stderr, its exit code).
    A plain function of plain values, so a process or a Dask worker can run it."""
    with open(rows, "wb") as out, subprocess.Popen(command(tshark, Path(shard), decrypt), stdout=out,
                                                   stderr=subprocess.PIPE, env=tshark_env()) as proc:
        if stopping.requested():  # started after analyze passed a signal on to its tsharks
            proc.kill()
        stderr = proc.communicate()[1]
    return stderr.decode("utf-8", "replace"), proc.returncode


def _fed(tshark: Tshark, out, decrypt: Sequence[str]) -> subprocess.Popen:
    """A tshark reading a shard from its stdin (Split.write feeds it), its rows into `out`."""
    proc = subprocess.Popen(command(tshark, Path("-"), decrypt), stdin=subprocess.PIPE, stdout=out,
                            stderr=subprocess.PIPE, env=tshark_env(), bufsize=1 << 20)
    if stopping.requested():  # started after analyze passed a signal on to its tsharks
        proc.kill()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:  # a deeper pipe: the split runs on while this tshark is busy with a big packet
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass
    return proc


def _ended(proc: subprocess.Popen) -> Tuple[str, int]:
    """What a fed tshark said on stderr, and its exit code, once it ends."""
    stderr = proc.stderr.read()
    proc.stderr.close()
    return stderr.decode("utf-8", "replace"), proc.wait()


def _rows_of(path: Path, done: Callable[[], bool], escaped: bool) -> Iterator[List[str]]:
    """The rows of a file a tshark is writing, as they come, until it is done and read to the end."""
    with open(path, "rb") as f:
        partial, last = b"", False
        while True:
            chunk = f.read(1 << 20)
            if chunk:
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    cols = columns(line.decode("utf-8", "replace"), escaped)
                    if cols is not None:
                        yield cols
            elif last:
                if partial:
                    cols = columns(partial.decode("utf-8", "replace"), escaped)
                    if cols is not None:
                        yield cols
                return
            elif done():
                last = True  # one more read: what it wrote before it ended
            else:
                time.sleep(POLL)


def _numbers(path: Path) -> Iterator[int]:
    """The original frame numbers of a shard's frames (analyzer.capture.split writes them)."""
    with open(path, "rb") as f:
        while True:
            block = f.read(8 << 16)
            if not block:
                return
            a = array("Q")
            a.frombytes(block)
            yield from a


@dataclass
class ShardedRun:
    """A Run (analyzer.capture.source) over shards: rows(), then frames, truncated, errors and
    dissector_bugs as a single run gives them. A capture that cannot be split exactly is read
    whole (`whole` says why)."""

    tshark: Tshark
    path: Path
    decrypt: Sequence[str] = ()
    jobs: int = 2
    directory: Optional[Path] = None  # where the shards go (a folder every worker can read)
    executor: Optional[object] = None  # submit(fn, *args) -> a future with done() and result()
    truncated: bool = False
    errors: List[str] = field(default_factory=list)
    dissector_bugs: List[tuple] = field(default_factory=list)
    frames: int = 0
    shards: int = 0  # shards dissected (0: read whole)
    whole: Optional[str] = None
    _limit: float = float("inf")  # the first frame a shard's tshark could not read (a damaged block)

    def rows(self) -> Iterator[List[str]]:
        bar = progress.current()
        size, told = self.path.stat().st_size, [0.0]
        # the job reads it twice: split, then (as shards) dissected and reconstructed, which takes
        # about 5 times longer (bench/scale.py): weighted so, the bar's rate and ETA hold
        bar.expect(self.path, size, weight=DISSECTION_WEIGHT)

        def splitting(fraction: float) -> None:  # the split reads through an mmap, which /proc cannot see
            bar.advance(int((fraction - told[0]) * size), path=self.path)
            told[0] = fraction

        try:
            # here the shards go straight into their tsharks; a cluster's workers read them from files
            parts = (plan if self.executor is None else split)(self.path, self.jobs, self.directory, splitting)
        except Unsplittable as e:
            self.whole = str(e)
            if isinstance(e, NoRoom):  # the one reason the user can act on
                print("analyze: %s not split over %d tsharks: %s" % (self.path.name, self.jobs, e), file=sys.stderr)
            bar.finished(self.path)  # the look (usually a whole pass); tshark's reading is sampled
            run = Run(self.tshark, self.path, self.decrypt)
            try:
                yield from run.rows()
            finally:
                self.frames, self.truncated = run.frames, run.truncated
                self.errors, self.dissector_bugs = run.errors, run.dissector_bugs
            return
        bar.finished(self.path)
        try:
            yield from self._merged(parts, lambda rows: bar.advance(int(rows / parts.frames * size), path=self.path))
        finally:
            parts.remove()
            bar.finished(self.path)

    def _merged(self, parts: Split, merging: Callable[[int], None]) -> Iterator[List[str]]:
        self.shards = n = len(parts.shards)
        own = self.executor is None
        pool = concurrent.futures.ThreadPoolExecutor(n + 1) if own else self.executor
        escaped = self.tshark.version >= ESCAPES_TEXT
        procs: List[subprocess.Popen] = []
        try:
            futures, streams = [], []
            for k, s in enumerate(parts.shards):
                rows = parts.directory / ("shard-%d.rows" % k)
                if own:  # its tshark reads the shard from a pipe as the split writes it
                    with open(rows, "wb") as out:
                        procs.append(_fed(self.tshark, out, list(self.decrypt)))
                    futures.append(pool.submit(_ended, procs[-1]))
                else:
                    rows.touch()
                    futures.append(pool.submit(dissect, self.tshark, str(s.path), str(rows), list(self.decrypt)))
                streams.append(self._renumbered(k, s.frames_path, rows, futures[-1], escaped))
            if own:
                writing = pool.submit(parts.write, [p.stdin for p in procs])
            renamed = [{} for _ in range(n)]  # per shard: its tcp.stream -> the capture's
            known = 0
            for original, k, cols in heapq.merge(*streams):
                if original >= self._limit:  # a tshark stopped at a damaged block: a single one stops there too
                    break
                if cols[STREAM]:
                    values = []
                    for v in cols[STREAM].split(AGGREGATOR):
                        g = renamed[k].get(v)
                        if g is None:  # first seen here: streams are numbered in order of first frame
                            g = renamed[k][v] = str(known)
                            known += 1
                        values.append(g)
                    cols[STREAM] = AGGREGATOR.join(values)
                self.frames += 1
                if self.frames % 8192 == 0:
                    merging(8192)
                yield cols
            if own:
                writing.result()
            for k, fut in enumerate(futures):
                self._ended(k, parts, *fut.result())
            # a single run reports them in frame order, and none past where it stopped reading
            self.dissector_bugs = sorted((b for b in self.dissector_bugs if (b[0] or 0) < self._limit),
                                         key=lambda b: b[0] or 0)
            if self.frames != parts.frames and not self.truncated:
                self.errors.append("analyze: the shards' tsharks read %d frames of the %d the split wrote; rerun with "
                                   "--jobs 1" % (self.frames, parts.frames))
        finally:
            for p in procs:  # stopped early (a signal, an error): no tshark left behind
                if p.poll() is None:
                    p.kill()
            if own:
                pool.shutdown(wait=True, cancel_futures=True)

    def _renumbered(self, k: int, frames: Path, rows: Path, future, escaped: bool):
        """(original frame, shard, row) for each of shard k's rows, in order."""
        numbers = _numbers(frames)
        for cols in _rows_of(rows, future.done, escaped):
            original = next(numbers, None)
            if original is None:
                self.errors.append("analyze: shard %d held more frames than the split wrote; rerun with --jobs 1" % k)
                return
            cols[0] = str(original)
            yield original, k, cols
        # Ended: if its tshark stopped at a damaged block, a single tshark stops there too, so no
        # row from that block's frame on. (Popped before any later frame: the merge takes rows in order.)
        stderr, _ = future.result()
        if any(cut_short(line) for line in stderr.splitlines()):
            stopped = next(numbers, None)
            if stopped is not None:
                self._limit = min(self._limit, stopped)

    def _ended(self, k: int, parts: Split, stderr: str, code: int) -> None:
        """A shard's stderr and exit code, read as a single run's, frame numbers made the capture's."""
        run = Run(self.tshark, self.path, self.decrypt)
        run.frames = parts.shards[k].frames
        run.ended(stderr, code)
        self.truncated |= run.truncated
        for line in run.errors:
            if line not in self.errors:  # each tshark says a warning once; a single run says it once
                self.errors.append(line)
        if run.dissector_bugs:
            numbers = list(_numbers(parts.shards[k].frames_path))
            for frame, line in run.dissector_bugs:
                if frame is not None and 0 < frame <= len(numbers):
                    original = numbers[frame - 1]
                    line = re.sub(r"in packet %d\b" % frame, "in packet %d" % original, line)
                    frame = original
                self.dissector_bugs.append((frame, line))


@dataclass
class MergedShardedRun(ShardedRun):
    """Several files as one capture (analyze --merge), split like one: mergecap writes the merge
    to a file beside the shards (the split reads it twice), then as ShardedRun. When mergecap
    says anything (a file cut short or damaged), the merge is read through a pipe as before."""

    feed: Sequence[str] = ()  # the mergecap command (analyzer.capture.merge.Merged.mergecap), writing to stdout

    def rows(self) -> Iterator[List[str]]:
        work = Path(work_folders.make("merge", self.directory))
        target, shown = work / "merged.pcapng", self.path
        try:
            cmd = list(self.feed)
            cmd[cmd.index("-w") + 1] = str(target)
            res = subprocess.run(cmd, capture_output=True)
            if res.returncode != 0 or res.stderr.strip():
                run = Run(self.tshark, shown, self.decrypt, feed=list(self.feed))
                try:
                    yield from run.rows()
                finally:
                    self.frames, self.truncated = run.frames, run.truncated
                    self.errors, self.dissector_bugs, self.whole = run.errors, run.dissector_bugs, "mergecap spoke"
                return
            self.path = target
            yield from ShardedRun.rows(self)
        finally:
            self.path = shown
            shutil.rmtree(work, ignore_errors=True)
