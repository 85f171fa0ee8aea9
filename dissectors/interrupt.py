"""How a command of this repository ends when a signal stops it: one line on stderr, no traceback,
and the shell's code for that signal, 128 + its number (Ctrl-C, SIGINT: 130; SIGTERM: 143; SIGHUP:
129), so a script that runs it can tell "stopped" from "failed" (exit 1 or 2).

Here because every command imports this package: `python -m dissectors`, `python -m samples`,
`analyze` (analyzer.capture.stopping, which also passes the signal on to its tsharks), the bench scripts.
SIGTERM and SIGHUP already end a plain Python process with 143 and 129 and no traceback; SIGINT
raises KeyboardInterrupt, which run() turns into the line and 130.
"""
from __future__ import annotations

import signal
import sys
from typing import Callable


def exit_code(signum: int) -> int:
    """The shell's exit status for a process that a signal stopped."""
    return 128 + int(signum)


def say(line: str) -> None:
    """A line on stderr, which a closed terminal (SIGHUP) may no longer take."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


def run(main: Callable[..., int], prog: str, *args) -> int:
    """main(*args)'s exit code; on Ctrl-C, "PROG: interrupted" and 130 instead of a traceback."""
    try:
        return main(*args)
    except KeyboardInterrupt:
        say("%s: interrupted" % prog)
        return exit_code(signal.SIGINT)
