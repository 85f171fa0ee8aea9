"""`analyze`'s error paths (issue 11 item 5): each user error is one `analyze:` line on stderr with
a remedy and exit code 2 (1 means findings), never a traceback; with several captures the others
are still analyzed and reported, as text and as JSON; `--tshark` runs exactly the program named.

The CLI runs as a subprocess in a temporary working folder, on the small samples."""
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import promised
import samples
from decoded import TSHARK

ROOT = Path(__file__).resolve().parent.parent
GOOD = samples.path("rsvd_shared_disk")  # observations only: exit 0 on its own
OTHER = samples.path("clusprep_setup")  # findings: exit 1 on its own
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def analyze(cwd, *args):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def errors(res):
    """The `analyze:` lines; nothing else on stderr but notes about installed plugin copies."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.splitlines()
    assert all(line.startswith(("analyze: ", "note: ")) for line in lines), res.stderr
    return [line for line in lines if line.startswith("analyze: ")]


def one_error(res, *words):
    """Exit 2 and exactly one `analyze:` line, holding each of words."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = errors(res)
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def reported(stdout, capture):
    """The text report names the capture (its layout is report.py's, not this file's to pin)."""
    return str(capture) in stdout


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


# 1. --output names a file


def test_output_that_is_a_file_is_refused_before_any_work(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("keep me\n")
    before = listing(tmp_path)
    res = analyze(tmp_path, GOOD, "--output", target)
    one_error(res, "out.txt is a file", "choose a folder")
    assert res.stdout == "" and target.read_text() == "keep me\n" and listing(tmp_path) == before


# 2. --output cannot be written


def _read_only_folder(tmp_path):
    if ROOT_USER:
        promised.does_not_apply("root writes into a mode 0o500 folder; the other cases stand for it")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    return d / "out"


@pytest.mark.parametrize("where", ["under_a_file", "proc", "read_only"])
def test_output_that_cannot_be_written(tmp_path, where):
    if where == "under_a_file":
        (tmp_path / "file.txt").write_text("")
        target = tmp_path / "file.txt" / "sub"  # ENOTDIR, for root too
    elif where == "proc":
        if not Path("/proc/self").exists():
            promised.does_not_apply("no /proc")
        target = Path("/proc/analyze-output")  # root cannot make a folder there either
    else:
        target = _read_only_folder(tmp_path)
    res = analyze(tmp_path, GOOD, "--output", target)
    one_error(res, "cannot write to %s" % target, "choose another --output folder")
    assert res.stdout == "" and not target.exists()


# 3. two captures with one file name and --output: refused before any work


def test_captures_with_one_file_name_and_output_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(GOOD, tmp_path / "a" / "x.pcapng")
    shutil.copy(OTHER, tmp_path / "b" / "x.pcapng")
    res = analyze(tmp_path, "a/x.pcapng", "b/x.pcapng", "--output", "out")
    one_error(res, "a/x.pcapng and b/x.pcapng have the same file name", "rename", "separate runs")
    assert res.stdout == "" and not (tmp_path / "out").exists()
    # without --output there is nothing to mix up: both are reported
    res = analyze(tmp_path, "a/x.pcapng", "b/x.pcapng")
    assert res.returncode == 1 and errors(res) == []
    assert reported(res.stdout, "a/x.pcapng") and reported(res.stdout, "b/x.pcapng")
    # different names with --output: both analyzed, the tables written
    shutil.copy(OTHER, tmp_path / "b" / "y.pcapng")
    res = analyze(tmp_path, "a/x.pcapng", "b/y.pcapng", "--output", "out")
    assert res.returncode == 1 and errors(res) == []
    assert (tmp_path / "out" / "findings.jsonl").exists()


# 4. an unreadable capture among several


def _random(tmp_path):
    p = tmp_path / "random.pcapng"
    p.write_bytes(os.urandom(4096))
    return p


def _pcapng_then_garbage(tmp_path):
    """pcapng's magic, so only tshark can refuse it: a section header without the byte-order magic."""
    p = tmp_path / "damaged.pcapng"
    p.write_bytes(b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00" + b"garbage!" * 64)
    return p


def _directory(tmp_path):
    p = tmp_path / "capture-folder"
    p.mkdir()
    return p


def _text(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not a capture\n")
    return p


@pytest.mark.parametrize("make,words", [
    (_random, ["not a capture file", "editcap"]),
    (_pcapng_then_garbage, ["tshark could not read", "editcap"]),
    (_directory, ["is a directory", "--merge"]),
    (_text, ["not a capture file", "editcap"]),
], ids=["random_bytes", "tshark_refuses", "directory", "text_file"])
def test_unreadable_capture_among_several(tmp_path, make, words):
    bad = make(tmp_path)
    res = analyze(tmp_path, bad.name, GOOD, OTHER)
    line = one_error(res, bad.name, *words)
    assert line.startswith("analyze: ")
    assert reported(res.stdout, GOOD) and reported(res.stdout, OTHER) and not reported(res.stdout, bad.name)


# 5. a missing file among several: the others analyzed and reported, as text and as JSON


def test_missing_capture_among_several_text(tmp_path):
    res = analyze(tmp_path, GOOD, "missing.pcapng")
    one_error(res, "missing.pcapng: no such file")
    assert reported(res.stdout, GOOD) and not reported(res.stdout, "missing.pcapng")


def test_missing_capture_among_several_json(tmp_path):
    res = analyze(tmp_path, "--format", "json", "gone.pcapng", GOOD, "missing.pcapng", OTHER)
    assert res.returncode == 2
    lines = errors(res)
    assert len(lines) == 2 and "gone.pcapng: no such file" in lines[0] and "missing.pcapng: no such file" in lines[1]
    doc = json.loads(res.stdout)
    assert [c["path"] for c in doc["captures"]] == [str(GOOD), str(OTHER)]
    assert len(doc["rsvd_sessions"]) == 3 and doc["findings"]
    assert doc["failed"] == [dict(path="gone.pcapng", error="gone.pcapng: no such file"),
                             dict(path="missing.pcapng", error="missing.pcapng: no such file")]


def test_json_of_captures_that_all_read_has_no_failed_key(tmp_path):
    res = analyze(tmp_path, "--format", "json", GOOD)
    assert res.returncode == 0 and "failed" not in json.loads(res.stdout)


def test_only_capture_missing_json(tmp_path):
    res = analyze(tmp_path, "--format", "json", "missing.pcapng")
    one_error(res, "missing.pcapng: no such file")
    doc = json.loads(res.stdout)
    assert doc["captures"] == [] and doc["failed"][0]["path"] == "missing.pcapng"


# 6. --tshark: exactly the program named, and one line for anything that is not tshark


def _wrapper(folder, name="tshark"):
    log = folder / "calls.log"
    script = folder / name
    script.write_text('#!/bin/sh\necho called >> %s\nexec %s "$@"\n' % (log, TSHARK.exe))
    script.chmod(0o755)
    return script, log


@pytest.mark.parametrize("how", ["absolute", "relative", "bare_name"])
def test_tshark_runs_exactly_the_program_named(tmp_path, how):
    """A bare `--tshark tshark` is the file in the working folder, not the PATH's tshark."""
    script, log = _wrapper(tmp_path)
    arg = {"absolute": str(script), "relative": "./tshark", "bare_name": "tshark"}[how]
    res = analyze(tmp_path, "--tshark", arg, GOOD)
    assert res.returncode == 0 and errors(res) == [], res.stderr
    assert reported(res.stdout, GOOD)
    assert log.read_text().count("called") >= 2  # -v, then the capture


def _not_executable(tmp_path):
    script, _ = _wrapper(tmp_path)
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return script


def _garbage_version(tmp_path):
    script = tmp_path / "fake-tshark"
    script.write_text("#!/bin/sh\necho 'Python 9.1.1'\n")
    script.chmod(0o755)
    return script


def _prints_nothing(tmp_path):
    script = tmp_path / "silent"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("make,words", [
    (lambda t: t / "no-such-tshark", ["tshark not found at", "no such file", "apt-get install"]),
    (lambda t: t, ["not an executable file"]),
    (_not_executable, ["not an executable file", "chmod +x"]),
    (lambda t: Path("/bin/true"), ["/bin/true is not tshark", "apt-get install"]),
    (_prints_nothing, ["is not tshark"]),
    (_garbage_version, ["is not tshark", "apt-get install"]),
], ids=["missing", "directory", "not_executable", "bin_true", "prints_nothing", "garbage_version"])
def test_a_tshark_that_is_not_tshark(tmp_path, make, words):
    path = make(tmp_path)
    res = analyze(tmp_path, "--tshark", path, GOOD, OTHER)
    one_error(res, *words)
    assert res.stdout == ""


# 7. malformed key options


@pytest.mark.parametrize("args,words", [
    (["--smb-key", "nonsense"], ["--smb-key", "'nonsense' is not SESSION_ID:SESSION_KEY"]),
    (["--smb-key", "0x1:zz"], ["--smb-key", "16 or 32 bytes of hex"]),
    (["--keytab", "no.keytab"], ["--keytab", "no.keytab"]),
    (["-o", "nonsense"], ["-o", "NAME:VALUE"]),
], ids=["smb_key", "smb_key_hex", "keytab", "option"])
def test_malformed_key_option(tmp_path, args, words):
    res = analyze(tmp_path, *args, GOOD, OTHER)
    one_error(res, *words)
    assert res.stdout == ""


def test_an_option_tshark_refuses_is_said_once_for_all_captures(tmp_path):
    res = analyze(tmp_path, "-o", "no.such.preference:1", GOOD, OTHER)
    one_error(res, "tshark refused a key or option", "no.such.preference")
