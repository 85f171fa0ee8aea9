"""Issue 11: a flood reads as one grouped finding with its true count. A trace where 1,501 of
NODE2's WRITE(10)s get RESERVATION CONFLICT (built with the samples' own builders) reports the
rule once, counting all 1,501 though only the first 1,000 are kept, and the open's summary
counts 1,501 reservation conflicts among its SCSI commands."""
import json
import subprocess
import sys

import pytest

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
    assert "%d failed I/Os: %d reservation conflicts (see I/O errors)" % (CONFLICTS, CONFLICTS) in text
    # the disk's story: the flood is one line with its count
    assert "WRITE(10) refused: reservation conflict (held by key 0x4e4f444531000001 (NODE1)); %d times, to " % CONFLICTS \
        in text
    # the I/O errors: one group, its true count, a few examples
    assert "    RESERVATION CONFLICT: %d times, " % CONFLICTS in text and "      ... and %d more" % (CONFLICTS - 3) in text
    assert "Findings: 0 errors, 0 warnings (rule violations); %d observations" % (CONFLICTS + 2) in text  # + 2 SCSI before disk info
    assert "%d SCSI commands (WRITE(10) %d, PERSISTENT RESERVE OUT 1)" % (CONFLICTS + 1, CONFLICTS) in text
    doc = json.loads(subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                                     str(pcap)], capture_output=True, text=True, timeout=600).stdout)
    kept = [f for f in doc["findings"] if f["rule"] == "rsvd.reservation_conflict"]
    assert len(kept) == 1000 and doc["captures"][0]["findings_not_listed"] == {"rsvd.reservation_conflict": 501}
    assert doc["captures"][0]["io_errors"] == CONFLICTS and [g["count"] for g in doc["io_errors"]] == [CONFLICTS]


def test_the_frame_index_keeps_old_frames_on_disk_and_reads_them_back():
    """analyzer.pipeline.FrameIndex holds the recent frames in memory and the older ones in a
    file (the analyzer's memory stays flat whatever the capture's size): every frame reads back."""
    import random

    from analyzer.pipeline import FrameIndex

    index, ref, n, rng = FrameIndex(), {}, 0, random.Random(3)
    index.KEPT = 100
    for _ in range(5000):
        n += rng.randint(1, 5)
        ref[n] = (rng.random() * 1000, rng.choice([None, 1, 7, 12345]))
        index.add(n, *ref[n])
    assert index.base > 10 * index.KEPT and len(index.times) <= 2 * index.KEPT + 5
    for k in list(ref)[:50] + list(ref)[-50:] + rng.sample(list(ref), 300):
        assert (index.time(k), index.stream(k)) == ref[k], k
    gap = next(k for k in range(1, n) if k not in ref)
    assert [index.time(x) for x in (gap, 0, -1, n + 5)] == [None] * 4 and index.stream(gap) is None
    index.close()


@pytest.mark.parametrize("kept", [7, 100, 1 << 20])
def test_response_time_percentiles_are_exact_past_what_memory_keeps(kept):
    """analyzer.reconstruction.response_times keeps KEPT values in memory and the rest in a file; count, min,
    p50, p99 and max equal the nearest-rank ones of all values sorted, whatever the spread."""
    import random

    from analyzer.reconstruction.response_times import ResponseTimes
    from analyzer.reconstruction.rsvd_sessions import percentile

    rng = random.Random(5)
    cases = {"uniform": [rng.random() * 100 for _ in range(5000)],
             "lognormal": [rng.lognormvariate(0, 2) for _ in range(5000)],
             "constant": [0.25] * 5000, "two values": [1.0] * 4000 + [2.0] * 1000,
             "many equal": [round(rng.random(), 1) for _ in range(5000)], "tiny": [0.001, 0.002], "one": [3.5],
             "spread": [1e-9] * 10 + [1e9] * 10 + [rng.random() for _ in range(3000)]}
    for name, values in cases.items():
        rng.shuffle(values)
        times = ResponseTimes(kept=kept)
        for v in values:
            times.append(v)
        s = sorted(values)
        assert times.summary() == dict(count=len(s), min=s[0], p50=percentile(s, 50), p99=percentile(s, 99),
                                       max=s[-1]), name
        times.close()
