"""Issue 14 item 2: many captures at once. `analyze --jobs N` runs up to N captures in parallel,
one process each, and gives exactly what --jobs 1 gives: the same report, the same JSON, the same
--output files byte for byte, the same line for a capture that cannot be read."""
import json
import subprocess
import sys

import samples

CAPTURES = [str(samples.path(n)) for n in ("rsvd_shared_disk", "clusprep_setup", "rsvd_cluster_events",
                                            "clusprep_storage")]


def analyze(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def without_timing(doc):
    for c in doc["captures"]:
        c.pop("seconds")
    return doc


def test_parallel_runs_give_the_serial_report_and_files(tmp_path):
    serial = analyze("--jobs", "1", "--format", "json", "--output", tmp_path / "one", *CAPTURES)
    parallel = analyze("--jobs", "2", "--format", "json", "--output", tmp_path / "two", *CAPTURES)
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    assert without_timing(json.loads(parallel.stdout)) == without_timing(json.loads(serial.stdout))
    for name in sorted(p.name for p in (tmp_path / "one").iterdir()):
        if name == "report.json":
            continue  # its seconds differ; the rest is the stdout compared above
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    text1 = analyze("--jobs", "1", *CAPTURES).stdout
    assert analyze("--jobs", "3", *CAPTURES).stdout == text1 and text1.count("Capture ") == 4


def test_a_bad_capture_among_parallel_ones(tmp_path):
    bad = tmp_path / "bad.pcapng"
    bad.write_text("not a capture")
    args = ["--format", "json", CAPTURES[0], bad, CAPTURES[1]]
    serial, parallel = analyze("--jobs", "1", *args), analyze("--jobs", "2", *args)
    assert serial.returncode == parallel.returncode == 2
    assert parallel.stderr == serial.stderr and parallel.stderr.count("\n") == 1 and "Traceback" not in parallel.stderr
    doc = json.loads(parallel.stdout)
    assert [c["packets"] for c in doc["captures"]] == [201, 51] and doc["failed"][0]["path"] == str(bad)
    assert analyze("--jobs", "0", CAPTURES[0]).returncode == 2


def test_workers_leave_no_folders_behind(tmp_path):
    """Pool workers end without atexit: their tsharks use the parent's empty home, removed at its exit."""
    import os

    env = dict(os.environ, TMPDIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", "--jobs", "2", *CAPTURES[:2]],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    assert list(tmp_path.iterdir()) == []
