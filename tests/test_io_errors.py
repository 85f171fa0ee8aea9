"""The io_errors table and the per-disk reservation story (analyzer.reconstruction.io_errors, analyzer.reconstruction.reservations)
against what real tshark decodes from the same frames: Wireshark's own SMB2 dissector for the
READ/WRITE statuses, offsets and lengths, our plugin for the tunnel statuses, SCSI statuses and
sense data. Counts agree across the io_errors table, the sessions table, the JSON and the text."""
import json
import re

import pandas as pd
import pytest

import analyzer
import samples
from decoded import TSHARK, field_values
from dissectors.definitions import scsi

from test_analyzer import analyze, run_json

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

RSVD_SAMPLES = sorted(n for n in samples.SCENARIOS if n.startswith("rsvd_"))
FIELDS = ["smb2.cmd", "smb2.flags.response", "smb2.nt_status", "smb2.file_offset", "smb2.read_length",
          "smb2.write_length", "msrsvd.header.status",
          "msrsvd.scsi_response.scsi_status", "msrsvd.srb_status_response.scsi_status", "msrsvd.scsi.sense.key",
          "msrsvd.scsi.sense.asc_ascq", "_ws.expert.group"]
SVHDX = 0xC05C0000
PI_MALFORMED = 0x07000000  # an expert item of the Malformed group: the analyzer cannot decode that message


def na(v):
    return v is None or pd.isna(v)


@pytest.fixture(scope="module", params=RSVD_SAMPLES)
def rsvd_capture(request):
    path = samples.path(request.param)
    cap = analyzer.load(path, **samples.KEYS.get(request.param, {}))
    # Wireshark's own rsvd flags these layouts malformed: off, as install turns it
    frames = {int(r["frame.number"]): r
              for r in field_values(path, FIELDS, "--disable-protocol", "rsvd", check=False)}
    return request.param, cap, frames


def _ints(values):
    return [int(v, 0) for v in values]


def test_every_decoded_failure_is_a_row(rsvd_capture):
    """A tunnel answer with a failing header status or a SCSI status other than GOOD, and a READ or
    WRITE answered with a STATUS_SVHDX_* code, each is the answer of an io_errors row (or the
    fetch of one, for SRB_STATUS), on every RSVD sample; and no row names an answer that did not fail."""
    name, cap, frames = rsvd_capture
    t = cap.io_errors
    answers = set(t.response_frame.dropna().astype(int)) | set(t.sense_frame.dropna().astype(int))
    failing, malformed = set(), set()
    for n, r in frames.items():
        if PI_MALFORMED in _ints(r["_ws.expert.group"]):
            malformed.add(n)
            continue  # reported as malformed (rsvd.malformed), not judged here
        if r["msrsvd.header.status"] and set(r["smb2.flags.response"]) == {"1"}:  # tunnel answers only
            statuses = _ints(r["msrsvd.header.status"])
            scsi_statuses = _ints(r["msrsvd.scsi_response.scsi_status"]) + _ints(r["msrsvd.srb_status_response.scsi_status"])
            if any(statuses) or any(scsi_statuses):
                failing.add(n)
        if r["smb2.cmd"] in (["8"], ["9"]) and r["smb2.flags.response"] == ["1"]:
            status = _ints(r["smb2.nt_status"])
            if status and status[0] & 0xFFFF0000 == SVHDX:
                failing.add(n)
    # an SRB_STATUS that fetches a stored error answers GOOD at the tunnel and carries the sense: it is a
    # row's sense frame; a failing answer on an open the analyzer never knew as RSVD is no row
    missing = failing - answers
    assert not missing, "%s: failures with no io_errors row: %s" % (name, sorted(missing))
    for row in t.itertuples():
        if not na(row.response_frame) and row.path != "retrieval":
            assert int(row.response_frame) in failing | malformed or row.path == "smb2", (name, row.response_frame)


def test_rows_match_the_decoded_frames(rsvd_capture):
    """Each row's statuses, sense and byte range are what tshark decodes at the frames it names."""
    name, cap, frames = rsvd_capture
    t = cap.io_errors
    assert len(t) == cap.result.io_error_count
    for row in t.itertuples():
        if row.command in ("SMB2_READ", "SMB2_WRITE"):
            req, answer = frames[int(row.request_frame)], frames[int(row.response_frame)]
            assert row.status_code == _ints(answer["smb2.nt_status"])[0]  # Wireshark's own smb2 dissector
            assert row.offset == int(req["smb2.file_offset"][0])
            length = req["smb2.read_length" if row.command == "SMB2_READ" else "smb2.write_length"]
            assert row.length == int(length[0])
        if row.path == "stored":
            assert row.status_code & 0xFFFF0000 == SVHDX and row.status_key == row.status_code & 0xFF
        sense_at = row.sense_frame if not na(row.sense_frame) else row.response_frame
        if not na(row.sense_key):
            decoded = frames[int(sense_at)]
            assert scsi.SENSE_KEYS[row.sense_key] in _ints(decoded["msrsvd.scsi.sense.key"]), (name, row)
            assert (row.asc << 8 | row.ascq) in _ints(decoded["msrsvd.scsi.sense.asc_ascq"]), (name, row)
        if not na(row.scsi_status):
            decoded = frames[int(sense_at)]
            statuses = _ints(decoded["msrsvd.scsi_response.scsi_status"]) + _ints(
                decoded["msrsvd.srb_status_response.scsi_status"])
            assert scsi.SCSI_STATUS[row.scsi_status] in statuses, (name, row)


def test_counts_agree_everywhere(rsvd_capture):
    """Per open, the sessions table's failed I/Os, conflicts, unit attentions and check conditions are
    the io_errors rows of that open; the report, the JSON and the findings give the same totals."""
    name, cap, _ = rsvd_capture
    t, s = cap.io_errors, cap.sessions
    for o in s.itertuples():
        mine = t[t.open_id == o.open_id]
        assert o.errors == len(mine), (name, o.open_id)
        assert o.reservation_conflicts == (mine.kind == "RESERVATION CONFLICT").sum()
        assert o.unit_attentions == mine.kind.str.startswith("UNIT ATTENTION").sum()
        assert o.check_conditions == ((mine.scsi_status == "CHECK_CONDITION")
                                      & ~mine.kind.str.startswith("UNIT ATTENTION")).sum()
    assert sum(g["count"] for g in cap.result.io_errors) == len(t)
    # the findings that report the same events count them the same
    f = cap.findings
    assert (f.rule == "rsvd.unit_attention").sum() == t.kind.str.startswith("UNIT ATTENTION").sum()
    assert (f.rule == "rsvd.reservation_conflict").sum() == (t.kind == "RESERVATION CONFLICT").sum()
    keys = [a for k in samples.KEYS.get(name, {}).get("smb_keys", []) for a in ("--smb-key", k)]
    doc = json.loads(analyze("--format", "json", "--fail-on", "never", *keys, samples.path(name)).stdout)
    assert doc["captures"][0]["io_errors"] == len(t) == sum(g["count"] for g in doc["io_errors"])
    text = analyze(*keys, samples.path(name)).stdout
    if len(t):
        assert re.search(r"^I/O errors: %d failed I/Os? on " % len(t), text, re.M), name
    else:
        assert "I/O errors:" not in text


def test_shared_disk_says_what_happened():
    """The issue's example: NODE1's WRITE fails with a stored MEDIUM ERROR fetched by SRB_STATUS, NODE2's
    WRITE(10) is refused by a reservation conflict and its READ told RESERVATIONS PREEMPTED, each
    where it happened, counted the same in the open's summary."""
    cap = analyzer.load(samples.path("rsvd_shared_disk"))
    t = cap.io_errors.set_index("request_frame")
    medium = t.loc[99]
    assert (medium.initiator_host, medium.command, medium.kind) == ("NODE1", "SMB2_WRITE", "MEDIUM ERROR: WRITE ERROR")
    assert (medium.response_frame, medium.retrieval_frame, medium.sense_frame) == (100, 101, 102)
    assert (medium.asc, medium.ascq, medium.offset, medium.length, medium.lba) == (0x0C, 0, 1048576, 8192, 2048)
    conflict = t.loc[181]
    assert (conflict.command, conflict.kind, conflict.status) == (
        "WRITE_10", "RESERVATION CONFLICT", "STATUS_SVHDX_RESERVATION_CONFLICT")
    ua = t.loc[183]
    assert ua.kind == "UNIT ATTENTION: RESERVATIONS PREEMPTED" and ua.sense_frame == 186
    out = analyze(samples.path("rsvd_shared_disk")).stdout
    assert "I/O errors: 3 failed I/Os on 1 disk" in out
    assert "    MEDIUM ERROR: WRITE ERROR: 1 time, " in out
    assert ("SRB_STATUS): CHECK CONDITION, sense MEDIUM ERROR, WRITE ERROR (ASC 0x0C, ASCQ 0x00)" in out
            and "frames 99 request, 100 answer, 101 fetch, 102 sense" in out)
    assert "2 failed I/Os: 1 reservation conflict, 1 unit attention (see I/O errors)" in out
    assert "1 failed I/O: 1 check condition (see I/O errors)" in out
    # one host, one name: NODE2 named itself NODE2.cluster.example first, then NODE2
    assert "  NODE2  " not in out and out.count("  NODE2.cluster.example  \\\\sofs") == 2


def test_a_stored_error_never_fetched_says_so():
    t = analyzer.load(samples.path("rsvd_cluster_events")).io_errors
    [row] = t[t.path == "stored"].itertuples()
    assert row.retrieval == "not retrieved in the capture" and row.kind == "error stored, not retrieved in the capture"
    assert na(row.sense_frame) and na(row.retrieval_frame)


def _holders_checked(cap) -> int:
    """Where a PERSISTENT RESERVE IN reads the reservation after PR OUT commands made a holder, the disk's
    answer (decoded by tshark into `holder`) names the holder the commands made (`holder_after` before it)."""
    r = cap.reservations
    checked = 0
    for disk, rows in r[r.source == "rsvd"].groupby("disk"):
        rows = rows.sort_values("frame").reset_index(drop=True)
        for i in range(1, len(rows)):
            if rows.event[i] in ("read_reservation", "read_full_status") and not na(rows.holder_after[i - 1]):
                assert rows.holder[i] == rows.holder_after[i - 1], rows.frame[i]
                checked += 1
    return checked


def test_the_predicted_holder_agrees_with_every_pr_in(rsvd_capture):
    _holders_checked(rsvd_capture[1])


def test_the_holder_predicted_is_the_holder_the_disk_reports():
    """The story's holder follows the PR OUT commands (SPC-3 5.6); where a PERSISTENT RESERVE IN then
    reads the reservation, the disk's own answer (decoded by tshark) names the same holder."""
    cap = analyzer.load(samples.path("rsvd_cluster_events"))
    assert _holders_checked(cap) == 2
    story = [d for d in cap.result.disks if d["sources"] == ["rsvd"]][0]
    assert story["holder"] == "0x4e4f444532000003"
    preempt = next(e for e in story["events"] if e["event"] == "preempt")
    assert (preempt["sa_host"], preempt["holder_host"]) == ("NODE1", "NODE2")
    out = analyze(samples.path("rsvd_cluster_events")).stdout
    assert ("NODE2  preempted key 0x4e4f444531000001 (NODE1) with key 0x4e4f444532000002 (NODE2) (write exclusive, "
            "registrants only); now held by key 0x4e4f444532000002 (NODE2)") in out
    assert "WRITE(10) refused: reservation conflict (held by key 0x4e4f444531000001 (NODE1))" in out


def test_sealed_calls_are_not_failures():
    doc = run_json(samples.path("clusprep_sealed"))
    [seq] = doc["clusprep_sequences"]
    assert seq["outcomes"] == {"sealed": 8} and {c["outcome"] for c in seq["sequence"]} == {"sealed"}
    out = analyze(samples.path("clusprep_sealed")).stdout
    assert "8 calls: 8 answered but sealed (the result is unknown without the key)" in out
    assert "not successful" not in out and "failed" not in out.split("Rules not evaluated")[0]


def test_json_lists_io_errors_and_disks():
    doc = run_json(samples.path("rsvd_shared_disk"))
    kinds = {g["kind"]: g for g in doc["io_errors"]}
    assert set(kinds) == {"MEDIUM ERROR: WRITE ERROR", "RESERVATION CONFLICT", "UNIT ATTENTION: RESERVATIONS PREEMPTED"}
    assert kinds["MEDIUM ERROR: WRITE ERROR"]["examples"][0]["frames"] == [99, 100, 101, 102]
    assert kinds["RESERVATION CONFLICT"]["first_time"].endswith("Z")
    [disk] = doc["disks"]
    assert [e["event"] for e in disk["events"]] == ["read_keys", "register", "conflict", "unit_attention"]
    json.dumps(doc)
