"""The fuzz harness (tests/fuzz/fuzz.py): its quick subset finds nothing, and the harness itself
builds the same bytes for the same seed and notices each kind of failure it looks for.

The quick subset is 264 variants (8 per sample and kind) and takes about 2-3 minutes with two
jobs; the full run is `.venv/bin/python tests/fuzz/fuzz.py --variants 10000` (see its docstring).
The --shards-check quick subset (24 variants of the merged bases, each analyzed split over two
tsharks and by one) takes about 30 s (40 s while other work shares the two cores).
"""
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

import fuzz  # noqa: E402
import mutators  # noqa: E402
import samples  # noqa: E402

load_sample = functools.lru_cache(maxsize=None)(fuzz.load_sample)  # read-only here


def test_quick_subset_finds_nothing(tmp_path):
    res = subprocess.run([fuzz.PYTHON, str(FUZZ_DIR / "fuzz.py"), "--quick", "--jobs", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=str(fuzz.ROOT))
    summary = tmp_path / "summary.json"
    assert summary.exists(), res.stdout + res.stderr
    doc = json.loads(summary.read_text())
    assert doc["variants"] == fuzz.QUICK_VARIANTS
    assert set(doc["per_kind"]) == set(mutators.KINDS)
    assert res.returncode == 0, "fuzz failures (captures and reports in %s):\n%s\n%s" % (
        tmp_path / "failures", res.stdout, res.stderr[-3000:])


@pytest.mark.parametrize("name", sorted(set(samples.SCENARIOS) - set(samples.KEYS)))
def test_every_sample_has_something_to_mutate(name):
    """Every clear-text sample; an encrypted one (samples.KEYS) has only bytes to corrupt."""
    info = load_sample(name)
    assert info.struct_mutators, name
    assert info.loc.rsvd_messages if name.startswith("rsvd_") else info.loc.clusprep_stubs + info.loc.sealed_stubs


def test_every_structure_mutator_has_targets_in_some_sample():
    found = set()
    for name in samples.SCENARIOS:
        found |= set(load_sample(name).struct_mutators)
    assert found == set(mutators.VALUE_MUTATORS) | set(mutators.STRUCT_SPECIAL)


@pytest.mark.parametrize("kind", mutators.KINDS)
def test_variants_are_deterministic(kind, tmp_path):
    for name in ("rsvd_shared_disk", "clusprep_storage"):
        info = load_sample(name)
        for seed in (1, 2, 3):
            v = fuzz.Variant(0, name, kind, seed)
            a, b = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
            assert fuzz.build_variant(v, info, a) == fuzz.build_variant(v, info, b)
            assert a.read_bytes() == b.read_bytes()
            assert a.read_bytes() != info.data or kind == "corrupt"  # editcap may change no byte at a low rate


def test_located_fields_hold_their_values():
    for name in ("rsvd_shared_disk", "rsvd_cluster_events", "clusprep_storage", "clusprep_network"):
        loc = load_sample(name).loc
        for t in loc.targets:
            if t.pack is not None:
                assert bytes(t.stream.data[t.off:t.off + t.size]) == t.pack(t.value), (name, t.name)
    roles = {t.role for n in ("rsvd_shared_disk", "clusprep_network", "clusprep_storage")
             for t in load_sample(n).loc.targets}
    assert {"length", "opcode", "status", "ctl_code", "scsi_opcode", "string", "count", "pointer", "discriminant",
            "opnum", "call_id", "hresult", "word", "smb2_msg_id", "request_id"} <= roles


ROW = "\t".join


def test_tshark_invariants_are_noticed():
    ok = ROW(["12", "", "", "", "", "SVHDX_TUNNEL_SCSI_REQUEST: 36 bytes needed, 7 present"])
    assert fuzz.check_tshark(0, ok + "\n", "Running as user \"root\"\n") == []
    assert fuzz.check_tshark(2, ok, "tshark: The file appears to have been cut short") == []
    lua = ROW(["7", "1", "", "", "", ""])
    assert [k for k, _ in fuzz.check_tshark(0, lua, "")] == ["lua_error"]
    assert [k for k, _ in fuzz.check_tshark(0, "", " ** (tshark:1) Lua: Error during loading")] == ["lua_error"]
    internal = ROW(["9", "", "1", "", "", "x" + fuzz.AGG + "dissectors/lua/msrsvd.lua:12: attempt to index nil"])
    (k, detail), = fuzz.check_tshark(0, internal, "")
    assert k == "internal_error" and "msrsvd.lua:12" in detail
    clus = ROW(["9", "", "", "1", "", "boom"])
    assert [k for k, _ in fuzz.check_tshark(0, clus, "")] == ["internal_error"]
    builtin = " ** (tshark:1) [Epan WARNING] -- Dissector bug, protocol RSVD, in packet 17: Incompatible use"
    assert fuzz.check_tshark(0, "", builtin) == []  # Wireshark's own rsvd, not ours
    ours = builtin.replace("protocol RSVD", "protocol MSRSVD")
    assert [k for k, _ in fuzz.check_tshark(0, "", ours)] == ["dissector_bug"]
    assert [k for k, _ in fuzz.check_tshark(-11, "", "")] == ["tshark_exit"]
    assert [k for k, _ in fuzz.check_tshark(None, "", "")] == ["timeout"]


def test_analyze_invariants_are_noticed():
    good = json.dumps(dict(captures=[dict(tshark_messages=[])], findings=[dict(rule="rsvd.message_malformed")]))
    assert fuzz.check_analyze(0, good, "") == []
    assert fuzz.check_analyze(2, "", "analyze: not a capture file: x.pcapng\n") == []
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nAttributeError: Header\n"
    assert ("traceback", "AttributeError: Header") in fuzz.check_analyze(1, "", tb)
    assert [k for k, _ in fuzz.check_analyze(3, good, "")] == ["exit_code"]
    assert [k for k, _ in fuzz.check_analyze(0, "{not json", "")] == ["invalid_json"]
    assert [k for k, _ in fuzz.check_analyze(2, "", "analyze: one\nand two\n")] == ["error_message"]
    faults = json.dumps(dict(captures=[dict(wireshark_reported=[
        dict(frame=4, message="Dissector bug, protocol SMB2, in packet 4")])], findings=[  # Wireshark's: not ours
        dict(rule="analyzer.internal_error", message="KeyError: 3 (at rsvd_sessions.py:10)", frames=[4]),
        dict(rule="analyzer.plugin_error", message="the msrsvd plugin: msrsvd.lua:5: oops", frames=[4]),
        dict(rule="analyzer.plugin_error", message="Dissector bug, protocol CLUSPREP, in packet 5", frames=[5])]))
    assert [k for k, _ in fuzz.check_analyze(0, faults, "")] == ["analyzer_fault", "internal_error", "dissector_bug"]


def test_slow_rule():
    # 5x slower per packet and more than 1 s over: slow; a tiny capture's noise is not
    assert fuzz.is_slow(6.0, 1.0, 100, 100)
    assert not fuzz.is_slow(0.9, 0.15, 100, 100)  # 6x, but only 0.75 s over
    assert not fuzz.is_slow(1.2, 0.2, 200, 3)  # 3 packets left: held to the whole sample's time, 6x but 1.0 s over
    assert fuzz.is_slow(12.0, 2.0, 100, 50)


# -- --shards-check: analyze split over tsharks against analyze serial ------------------------------
def test_shards_quick_subset_splits_and_finds_nothing(tmp_path):
    """Every variant of the quick subset is split (a variant read whole would compare one tshark
    with itself) and gives --jobs 1's stdout, stderr and --output files (29 s here, 2 cores)."""
    res = subprocess.run([fuzz.PYTHON, str(FUZZ_DIR / "fuzz.py"), "--shards-check", "--quick", "--jobs", "2",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=str(fuzz.ROOT))
    summary = tmp_path / "summary.json"
    assert summary.exists(), res.stdout + res.stderr
    doc = json.loads(summary.read_text())
    assert doc["mode"] == "shards" and doc["variants"] == fuzz.QUICK_SHARD_VARIANTS
    assert set(doc["per_kind"]) == set(mutators.KINDS) and set(doc["per_sample"]) == set(fuzz.SHARD_BASES)
    assert doc["split"]["variants"] == doc["variants"], doc["split"]
    assert all(not b["failures"] for b in doc["baselines"].values()), doc["baselines"]
    assert res.returncode == 0, "sharded and serial differ (captures, both runs' outputs and diffs in %s):\n%s\n%s" % (
        tmp_path / "failures", res.stdout, res.stderr[-3000:])


def _folder(root: Path, name: str, files: dict) -> Path:
    d = root / name
    d.mkdir()
    for n, data in files.items():
        (d / n).write_bytes(data)
    return d


def test_shards_differences_are_noticed(tmp_path):
    report = dict(captures=[dict(file="x.pcapng", packets=3, seconds=0.25)], findings=[dict(rule="rsvd.x", frames=[4])])
    files = {"findings.csv": b"rule,frames\nrsvd.x,4\n", "findings.parquet": b"PAR1\x00\x01\x02PAR1",
             "report.json": b'{"seconds": 0.25}'}
    serial = (0, json.dumps(report), "analyze: a note\n")
    one = _folder(tmp_path, "one", files)
    # the seconds (on stdout and in report.json) are all that may differ
    slower = dict(report, captures=[dict(report["captures"][0], seconds=0.4)])
    same = _folder(tmp_path, "same", dict(files, **{"report.json": b'{"seconds": 0.4}'}))
    assert fuzz.check_shards(serial, (0, json.dumps(slower), serial[2]), one, same) == []
    # one byte of one file, and stderr
    parquet = bytearray(files["findings.parquet"])
    parquet[5] ^= 1
    two = _folder(tmp_path, "two", dict(files, **{"findings.parquet": bytes(parquet)}))
    assert fuzz.check_shards(serial, (0, serial[1], "analyze: a note\nanalyze: another\n"), one, two) == [
        ("shards_differ", "stderr, files findings.parquet")]
    (what, excerpt), = [d for d in fuzz.shard_differences(serial, serial, one, two)]
    assert what == "file findings.parquet" and "first difference at byte 5" in excerpt
    assert fuzz.check_shards(serial, (0, json.dumps(slower, indent=1), serial[2]), one, same) == [
        ("shards_differ", "stdout (bytes)")]
    # the same JSON in another key order is other bytes on stdout
    reordered = dict(findings=report["findings"], captures=report["captures"])
    assert fuzz.check_shards(serial, (0, json.dumps(reordered), serial[2]), one, same) == [
        ("shards_differ", "stdout . (key order)")]
    # the JSON, the exit code, a file only one run wrote
    moved = dict(report, findings=[dict(rule="rsvd.x", frames=[5])])
    three = _folder(tmp_path, "three", dict(files, **{"sessions.csv": b"x\n", "findings.csv": b"rule,frames\nrsvd.x,5\n",
                                                      "findings.parquet": bytes(parquet)}))
    more = dict(report, findings=report["findings"] * 2)
    assert fuzz.check_shards(serial, (0, json.dumps(more), serial[2]), one, same) == [
        ("shards_differ", "stdout .findings (length)")]
    assert fuzz.check_shards(serial, (1, json.dumps(moved), serial[2]), one, three) == [
        ("shards_differ", "exit 0 against 1, stdout .findings[].frames[], file sessions.csv only sharded, "
                          "files findings.csv/parquet")]


def test_a_shards_difference_is_saved_with_both_outputs(tmp_path, monkeypatch):
    """The harness's path for a difference, with a fake analyze whose sharded run says one more
    line: the failure is recorded, the variant and both --output folders saved, the .txt says how
    to replay it and what differs."""
    work = tmp_path / "work"
    work.mkdir()
    info = fuzz.load_base("merged_mix", work)

    def fake(path, *args):
        out = Path(args[args.index("--output") + 1])
        out.mkdir(parents=True)
        (out / "findings.csv").write_text("rule\n")
        sharded = "--split-above" in args
        return 0, json.dumps(dict(captures=[dict(seconds=1.0)], findings=[])), "split\n" if sharded else "", 1.0

    monkeypatch.setattr(fuzz, "run_analyze", fake)
    runner = fuzz.Runner({"merged_mix": info}, tmp_path / "out", work, 1)
    r = runner.run_shards(fuzz.Variant(3, "merged_mix", "struct", 77))
    assert r.failures == [("shards_differ", "stderr")] and r.shards == 2
    saved = Path(r.saved)
    assert saved == tmp_path / "out" / "failures" / "merged_mix-struct-77.pcapng" and saved.exists()
    assert (saved.parent / "merged_mix-struct-77.serial" / "findings.csv").exists()
    assert (saved.parent / "merged_mix-struct-77.sharded" / "findings.csv").exists()
    text = saved.with_suffix(".txt").read_text()
    assert "--replay merged_mix:struct:77" in text and "--- differs: stderr ---" in text and "+split" in text
    assert "--jobs 3 --split-above 0" in text and "split     2 shards" in text
    assert sorted(p.name for p in work.iterdir()) == ["merged_mix.pcapng"]  # the variant and its outputs removed


@pytest.mark.parametrize("kind", mutators.KINDS)
def test_shard_variants_are_deterministic(kind, tmp_path):
    """The same base bytes (mergecap) and the same variants; a base is never cut as a file (it
    would be read whole, not split)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in fuzz.SHARD_BASES:
        a, b = fuzz.load_base(name, tmp_path / "a"), fuzz.load_base(name, tmp_path / "b")
        assert a.data == b.data and a.struct_mutators == b.struct_mutators and a.parts == fuzz.SHARD_BASES[name]
        for seed in (1, 2, 3):
            v = fuzz.Variant(0, name, kind, seed)
            x, y = tmp_path / "x.pcapng", tmp_path / "y.pcapng"
            made = fuzz.build_variant(v, a, x)
            assert made == fuzz.build_variant(v, b, y) and x.read_bytes() == y.read_bytes()
            assert made[0] != "file_cut"


def test_the_bases_hold_every_parts_fields(tmp_path):
    """No two parts of a base share a TCP 4-tuple, so locate follows every part's connections."""
    for name, parts in fuzz.SHARD_BASES.items():
        base = fuzz.load_base(name, tmp_path)
        assert len(base.loc.targets) == sum(len(load_sample(p).loc.targets) for p in parts), name
        assert base.packets == sum(load_sample(p).packets for p in parts)


def test_a_shards_variant_replays(tmp_path):
    res = subprocess.run([fuzz.PYTHON, str(FUZZ_DIR / "fuzz.py"), "--replay", "merged_cross:struct:1234", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=str(fuzz.ROOT))
    assert res.returncode == 0 and "FAIL" not in res.stdout, res.stdout + res.stderr[-3000:]
    assert "split: 2 shards" in res.stdout and "fuzz --shards-check: 1 variants" in res.stdout, res.stdout


# Variants that once made the analyzer fail, replayed (SAMPLE:KIND:SEED, as fuzz.py prints them): a
# request's or response's OperationCode turned into another operation's (the answer then carries that
# one's payload; rsvd.response_invalid judged it as the request's), and a firewall call whose request
# did not decode (clusprep.firewall_profile_invalid formatted its missing idx)
FOUND = ["rsvd_cluster_events:struct:267237873", "rsvd_guest_validation:struct:984347718",
         "rsvd_guest_validation:struct:1442780349", "rsvd_guest_validation:struct:863345007",
         "clusprep_node_violations:corrupt:2017172435"]


@pytest.mark.parametrize("variant", FOUND)
def test_a_variant_that_once_failed_passes(variant, tmp_path):
    res = subprocess.run([fuzz.PYTHON, str(FUZZ_DIR / "fuzz.py"), "--replay", variant, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=str(fuzz.ROOT))
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "FAIL" not in res.stdout, res.stdout


# -- --c-plugin: the compiled msrsvd, built with ASan and UBSan, against msrsvd.lua ------------------
# On 4.0 the quick subset (one variant per RSVD sample and kind: 33, about 90 s on 2 shared cores);
# on 4.4 and 4.6 (the chroots) each sample's structure-aware variant (11, about 30 s each).
C_RUNS = {"4.0": ["--quick"], "4.4": ["--variants", "11", "--kinds", "struct"],
          "4.6": ["--variants", "11", "--kinds", "struct"]}


def _c_fuzz(tmp_path, *args, timeout=600):
    res = subprocess.run([fuzz.PYTHON, str(FUZZ_DIR / "fuzz.py"), "--c-plugin", "--jobs", "2", "--out",
                          str(tmp_path), *args], capture_output=True, text=True, timeout=timeout, cwd=str(fuzz.ROOT))
    summary = tmp_path / "summary.json"
    if "fuzz --c-plugin: " in res.stderr and not summary.exists() and res.returncode == 1:
        why = [ln for ln in res.stderr.splitlines() if ln.startswith("fuzz --c-plugin: ")][-1]
        if "is not here" in why or "has no C build packages" in why or "no gcc" in why:
            pytest.skip(why)
    assert summary.exists(), res.stdout + res.stderr[-3000:]
    return res, json.loads(summary.read_text())


@pytest.mark.parametrize("series", sorted(C_RUNS))
def test_c_plugin_subset_finds_nothing(series, tmp_path):
    """Each variant through the sanitized C plugin and the Lua, one pass and two: no sanitizer
    report, the same exit code, no blow-up, tshark -V the same (but for the known difference,
    normalised and counted)."""
    res, doc = _c_fuzz(tmp_path, "--c-tshark", series, *C_RUNS[series])
    assert doc["mode"] == "c_plugin" and doc["series"] == series
    assert doc["ran"] == doc["variants"] == (fuzz.C_QUICK_VARIANTS if series == "4.0" else 11)
    assert set(doc["per_sample"]) == {n for n in samples.SCENARIOS if n.startswith("rsvd_")}
    assert all(not b["failures"] for b in doc["baselines"].values()), doc["baselines"]
    assert res.returncode == 0, "the C plugin and the Lua differ (captures and reports in %s):\n%s\n%s" % (
        tmp_path / "failures", res.stdout, res.stderr[-3000:])


def test_c_plugin_mode_catches_planted_faults(tmp_path):
    """The mode fails when the C plugin is wrong: one byte written past a wmem block in every
    decode (AddressSanitizer), and an Info text that is not the Lua's (-V differs)."""
    from dissectors.definitions import rsvd
    from dissectors.targets.c import render_c

    src = render_c(rsvd.PROTOCOL)
    overrun = src.replace("notes_begin(st);", "notes_begin(st); { char *volatile p = wmem_alloc(st->pinfo->pool, 4); "
                          "p[4] = 1; }", 1)
    renamed = src.replace('is_response ? " Response" : " Request"', 'is_response ? " Response" : " Requests"', 1)
    assert overrun != src and renamed != src
    for name, text, invariant in (("overrun", overrun, "sanitizer"), ("renamed", renamed, "differs")):
        source = tmp_path / (name + ".c")
        source.write_text(text)
        res, doc = _c_fuzz(tmp_path / name, "--c-source", str(source), "--only", "rsvd_shared_disk", "--variants",
                           "2", "--kinds", "struct")
        assert res.returncode == 1 and doc["failed_variants"] == 2, (name, res.stdout)
        assert doc["failures_per_invariant"].get(invariant) == 2, (name, doc["failures_per_invariant"])
        assert invariant in [k for k, _ in doc["baselines"]["rsvd_shared_disk"]["failures"]], name


def _runs(c_out="", lua_out="", c_rc=0, lua_rc=0, c_err=""):
    return {"c": (c_rc, c_out, c_err, 0.1), "c2": (c_rc, c_out, c_err, 0.1),
            "lua": (lua_rc, lua_out, "", 0.1), "lua2": (lua_rc, lua_out, "", 0.1)}


def test_c_plugin_invariants_are_noticed():
    tree = "Frame 7: 200 bytes\n    MS-RSVD, RSVD_TUNNEL_SCSI_OPERATION Request\n        Length: 36\n"
    assert fuzz.check_c(_runs(tree, tree)) == ([], 0, [])
    assert fuzz.check_c(_runs(tree, tree, 2, 2, "tshark: The file appears to have been cut short"))[0] == []
    bad, _, diffs = fuzz.check_c(_runs(tree, tree.replace("36", "37")))
    assert [k for k, _ in bad] == ["differs", "differs"] and "Frame 7, line 3" in diffs[0]
    asan = "==12==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6\nSUMMARY: AddressSanitizer: " \
           "heap-buffer-overflow /x/msrsvd.c:1234 in d_header\n"
    assert ("sanitizer", "SUMMARY: AddressSanitizer: heap-buffer-overflow msrsvd.c:1234 in d_header") in \
        fuzz.check_c(_runs(tree, tree, c_err=asan))[0]
    ubsan = "msrsvd.c:99:5: runtime error: signed integer overflow\n"
    assert [k for k, _ in fuzz.check_c(_runs(tree, tree, c_err=ubsan))[0]] == ["sanitizer", "sanitizer"]
    assert [k for k, _ in fuzz.check_c(_runs(tree, tree, c_rc=-6))[0]] == ["exit_differs", "exit_differs"]
    assert [k for k, _ in fuzz.check_c(_runs(tree, tree, 1, 1))[0]] == ["tshark_exit", "tshark_exit"]
    assert [k for k, _ in fuzz.check_c(_runs(tree, tree, None, 0))[0]] == ["timeout", "timeout"]
    # the known difference: the Lua's error on a nil value where the C says a value was not decoded,
    # on the same lines; nothing else
    c = tree + "        [Expert Info (Error/Malformed): %s]\n        Dissector error: %s\n" % ((fuzz.C_MISSING,) * 2)
    err = "/work/dissectors/lua/msrsvd.lua:2412: attempt to perform arithmetic on a nil value (field 'Length')"
    lua = tree + "        [Expert Info (Error/Malformed): %s]\n        Dissector error: %s\n" % (err, err)
    assert fuzz.check_c(_runs(c, lua)) == ([], 4, [])  # two lines, in each pass
    other = lua.replace("attempt to perform arithmetic on a nil value", "bad argument #1 to 'add'")
    assert [k for k, _ in fuzz.check_c(_runs(c, other))[0]] == ["differs", "differs"]
    assert [k for k, _ in fuzz.check_c(_runs(c + "        Length: 0\n", lua))[0]] == ["differs", "differs"]
