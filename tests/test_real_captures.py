"""The captures users actually have: one session over several connections (SMB 3
multichannel), and captures started mid-session, through real tshark and `analyze`."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import analyzer
import samples
from analyzer.rules import RULE_CLASSES
from decoded import field_values

ROOT = Path(__file__).resolve().parent.parent
MULTICHANNEL = samples.path("rsvd_multichannel")
NEEDS_CREATE = {cls.id for cls in RULE_CLASSES if cls.needs_create}
RSVD = [samples.path(n) for n in sorted(samples.SCENARIOS) if n.startswith("rsvd_")]


def key(f, shift=0):
    return (f["rule"], tuple(x + shift for x in f["frames"]))


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
def test_multichannel_error_stored_on_one_connection_is_found_on_the_other(tshark, two_pass):
    rows = field_values(MULTICHANNEL, ["tcp.stream", "smb2.nt_status", "msrsvd.sense.status_key",
                                       "msrsvd.sense.retrieved_in", "msrsvd.sense.error_in", "_ws.expert.message"],
                        *(["-2", "-Y", "frame"] if two_pass else []))  # a filter makes -2 build its first pass
    by = {int(r["frame.number"]): r for r in rows}
    stream = {f: int(r["tcp.stream"][0]) for f, r in by.items() if r["tcp.stream"]}
    stored = {int(r["msrsvd.sense.status_key"][0]): f for f, r in by.items() if r["msrsvd.sense.status_key"]}
    assert sorted(stored) == [1, 2, 3]
    # Wireshark's own smb2.nt_status says which frames store keys 1 and 3 (2 is in the tunnel header)
    assert by[stored[1]]["smb2.nt_status"] == ["0xc05c0001"] and by[stored[3]]["smb2.nt_status"] == ["0xc05c0003"]
    fetches = {int(r["msrsvd.sense.error_in"][0]): f for f, r in by.items() if r["msrsvd.sense.error_in"]}
    assert sorted(fetches) == sorted([stored[1], stored[2]])
    for k in (1, 2):
        fetched = fetches[stored[k]]
        assert stream[fetched] != stream[stored[k]]  # fetched on the other channel
        if two_pass:  # the store learns where it was fetched only once the fetch is seen
            assert by[stored[k]]["msrsvd.sense.retrieved_in"] == [str(fetched)]
    assert not by[stored[3]]["msrsvd.sense.retrieved_in"]
    experts = [m for r in rows for m in r["_ws.expert.message"]]
    assert not [m for m in experts if "No error was stored" in m]
    if two_pass:
        close = [m for m in by[stored[3]]["_ws.expert.message"] if "never retrieved" in m]
        assert close and "before the CLOSE in frame" in close[0]


@pytest.mark.tshark_matrix
def test_multichannel_is_one_open_in_analyze(tshark):
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--tshark", tshark.exe,
                          str(MULTICHANNEL)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    [s] = json.loads(res.stdout)["rsvd_sessions"]
    # the share as the TREE_CONNECT named it, on every version (4.4+ escape text in -T fields)
    assert s["channels"] == "0 1" and s["initiator_host"] == "NODE1" and s["tree"] == r"\\sofs\vhdx"


def test_multichannel_tables():
    cap = analyzer.load(MULTICHANNEL)
    [s] = cap.sessions.to_dict("records")
    ops = cap.rsvd_operations
    assert set(ops["open_id"]) == {s["open_id"]} and set(ops["stream"]) == {0, 1}
    srb = ops[ops["operation"] == "RSVD_TUNNEL_SRB_STATUS_OPERATION"]
    assert sorted(srb["stream"]) == [0, 1]
    assert [(f.rule, f.frames) for f in cap.result.findings] == [("rsvd.sense_not_retrieved", [36, 37])]


def _cut(src: Path, start: int, dst: Path) -> Path:
    # editcap says a truncated source is cut short (exit 1) but keeps what it read
    subprocess.run(["editcap", "-r", str(src), str(dst), "%d-%d" % (start, 1 << 30)], capture_output=True)
    assert dst.exists() and dst.stat().st_size > 0
    return dst


@pytest.mark.parametrize("pcap", RSVD, ids=lambda p: p.stem)
def test_mid_session_cut_keeps_what_it_can_and_invents_nothing(pcap, tmp_path):
    """Cut each RSVD sample just after its first tunnel operation's answer, as a capture
    started on a running cluster would be: the open made before the cut is recognised, every
    finding that does not need what was cut is kept, nothing false is added."""
    keys = samples.KEYS.get(pcap.stem, {})
    full = analyzer.load(pcap, **keys)
    ops = full.rsvd_operations
    tunnel = ops[~ops["operation"].str.startswith("SMB2_")].sort_values("request_frame")
    if tunnel.empty:
        pytest.skip("no tunnel operation to cut after")
    first = tunnel.iloc[0]
    start = int(first["response_frame"]) + 1
    cut = analyzer.load(_cut(pcap, start, tmp_path / "cut.pcapng"), **keys)
    shift = start - 1
    if keys.get("smb_keys"):
        # Wireshark decrypts a session only after its SESSION_SETUP: the cut says so, names the
        # session, and invents nothing
        [n] = [n for n in cut.result.not_evaluated if "SESSION_SETUP" in n.reason]
        assert n.subject == "SMB 3 session 0x%016X" % int(full.sessions.iloc[0]["session_id"])
        assert first["open_id"] not in set(cut.sessions["open_id"])
        assert {key(f.as_dict(), shift) for f in cut.result.findings} <= {key(f.as_dict()) for f in full.result.findings}
        return
    full_keys = {key(f.as_dict()) for f in full.result.findings}
    cut_keys = {key(f.as_dict(), shift) for f in cut.result.findings}
    assert cut_keys <= full_keys, "findings the full capture does not have: %s" % (cut_keys - full_keys)
    kept = {key(f.as_dict()) for f in full.result.findings
            if f.frames and min(f.frames) >= start and f.rule not in NEEDS_CREATE
            and not f.rule.startswith("capture.")}  # the cut is a file of its own: editcap writes whole packets
    assert kept <= cut_keys, "findings lost by the cut: %s" % (kept - cut_keys)
    # Every open still doing RSVD after the cut is reported, under the same id (session:FileId).
    live = set(tunnel[tunnel["request_frame"] >= start]["open_id"].dropna())
    opens = cut.sessions
    assert live <= set(opens["open_id"]) <= set(full.sessions["open_id"])
    before = opens[opens["opened_before_capture"]]
    assert first["open_id"] in set(before["open_id"])
    assert before["create_frame"].isna().all()
    # ... each listed as not evaluated for what needs its CREATE
    subjects = {n.subject: n for n in cut.result.not_evaluated}
    for oid in before["open_id"]:
        session, file_id = oid.split(":")
        [n] = [n for s, n in subjects.items() if "SMB2 session %s, file id %s" % (session, file_id) in s]
        assert set(n.rules) == NEEDS_CREATE and "before the capture started" in n.reason


CLUSPREP = [samples.path(n) for n in sorted(samples.SCENARIOS) if n.startswith("clusprep_")]
NEEDS_START = {cls.id for cls in RULE_CLASSES if cls.needs_start}
NEEDS_BIND = {cls.id for cls in RULE_CLASSES if cls.needs_stub or cls.needs_bind}


@pytest.mark.parametrize("pcap", CLUSPREP, ids=lambda p: p.stem)
def test_clusprep_cut_after_the_bind_lists_every_call_and_invents_nothing(pcap, tmp_path):
    """A capture started after the binds: a call on a context it never saw bound is ClusPrep's only
    when a ClusPrep call of the capture uses its object's IPID (issue 23: never the DCE/RPC of
    other interfaces); such calls are listed with their opnum and answer, the others are counted as
    of unknown interface; the ordering rules say they were not evaluated, nothing false fires."""
    full = analyzer.load(pcap)
    calls = full.clusprep_calls.sort_values("request_frame")
    start = int(calls.iloc[0]["response_frame"] or calls.iloc[0]["request_frame"]) + 1
    cut = analyzer.load(_cut(pcap, start, tmp_path / "cut.pcapng"))
    shift = start - 1
    full_keys = {key(f.as_dict()) for f in full.result.findings}
    # the level rules speak once per conversation, at the first bind or call the capture shows
    anchored = {"clusprep.unknown_context", "clusprep.insufficient_auth_level", "clusprep.low_auth_accepted"}
    cut_keys = {key(f.as_dict(), shift) for f in cut.result.findings if f.rule not in anchored}
    level = "clusprep.insufficient_auth_level"
    assert (level in {f.rule for f in cut.result.findings}) == (level in {f.rule for f in full.result.findings})
    assert cut_keys <= full_keys, "findings the full capture does not have: %s" % (cut_keys - full_keys)
    got = cut.clusprep_calls
    unbound = got[got["interface"] == "?"]
    later = calls[calls["request_frame"] >= start]
    listed = set(got["request_frame"] + shift)
    # every call whose request is in the cut is listed (named, or by opnum through its IPID) or
    # counted among the calls of unknown interface; nothing is listed that the full capture lacks
    gone = later[~later["request_frame"].isin(listed)]
    assert len(gone) <= cut.result.unknown_dcerpc_calls
    assert listed <= set(later["request_frame"]) | set(unbound["request_frame"] + shift)
    unreadable = {int(x) + shift for col in ("request_frame", "response_frame") for x in unbound[col].dropna()}
    dropped = {int(x) for col in ("request_frame", "response_frame") for x in gone[col].dropna()}
    kept = {key(f.as_dict()) for f in full.result.findings
            if f.frames and min(f.frames) >= start and f.rule not in NEEDS_START and not f.rule.startswith("capture.")
            # a call on a context the cut never saw bound cannot be read, and the first such
            # request of each context gets the warning in its place; one not known as ClusPrep's is gone
            and not (f.rule in NEEDS_BIND and unreadable & set(f.frames)) and f.rule not in anchored
            and not dropped & set(f.frames)}
    assert kept <= cut_keys, "findings lost by the cut: %s" % (kept - cut_keys)
    for _, c in unbound.iterrows():
        origs = later[later["request_frame"] == c["request_frame"] + shift].to_dict("records")
        if not origs:
            continue
        [orig] = origs
        assert c["method"] == "opnum %d" % orig["opnum"]
        assert c["result"].startswith("fault") == orig["result"].startswith("fault")
    partial = [n for n in cut.result.not_evaluated if "mid-conversation" in n.reason]
    assert all(set(n.rules) == NEEDS_START for n in partial)
    assert partial or got.empty  # a conversation the cut keeps began before it
    if not unbound.empty:
        ns = [n for n in cut.result.not_evaluated if "listed by opnum" in n.reason]
        assert all(set(n.rules) == NEEDS_BIND for n in ns)
        assert sum(int(n.reason.split()[0]) for n in ns) == len(unbound)


def test_clusprep_reconnect_alone_accuses_no_server(tmp_path):
    """clusprep_storage_near_misses cut to its second connection (stream 1): the object was prepared
    on the first, which the cut lacks. A bind proves a new connection, not a new object: no server
    finding from an assumed Prepare State Initial, the rules that need the state are listed as not
    evaluated, and the client's first call, served, is no C08 either (the object was prepared)."""
    src = samples.path("clusprep_storage_near_misses")
    frames = [int(r["frame.number"]) for r in field_values(src, [], "-Y", "tcp.stream == 1")]
    assert frames == list(range(frames[0], frames[-1] + 1))  # one stretch: editcap -r keeps it
    cut = tmp_path / "stream1.pcapng"
    subprocess.run(["editcap", "-r", str(src), str(cut), "%d-%d" % (frames[0], frames[-1])], check=True,
                   capture_output=True)
    result = analyzer.load(cut).result
    # its binds are unauthenticated: clusprep.low_auth_accepted is the one server finding it has anyway
    server = [f for f in result.findings if f.side == "server" and f.rule != "clusprep.low_auth_accepted"]
    assert server == [], [f.message for f in server]
    assert [f.check for f in result.findings if f.side == "client"] == []
    unknown = [n for n in result.not_evaluated if "first call in the capture is not CprepPrepareNode" in n.reason]
    assert len(unknown) == 1
    assert {"clusprep.prepare_state_not_enforced", "clusprep.phase2_missing", "clusprep.disk_state_not_enforced",
            "clusprep.disk_query_answer", "clusprep.unattached_disk_answer"} <= set(unknown[0].rules)


@pytest.mark.tshark_matrix
def test_mid_session_cut_in_tshark_links_what_it_can_and_accuses_no_one(tshark, tmp_path):
    """The plugin on a capture started mid-session: an error stored on an open made before the
    capture is still shown (the STATUS_SVHDX_ERROR_STORED status says the open is RSVD), and a
    retrieval of a key stored before the capture is not called a retrieval of a key never stored."""
    src = samples.path("rsvd_cluster_events")
    cut = _cut(src, 31, tmp_path / "cut.pcapng")  # after both CREATEs, before the stored errors
    rows = field_values(cut, ["msrsvd.sense.status_key", "msrsvd.sense.error_in", "_ws.expert.message"],
                        "-2", "-Y", "frame")
    stored = [r for r in rows if r["msrsvd.sense.status_key"]]
    assert stored, "no stored error shown on the open made before the capture"
    experts = [m for r in rows for m in r["_ws.expert.message"]]
    assert not [m for m in experts if "No error was stored" in m]
    full = field_values(src, ["msrsvd.sense.status_key"], "-2", "-Y", "frame")
    assert {(int(r["frame.number"]) + 30, tuple(r["msrsvd.sense.status_key"])) for r in stored} <= \
        {(int(r["frame.number"]), tuple(r["msrsvd.sense.status_key"])) for r in full}


def test_unknown_file_ids_are_bounded():
    """A capture full of READ/WRITE on FileIds whose CREATE it lacks (any file server's traffic)
    keeps at most MAX_CANDIDATES of them waiting for RSVD evidence, each with bounded rows."""
    from analyzer.reconstruction.events import READ, Smb2Message
    from analyzer.reconstruction.bus import Bus
    from analyzer.reconstruction.rsvd_records import MAX_CANDIDATES, MAX_PENDING_ROWS
    from analyzer.reconstruction.rsvd_sessions import RsvdTracker
    from analyzer.reconstruction.tables import Tables

    t = RsvdTracker(Bus([]), Tables())
    n = MAX_CANDIDATES * 3
    for i in range(n):
        fid = "%08x-0000-0000-0000-000000000000" % i
        t.message(Smb2Message(2 * i + 1, 0.0, 0, 1, READ, False, i, 7, 1, file_id=fid), "10.0.0.1:1", "10.0.0.2:445")
        t.message(Smb2Message(2 * i + 2, 0.0, 0, 1, READ, True, i, 7, 1, status=0), "10.0.0.2:445", "10.0.0.1:1")
    assert len(t.candidates) == MAX_CANDIDATES and not t.opens and not t.io
    hot = "%08x-0000-0000-0000-000000000000" % (n - 1)
    for i in range(MAX_PENDING_ROWS * 2):
        t.message(Smb2Message(10 ** 6 + 2 * i, 0.0, 0, 1, READ, False, 10 ** 6 + i, 7, 1, file_id=hot), "a", "b")
        t.message(Smb2Message(10 ** 6 + 2 * i + 1, 0.0, 0, 1, READ, True, 10 ** 6 + i, 7, 1, status=0), "b", "a")
    assert len(t.candidates[(7, hot)].pending_rows) == MAX_PENDING_ROWS
