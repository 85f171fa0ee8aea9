"""How `analyze` stops on SIGINT, SIGTERM or SIGHUP: as on Ctrl-C, with nothing left behind.

The first signal is passed on to every process below this one (tsharks, mergecap, pool
workers: Ctrl-C reaches them through the terminal, `kill` or a closed SSH session does not),
then raised in the main thread as Stopped, so every `finally` and `with` unwinds: shard and
merge folders are removed, tsharks are waited for, and atexit removes the empty home. Further
signals are ignored while that happens (it takes well under a second; SIGKILL still works).

A pool worker does the same while it runs a capture; idle, it exits quietly.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from .progress import descendants

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """A signal asked the run to stop (a KeyboardInterrupt, so code that unwinds on Ctrl-C unwinds on it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def __reduce__(self):  # a pool worker's is sent to its parent
        return Stopped, (self.signum,)


_state = {"worker": False, "busy": False, "requested": 0}


def requested() -> int:
    """The signal that asked this process to stop (0: none). A thread that starts a tshark checks
    it after starting one: a process started after the signal was passed on did not get it."""
    return _state["requested"]


def install(worker: bool = False) -> dict:
    """Stop on SIGINT, SIGTERM and SIGHUP (main thread only: Python delivers signals there).
    worker: a process of analyze's pool, which exits quietly between captures. Returns the
    handlers it replaced, for restore()."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(worker=worker, busy=False, requested=0)
    for s in SIGNALS:
        signal.signal(s, _stop)
    return previous


def restore(previous: dict) -> None:
    """The handlers install() replaced (analyze.cli.main called from Python, not as a command)."""
    for s, handler in previous.items():
        signal.signal(s, handler)
    _state.update(worker=False, busy=False, requested=0)


class busy:
    """In a pool worker, while a capture is analyzed: a signal then unwinds it (its folders go)."""

    def __enter__(self):
        _state["busy"] = True

    def __exit__(self, *exc):
        _state["busy"] = False


def _stop(signum, frame):
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    _state["requested"] = signum  # before the children are listed: see requested()
    _pass_on(signum)
    if _state["worker"] and not _state["busy"]:
        raise SystemExit(128 + signum)  # multiprocessing ends a worker quietly on SystemExit
    raise Stopped(signum)


def _pass_on(signum: int) -> None:
    if not sys.platform.startswith("linux"):
        return  # Ctrl-C reaches the whole process group by itself there too
    for pid in descendants(os.getpid())[1:]:
        try:
            os.kill(pid, signum)
        except OSError:
            pass
