"""Issue 27 item 4: `analyze` stopped by SIGTERM, SIGHUP or SIGINT removes its work folders and
its tsharks as on Ctrl-C, and a later run removes the folders of runs that were killed. It exits
with the shell's code for the signal (issue 24): 128 + its number, 130 for Ctrl-C.

The tsharks here are a wrapper that holds each dissection for ten minutes before running the
real tshark, so a run is caught at a known point (its shards written, its tsharks started)
and a run that did not pass the signal on to them would hang past the test's timeout.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import samples
from analyzer.capture import work_folders
from analyzer.capture.source import HOME_VARIABLE, find_tshark

ROOT = Path(__file__).resolve().parent.parent
TWO_HOSTS = [samples.path("rsvd_shared_disk"), samples.path("clusprep_setup")]  # two connection groups


@pytest.fixture
def held_tshark(tmp_path):
    """(a tshark whose dissections wait 600 s, the folder where each writes started.PID when it waits)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    wrapper = tmp_path / "bin" / "tshark"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\n"
                       'case " $* " in *" -T "*) touch %s/started.$$; sleep 600;; esac\n'
                       'exec %s "$@"\n' % (marks, find_tshark().path))
    wrapper.chmod(0o755)
    return wrapper, marks


def environment(tmp: Path) -> dict:
    """TMPDIR here, and no empty home inherited from this process (which used the analyzer)."""
    env = {k: v for k, v in os.environ.items() if k != HOME_VARIABLE}
    return dict(env, TMPDIR=str(tmp))


def start(tmp_path, wrapper, *args):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = environment(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "--fail-on", "never", "--tshark", str(wrapper),
                             *map(str, args)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # signals reach it alone, as from `kill PID`
    return proc, tmp


def wait_for(marks: Path, n: int, proc) -> list:
    deadline = time.monotonic() + 120
    while len(list(marks.iterdir())) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the held tsharks did not start"
        time.sleep(0.05)
    return [int(p.name.split(".")[1]) for p in marks.iterdir()]


def gone(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


def stop(proc, signum):
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("analyze did not end within 60 s of %s" % signal.Signals(signum).name)
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_split_run_stopped_by_a_signal_leaves_nothing(signum, held_tshark, tmp_path):
    """Two shards, each held in its tshark; the signal reaches analyze only."""
    wrapper, marks = held_tshark
    capture = tmp_path / "two.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(capture), *map(str, TWO_HOSTS)], check=True)
    proc, tmp = start(tmp_path, wrapper, "--jobs", "3", "--split-above", "0", capture)
    tsharks = wait_for(marks, 2, proc)
    shards = list(tmp.glob("analyze-shards-*"))
    assert len(shards) == 1 and len(list(shards[0].glob("shard-*.frames"))) == 2  # caught mid-run
    assert shards[0].name.startswith("analyze-shards-%s-" % work_folders.owner(proc.pid))
    code, err = stop(proc, signum)
    assert code == 128 + signum and "analyze: stopped by %s" % signum.name in err and "Traceback" not in err, err
    assert code == {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}[signum.name]  # the shell's convention
    assert list(tmp.iterdir()) == [], err  # the shards and tshark's empty home
    assert all(gone(pid) for pid in tsharks)


def test_a_pool_of_workers_stopped_by_sigterm_leaves_nothing(held_tshark, tmp_path):
    """Three captures on two worker processes (one waits in the queue): the workers, their tsharks
    and the waiting capture all end; no worker prints a traceback."""
    wrapper, marks = held_tshark
    proc, tmp = start(tmp_path, wrapper, "--jobs", "2", "--output", tmp_path / "out",
                      samples.path("rsvd_shared_disk"), samples.path("clusprep_setup"), samples.path("rsvd_refusals"))
    tsharks = wait_for(marks, 2, proc)
    assert len(list(tmp.glob("analyze-parts-*"))) == 1
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143 and "analyze: stopped by SIGTERM" in err and "Traceback" not in err, err
    assert list(tmp.iterdir()) == [], err
    assert all(gone(pid) for pid in tsharks)
    time.sleep(1)
    assert len(list(marks.iterdir())) == 2  # the third capture never began


def test_a_later_run_removes_what_killed_runs_left(held_tshark, tmp_path):
    """SIGKILL cannot be helped: the folders stay, and the next run in that folder removes them,
    but none of a live run, of another host, or without an owner in its name."""
    wrapper, marks = held_tshark
    work = tmp_path / "work"
    capture = tmp_path / "two.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(capture), *map(str, TWO_HOSTS)], check=True)
    proc, tmp = start(tmp_path, wrapper, "--jobs", "3", "--split-above", "0", "--work-dir", work, capture)
    wait_for(marks, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # analyze and its tsharks, as the OOM killer or a timeout -9 would
    proc.communicate()
    left = sorted(p.name for p in [*tmp.iterdir(), *work.iterdir()])
    assert [name.split("-")[1] for name in left] == ["home", "shards"], left
    live = tempfile.mkdtemp(prefix="analyze-merge-%s-" % work_folders.owner(), dir=work)  # this process: alive
    host, ns, pid, started = work_folders.owner().rsplit(".", 3)
    elsewhere = work / ("analyze-shards-elsewhere.%s.%s.%s-abcd1234" % (ns, pid, started))  # not ours to judge
    unnamed = work / "analyze-shards-abcd1234"  # made before folders said their owner
    for d in (elsewhere, unnamed):
        d.mkdir()
    res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", "--work-dir", str(work),
                          samples.path("rsvd_refusals")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=environment(tmp))
    assert res.returncode == 0, res.stderr
    assert list(tmp.iterdir()) == []
    assert sorted(work.iterdir()) == sorted([Path(live), elsewhere, unnamed])
    shutil.rmtree(live)


def test_a_folder_is_dead_only_when_its_process_is():
    child = subprocess.run([sys.executable, "-c", "from analyzer.capture import work_folders; print(work_folders.owner())"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    ended = "analyze-shards-%s-x1y2z3" % child.stdout.strip()
    assert work_folders.dead(ended)
    assert not work_folders.dead("analyze-shards-%s-x1y2z3" % work_folders.owner())
    host, ns, pid, start = work_folders.owner().rsplit(".", 3)
    reused = "analyze-shards-%s.%s.%s.%d-x1y2z3" % (host, ns, pid, int(start) + 1)  # this PID, another start
    assert work_folders.dead(reused)
    other_namespace = "analyze-shards-%s.%d.999999999.1-x1y2z3" % (host, int(ns) + 1)  # no such PID here
    assert not work_folders.dead(other_namespace)
    assert work_folders.dead(other_namespace.replace(".%d." % (int(ns) + 1), ".%s." % ns))


def test_a_dask_local_run_stopped_by_sigterm_leaves_nothing(held_tshark, tmp_path):
    """--dask local: the cluster's scratch folders are the run's, its workers share its empty home."""
    pytest.importorskip("distributed")
    wrapper, marks = held_tshark
    proc, tmp = start(tmp_path, wrapper, "--dask", "local", "--jobs", "2",
                      samples.path("rsvd_shared_disk"), samples.path("clusprep_setup"))
    tsharks = wait_for(marks, 2, proc)
    assert sorted(p.name.split("-")[1] for p in tmp.iterdir()) == ["dask", "home", "parts"]
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143 and "analyze: stopped by SIGTERM" in err and "Traceback" not in err, err
    assert list(tmp.iterdir()) == [], err
    assert all(gone(pid) for pid in tsharks)


def test_threads_that_start_tsharks_together_share_one_empty_home(tmp_path):
    """The shards' tsharks start at once; each used to make a home of its own, one of them left behind."""
    code = ("import threading; from analyzer.capture.source import tshark_env\n"
            "barrier = threading.Barrier(8); homes = []\n"
            "def ask():\n    barrier.wait(); homes.append(tshark_env()['HOME'])\n"
            "threads = [threading.Thread(target=ask) for _ in range(8)]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "import os; print(len(set(homes)), len(os.listdir(os.environ['TMPDIR'])))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=environment(tmp_path))
    assert res.stdout.split() == ["1", "1"], res.stdout + res.stderr
    assert list(tmp_path.iterdir()) == []  # and it goes at exit


def test_the_other_commands_end_on_ctrl_c_with_130_and_one_line(capsys):
    """python -m samples, python -m dissectors and the bench scripts end through dissectors.interrupt."""
    from dissectors import interrupt

    def interrupted(argv):
        raise KeyboardInterrupt

    assert interrupt.run(interrupted, "bench/scale.py", ["--runs", "1"]) == 130
    assert capsys.readouterr().err == "bench/scale.py: interrupted\n"
    assert interrupt.run(lambda: 0, "x") == 0
    assert [interrupt.exit_code(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == [130, 143, 129]


def test_python_m_samples_stopped_by_ctrl_c_exits_130_without_a_traceback():
    """Its main, in a process of its own, stopped by a SIGINT while it builds a sample (one that
    waits, so the signal comes mid-build; --check writes nothing)."""
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)  # not inherited ignored\n"
            "import samples.__main__ as m\n"
            "def slow():\n    print('building', flush=True)\n    time.sleep(120)\n    return b''\n"
            "m.SCENARIOS.clear(); m.ARTIFACTS.clear(); m.SCENARIOS['slow'] = slow\n"
            "sys.exit(m.main(['--check', 'slow']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout.readline() == "building\n", proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err == "python -m samples: interrupted\n", err
