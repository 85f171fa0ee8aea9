"""Issue 11: a flood reads as one grouped finding with its true count. A trace where 1,501 of
NODE2's WRITE(10)s get RESERVATION CONFLICT (built with the samples' own builders) reports the
rule once, counting all 1,501 though only the first 1,000 are kept, and the open's summary
counts 1,501 reservation conflicts among its SCSI commands."""
import json
import subprocess
import sys

from samples.network import Capture
from samples.rsvd_cluster import K1, K2, RESERVATION_CONFLICT, SRB_ERROR, cdb, pr_out, two_nodes
from samples.rsvd_scenarios import pattern

CONFLICTS = 1501


def conflict_flood() -> bytes:
    cap = Capture()
    n1, f1, n2, f2 = two_nodes(cap)
    pr_out(n1, f1, "REGISTER", 0, K1)
    pr_out(n2, f2, "REGISTER", 0, K2)
    pr_out(n1, f1, "RESERVE", K1, 0)
    data = pattern(512, 3)
    for i in range(CONFLICTS):
        n2.scsi(cdb("WRITE_10", Flags=dict(RdWrProtect=0, DPO=False, FUA=False, FUA_NV=False), LogicalBlockAddress=i,
                    GroupNumber=0, TransferLength=1, Control=0), 10, data_in=False, length=512, out=data,
                file_id=f2, srb_status=SRB_ERROR, scsi_status=RESERVATION_CONFLICT, think_us=50)
    return cap.pcapng()


def test_a_flood_is_one_grouped_finding_with_its_true_count(tmp_path):
    pcap = tmp_path / "conflicts.pcapng"
    pcap.write_bytes(conflict_flood())
    text = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", str(pcap)],
                          capture_output=True, text=True, timeout=600).stdout
    assert "(rsvd.reservation_conflict, %d findings; " % CONFLICTS in text
    assert text.count("(rsvd.reservation_conflict,") == 1
    assert "answered with 0 check conditions, %d reservation conflicts; 0 unit attentions" % CONFLICTS in text
    assert "Findings: 0 errors, 0 warnings (rule violations); %d observations" % (CONFLICTS + 2) in text  # + 2 SCSI before disk info
    assert "%d SCSI commands: WRITE_10 %d, PERSISTENT_RESERVE_OUT 1" % (CONFLICTS + 1, CONFLICTS) in text
    doc = json.loads(subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                                     str(pcap)], capture_output=True, text=True, timeout=600).stdout)
    kept = [f for f in doc["findings"] if f["rule"] == "rsvd.reservation_conflict"]
    assert len(kept) == 1000 and doc["captures"][0]["findings_not_listed"] == {"rsvd.reservation_conflict": 501}
