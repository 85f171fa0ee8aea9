"""Issue 23: captures made by others (tests/public_captures, Zeek's BSD-licensed traces of Windows
and Samba SMB2/3 and DCE/RPC), on tshark 4.0, 4.4 and 4.6. None holds RSVD or ClusPrep, so the
analyzer reports none: no open, no conversation, no finding, no rule "not evaluated" but for
what stays encrypted. The SMB 3 samples with published keys decrypt from the session key alone,
message for message as tshark itself decrypts them. Two runs, split and whole runs, and merged
runs (a Network Monitor file among them) say the same; a damaged file is one line and exit 2."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import decoded

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "public_captures"
CAPTURES = sorted(p for p in HERE.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))  # the ETL: below
# The Wireshark wiki's published keys (README there): wire-order session id, session key
KEYS = {"smb3.pcap": ("3d00009400480000", "28f2847263c83dc00621f742dd3f2e7b"),
        "smb311.pcap": ("690000ac1c280000", "b25a135fc3dc14269f20d7cbc8716b6b")}
SESSIONS = {"smb3.pcap": "0x000048009400003D", "smb311.pcap": "0x0000281CAC000069"}


def analyze(*args, tshark=None, env=None, check=True):
    res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never",
                          *(("--tshark", tshark.exe) if tshark else ()), *map(str, args)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return res


def doc(*args, tshark=None, env=None):
    d = json.loads(analyze("--format", "json", *args, tshark=tshark, env=env).stdout)
    for c in d["captures"]:
        c.pop("seconds")
    return d


def key_args(name):
    sid, key = KEYS[name]
    return ["--smb-key", "%s:%s" % (sid, key)]


def tshark_fields(tshark, capture, *fields, options=()):
    """Each frame's values of `fields`, as tshark itself gives them (occurrences joined by ',')."""
    out = subprocess.run([*tshark.argv, "-n", "-r", str(capture), *options, "-T", "fields", "-E", "occurrence=a",
                          *[a for f in fields for a in ("-e", f)]], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_nothing_of_rsvd_or_clusprep_is_reported_where_there_is_none(capture, tshark):
    d = doc(capture, tshark=tshark)
    assert d["rsvd_sessions"] == [] and d["clusprep_sequences"] == [] and d["findings"] == []
    sessions = SESSIONS.get(capture.name)
    assert [n["subject"] for n in d["rules_not_evaluated"]] == (["SMB 3 session " + sessions] if sessions else [])
    c = d["captures"][0]
    assert c["wireshark_reported"] == [] and c["tshark_messages"] == []
    text = analyze(capture, tshark=tshark).stdout
    assert "ClusPrep conversations" not in text and "RSVD shared-disk opens" not in text
    assert "No shared-VHDX (RSVD) opens and no ClusPrep calls" in text


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("name", ["mapi.pcap", "20-fids.pcap", "cs_window7-join_stream092.pcap",
                                  "raw_ntlm_in_smb.pcap", "dce_rpc_netlogon.pcapng"])
def test_other_dcerpc_calls_are_counted_as_tshark_shows_them(name, tshark):
    """One line for all the DCE/RPC of other interfaces: its count is tshark's number of request
    PDUs that end a call (PFC_LAST_FRAG)."""
    calls = 0
    for ptypes, flags in tshark_fields(tshark, HERE / name, "dcerpc.pkt_type", "dcerpc.cn_flags"):
        ptypes, flags = ptypes.split(",") if ptypes else [], flags.split(",") if flags else []
        calls += sum(1 for p, f in zip(ptypes, flags) if p == "0" and int(f, 16) & 0x02)
    assert calls
    assert doc(HERE / name, tshark=tshark)["captures"][0]["other_dcerpc_calls"] == calls
    said = "%d DCE/RPC call%s of other interfaces, not analyzed" % (calls, "" if calls == 1 else "s")
    assert said in analyze(HERE / name, tshark=tshark).stdout


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("name", sorted(KEYS))
def test_smb3_decrypts_from_the_session_key_alone_as_tshark_decrypts_it(name, tshark):
    """SMB 3.0 and 3.1.1 (its keys from the preauthentication hash) on every version: analyze gives
    Wireshark the session key and lets it derive the rest."""
    sid, key = KEYS[name]
    uat = ["-o", 'uat:smb2_seskey_list:%s,%s,"",""' % (sid, key)]
    rows = tshark_fields(tshark, HERE / name, "smb2.header.transform.msg_size", "smb2.cmd", options=uat)
    encrypted = sum(1 for t, _ in rows if t)
    decrypted = sum(1 for t, cmd in rows if t and cmd)
    messages = sum(len(cmd.split(",")) for _, cmd in rows if cmd)
    assert encrypted and decrypted == encrypted  # Wireshark alone decrypts every message
    d = doc(HERE / name, *key_args(name), tshark=tshark)
    c = d["captures"][0]
    assert c["encrypted"]["smb3_messages"] == 0 and d["rules_not_evaluated"] == []
    assert c["smb2_messages"] == messages


@pytest.mark.tshark_matrix
def test_keys_may_come_from_a_file_or_the_environment(tshark, tmp_path):
    """Never only argv, which ps shows: the same decryption from --smb-key-file and ANALYZE_SMB_KEYS."""
    sid, key = KEYS["smb311.pcap"]
    given = doc(HERE / "smb311.pcap", *key_args("smb311.pcap"), tshark=tshark)
    keys = tmp_path / "keys"
    keys.write_text("# the wiki's SMB 3.1.1 sample\n%s:%s\n" % (sid, key))
    assert doc(HERE / "smb311.pcap", "--smb-key-file", keys, tshark=tshark) == given
    env = dict(os.environ, ANALYZE_SMB_KEYS="%s:%s" % (sid, key))
    assert doc(HERE / "smb311.pcap", tshark=tshark, env=env) == given
    assert given["captures"][0]["encrypted"]["smb3_messages"] == 0


@pytest.mark.tshark_matrix
def test_the_report_says_why_a_session_stays_encrypted(tshark, tmp_path):
    """No key: which key to give. A wrong key with the SESSION_SETUP captured: that key does not fit.
    The SESSION_SETUP not captured: no key helps (measured on 4.0, 4.4 and 4.6), the earlier file does."""
    sid, key = KEYS["smb311.pcap"]
    session = SESSIONS["smb311.pcap"]
    [none] = doc(HERE / "smb311.pcap", tshark=tshark)["rules_not_evaluated"]
    assert none["unlock"].startswith("--smb-key %s:SESSION_KEY" % session)
    wrong = "%s:%s" % (sid, "00" * 16)
    [bad] = doc(HERE / "smb311.pcap", "--smb-key", wrong, tshark=tshark)["rules_not_evaluated"]
    assert "the key given for it does not decrypt them, although its SESSION_SETUP is in the capture (frame 6)" \
        in bad["reason"] and bad["unlock"].startswith("the right session key for %s" % session)
    later = tmp_path / "later.pcap"  # the capture started after the SESSION_SETUP
    subprocess.run(["editcap", "-F", "pcap", str(HERE / "smb311.pcap"), str(later), "1-6"], check=True)
    [cut] = doc(later, *key_args("smb311.pcap"), tshark=tshark)["rules_not_evaluated"]
    assert "its key was given, but Wireshark decrypts a session only once it has seen its SESSION_SETUP, which " \
        "is not in the capture" in cut["reason"] and "SESSION_SETUP" in cut["unlock"]


@pytest.mark.tshark_matrix
def test_runs_split_merged_and_repeated_say_the_same(tshark, tmp_path):
    """The corpus merged into one capture: --jobs 1 and a split over two tsharks give the same JSON
    and files; two runs give the same text; --merge of the files, one of them in Network Monitor's
    format, gives the same as --merge of the originals."""
    composite = tmp_path / "all.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(composite), *map(str, CAPTURES)], check=True)
    keys = [a for n in sorted(KEYS) for a in key_args(n)]
    one = doc(composite, "--jobs", "1", "--output", tmp_path / "one", *keys, tshark=tshark)
    split = doc(composite, "--jobs", "3", "--split-above", "0", "--output", tmp_path / "two", *keys, tshark=tshark)
    assert split == one and one["findings"] == [] and one["rsvd_sessions"] == one["clusprep_sequences"] == []
    for p in sorted((tmp_path / "one").iterdir()):
        if p.name != "report.json":  # its seconds differ; the rest is compared above
            assert (tmp_path / "two" / p.name).read_bytes() == p.read_bytes(), p.name
    assert analyze(composite, *keys, tshark=tshark).stdout == analyze(composite, *keys, tshark=tshark).stdout
    netmon = tmp_path / "mapi.cap"
    subprocess.run(["editcap", "-F", "netmon2", str(HERE / "mapi.pcap"), str(netmon)], check=True)
    pcaps = [HERE / "mapi.pcap", HERE / "smb2readwrite.pcap"]
    originals = doc("--merge", *pcaps, tshark=tshark)
    with_netmon = doc("--merge", netmon, pcaps[1], tshark=tshark)
    assert with_netmon["captures"][0]["packets"] == originals["captures"][0]["packets"] == 856
    assert [f["packets"] for f in with_netmon["captures"][0]["files"]] == [800, 56]
    for d in (originals, with_netmon):
        d["captures"][0].pop("path"), d["captures"][0].pop("files")
    assert with_netmon == originals
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("analyze-")]


def test_a_damaged_file_of_any_format_is_one_line_and_exit_2(tmp_path):
    """A Network Monitor file cut short shows no packet at all (its frame table is at its end); a
    pcap cut inside its first packet neither; a pcap cut later still gets its report."""
    netmon = tmp_path / "mapi.cap"
    subprocess.run(["editcap", "-F", "netmon2", str(HERE / "mapi.pcap"), str(netmon)], check=True)
    cut = tmp_path / "cut.cap"
    cut.write_bytes(netmon.read_bytes()[:15000])
    head = tmp_path / "head.pcap"
    head.write_bytes((HERE / "smb2readwrite.pcap").read_bytes()[:40])
    for damaged, words in ((cut, "a Network Monitor file keeps the table of its frames at its end"),
                           (head, "cut short in the middle of a packet")):
        res = analyze(damaged, check=False)
        assert res.returncode == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
        assert "%s is damaged: tshark read no packet of it" % damaged in res.stderr and words in res.stderr
    merged = analyze("--merge", netmon, cut, check=False)
    assert merged.returncode == 2 and merged.stderr.count("\n") == 1 and "%s cannot be merged" % cut in merged.stderr
    later = tmp_path / "later.pcap"
    data = (HERE / "smb2readwrite.pcap").read_bytes()
    later.write_bytes(data[:len(data) // 2])
    d = doc(later)
    assert d["captures"][0]["truncated"] and [f["rule"] for f in d["findings"]] == ["capture.truncated"]


PKTMON = HERE / "demikernel-PktMon.etl"


@pytest.mark.tshark_matrix
def test_a_pktmon_etl_file_is_read_as_its_packets(tshark, tmp_path):
    """Windows' own capture format, read directly: each packet once (pktmon logs it at every
    component it passes), as tshark reads the pcapng the conversion writes: 38 ICMP echoes whose
    IP and ICMP checksums hold (a byte off anywhere would break them), requests answered in turn."""
    from analyzer.capture import etl

    d = doc(PKTMON, tshark=tshark)
    c = d["captures"][0]
    assert c["path"] == str(PKTMON) and c["packets"] == 38
    assert c["converted"] == dict(format="pktmon ETL", packets=38, logged_short=0, later_appearances=76, left_out={})
    assert d["findings"] == [] and d["rsvd_sessions"] == [] and not list(tmp_path.iterdir())
    out = tmp_path / "pktmon.pcapng"
    with open(out, "wb") as f:
        etl.convert(PKTMON, f)
    rows = tshark_fields(tshark, out, "ip.checksum.status", "icmp.checksum.status", "icmp.type", "icmp.seq",
                         options=["-o", "ip.check_checksum:TRUE"])
    assert len(rows) == 38 and all(r[0] == "1" and r[1] == "1" for r in rows)  # 1: good
    kinds = [(r[2], r[3]) for r in rows]
    assert kinds[0::2] == [("8", seq) for _, seq in kinds[0::2]] and [k[1] for k in kinds[0::2]] == [
        k[1] for k in kinds[1::2]] and {k[0] for k in kinds[1::2]} == {"0"}  # each echo request, then its reply
    text = analyze(PKTMON, tshark=tshark).stdout
    assert "read from a pktmon ETL: 38 packets, each once (76 later appearances at other components dropped)" in text


def test_an_etl_file_that_cannot_be_read_is_one_line(tmp_path):
    """Damaged, holding no packet event, or dissect.etl not installed: one line and exit 2."""
    junk = tmp_path / "junk.etl"
    junk.write_bytes(bytes(range(256)) * 4)
    head = tmp_path / "head.etl"
    head.write_bytes(PKTMON.read_bytes()[:3000])  # the first buffer: the session's header, no packet
    for bad, words in ((junk, "cannot read it as an ETW trace"), (head, "holds no packet to analyze")):
        res = analyze(bad, check=False)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and words in res.stderr, res.stderr
    blocked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['dissect.etl'] = None; "
                              "from analyzer.output.cli import main; sys.exit(main(sys.argv[1:]))", str(PKTMON)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert blocked.returncode == 2 and blocked.stderr.count("\n") == 1, blocked.stderr
    assert "pip install -e '.[etl]'" in blocked.stderr and "pktmon etl2pcap" in blocked.stderr
    merged = doc("--merge", PKTMON, HERE / "smb2readwrite.pcap")
    assert [f["packets"] for f in merged["captures"][0]["files"]] == [38, 56]


def test_statuses_named_as_wireshark_names_them():
    """Every NTSTATUS the public captures' SMB2 answers carry (Windows and Samba traffic) is named by the
    analyzer (analyzer.reconstruction.rsvd_records.status_name, from dissectors/definitions/windows_codes.py) as
    Wireshark's own smb2 dissector names it in the Info column ("Error: STATUS_...")."""
    from analyzer.reconstruction.rsvd_records import status_name

    seen = {}
    for capture in CAPTURES:
        res = subprocess.run(decoded.tshark_argv() + ["-n", "-r", str(capture), "-Y", "smb2.nt_status != 0 && "
                              "smb2.nt_status != 0x103", "-T", "fields", "-e", "smb2.nt_status", "-e", "_ws.col.Info"],
                             capture_output=True, text=True, timeout=120)
        for line in res.stdout.splitlines():
            statuses, info = line.split("\t")
            named = re.findall(r"Error: (STATUS_\w+)", info)
            if "," not in statuses and len(named) == 1:  # one message, one status
                seen[int(statuses, 0)] = named[0]
    assert len(seen) >= 5, seen
    assert {hex(c): status_name(c) for c in seen} == {hex(c): n for c, n in seen.items()}
