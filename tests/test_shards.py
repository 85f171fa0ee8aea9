"""Issue 14 item 1: one capture over several tsharks. `analyze --jobs N` splits a capture by
connection (analyzer.capture.split), dissects the shards at once (N-1 tsharks: this process is busy too)
and merges their rows back in capture order, so everything after it sees exactly what one tshark gives: the same rows (frame and TCP
stream numbers the capture's own), the same findings, tables and report."""
import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from analyzer.capture.shards import ShardedRun, _numbers
from analyzer.capture.source import Run, find_tshark
from analyzer.capture.split import Unsplittable, split
from samples import ntlmssp

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(samples.path(n) for n in samples.SCENARIOS)
KEYS = [*(a for k in samples.KEYS["rsvd_encrypted"]["smb_keys"] for a in ("--smb-key", k)),
        "--nt-password", ntlmssp.ACCOUNT.password, "--keytab", str(samples.SAMPLES_DIR / "clusprep_kerberos.keytab")]


def analyze(*args):
    return subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def without_timing(doc):
    for c in doc["captures"]:
        c.pop("seconds")
    return doc


def same_as_serial(capture, tmp_path, *args, tshark=None, jobs=3):
    """--jobs 3 (two tsharks and this process; or `jobs`) with every capture split gives --jobs 1's
    JSON and --output files byte for byte."""
    exe = ("--tshark", tshark.exe) if tshark else ()
    one = analyze("--jobs", "1", "--format", "json", "--output", tmp_path / "one", *exe, *args, capture)
    two = analyze("--jobs", str(jobs), "--split-above", "0", "--format", "json", "--output", tmp_path / "two", *exe,
                  *args, capture)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stderr == one.stderr
    assert without_timing(json.loads(two.stdout)) == without_timing(json.loads(one.stdout))
    for p in sorted((tmp_path / "one").iterdir()):
        if p.name != "report.json":  # its seconds differ; the rest is the stdout compared above
            assert (tmp_path / "two" / p.name).read_bytes() == p.read_bytes(), p.name
    return json.loads(one.stdout)


@pytest.fixture(scope="module")
def composite(tmp_path_factory):
    """Every sample but the truncated one merged by time into one capture: 2 shards' worth of
    hosts, the multichannel session, SMB 3 encryption, sealed NTLM and Kerberos DCE/RPC."""
    out = tmp_path_factory.mktemp("composite") / "all.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(out), *[str(p) for p in SAMPLES if "truncated" not in p.name]],
                   check=True)
    return out


@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_split_gives_the_serial_report_and_tables(pcap, tmp_path):
    same_as_serial(pcap, tmp_path, *(KEYS if pcap.stem == "rsvd_encrypted" else ()))


def _shards(capture: Path, tsharks: int) -> int:
    """The shards analyze splits `capture` into for `tsharks` tsharks (0: read whole)."""
    try:
        parts = split(capture, tsharks)
    except Unsplittable:
        return 0
    try:
        return len(parts.shards)
    finally:
        parts.remove()


# The samples that --jobs 5 (four tsharks) splits into 3 shards or more: more than 2 connection
# groups. Today only rsvd_guest_validation (4 groups, 4 shards); the other splitting samples have
# 2 groups, which --jobs 3 above splits already
MANY_GROUPS = [p for p in SAMPLES if _shards(p, 4) >= 3]


@pytest.mark.parametrize("pcap", MANY_GROUPS, ids=lambda p: p.stem)
def test_samples_of_many_groups_split_over_four_tsharks_give_the_serial_report(pcap, tmp_path):
    same_as_serial(pcap, tmp_path, *(KEYS if pcap.stem == "rsvd_encrypted" else ()), jobs=5)


@pytest.mark.tshark_matrix
def test_a_capture_of_everything_gives_the_serial_rows_and_report(composite, tmp_path, tshark):
    """Row for row on 4.0, 4.4 and 4.6 (escaped text included), then the whole report, decrypted."""
    t = find_tshark(tshark.exe)
    whole, sharded = Run(t, composite), ShardedRun(t, composite, jobs=2)
    assert list(sharded.rows()) == list(whole.rows())
    assert sharded.shards == 2 and sharded.whole is None
    assert (sharded.frames, sharded.errors, sharded.dissector_bugs, sharded.truncated) == (
        whole.frames, whole.errors, whole.dissector_bugs, whole.truncated)
    doc = same_as_serial(composite, tmp_path, *KEYS, tshark=tshark)
    assert doc["captures"][0]["encrypted"]["smb3_messages"] == 0  # the keys reached every shard's tshark


def test_many_shards_interleave_as_a_single_run(composite, tmp_path):
    """Six tsharks: the merge interleaves more shards' rows (and renumbers their streams) as one
    tshark gives them."""
    t = find_tshark()
    whole, sharded = Run(t, composite), ShardedRun(t, composite, jobs=6)
    assert list(sharded.rows()) == list(whole.rows())
    assert sharded.shards >= 4, sharded.whole
    same_as_serial(composite, tmp_path, *KEYS, jobs=7)


def test_a_multichannel_session_stays_in_one_shard(composite):
    """Its two connections (two NICs, two host pairs) share a SessionId: one shard holds both,
    so its tshark sees the binding and the stored errors fetched across channels."""
    parts = split(composite, 2)
    try:
        t = find_tshark()
        holders = []
        for s in parts.shards:
            out = subprocess.run([t.path, "-n", "-r", str(s.path), "-T", "fields", "-e", "tcp.srcport", "-Y",
                                  "(tcp.port == 49801 || tcp.port == 49802) && (ip.addr == 10.0.0.11 || ip.addr == 10.0.1.11)"],
                                 capture_output=True, text=True).stdout.split()
            holders.append(set(out) & {"49801", "49802"})
        assert sorted(map(sorted, holders)) == [[], ["49801", "49802"]]
        assert sum(s.frames for s in parts.shards) == parts.frames and parts.groups >= 2
    finally:
        parts.remove()


@pytest.mark.parametrize("fmt", ["pcap", "pcap.gz"])
def test_pcap_and_gzip_split_too(composite, tmp_path, fmt):
    pcap = tmp_path / "all.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(composite), str(pcap)], check=True)
    if fmt == "pcap.gz":
        with open(pcap, "rb") as src, gzip.open(tmp_path / "all.pcap.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        pcap = tmp_path / "all.pcap.gz"
    t = find_tshark()
    sharded = ShardedRun(t, pcap, jobs=2)
    assert list(sharded.rows()) == list(Run(t, pcap).rows()) and sharded.shards == 2
    same_as_serial(pcap, tmp_path, *KEYS)


def _pcapng_block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def test_what_cannot_be_split_exactly_is_read_whole(composite, tmp_path):
    """A record cut short, a block some tshark may count as a frame, a single connection group:
    each is read by one tshark, with the same result."""
    cases = {"cut short": samples.path("rsvd_truncated"), "one connection group": samples.path("rsvd_multichannel")}
    custom = tmp_path / "custom.pcapng"  # a pcapng custom block (type 0xBAD), after the interfaces
    data = composite.read_bytes()
    first_packet = data.index(struct.pack("<I", 6))
    while struct.unpack_from("<I", data, first_packet)[0] != 6:  # the first enhanced packet block
        first_packet += 4
    custom.write_bytes(data[:first_packet] + _pcapng_block(0xBAD, struct.pack("<I", 32473) + b"abcd") + data[first_packet:])
    cases["type 0xBAD"] = custom
    t = find_tshark()
    for why, capture in cases.items():
        with pytest.raises(Unsplittable, match=why):
            split(capture, 2, tmp_path)
        sharded = ShardedRun(t, capture, jobs=2, directory=tmp_path)
        assert list(sharded.rows()) == list(Run(t, capture).rows()) and sharded.shards == 0 and why in sharded.whole
    assert [p.name for p in tmp_path.iterdir()] == ["custom.pcapng"]  # no shard folder stays behind


def test_a_dissector_bug_line_names_the_captures_frame(composite):
    """tshark names the shard's frame ("in packet 5"); the report names the capture's."""
    t = find_tshark()
    parts = split(composite, 2)
    try:
        run = ShardedRun(t, composite, jobs=2)
        k = max(range(2), key=lambda i: parts.shards[i].frames)
        numbers = list(_numbers(parts.shards[k].frames_path))
        run._ended(k, parts, " ** (tshark:1) [Epan WARNING] -- Dissector bug, protocol SMB2, in packet 5: planted\n", 0)
        assert run.dissector_bugs == [(numbers[4], "Dissector bug, protocol SMB2, in packet %d: planted" % numbers[4])]
        assert numbers[4] != 5 and numbers == sorted(numbers)
    finally:
        parts.remove()


def test_split_above_is_checked():
    res = analyze("--split-above", "-1", str(SAMPLES[0]))
    assert res.returncode == 2 and "--split-above must be 0 or more" in res.stderr


def test_a_ring_buffer_set_merged_is_split_too(composite, tmp_path):
    """analyze --merge over a dumpcap -b file set: the merge is split like one capture, and
    findings still cite each file and its own frame."""
    from analyzer.capture.merge import Merged
    from analyzer.capture.shards import MergedShardedRun

    ring = tmp_path / "ring"
    ring.mkdir()
    subprocess.run(["editcap", "-c", "400", str(composite), str(ring / "node.pcapng")], check=True)
    assert len(list(ring.iterdir())) == 5
    t = find_tshark()
    merged = Merged.prepare(t, [str(ring)])
    run = MergedShardedRun(t, Path(merged.name), jobs=2, feed=merged.mergecap(t))
    whole = Run(t, Path(merged.name), feed=merged.mergecap(t))
    assert list(run.rows()) == list(whole.rows()) and run.shards == 2 and run.frames == whole.frames
    doc = same_as_serial(ring, tmp_path, "--merge", *KEYS)
    cited = {w["file"] for f in doc["findings"] for w in f["where"]}
    assert len(cited) >= 3 and cited <= {p.name for p in ring.iterdir()}


def test_no_room_for_the_shards_reads_whole_and_says_where(composite, monkeypatch, capsys):
    """Shards need about the capture's size again on disk: without it the capture is read whole
    (same result) and stderr says how to choose another folder."""
    import analyzer.capture.split as split_module

    t = find_tshark()
    monkeypatch.setattr(split_module.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12, 1000))
    sharded = ShardedRun(t, composite, jobs=2)
    assert list(sharded.rows()) == list(Run(t, composite).rows()) and sharded.shards == 0
    err = capsys.readouterr().err
    assert "all.pcapng not split over 2 tsharks" in err and "--work-dir" in err and err.count("\n") == 1


# --- what the splitter keeps together, packet by packet --------------------------------------

def _ipv4(src, dst, proto, payload, ident=7, frag=0, more=False):
    flags = (0x2000 if more else 0) | frag
    head = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0,
                       bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return head + payload


def _tcp(sport, dport, data=b""):
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + data


def _smb2(session, transform=False):
    if transform:  # TRANSFORM_HEADER: ProtocolId, Signature, Nonce, OriginalMessageSize, Reserved, Flags, SessionId
        body = b"\xfdSMB" + bytes(16) + bytes(16) + struct.pack("<IHHQ", 64, 0, 1, session)
    else:
        body = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, 0, 1, 0, 0, 1, 0, 0, session) + bytes(16)
    return struct.pack(">I", len(body)) + body


def _ether(ip, vlan=None):
    tag = struct.pack(">HH", 0x8100, vlan) if vlan is not None else b""
    return bytes(6) + bytes(6) + tag + b"\x08\x00" + ip


def _key(packet, linktype=1, classifier=None):
    from analyzer.capture.connection_keys import Classifier as _Classifier
    c = classifier or _Classifier()
    return c.key(packet, 0, len(packet), linktype)


def test_an_smb_connection_is_one_key_both_ways_and_names_its_session():
    out = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445, _smb2(0x1122334455667788)))))
    back = _key(_ether(_ipv4("10.0.0.2", "10.0.0.1", 6, _tcp(445, 50000, _smb2(0x1122334455667788, True)))))
    assert out == back and out[0][:1] == b"T" and out[1] == 0x1122334455667788
    other = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50001, 445))))
    assert other[0] != out[0] and other[1] == 0  # another connection; no SMB2 header, no session
    tagged = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445)), vlan=20))
    raw = _key(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445)), linktype=101)
    assert tagged[0] == raw[0] == out[0]


def test_other_traffic_of_two_hosts_is_one_key():
    rpc = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 135))))
    dyn = _key(_ether(_ipv4("10.0.0.2", "10.0.0.1", 6, _tcp(49668, 50001))))
    udp = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 17, bytes(8))))
    assert rpc[0] == dyn[0] == udp[0] and rpc[0][:1] == b"H"
    assert _key(b"\xff" * 60)[0] == _key(bytes(14), linktype=147)[0] == b"O"  # no address read: one group


def test_fragments_follow_their_first_and_icmp_errors_the_connection_they_quote():
    from analyzer.capture.connection_keys import Classifier as _Classifier
    c = _Classifier()
    first = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445), ident=99, more=True)), classifier=c)
    rest = _key(_ether(_ipv4("10.0.0.1", "10.0.0.2", 6, bytes(40), ident=99, frag=185)), classifier=c)
    assert rest[0] == first[0] and first[0][:1] == b"T"
    quoted = _ipv4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445))[:28]
    icmp = _key(_ether(_ipv4("10.9.9.9", "10.0.0.1", 1, bytes([3, 4]) + bytes(6) + quoted)), classifier=c)
    assert icmp[0] == first[0]


def test_cores_to_spare_split_each_of_several_captures(composite, tmp_path):
    """Two captures on 6 --jobs: two worker processes, each splitting its capture over 2 tsharks
    (its third core reconstructs)."""
    other = tmp_path / "again.pcapng"
    shutil.copy(composite, other)
    one = analyze("--jobs", "1", "--format", "json", *KEYS, composite, other)
    four = analyze("--jobs", "6", "--split-above", "0", "--format", "json", *KEYS, composite, other)
    assert one.returncode == four.returncode == 0 and four.stderr == one.stderr, four.stderr
    assert without_timing(json.loads(four.stdout)) == without_timing(json.loads(one.stdout))


def test_a_damaged_block_stops_the_split_run_where_one_tshark_stops(composite, tmp_path):
    """tshark stops reading at a damaged block; the split run must too, though the other shard's
    tshark reads on: its rows from that frame on are dropped (found by fuzzing the splitter)."""
    data = bytearray(composite.read_bytes())
    pos, packets = 0, 0
    while packets < 300:  # to the 300th packet block
        btype, blen = struct.unpack_from("<II", data, pos)
        packets += btype == 6
        pos += blen if packets < 300 else 0
    blen = struct.unpack_from("<I", data, pos + 4)[0]
    struct.pack_into("<I", data, pos + blen - 4, blen + 4)  # its trailing length no longer matches
    damaged = tmp_path / "damaged.pcapng"
    damaged.write_bytes(bytes(data))
    t = find_tshark()
    whole, sharded = Run(t, damaged), ShardedRun(t, damaged, jobs=2)
    rows = list(whole.rows())
    assert list(sharded.rows()) == rows and sharded.shards == 2 and len(rows) == 299
    assert (sharded.frames, sharded.truncated, sharded.errors) == (whole.frames, True, whole.errors)


@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_mutated_captures_split_as_they_read_whole(tmp_path, fmt):
    """A quick subset of tests/fuzz/split_fuzz.py: mutated bytes anywhere (headers included),
    some files cut short; split or read whole, the rows and how the read ended are the same."""
    res = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz" / "split_fuzz.py"), "--variants", "12",
                          "--format", fmt, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "12 variants (%s), 0 differed" % fmt in res.stdout, res.stdout + res.stderr


def test_one_core_is_kept_for_the_reconstruction():
    """It is as busy as a tshark (bench/scale.py): --jobs N runs N-1 tsharks here, so --jobs 2 on
    two cores does not split (tshark and this process already use both); a Dask cluster's
    workers are all tsharks."""
    from analyzer.capture.shards import Sharding

    assert [Sharding(j, 0).tsharks for j in (1, 2, 3, 16)] == [0, 1, 2, 15]
    assert not Sharding(2, 0).applies(SAMPLES[0]) and Sharding(3, 0).applies(SAMPLES[0])
    assert Sharding(2, 0, executor=object()).tsharks == 2
    assert not Sharding(3, 16).applies(SAMPLES[0])  # below --split-above


def test_two_cores_split_a_big_capture_in_two(tmp_path):
    """A tshark over a big capture slows as it grows (bench/scale.py): from TWO_CORES_SPLIT_MB, --jobs
    2 runs two tsharks all the same, unless the capture shares the cores with others."""
    from analyzer.capture.shards import TWO_CORES_SPLIT_MB, Sharding

    big = tmp_path / "big.pcapng"
    with open(big, "wb") as f:
        f.truncate(int(TWO_CORES_SPLIT_MB * 1e6))  # sparse: its size is what counts
    assert Sharding(2).tsharks_for(big) == 2 and Sharding(2).applies(big)
    assert Sharding(2).tsharks_for(SAMPLES[0]) == 0 and Sharding(2, 0).tsharks_for(SAMPLES[0]) == 1
    assert Sharding(2, alone=False).tsharks_for(big) == 1 and not Sharding(2, alone=False).applies(big)
    assert Sharding(2, 1000).tsharks_for(big) == 0  # --split-above still rules
    assert Sharding(3).tsharks_for(big) == 2 and Sharding(5).tsharks_for(big) == 4
