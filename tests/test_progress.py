"""Issue 14 item 4: one progress bar for the whole job (analyzer/capture/progress.py). The sampler reads
the read positions of child and grandchild processes from /proc, never goes back, is exact once
files are finished; disabled it starts no thread and prints nothing; the CLI shows the bar on a
terminal only, on stderr, and the JSON on stdout stays clean."""
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import promised
import samples
from analyzer.capture import progress as progress_module
from analyzer.capture.progress import Progress, descendants, positions

ROOT = Path(__file__).resolve().parent.parent
LINUX = os.path.isdir("/proc/self/fdinfo")
SIZE = 1_000_000

# reads N bytes unbuffered (the position is exactly N), says so, then waits to be killed; with a
# third argument it runs itself one level down, so a grandchild does the reading
READER = """
import subprocess, sys, time
path, n = sys.argv[1], int(sys.argv[2])
if len(sys.argv) > 3:
    subprocess.run([sys.executable, __file__, path, str(n)])
    sys.exit()
f = open(path, "rb", buffering=0)
f.read(n)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def blob(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\0" * SIZE)
    return path


@pytest.fixture
def readers(tmp_path):
    started = []
    script = tmp_path / "reader.py"
    script.write_text(READER)

    def start(path, n, grandchild=False):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(n), *(["g"] if grandchild else [])],
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in started:
        kill(proc)


def kill(proc):
    """A reader and its grandchild, if any."""
    for pid in descendants(proc.pid)[::-1]:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    proc.wait()


@pytest.mark.skipif(not LINUX, reason=promised.NOT_HERE + "/proc sampling is Linux's")
def test_the_sampler_sees_a_child_then_a_grandchild_read_and_never_goes_back(blob, tmp_path, readers):
    other = tmp_path / "other.bin"
    other.write_bytes(b"\0" * SIZE)
    p = Progress(True, expect=[blob])
    p.sample()
    assert p.totals() == (0, SIZE)
    readers(other, SIZE)  # not expected: not counted
    child = readers(blob, 300_000)
    p.sample()
    assert p.totals() == (300_000, SIZE)
    grand = readers(blob, 600_000, grandchild=True)
    p.sample()
    assert p.totals() == (600_000, SIZE)
    kill(child)
    kill(grand)  # no reader left: the bar keeps what it saw
    p.sample()
    assert p.totals() == (600_000, SIZE)
    p.finished(blob)
    assert p.totals() == (SIZE, SIZE)


def test_finished_advance_weight_and_a_file_given_twice(blob, tmp_path):
    p = Progress(True, expect=[blob, blob])  # read twice: twice the bytes
    p.expect(tmp_path / "later.bin", size=500, weight=2)  # a shard not written yet, size known
    assert p.totals() == (0, 2 * SIZE + 1000)
    p.advance(100, path=tmp_path / "later.bin")
    p.advance(10)
    assert p.totals() == (210, 2 * SIZE + 1000)
    p.finished(blob)
    assert p.totals() == (SIZE + 210, 2 * SIZE + 1000)
    p.finished(blob)
    p.finished(blob)  # one too many: ignored
    p.finished(tmp_path / "later.bin")
    assert p.totals() == (2 * SIZE + 1000, 2 * SIZE + 1000)  # capped: loose bytes never overshoot


def test_a_missing_file_is_stat_again_and_races_are_skipped(tmp_path):
    p = Progress(True, expect=[tmp_path / "shard.bin"])
    p.sample()
    assert p.totals() == (0, 0)
    (tmp_path / "shard.bin").write_bytes(b"x" * 10)
    p.sample()
    assert p.totals() == (0, 10)
    assert positions([2 ** 22 + 12345, os.getpid()], {"/nowhere"}) == {}  # a vanished pid, nothing wanted


def test_without_proc_only_finished_files_count(blob, monkeypatch):
    p = Progress(True, expect=[blob])
    p.proc = False
    with open(blob, "rb") as f:
        f.read(1000)
        p.sample()
    assert p.totals() == (0, SIZE)
    p.finished(blob)
    assert p.totals() == (SIZE, SIZE)


def test_disabled_starts_no_thread_and_prints_nothing(blob, capfd):
    before = threading.active_count()
    with Progress(False, expect=[blob]) as p:
        assert threading.active_count() == before and p._thread is None and p._bar is None
        p.expect(blob)
        p.advance(5)
        p.finished(blob)
        assert p.counter("x") is None and p.totals() == (0, 0)
        assert progress_module.current().enabled is False
    assert capfd.readouterr() == ("", "")


def test_enabled_draws_on_its_console_and_stops_its_thread(blob):
    from rich.console import Console

    out = io.StringIO()
    with Progress(True, expect=[blob], interval=0.02, console=Console(file=out, force_terminal=True, width=100)) as p:
        assert progress_module.current() is p
        thread = p._thread
        assert thread.is_alive()
        p.counter("blob.bin")(4096)
        p.finished(blob)
        time.sleep(0.2)
    assert not thread.is_alive() and progress_module.current().enabled is False
    assert p.ticks > 0
    text = out.getvalue()
    assert "100%" in text and "4,096 packets" in text and "MB" in text, text


@pytest.mark.skipif(not LINUX, reason=promised.NOT_HERE + "/proc sampling is Linux's")
def test_sampling_cost_is_small(blob, readers):
    for i in range(3):
        readers(blob, 100_000 * (i + 1))
    p = Progress(True, expect=[blob])
    for _ in range(20):
        p.sample()
    per_tick = p.tick_seconds / p.ticks
    print("sampling: %.2f ms per tick, 3 reader processes" % (per_tick * 1000))
    assert per_tick < 0.02  # 20 ms of 250: under a tenth of one core even on a slow machine
    assert p.totals() == (300_000, SIZE)


def analyze(*args, **kw):
    return subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_cli_prints_nothing_more_when_stderr_is_not_a_terminal(jobs):
    caps = [samples.path("rsvd_shared_disk"), samples.path("clusprep_setup")]
    res = analyze("--jobs", jobs, "--format", "json", *caps)
    assert res.returncode == 0, res.stderr
    assert all(line.startswith("note: ") for line in res.stderr.splitlines()), res.stderr
    json.loads(res.stdout)


def on_a_pty(*args):
    """analyze with stderr on a pseudo-terminal: (stdout, what the terminal got)."""
    import pty  # noqa: F401 - POSIX only

    master, slave = os.openpty()
    got = []

    def drain():  # a full pty would block the CLI
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the slave side is closed
                return
            if not data:
                return
            got.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", *map(str, args)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=slave, timeout=120,
                             env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return res, b"".join(got).decode("utf-8", "replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason=promised.NOT_HERE + "needs a pseudo-terminal")
@pytest.mark.parametrize("args", [["samples/rsvd_shared_disk.pcapng"],
                                  ["--jobs", "2", "samples/rsvd_shared_disk.pcapng", "samples/clusprep_setup.pcapng"],
                                  ["--merge", "samples/rsvd_shared_disk.pcapng", "samples/clusprep_setup.pcapng"]],
                         ids=["serial", "jobs", "merge"])
def test_on_a_terminal_the_bar_shows_on_stderr_and_stdout_stays_clean(args):
    res, terminal = on_a_pty("--format", "json", *args)
    assert res.returncode == 0, terminal
    json.loads(res.stdout)  # nothing of the bar in it
    assert b"\x1b" not in res.stdout
    assert "%" in terminal and "kB" in terminal and "analyzing" in terminal, terminal
    assert "Traceback" not in terminal


@pytest.mark.skipif(not LINUX, reason=promised.NOT_HERE + "/proc sampling is Linux's")
def test_a_reporter_sends_how_far_its_tsharks_read_each_time_it_grows(blob, tmp_path, readers):
    """What a Dask worker's task runs (analyzer.capture.distributed.reporting): the read position of
    its children, sent under the name the analyzing process's bar knows the file by."""
    sent = []
    with progress_module.Reporter({str(blob): "capture.pcapng"}, lambda name, pos: sent.append((name, pos)),
                                  interval=0.05) as reporter:
        readers(blob, 1000)
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.05)
        reporter.sample()  # again: the same position is not sent twice
        readers(blob, 5000)
        while len(sent) < 2 and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    assert sent == [("capture.pcapng", 1000), ("capture.pcapng", 5000)]
