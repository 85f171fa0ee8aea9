"""`analyze` end to end on the samples, through real tshark: exact findings, every rule both
ways, the JSON document, exit codes, input errors, --output files and the pandas API."""
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import analyzer
import promised
import samples
from analyzer.rules.findings import SEVERITIES
from analyzer.rules import FAULTS, RULE_CLASSES
from analyzer.rules.faults import NO_SPEC
from analyzer.reconstruction.tables import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(samples.path(n) for n in samples.SCENARIOS)


def analyze(*args):
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def run_json(pcap, tshark=None):
    res = analyze("--format", "json", "--fail-on", "never", *(("--tshark", tshark.exe) if tshark else ()), pcap)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def without_seconds(doc):
    for c in doc["captures"]:
        c.pop("seconds")
    return doc


def expected(pcap):
    return json.loads(pcap.with_suffix("").with_suffix(".expected.json").read_text())["findings"]


def key(f):
    return (f["rule"], f["severity"], f["side"], f["check"], tuple(f["frames"]))


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.stem)
def test_findings_are_exactly_the_expected_ones(pcap, tshark):
    doc = run_json(pcap, tshark)
    assert doc["captures"][0]["tshark"] == tshark.version
    assert Counter(key(f) for f in doc["findings"]) == Counter(key(f) for f in expected(pcap))


def test_every_sample_has_expectations():
    for p in SAMPLES:
        assert p.with_suffix("").with_suffix(".expected.json").exists(), p


def test_every_rule_fires_somewhere_and_stays_quiet_elsewhere():
    """Each rule fires in a sample and is silent in another sample of its own protocol."""
    fired = {p.stem: {f["rule"] for f in expected(p)} for p in SAMPLES}
    for cls in RULE_CLASSES:
        if cls in FAULTS:
            continue  # faults fire on bugs, never on a sample (each has its own test below)
        family = cls.id.split(".")[0]
        own = [s for s in fired if s.startswith(family + "_")] if family != "capture" else list(fired)
        assert any(cls.id in fired[s] for s in own), "%s fires in no sample" % cls.id
        assert any(cls.id not in fired[s] for s in own), "%s fires in every %s sample" % (cls.id, family)


def test_rules_have_ids_severities_and_sections():
    ids = [cls.id for cls in RULE_CLASSES]
    assert len(ids) == len(set(ids))
    for cls in RULE_CLASSES:
        assert cls.severity in SEVERITIES and cls.spec and cls.title, cls.id
        assert cls.spec.split()[0] in ("MS-RSVD", "MS-VSOD", "MS-CSVP", "MS-RPCE", "pcapng") or (
            cls in FAULTS and cls.spec == NO_SPEC), cls.id


def test_the_json_document():
    doc = run_json(samples.path("rsvd_cluster_events"))
    assert list(doc) == ["captures", "rsvd_sessions", "io_errors", "disks", "clusprep_sequences", "findings",
                         "rules_not_evaluated"]
    for f in doc["findings"]:
        assert set(f) == {"rule", "severity", "side", "check", "spec", "frames", "message", "subject", "time"}
        assert f["time"] is None or f["time"].endswith("Z")
        assert f["side"] in ("client", "server", None)
        assert f["frames"] == sorted(f["frames"]) and all(isinstance(x, int) for x in f["frames"])
    [cap] = doc["captures"]
    assert cap["packets"] == 128 and not cap["truncated"] and cap["tshark"].startswith("4.")
    sessions = {s["initiator_host"]: s for s in doc["rsvd_sessions"]}
    assert sessions["NODE2"]["scsi_opcodes"]["PERSISTENT_RESERVE_IN"] == 4
    assert sessions["NODE1"]["context_layout"] == "windows_v2" and sessions["NODE1"]["latency_p50_ms"] == 0.6
    conflict = next(f for f in doc["findings"] if f["rule"] == "rsvd.reservation_conflict")
    assert "held by NODE1" in conflict["message"] and "0x4E4F444531000001" in conflict["message"]


def test_clusprep_sequences_and_sealed_rules_not_evaluated():
    doc = run_json(samples.path("clusprep_sealed"))
    [seq] = doc["clusprep_sequences"]
    assert seq["sealed"] and [c["method"] for c in seq["sequence"]] == [
        "CprepPrepareNode", "CprepPrepareNodePhase2", "CprepDiskGetProps", "CprepDiskAttach", "CprepDiskPRArbitrate",
        "CprepDiskOnline", "CprepDiskOffline", "CprepDiskRawRead"]
    assert {c["result"] for c in seq["sequence"]} == {"sealed"}
    [ne] = doc["rules_not_evaluated"]
    needs = {cls.id for cls in RULE_CLASSES if cls.needs_stub}
    assert set(ne["rules"]) == needs and ne["subject"] == seq["conversation"] and "--nt-password" in ne["unlock"]
    assert "clusprep.disk_not_attached" in needs and "clusprep.prepare_node_not_first" not in needs
    plain = run_json(samples.path("clusprep_storage"))
    assert plain["rules_not_evaluated"] == []
    calls = plain["clusprep_sequences"][0]["sequence"]
    assert calls[0]["method"] == "CprepPrepareNode" and calls[0]["result"] == "S_OK"


def test_text_report():
    res = analyze(samples.path("rsvd_cluster_events"))
    assert res.returncode == 1  # errors found, --fail-on error by default
    out = res.stdout
    assert "RSVD shared-disk opens: 2" in out and "initiator id 66666666-7777-4888-9999-aaaaaaaaaaaa" in out
    assert "  NODE2  \\\\sofs\\vhdx\\disk.vhdx:SharedVirtualDisk" in out
    assert "PERSISTENT RESERVE IN 4" in out and "response time p50 0.600 ms" in out
    # failed I/Os counted by what they were, whatever path the failure took
    assert "4 failed I/Os: 1 reservation conflict, 1 check condition, 2 other failures (see I/O errors)" in out
    assert out.index("  ERRORS") < out.index("  OBSERVATIONS")
    assert "2025-11-21 04:40:00" in out.splitlines()[0]  # the capture's time span
    assert "(rsvd.sense_not_retrieved, 1 finding; " in out and "      frames 108,119" in out
    assert "      - client: SMB2_WRITE answered" in out and "Spec: MS-RSVD 3.1.5.4" in out and "      Next: " in out
    assert re.search(r"^    READ\(16\) +1 +0\.616 ", out, re.M)  # latency per SCSI opcode, named as Wireshark does
    assert not re.search(r"\b1 (errors|warnings|observations|findings|calls|packets)\b", out)  # plurals
    clus = analyze(samples.path("clusprep_network")).stdout
    assert "ClusPrep conversations: 1" in clus and "GetIpConfigSerialized" in clus and "ClusPrep method" in clus


@pytest.mark.parametrize("name,fail_on,code", [
    ("rsvd_shared_disk", "error", 0),  # observations only
    ("rsvd_shared_disk", "warning", 0),
    ("clusprep_rule_violations", "warning", 1),
    ("rsvd_malformed", "error", 1),
    ("rsvd_malformed", "never", 0),
    ("clusprep_sealed", "warning", 0),  # nothing at all
])
def test_exit_codes(name, fail_on, code):
    assert analyze("--fail-on", fail_on, samples.path(name)).returncode == code


def test_input_errors_are_one_line_with_a_remedy(tmp_path):
    missing = analyze(tmp_path / "nope.pcapng")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    text = tmp_path / "notes.pcapng"
    text.write_text("not a capture\n")
    res = analyze(text)
    assert res.returncode == 2 and "not a capture file" in res.stderr and "editcap" in res.stderr
    res = analyze("--tshark", tmp_path / "no-tshark", samples.path("rsvd_shared_disk"))
    assert res.returncode == 2 and "tshark not found" in res.stderr and "apt-get install" in res.stderr
    assert "Traceback" not in missing.stderr + res.stderr
    assert analyze("--format", "xml", samples.path("rsvd_shared_disk")).returncode == 2  # usage


def test_truncated_capture_is_analyzed_as_far_as_it_goes():
    doc = run_json(samples.path("rsvd_truncated"))
    assert doc["captures"][0]["truncated"] and doc["captures"][0]["packets"] == 199
    assert [f["frames"] for f in doc["findings"] if f["rule"] == "capture.truncated"] == [[199]]
    assert len(doc["rsvd_sessions"]) == 3


def test_output_directory(tmp_path):
    """Every table as CSV, JSON Lines (Zeek-style: ts and a connection uid) and typed Parquet, and
    report.json; the same files for one capture or several, which a pyarrow dataset reads together."""
    import pyarrow.dataset as ds

    from analyzer.reconstruction.tables import SCHEMA, arrow_schema

    one, two = tmp_path / "one", tmp_path / "two"
    res = analyze("--format", "json", "--output", one, samples.path("rsvd_cluster_events"))
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert json.loads((one / "report.json").read_text()) == doc
    findings = [json.loads(x) for x in (one / "findings.jsonl").read_text().splitlines()]
    assert [(f["rule"], f["frames"]) for f in findings] == [
        (f["rule"], ",".join(map(str, f["frames"]))) for f in doc["findings"]]
    for table, cols in COLUMNS.items():
        csv = pd.read_csv(one / (table + ".csv"))
        parquet = pd.read_parquet(one / (table + ".parquet"))
        assert list(csv.columns) == cols and list(parquet.columns) == cols and len(csv) == len(parquet), table
        lines = [json.loads(x) for x in (one / (table + ".jsonl")).read_text().splitlines()]
        assert len(lines) == len(csv) and all({"ts", "uid", "capture"} <= set(x) for x in lines), table
    scsi = pd.read_parquet(one / "scsi_commands.parquet")
    assert len(scsi) == 31 and (scsi.opcode == "PERSISTENT_RESERVE_IN").sum() == 4
    typed = pd.read_parquet(one / "scsi_commands.parquet", dtype_backend="numpy_nullable")
    assert str(typed.time.dtype) == "datetime64[us, UTC]" and str(typed.lba.dtype) == "UInt64"
    assert str(typed.request_frame.dtype) == "Int64" and typed.lba.notna().sum() == 12  # the block commands
    assert typed[typed.opcode == "READ_6"][["lba", "blocks"]].values.tolist() == [[64, 1]]  # the 6-byte CDB too
    assert set(scsi.capture) == {"rsvd_cluster_events.pcapng"}
    ops = pd.read_csv(one / "rsvd_operations.csv")
    assert set(ops.operation) >= {"RSVD_TUNNEL_SCSI_OPERATION", "RSVD_TUNNEL_SRB_STATUS_OPERATION", "SMB2_WRITE"}
    # a uid joins a connection's rows across tables
    sessions = pd.read_parquet(one / "sessions.parquet")
    assert set(sessions.uid) <= set(pd.read_parquet(one / "rsvd_operations.parquet").uid)
    # two captures: the same files, rows named by capture; an empty table keeps its types
    res = analyze("--output", two, "--fail-on", "never", samples.path("rsvd_shared_disk"),
                  samples.path("clusprep_setup"))
    assert res.returncode == 0 and sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    calls = pd.read_parquet(two / "clusprep_calls.parquet")
    assert set(calls.capture) == {"clusprep_setup.pcapng"}
    for table in SCHEMA:
        data = ds.dataset([one / (table + ".parquet"), two / (table + ".parquet")], format="parquet")
        assert data.schema == arrow_schema(table) and data.to_table().num_rows == sum(
            len(pd.read_parquet(d / (table + ".parquet"))) for d in (one, two)), table


def test_pandas_api_matches_the_cli():
    cap = analyzer.load(samples.path("clusprep_storage"))
    calls = cap.clusprep_calls
    assert list(calls.columns) == COLUMNS["clusprep_calls"] and len(calls) == 55
    assert calls[calls.method == "CprepDiskGetProps3"].disk.tolist() == ["GUID 6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30"]
    assert (calls.result == "fault nca_s_op_rng_error").sum() == 7
    cli = run_json(samples.path("clusprep_storage"))
    assert cap.findings[["rule", "frames"]].values.tolist() == [
        [f["rule"], ",".join(map(str, f["frames"]))] for f in cli["findings"]]
    rsvd = analyzer.load(samples.path("rsvd_shared_disk"))
    assert len(rsvd.sessions) == 3 and set(rsvd.sessions.context_layout) == {"seed", "windows_v2", "windows_v1"}
    assert len(rsvd.scsi_commands) == 9 and rsvd.rsvd_operations.latency_ms.notna().all()


def test_the_readme_points_at_the_rules_reference():
    text = (ROOT / "README.md").read_text()
    assert "docs/rules.md" in text
    for cls in RULE_CLASSES:
        assert "`%s`" % cls.id in (ROOT / "docs" / "rules.md").read_text(), cls.id


@pytest.fixture
def pyshark_loop():
    """pyshark installs asyncio's SafeChildWatcher (a SIGCHLD handler) process-wide; left in
    place, every later subprocess of the test run signals a loop nobody runs."""
    import asyncio
    import warnings

    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # child watchers are deprecated in 3.12
        asyncio.get_child_watcher().close()
        asyncio.set_child_watcher(None)
    asyncio.get_event_loop_policy().get_event_loop().close()
    asyncio.set_event_loop(None)


def test_pyshark_packets_carry_the_plugins_layers(pyshark_loop):
    """analyzer.capture.source.packets(): pyshark objects for notebooks, with both plugins loaded."""
    from analyzer.capture.source import packets

    cap = packets(samples.path("clusprep_storage"), display_filter="clusprep")
    try:
        p = next(iter(cap))
        assert int(p.number) == 6 and p.clusprep.get_field_value("method") == "CprepPrepareNode"
    finally:
        cap.close()
    cap = packets(samples.path("rsvd_shared_disk"), display_filter="msrsvd")
    try:
        p = next(iter(cap))
        assert p.msrsvd.get_field_value("open_device_context_initiator_host_name") == "NODE1"
    finally:
        cap.close()


def test_a_tshark_that_refuses_lua_as_root_gets_a_clear_error():
    """tshark 4.4 and later run no Lua plugin as root and say only "Running as user root"."""
    import os

    import tsharks
    t = next((t for series, t, _ in tsharks.found() if t and t.at_least("4.4")), None)
    if t is None:
        pytest.skip("no tshark 4.4 or later in the matrix (bash tests/wireshark/setup.sh)")
    res = subprocess.run([sys.executable, "-m", "analyzer", "--tshark", t.exe, str(samples.path("rsvd_shared_disk"))],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "AS_ROOT": "1"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "did not load the plugins" in res.stderr and "run analyze as a regular user" in res.stderr, res.stderr


def test_a_config_ini_in_the_working_folder_never_picks_the_tshark(tmp_path):
    """pyshark reads tshark_path from ./config.ini before the PATH; analyze must not run it."""
    import os

    import tsharks

    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    evil.write_text("#!/bin/sh\ntouch %s\nexit 1\n" % marker)
    evil.chmod(0o755)
    (tmp_path / "config.ini").write_text("[tshark]\ntshark_path = %s\n[dumpcap]\ndumpcap_path = %s\n" % (evil, evil))
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                          str(samples.path("rsvd_shared_disk"))], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert not marker.exists()
    assert json.loads(res.stdout)["captures"][0]["tshark"] == tsharks.system().version


def test_a_response_with_another_ctlcode_than_its_request_is_a_finding(tmp_path):
    """Regression (fuzzing): frame 89 answers frame 88's FSCTL_SVHDX_SYNC_TUNNEL_REQUEST with the
    CtlCode of FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT. It used to end in `AttributeError: Header`,
    the whole report lost, exit 1."""
    from pcapng_edit import replace_in_frame

    pcap = tmp_path / "ctlcode.pcapng"
    pcap.write_bytes(replace_in_frame(samples.path("rsvd_shared_disk").read_bytes(), 89,
                                      bytes.fromhex("04030900"), bytes.fromhex("00030900")))
    doc = run_json(pcap)
    [f] = [f for f in doc["findings"] if f["rule"] == "rsvd.message_malformed"]
    assert f["frames"] == [89] and "CtlCode 0x00090300 is not its request's 0x00090304" in f["message"]
    rest = Counter(key(f) for f in doc["findings"] if f["rule"] != "rsvd.message_malformed")
    assert rest == Counter(key(f) for f in expected(samples.path("rsvd_shared_disk")))  # the rest is kept


def test_a_file_name_holding_the_field_separator_survives(tmp_path):
    """Regression: byte 0x1F (the analyzer's aggregator in tshark's output) inside a CREATE's
    name emptied the name and raised a false rsvd.open_name_suffix."""
    from pcapng_edit import replace_in_frame

    pcap = tmp_path / "x1f.pcapng"
    pcap.write_bytes(replace_in_frame(samples.path("rsvd_shared_disk").read_bytes(), 10,
                                      "disk.".encode("utf-16-le"), "di\x1fk.".encode("utf-16-le")))
    doc = run_json(pcap)
    assert doc["rsvd_sessions"][0]["file_name"] == "di\x1fk.vhdx:SharedVirtualDisk"
    assert Counter(key(f) for f in doc["findings"]) == Counter(key(f) for f in expected(samples.path("rsvd_shared_disk")))


# --- faults: a finding with its frame, and the rest of the report kept ---------------------------

def _in_process(pcap):
    from analyzer.pipeline import analyze_capture
    from analyzer.capture.source import find_tshark
    from analyzer.reconstruction.tables import Tables

    return analyze_capture(pcap, find_tshark(), Tables())


def _others(result):
    return Counter((f.rule, f.severity, tuple(f.frames)) for f in result.findings if not f.rule.startswith("analyzer."))


def test_a_fault_in_the_reconstruction_is_a_finding_and_the_report_goes_on(monkeypatch):
    from analyzer.reconstruction import rsvd_sessions

    real = rsvd_sessions.RsvdTracker.message

    def message(self, m, src, dst):
        if m.frame == 22:
            raise KeyError("boom")
        return real(self, m, src, dst)

    monkeypatch.setattr(rsvd_sessions.RsvdTracker, "message", message)
    r = _in_process(samples.path("rsvd_cluster_events"))
    [f] = [f for f in r.findings if f.rule == "analyzer.internal_error"]
    assert f.frames == [22] and f.message.startswith("KeyError: 'boom' (at test_analyzer.py:")
    assert r.rsvd_sessions and len(_others(r)) >= 5  # everything else still analyzed


def test_a_fault_a_plugin_caught_is_a_finding(monkeypatch, tmp_path):
    """A plugin that fails on a frame (here: a copy of msrsvd.lua made to) is reported with it."""
    from dissectors import plugin_paths

    for p in plugin_paths.lua_paths():
        text = p.read_text()
        if p.name == "msrsvd.lua":
            text = text.replace("local function export(tree)\n",
                                "local function export(tree)\n  if FX_TAG() then error(\"planted fault\") end\n", 1)
            assert "planted fault" in text
        (tmp_path / p.name).write_text(text)
    monkeypatch.setattr(plugin_paths, "LUA_DIR", tmp_path)
    r = _in_process(samples.path("rsvd_shared_disk"))
    faults = [f for f in r.findings if f.rule == "analyzer.plugin_error"]
    assert [f.frames for f in faults] == [[10], [121], [122], [187]]  # the frames with create contexts
    assert all("the msrsvd plugin: " in f.message and "planted fault" in f.message for f in faults)


def test_tsharks_dissector_bug_lines_are_reported_apart_from_the_findings(tmp_path):
    """tshark prints "Dissector bug, protocol X, in packet N" on stderr, with its process id and the
    time: Wireshark's own dissectors' are what Wireshark reported, said the same on every run and
    counted in no finding; one in our plugins is a plugin fault, a finding."""
    import tsharks

    fake = tmp_path / "tshark"
    fake.write_text("#!/bin/sh\n%s \"$@\"\nrc=$?\n"
                    "echo \" ** (tshark:$$) $(date +%%T.%%N) [Epan WARNING] -- Dissector bug, protocol SMB2, in packet "
                    "12: planted\" >&2\n"
                    "echo \" ** (tshark:$$) $(date +%%T.%%N) [Epan WARNING] -- Dissector bug, protocol MSRSVD, in packet "
                    "13: ours\" >&2\nexit $rc\n" % tsharks.system().argv[0])
    fake.chmod(0o755)
    t = tsharks.Tshark("4.0", (str(fake),), "", "")
    doc = run_json(samples.path("rsvd_shared_disk"), t)
    assert doc["captures"][0]["wireshark_reported"] == [
        dict(frame=12, message="Dissector bug, protocol SMB2, in packet 12: planted")]
    [ours] = [f for f in doc["findings"] if f["rule"] == "analyzer.plugin_error"]
    assert ours["frames"] == [13] and ours["message"] == "Dissector bug, protocol MSRSVD, in packet 13: ours"
    assert {f["rule"] for f in doc["findings"]} - {"analyzer.plugin_error"} == {
        f["rule"] for f in run_json(samples.path("rsvd_shared_disk"))["findings"]}  # no other finding changed
    again = run_json(samples.path("rsvd_shared_disk"), t)
    assert without_seconds(again) == without_seconds(doc)  # another process id, another time: the same report


# --- bad files: one clear line and the documented exit code; a partial capture still reported --

def _one_line(res, *words):
    err = res.stderr.strip()
    assert res.returncode == 2 and "Traceback" not in res.stderr and err.count("\n") == 0, res.stderr
    for w in words:
        assert w in err, err
    return err


def test_bad_files_get_one_line(tmp_path):
    empty = tmp_path / "empty.pcapng"
    empty.write_bytes(b"")
    _one_line(analyze(empty), "is empty")
    text = tmp_path / "text.pcap"
    text.write_text("GET / HTTP/1.1\n")
    _one_line(analyze(text), "not a capture file")
    magic = tmp_path / "magic.pcapng"
    magic.write_bytes(b"\x0b\x0d\x0d\x0a" + samples.path("rsvd_shared_disk").read_bytes()[4:])
    _one_line(analyze(magic), "not a capture file")
    _one_line(analyze(tmp_path), "is a directory")


def test_an_unreadable_capture_is_one_line():
    target = Path("/proc/1/mem")  # unreadable even for root (the tests run as root in CI)
    try:
        target.open("rb").close()
    except PermissionError:
        _one_line(analyze(target), "cannot read it", "Permission denied")
        return
    except OSError:
        pass
    promised.does_not_apply("no file here that this user cannot read")


def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = analyze("--output", blocker / "out", samples.path("rsvd_shared_disk"))
    _one_line(res, "cannot write to", "--output")
    assert res.stdout == ""


@pytest.mark.parametrize("name", ["with space.pcapng", "quote'\"s.pcapng", "ünïcödé-ディスク.pcapng", "-dash.pcapng"])
def test_odd_file_names(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(samples.path("rsvd_shared_disk").read_bytes())
    # a leading dash is passed after `--`, as with any command; the path itself goes to tshark as one argument
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never", "--", str(p)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["captures"][0]["path"] == str(p)
    assert Counter(key(f) for f in doc["findings"]) == Counter(key(f) for f in expected(samples.path("rsvd_shared_disk")))


def test_a_leading_dash_relative_name(tmp_path):
    p = tmp_path / "-x.pcapng"
    p.write_bytes(samples.path("rsvd_shared_disk").read_bytes())
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--", "-x.pcapng"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode in (0, 1) and json.loads(res.stdout)["captures"][0]["packets"] == 201, res.stderr


def test_several_interfaces(tmp_path):
    """Two captures merged with every interface kept: both protocols come out."""
    out = tmp_path / "two.pcapng"
    res = subprocess.run(["mergecap", "-I", "none", "-w", str(out), str(samples.path("rsvd_shared_disk")),
                          str(samples.path("clusprep_storage"))], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    ifaces = subprocess.run(["capinfos", "-I", str(out)], capture_output=True, text=True).stdout
    assert "Number of interfaces in file: 2" in ifaces
    doc = run_json(out)
    assert doc["rsvd_sessions"] and doc["clusprep_sequences"] and doc["captures"][0]["packets"] == 201 + 123


def test_a_capture_without_smb2_or_dcerpc_says_so(tmp_path):
    out = tmp_path / "handshake.pcapng"
    subprocess.run(["editcap", "-r", str(samples.path("rsvd_shared_disk")), str(out), "1-3"], check=True)
    doc = run_json(out)
    assert doc["captures"][0]["smb2_messages"] == 0 and doc["captures"][0]["dcerpc_pdus"] == 0
    assert doc["findings"] == [] and doc["rsvd_sessions"] == []
    text = analyze(out)
    assert text.returncode == 0 and "Nothing to analyze: this capture has no SMB2 and no DCE/RPC traffic" in text.stdout


def test_one_bad_capture_among_several_does_not_lose_the_others(tmp_path):
    bad = tmp_path / "bad.pcapng"
    bad.write_text("nope")
    res = analyze("--format", "json", "--fail-on", "never", samples.path("rsvd_shared_disk"), bad)
    assert res.returncode == 2 and "not a capture file" in res.stderr and "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    assert [c["packets"] for c in doc["captures"]] == [201] and doc["findings"]


@pytest.mark.parametrize("fmt", ["netmon2", "snoop", "pcap", "pcapng.gz"])
def test_capture_formats_windows_users_have(tmp_path, fmt):
    """Network Monitor (.cap), snoop, pcap and gzip-compressed pcapng give the pcapng's findings."""
    import gzip
    src = samples.path("rsvd_shared_disk")
    out = tmp_path / ("trace." + fmt)
    if fmt == "pcapng.gz":
        out.write_bytes(gzip.compress(src.read_bytes()))
    else:
        subprocess.run(["editcap", "-F", fmt, str(src), str(out)], check=True)
    doc = run_json(out)
    assert doc["captures"][0]["packets"] == 201
    assert Counter(key(f) for f in doc["findings"]) == Counter(key(f) for f in expected(src))


def test_an_etl_trace_that_cannot_be_read_gets_the_conversion_hint(tmp_path):
    """A pktmon ETL is read (tests/test_public_captures.py); one dissect.etl cannot read is one line."""
    etl = tmp_path / "NetTrace.etl"
    etl.write_bytes(b"\x00\x40\x00\x00" + bytes(60))
    _one_line(analyze(etl), "cannot read it as an ETW trace", "pktmon etl2pcap")


@pytest.mark.parametrize("name", sorted(samples.SCENARIOS))
def test_every_table_has_the_documented_dtypes(name):
    """Issue 11: analyzer.load()'s tables have SCHEMA's dtypes on every sample, empty or not."""
    from analyzer.reconstruction.tables import PANDAS, SCHEMA

    keys = samples.KEYS.get(name, {})
    cap = analyzer.load(samples.path(name), **keys)
    for table, cols in SCHEMA.items():
        df = getattr(cap, table)
        want = {c: ("datetime64[ns, UTC]" if k == "time" else PANDAS[k]) for c, k in cols}
        assert {c: str(t) for c, t in df.dtypes.items()} == want, (name, table)
        assert df["capture"].isin([samples.path(name).name]).all(), (name, table)
        if table != "findings":  # a finding about the whole capture (capture.truncated) has no connection
            assert df["uid"].notna().all(), (name, table)
