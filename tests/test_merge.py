"""Several files as one capture (analyze --merge): a ring-buffer set split mid-open gives the
unsplit capture's findings, each citing its file and frame; captures of several nodes merged
by time give each one's own findings, mapped back to their files."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import analyzer
import samples

ROOT = Path(__file__).resolve().parent.parent
PER_FILE = 70  # splits rsvd_shared_disk's first open (frames 10-103) and second (121-193)


def run(*args, tshark=None):
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                          *(("--tshark", tshark.exe) if tshark else ()), *map(str, args)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def ring(src: Path, folder: Path):
    """What dumpcap -b packets:N would have written: files of N packets, named in order."""
    folder.mkdir()
    subprocess.run(["editcap", "-c", str(PER_FILE), str(src), str(folder / "node.pcapng")], check=True,
                   capture_output=True)
    return sorted(folder.iterdir())


@pytest.mark.tshark_matrix
def test_ring_buffer_split_mid_open_gives_the_unsplit_findings(tmp_path, tshark):
    src = samples.path("rsvd_shared_disk")
    files = ring(src, tmp_path / "ring")
    assert len(files) == 3
    whole = run(src, tshark=tshark)
    merged = run("--merge", *files, tshark=tshark)
    key = lambda f: (f["rule"], f["severity"], tuple(f["frames"]))
    assert Counter(map(key, merged["findings"])) == Counter(map(key, whole["findings"]))
    assert [s["open_id"] for s in merged["rsvd_sessions"]] == [s["open_id"] for s in whole["rsvd_sessions"]]
    assert merged["rsvd_sessions"] == whole["rsvd_sessions"]  # the opens whose CREATE and failures are split
    for f in merged["findings"]:  # frame n of the whole is frame (n-1) % N + 1 of file (n-1) // N
        assert f["where"] == [dict(file=files[(n - 1) // PER_FILE].name, frame=(n - 1) % PER_FILE + 1)
                              for n in f["frames"]]
    [cap] = merged["captures"]
    assert [x["packets"] for x in cap["files"]] == [70, 70, 61] and cap["packets"] == 201


def test_each_file_alone_is_its_own_partial_report(tmp_path):
    files = ring(samples.path("rsvd_shared_disk"), tmp_path / "ring")
    d = run(*files)
    assert len(d["captures"]) == 3 and {f["capture"] for f in d["findings"]} <= {f.name for f in files}


def test_a_directory_merges_its_capture_files_and_skips_the_rest(tmp_path):
    files = ring(samples.path("rsvd_shared_disk"), tmp_path / "ring")
    (tmp_path / "ring" / "README.txt").write_text("captured on NODE2\n")
    assert run("--merge", tmp_path / "ring")["findings"] == run("--merge", *files)["findings"]
    cap = analyzer.load(tmp_path / "ring")
    assert len(cap.sessions) == 3 and cap.result.files[0]["path"] == str(files[0])


def test_captures_of_several_nodes_merge_by_time_and_map_back(tmp_path):
    """Two captures taken at once (same clock): interleaved by mergecap, each finding is found
    at its own file's frame numbers."""
    a, b = samples.path("rsvd_cluster_events"), samples.path("clusprep_rule_violations")
    merged = run("--merge", a, b)
    frames = subprocess.run(["tshark", "-r", str(a), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True).stdout.split()
    alone = {p.name: run(p)["findings"] for p in (a, b)}
    want = Counter((f["rule"], ((p, tuple(f["frames"])),)) for p, fs in alone.items() for f in fs)
    located = Counter()
    for f in merged["findings"]:
        files = {w["file"] for w in f["where"]}
        assert len(files) <= 1, f  # a finding of one node cites only that node's frames
        located[(f["rule"], ((files.pop() if files else "-", tuple(w["frame"] for w in f["where"])),))] += 1
    # every packet of both is in the merge, and each finding maps back to its own capture
    assert merged["captures"][0]["packets"] == len(frames) + sum(
        1 for _ in subprocess.run(["tshark", "-r", str(b), "-T", "fields", "-e", "frame.number"],
                                  capture_output=True, text=True).stdout.split())
    assert located == want and {w["file"] for f in merged["findings"] for w in f["where"]} == {a.name, b.name}


def test_merge_refuses_what_it_cannot_read(tmp_path):
    bad = tmp_path / "notes.pcapng"
    bad.write_text("not a capture")
    res = subprocess.run([sys.executable, "-m", "analyzer", "--merge", str(samples.path("rsvd_shared_disk")), str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "not a capture file" in res.stderr and "Traceback" not in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run([sys.executable, "-m", "analyzer", "--merge", str(empty)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "holds no capture file" in res.stderr


def test_encrypted_ring_buffer_decrypts_across_files_once_merged(tmp_path):
    """Wireshark decrypts an SMB 3 session only after its SESSION_SETUP: the second file of a ring
    alone stays encrypted even with the key (and the report says why), merged it decrypts."""
    src = samples.path("rsvd_encrypted")
    files = ring(src, tmp_path / "ring")
    keys = [a for k in samples.KEYS["rsvd_encrypted"]["smb_keys"] for a in ("--smb-key", k)]
    alone = run(files[1], *keys)
    assert any("SESSION_SETUP" in n["reason"] for n in alone["rules_not_evaluated"])
    merged = run("--merge", *files, *keys)
    clear = run(samples.path("rsvd_shared_disk"))
    key = lambda f: (f["rule"], tuple(f["frames"]))
    assert sorted(map(key, merged["findings"])) == sorted(map(key, clear["findings"])) and clear["findings"]
    assert merged["rules_not_evaluated"] == [] and merged["captures"][0]["encrypted"]["smb3_messages"] == 0
