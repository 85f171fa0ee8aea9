"""The reservations table (analyzer.reconstruction.reservations) against what the plugins decode from the same
frames (tshark fields msrsvd.scsi.pr.*, clusprep.*key*) and the keys the sample builders wrote."""
import pandas as pd
import pytest

import analyzer
import samples
from analyzer.reconstruction.tables import COLUMNS
from decoded import TSHARK, field_values
from samples import rsvd_cluster

pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")

PR = "msrsvd.scsi.pr."
PR_FIELDS = [PR + "reservation_key", PR + "service_action_reservation_key", PR + "type", PR + "scope",
             "msrsvd.scsi.pr_out.service_action", "msrsvd.scsi.pr_in.service_action", PR + "holder.r_holder",
             "msrsvd.scsi_response.scsi_status", "msrsvd.srb_status_response.scsi_status", "msrsvd.header.status",
             "msrsvd.scsi.sense.asc_ascq", "smb2.nt_status"]
PR_OUT = {0: "REGISTER", 1: "RESERVE", 2: "RELEASE", 3: "CLEAR", 4: "PREEMPT", 5: "PREEMPT_AND_ABORT",
          6: "REGISTER_AND_IGNORE_EXISTING_KEY", 7: "REGISTER_AND_MOVE"}
PR_IN = {0: "READ_KEYS", 1: "READ_RESERVATION", 2: "REPORT_CAPABILITIES", 3: "READ_FULL_STATUS"}
TYPES = {1: "WRITE_EXCLUSIVE", 3: "EXCLUSIVE_ACCESS", 5: "WRITE_EXCLUSIVE_REGISTRANTS_ONLY"}
PR_UA = {0x2A03: "RESERVATIONS PREEMPTED", 0x2A04: "RESERVATIONS RELEASED", 0x2A05: "REGISTRATIONS PREEMPTED"}
RESERVATION_CONFLICT = 0x18
SVHDX_UA = {0xC05CFF03: "RESERVATIONS PREEMPTED", 0xC05CFF04: "RESERVATIONS RELEASED",  # STATUS_SVHDX_UNIT_ATTENTION_*
            0xC05CFF05: "REGISTRATIONS PREEMPTED"}
SVHDX_CONFLICT = 0xC05CFF07  # STATUS_SVHDX_RESERVATION_CONFLICT (MS-RSVD 2.2.2)


def _key(text):
    return "0x%016x" % int(text, 0)


@pytest.fixture(scope="module", params=["rsvd_cluster_events", "rsvd_shared_disk", "rsvd_guest_validation",
                                        "rsvd_near_misses"])
def rsvd(request):
    path = samples.path(request.param)
    return analyzer.load(path).reservations, {int(r["frame.number"]): r for r in field_values(path, PR_FIELDS)}


def test_one_row_per_decoded_pr_command(rsvd):
    """Every PR OUT/IN request the plugin decodes is one row, with its keys, type and scope as decoded."""
    table, frames = rsvd
    pr_frames = {n for n, r in frames.items()
                 if r["msrsvd.scsi.pr_out.service_action"] or r["msrsvd.scsi.pr_in.service_action"]}
    rows = table[table.source == "rsvd"].set_index("frame")
    assert pr_frames and pr_frames <= set(rows.index)
    for n in pr_frames:
        row, r = rows.loc[n], frames[n]
        if r["msrsvd.scsi.pr_out.service_action"]:
            assert row.command == PR_OUT[int(r["msrsvd.scsi.pr_out.service_action"][0], 0)]
            assert row.key == _key(r[PR + "reservation_key"][0])
            assert row.sa_key == _key(r[PR + "service_action_reservation_key"][0])
            t = int(r[PR + "type"][0], 0)
            assert row.type == TYPES.get(t, str(t))
            assert row.scope == "LU_SCOPE" and int(r[PR + "scope"][0], 0) == 0
        else:
            assert row.command == PR_IN[int(r["msrsvd.scsi.pr_in.service_action"][0], 0)]
            answer = frames[int(row.response_frame)]
            keys = [_key(k) for k in answer[PR + "reservation_key"]]
            if row.command == "READ_KEYS":
                assert row.registered.split() == keys
            elif row.command == "READ_RESERVATION":
                assert [row.holder] == keys
            elif row.command == "READ_FULL_STATUS":
                assert row.registered.split() == keys
                assert row.holder == [k for k, h in zip(keys, answer[PR + "holder.r_holder"]) if h in ("1", True)][0]
        status = frames[int(row.response_frame)]["msrsvd.scsi_response.scsi_status"]
        assert row.result == {"0x00": "GOOD", "0x18": "RESERVATION_CONFLICT", "0x02": "CHECK_CONDITION"}[status[0]]


def test_conflicts_and_unit_attentions_as_decoded(rsvd):
    """Every answer decoded as a reservation conflict (SCSI status RESERVATION CONFLICT in a SCSI or
    SRB_STATUS answer, or STATUS_SVHDX_RESERVATION_CONFLICT in the tunnel's header or, for a READ or
    WRITE, in Wireshark's smb2.nt_status), and every PR UNIT
    ATTENTION, is a row; no other answer is."""
    table, frames = rsvd
    conflicts = {n for n, r in frames.items()
                 if RESERVATION_CONFLICT in [int(s, 0) for s in r["msrsvd.scsi_response.scsi_status"]
                                             + r["msrsvd.srb_status_response.scsi_status"]]
                 or SVHDX_CONFLICT in [int(s, 0) for s in r["msrsvd.header.status"] + r["smb2.nt_status"]]}
    attentions = {n: PR_UA[int(a, 0)] for n, r in frames.items()
                  for a in r["msrsvd.scsi.sense.asc_ascq"] if int(a, 0) in PR_UA}
    attentions.update({n: SVHDX_UA[int(a, 0)] for n, r in frames.items()
                       for a in r["msrsvd.header.status"] if int(a, 0) in SVHDX_UA})
    rows = table[table.source == "rsvd"]
    refused = rows[rows.result.isin(["RESERVATION_CONFLICT", "STATUS_SVHDX_RESERVATION_CONFLICT"])]
    assert set(refused.response_frame) == conflicts
    assert set(rows[rows.event == "conflict"].response_frame) <= conflicts
    ua = rows[rows.event == "unit_attention"]
    assert dict(zip(ua.response_frame, ua.sense.str.replace("UNIT_ATTENTION: ", ""))) == attentions
    assert conflicts or attentions  # each of these samples has one at least


def test_shared_disk_stored_unit_attention():
    """rsvd_shared_disk: a WRITE refused by the tunnel's own conflict status, and a READ whose stored
    error (fetched with SRB_STATUS) is UNIT ATTENTION RESERVATIONS PREEMPTED."""
    t = analyzer.load(samples.path("rsvd_shared_disk")).reservations
    c = t[t.event == "conflict"].iloc[0]
    assert (c.command, c.result) == ("WRITE_10", "STATUS_SVHDX_RESERVATION_CONFLICT")
    ua = t[t.event == "unit_attention"].iloc[0]
    assert ua.command == "SMB2_READ" and ua.detail.startswith("stored error of frame")
    assert ua.sense == "UNIT_ATTENTION: RESERVATIONS PREEMPTED"


def test_cluster_story():
    """rsvd_cluster_events as its builder wrote it: NODE1 and NODE2 register K1 and K2, NODE1 reserves,
    NODE2's WRITE is refused, NODE2 preempts K1, NODE1 is told, only K2 is left, K2 moves to K2 + 1."""
    t = analyzer.load(samples.path("rsvd_cluster_events")).reservations
    k1, k2 = "0x%016x" % rsvd_cluster.K1, "0x%016x" % rsvd_cluster.K2
    story = [(r.host, r.event, r.key, r.sa_key, r.result) for r in t.itertuples()]
    assert story[:3] == [("NODE1", "register", "0x0000000000000000", k1, "GOOD"),
                         ("NODE2", "register", "0x0000000000000000", k2, "GOOD"),
                         ("NODE1", "reserve", k1, "0x0000000000000000", "GOOD")]
    assert ("NODE2", "conflict", None, None, "RESERVATION_CONFLICT") in [
        tuple(None if pd.isna(v) else v for v in s) for s in story]
    assert ("NODE2", "preempt", k2, k1, "GOOD") in story
    ua = t[t.event == "unit_attention"]
    assert list(ua.host) == ["NODE1", "NODE1"]
    assert list(ua.sense) == ["UNIT_ATTENTION: RESERVATIONS PREEMPTED", "UNIT_ATTENTION: REGISTRATIONS PREEMPTED"]
    assert list(ua.command) == ["READ_10", "RSVD_TUNNEL_GET_FILE_INFO_OPERATION"]
    assert list(t[t.event == "read_keys"].registered) == [k2]
    assert list(t[t.event == "read_full_status"].holder) == [k2]
    move = t[t.event == "move"].iloc[0]
    assert (move.key, move.sa_key, move.detail) == (k2, "0x%016x" % (rsvd_cluster.K2 + 1), "UNREG APTPL")
    assert set(t.disk) == {"\\\\sofs\\vhdx\\disk.vhdx:SharedVirtualDisk"}
    assert list(t.columns) == COLUMNS["reservations"]


# method -> (its key field, its service action key field), as the plugin names them (docs/fields.md)
CLUSPREP_FIELDS = {
    "CprepDiskPRRegister3": ("clusprep.cprep_disk_pr_register3.old_pr_key", "clusprep.cprep_disk_pr_register3.new_pr_key"),
    "CprepDiskPRPreempt3": ("clusprep.cprep_disk_pr_preempt3.new_key", "clusprep.cprep_disk_pr_preempt3.owner_key"),
    "CprepDiskFindKey3": ("clusprep.cprep_disk_find_key3.key", None),
    "CprepDiskPRReserve3": ("clusprep.cprep_disk_pr_reserve3.key", None),
    "CprepDiskIsPRPresent3": ("clusprep.cprep_disk_is_pr_present3.key", None),
    "CprepDiskPRRelease3": ("clusprep.cprep_disk_pr_release3.key", None),
    "CprepDiskPRClear3": ("clusprep.cprep_disk_pr_clear3.key", None),
}
# the keys csvp_scenarios.storage_run passes (k1, k2): Register3 k1, Preempt3 OwnerKey=k1 NewKey=k2
K1, K2 = "0x0000b10c00000001", "0x0000b10c00000002"


def test_clusprep_pr_calls_as_decoded():
    """Every PR call of clusprep_storage is a row, with the keys the plugin decodes from its stub."""
    path = samples.path("clusprep_storage")
    cap = analyzer.load(path)
    t, calls = cap.reservations, cap.clusprep_calls
    pr = calls[calls.method.str.contains("PR|FindKey", regex=True)]
    assert list(t.frame) == list(pr.request_frame) and list(t.command) == list(pr.method)
    assert set(t.source) == {"clusprep"} and set(t.host) == {"10.0.0.11"}
    assert list(t.result) == list(pr.result) and list(t.disk) == list(pr.disk)
    fields = sorted({f for pair in CLUSPREP_FIELDS.values() for f in pair if f})
    frames = {int(r["frame.number"]): r for r in field_values(path, fields)}
    for row in t.itertuples():
        if row.command not in CLUSPREP_FIELDS:
            assert pd.isna(row.key) and pd.isna(row.sa_key)  # IClusterStorage2's PR calls carry no key
            continue
        k, sa = CLUSPREP_FIELDS[row.command]
        assert row.key == _key(frames[row.frame][k][0])
        assert (row.sa_key if sa else None) == (_key(frames[row.frame][sa][0]) if sa else None)
    assert t[t.command == "CprepDiskPRRegister3"].sa_key.tolist() == [K1]
    assert t[t.command == "CprepDiskPRPreempt3"][["key", "sa_key"]].values.tolist() == [[K2, K1]]
    assert t[t.command == "CprepDiskPRArbitrate"].event.tolist() == ["arbitrate"]
    assert t[t.command == "CprepDiskFindKey3"].detail.tolist() == ["pbFound=1"]


def test_written_by_output(tmp_path):
    """analyze --output writes the table as CSV, JSON Lines and typed Parquet, the same rows."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    path = samples.path("rsvd_cluster_events")
    subprocess.run([sys.executable, "-m", "analyzer", str(path), "--output", str(tmp_path)],  # 1: it has findings
                   capture_output=True)
    written = pq.read_table(tmp_path / "reservations.parquet").to_pandas()
    table = analyzer.load(path).reservations
    assert list(written.columns) == COLUMNS["reservations"]
    assert written.frame.tolist() == table.frame.tolist() and written.event.tolist() == table.event.tolist()
    assert len((tmp_path / "reservations.jsonl").read_text().splitlines()) == len(table)


def test_the_validation_run_and_the_guests_on_one_disk():
    """rsvd_guest_validation, its sealed ClusPrep calls decrypted: each PR call validation makes on a node
    (keys decoded by the plugin from the decrypted stub) is followed by that node's own PR command on the
    shared VHDX with the same key (decoded from the tunnelled SCSI), and the two disks, one known by its
    CPREP_DISKID and one by its path, are told as one story."""
    path = samples.path("rsvd_guest_validation")
    keys = samples.KEYS["rsvd_guest_validation"]
    cap = analyzer.load(path, **keys)
    [story] = cap.result.disks
    assert story["disk"] == "\\\\sofs\\vhdx\\disk.vhdx:SharedVirtualDisk"
    assert story["also"] == ["GUID 6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30"] and story["sources"] == ["clusprep", "rsvd"]
    fields = sorted({f for pair in CLUSPREP_FIELDS.values() for f in pair if f} | set(PR_FIELDS))
    frames = {int(r["frame.number"]): r for r in field_values(path, fields, "-o", "ntlmssp.nt_password:%s"
                                                              % keys["nt_password"])}
    events = story["events"]
    calls = [i for i, e in enumerate(events) if e["source"] == "clusprep"]
    assert len(calls) == 7
    for i in calls:
        call, done = events[i], events[i + 1]
        k, sa = CLUSPREP_FIELDS[call["command"]]
        assert call["key"] == _key(frames[call["frame"]][k][0])
        assert done["source"] == "rsvd" and done["event"] == call["event"] and call["host"].startswith(done["host"])
        decoded = frames[done["frame"]]
        scsi_key = {"register": PR + "service_action_reservation_key"}.get(done["event"], PR + "reservation_key")
        wanted = call["sa_key"] if done["event"] == "register" else call["key"]
        assert _key(decoded[scsi_key][0]) == wanted, done["frame"]
    assert story["holder"] is None  # cleared at the end
    # without the password the calls stay sealed: the guests' story alone, nothing guessed
    sealed = analyzer.load(path).result.disks
    assert [d["sources"] for d in sealed] == [["rsvd"]]
