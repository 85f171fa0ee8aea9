"""What the dissector means, not just what it shows: names, links, SCSI data, experts.

Every value here was put on the wire by samples/rsvd_cluster.py or rsvd_scenarios.py
and is read back through real tshark with the generated plugin.
"""
import functools
import re

import pytest

import samples
import decoded
from decoded import field_values, run

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

CLUSTER = samples.path("rsvd_cluster_events")
SHARED = samples.path("rsvd_shared_disk")
K1, K2 = 0x4E4F444531000001, 0x4E4F444532000002
PI_ERROR = 0x00800000  # Wireshark's expert severity "Error"


def ours(pcap, *extra):
    """(frame, expert text) for our expert items, which all cite a spec section."""
    rows = field_values(pcap, ["_ws.expert.message"], *extra, "-Y", "msrsvd")
    return [(int(r["frame.number"]), m) for r in rows for m in r["_ws.expert.message"]
            if re.search(r"\[(MS-RSVD|SPC-3|SAM-3) [^]]+\]$", m)]


@functools.lru_cache(maxsize=None)
def _verbose_frames(pcap, tshark):
    """One two-pass `-O msrsvd` run of the capture, split into frames."""
    res = run(pcap, "-2", "-O", "msrsvd")
    assert res.returncode == 0, res.stderr
    parts = re.split(r"^Frame (\d+): ", res.stdout, flags=re.M)
    return {int(n): text for n, text in zip(parts[1::2], parts[2::2])}


def verbose(pcap, frame):
    text = _verbose_frames(pcap, decoded.CURRENT)[frame]
    return text[text.index("MS-RSVD Remote Shared Virtual Disk"):]


def test_cluster_experts_in_two_pass_mode():
    assert ours(CLUSTER, "-2") == [
        (42, "SCSI status RESERVATION_CONFLICT: another initiator holds the reservation [SPC-3 5.6.1]"),
        (46, "Additional sense: RESERVATIONS PREEMPTED [SPC-3 4.5.6]"),  # one event, one item: the most specific
        (48, "STATUS_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED: the disk reports a unit attention [MS-RSVD 2.2.3]"),
        (92, "Additional sense: INVALID FIELD IN CDB [SPC-3 4.5.6]"),
        (108, "StatusKey 1 is never retrieved with RSVD_TUNNEL_SRB_STATUS_OPERATION before the CLOSE in frame 119 "
              "[MS-RSVD 3.1.5.3, 3.1.5.4, 3.2.5.5.3]"),
        (109, "No error was stored under StatusKey 9 on this open in the capture [MS-RSVD 3.1.5.3, 3.1.5.4, 3.2.5.5.3]"),
        (110, "STATUS_SVHDX_ERROR_NOT_AVAILABLE: no sense data is stored under the StatusKey [MS-RSVD 3.2.5.5.3]"),
        (111, "SVHDX_TUNNEL_SCSI_REQUEST Length is 40; it must be 36 [MS-RSVD 3.2.5.5.5]"),
        (111, "SVHDX_TUNNEL_SCSI_REQUEST CdbLength is 20; at most 16 is allowed [MS-RSVD 2.2.5.11, 3.2.5.5.5]"),
        (111, "SVHDX_TUNNEL_SCSI_REQUEST SenseInfoExLength is 32; at most 20 is allowed [MS-RSVD 2.2.5.11]"),
        (114, "The same id is still awaiting its response to frame 113 [MS-RSVD 3.1.4.1]"),
        (117, 'CREATE of "other.vhdx" carries the open context, but the name does not end in :SharedVirtualDisk '
              "[MS-RSVD 3.1.4.2, 3.2.5.1]"),
        (128, "No response to this request in the capture [MS-RSVD 3.1.4.1]"),
    ]


def test_findings_that_need_the_whole_capture_wait_for_two_pass():
    one = [m for _, m in ours(CLUSTER)]
    assert not any(m.startswith("No response") or "never retrieved" in m for m in one)
    assert any(m.startswith("The same id") for m in one)  # known as soon as the second request arrives


def test_shared_disk_experts():
    """The disk's own errors and no error of the protocol: frame 12's support request carries the bare
    header 2.2.5.15 asks for, whose OperationCode no section defines (issue 23: no Error expert item
    on a conforming message)."""
    assert ours(SHARED, "-2") == [
        (102, "Sense key MEDIUM_ERROR [SPC-3 4.5.6]"),  # WRITE ERROR is no ASC of the rule: the sense key's
        (182, "STATUS_SVHDX_RESERVATION_CONFLICT: a persistent reservation held by another initiator denied the operation "
              "[MS-RSVD 3.2.5.4]"),
        (186, "Additional sense: RESERVATIONS PREEMPTED [SPC-3 4.5.6]"),
    ]


@pytest.mark.parametrize("name", ["rsvd_shared_disk", "rsvd_multichannel", "rsvd_near_misses", "clusprep_storage",
                                  "clusprep_network", "clusprep_setup", "clusprep_storage_near_misses"])
def test_a_conforming_sample_raises_no_error_of_ours(name):
    """Wireshark's Error severity from our plugins only where a sample breaks a rule on purpose (the
    *_violations and *_malformed samples); these follow the specs (or Windows, where it differs)."""
    rows = field_values(samples.path(name), ["_ws.expert.severity", "_ws.expert.message"], "-2", "-Y",
                        "msrsvd || clusprep")
    seen = [(r["frame.number"], int(sev), m) for r in rows
            for sev, m in zip(r["_ws.expert.severity"], r["_ws.expert.message"])
            if re.search(r"\[(MS-RSVD|MS-CSVP|MS-RPCE|SPC-3|SAM-3)[^]]*\]$", m)]  # ours all cite a spec
    assert seen or name.startswith("clusprep")  # the RSVD ones do have experts of ours: warnings, notes
    assert [(f, m) for f, sev, m in seen if sev >= PI_ERROR] == []


def test_request_response_links_and_times():
    rows = {int(r["frame.number"]): r for r in field_values(
        CLUSTER, ["msrsvd.request_in", "msrsvd.response_in", "msrsvd.time"], "-2", "-Y", "msrsvd")}
    assert rows[31]["msrsvd.response_in"] == ["32"] and rows[32]["msrsvd.request_in"] == ["31"]
    assert 0 < float(rows[32]["msrsvd.time"][0]) < 0.01
    # The async-style pair with a reused RequestId: each request gets its own answer.
    assert rows[113]["msrsvd.response_in"] == ["115"] and rows[114]["msrsvd.response_in"] == ["116"]
    assert rows[126]["msrsvd.response_in"] == ["127"] and rows[128]["msrsvd.response_in"] == []  # REGISTER AND MOVE, then the unanswered last
    # 64 KiB over many segments: the link lands on the frame that completes the reassembly.
    assert rows[73]["msrsvd.response_in"] == ["76"]


def test_stored_error_links():
    """The stored error links to the response that carries its sense data ("Retrieved in") and to the
    request that fetched it; that request and its response link back ("Error in")."""
    rows = {int(r["frame.number"]): r for r in field_values(
        SHARED, ["msrsvd.sense.status_key", "msrsvd.sense.retrieved_in", "msrsvd.sense.retrieval_request_in",
                 "msrsvd.sense.error_in", "msrsvd.open.name"],
        "-2", "-Y", "msrsvd.sense.status_key || msrsvd.sense.error_in")}
    assert {f: (r["msrsvd.sense.status_key"], r["msrsvd.sense.retrieved_in"], r["msrsvd.sense.retrieval_request_in"],
                r["msrsvd.sense.error_in"]) for f, r in rows.items()} == {
        100: (["1"], ["102"], ["101"], []), 101: ([], [], [], ["100"]), 102: ([], [], [], ["100"]),
        184: (["1"], ["186"], ["185"], []), 185: ([], [], [], ["184"]), 186: ([], [], [], ["184"]),
    }
    assert all(r["msrsvd.open.name"] == ["disk.vhdx:SharedVirtualDisk"] for r in rows.values())


def test_reservation_keys_are_filterable():
    frames = field_values(CLUSTER, [], "-Y", "msrsvd.scsi.pr.reservation_key == 0x%x" % K1)
    assert [int(r["frame.number"]) for r in frames] == [35, 38]
    holder = field_values(CLUSTER, ["msrsvd.scsi.pr.reservation_key"], "-Y", "msrsvd.scsi.pr.holder.r_holder == 1")
    assert [r["msrsvd.scsi.pr.reservation_key"] for r in holder] == [["0x%016x" % K2]]


def test_one_filter_name_per_scsi_value_whatever_the_cdb_size_or_sense_format():
    """Issue 15 item 4: the LBA and transfer length of READ(6) and READ(16), and the sense key,
    ASC and ASCQ of fixed and descriptor sense data, each in one field a Wireshark user would guess."""
    names = ["msrsvd.scsi.opcode", "msrsvd.scsi.lba", "msrsvd.scsi.transfer_length",
             "msrsvd.scsi.sense.response_code.code", "msrsvd.scsi.sense.key", "msrsvd.scsi.sense.asc",
             "msrsvd.scsi.sense.ascq", "msrsvd.scsi.sense.asc_ascq"]
    def rows(display_filter):
        return [{n: [int(v, 0) for v in r[n]] for n in names} for r in field_values(CLUSTER, names, "-Y", display_filter)]

    (read16,) = rows("msrsvd.scsi.opcode == 0x88")  # READ(16), past 2^32 blocks
    (read6,) = rows("msrsvd.scsi.opcode == 0x08")  # READ(6), its LBA 21 bits of a 3-byte field
    assert (read16["msrsvd.scsi.lba"], read16["msrsvd.scsi.transfer_length"]) == ([8589934592], [8])
    assert (read6["msrsvd.scsi.lba"], read6["msrsvd.scsi.transfer_length"]) == ([64], [1])
    (fixed,) = rows("msrsvd.scsi.sense.response_code.code == 0x70")  # the UNIT ATTENTION after a PREEMPT
    (descriptor,) = rows("msrsvd.scsi.sense.response_code.code == 0x72")  # a CDB the server refused
    assert [fixed[n] for n in names[4:]] == [[0x6], [0x2A], [0x03], [0x2A03]]  # RESERVATIONS PREEMPTED
    assert [descriptor[n] for n in names[4:]] == [[0x5], [0x24], [0x00], [0x2400]]  # INVALID FIELD IN CDB
    # one filter finds the unit attention whatever format carried it
    assert rows("msrsvd.scsi.sense.asc == 0x2a && msrsvd.scsi.sense.ascq == 3") == [fixed]


@pytest.mark.parametrize("frame,lines", [
    (31, ["Operation code: PERSISTENT_RESERVE_OUT (0x5f)", "PR OUT service action: REGISTER (0x00)",
          "Reservation type: WRITE_EXCLUSIVE_REGISTRANTS_ONLY (0x05)", "Service action reservation key: 0x%016x" % K1,
          "1 = APTPL: True"]),
    (38, ["PERSISTENT RESERVE IN READ RESERVATION data", "Reservation key: 0x%016x" % K1,
          "PrGeneration: 0x00000002"]),
    (42, ["ScsiStatus: RESERVATION_CONFLICT (0x18)", "Status: SRB_STATUS_ERROR (0x04)"]),
    (43, ["PR OUT service action: PREEMPT (0x04)", "Reservation key: 0x%016x" % K2]),
    (46, ["AutosenseValid: True", "Code: CURRENT_FIXED (0x70)", "Sense key: UNIT_ATTENTION (0x06)",
          "Additional sense code and qualifier: RESERVATIONS PREEMPTED (0x2a03)", "Additional sense code: 0x2a",
          "Additional sense code qualifier: 0x03"]),
    (50, ["READ FULL STATUS data", "R_HOLDER: True", "RelativeTargetPortIdentifier: 1"]),
    (52, ["PTPL_C: True", "PersistentReservationTypeMask: 0xea01"]),
    (62, ["ReturnedLogicalBlockAddress: 4294967295", "LogicalBlockLength: 512"]),
    (64, ["READ CAPACITY(16) data", "ReturnedLogicalBlockAddress: 134217727"]),
    (67, ["UnmapLogicalBlockAddress: 1048576", "NumberOfLogicalBlocks: 2048"]),
    (69, ["WRITE SAME(16)", ".... 1... = UNMAP: True", "NumberOfLogicalBlocks: 4096"]),
    (72, ["VPD page", "PageCode: 0x83"]),
    (73, ["READ(16)", "Logical block address: 8589934592", "Transfer length: 8"]),
    (83, ["READ(6)/WRITE(6)", "Logical block address: 64", "Transfer length: 1"]),
    (90, ["MODE SENSE(6) parameter header", "DPOFUA: True"]),
    (92, ["Code: CURRENT_DESCRIPTOR (0x72)", "Sense key: ILLEGAL_REQUEST (0x05)",
          "Additional sense code and qualifier: INVALID FIELD IN CDB (0x2400)", "Additional sense code: 0x24",
          "Additional sense code qualifier: 0x00"]),
    (94, ["SafeVirtualSize: 51539607552"]),
    (95, ["OperationType: SvhdxMetaOperationTypeResize (0x00000000)", "NewSize: 137438953472"]),
    (98, ["CurrentProgressValue: 50", "CompleteValue: 100"]),
    (100, ["SnapshotType: SvhdxSnapshotTypeVM (0x00000001)", "IsValidSnapshot: TRUE (0x00000001)"]),
    (103, ["RSVD_TUNNEL_CHANGE_TRACKING_START (0x02002009)", "BodyNotDecoded: 00000000000000000000000000000000"]),
])
def test_names_in_the_tree(frame, lines):
    text = verbose(CLUSTER, frame)
    for line in lines:
        assert line in text, (frame, line)


def test_two_pass_without_a_filter_still_links_responses():
    """tshark -2 with no display filter builds no tree in its first pass, so the plugin sees
    nothing there; the second pass must still link each response to its request."""
    rows = field_values(CLUSTER, ["msrsvd.request_in"], "-2")
    linked = {int(r["frame.number"]): r["msrsvd.request_in"] for r in rows if r["msrsvd.request_in"]}
    assert linked[32] == ["31"] and linked[115] == ["113"] and len(linked) >= 40


def test_preferences_switch_off_the_costly_layers():
    """-o msrsvd.scsi:FALSE keeps RSVD and drops SCSI; -o msrsvd.exchanges:FALSE drops the links."""
    fields = ["msrsvd.header.request_id", "msrsvd.scsi.opcode", "msrsvd.request_in"]
    full = field_values(CLUSTER, fields, "-Y", "msrsvd")
    lean = field_values(CLUSTER, fields, "-o", "msrsvd.scsi:FALSE", "-o", "msrsvd.exchanges:FALSE", "-Y", "msrsvd")
    ids = lambda rows: {r["frame.number"]: r["msrsvd.header.request_id"] for r in rows if r["msrsvd.header.request_id"]}
    assert ids(lean) == ids(full)
    assert any(r["msrsvd.scsi.opcode"] for r in full)
    assert any(r["msrsvd.request_in"] for r in full)
    assert not any(r["msrsvd.scsi.opcode"] or r["msrsvd.request_in"] for r in lean)
