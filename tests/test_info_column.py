"""The Info column (issue 24): what Wireshark's users read in the packet list, as Wireshark's own
SCSI dissector writes it: the command with its LBA and length, the status and the sense; statuses,
HRESULTs and Win32 errors by name; the disk a ClusPrep request names. Declared in the definitions
(Summary details, Protocol.info_fields), rendered by the templates, read here through real tshark."""
import re

import pytest

import samples
from decoded import run

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py


def info(name, *frames):
    """Frame -> the packet list line's text after the protocol and length (two-pass)."""
    res = run(samples.path(name), "-2", "-Y", "frame.number in {%s}" % ",".join(map(str, frames)),
              "--disable-protocol", "rsvd")
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\d+)\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\d+\s+(.*)$", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def test_rsvd_shared_disk():
    lines = info("rsvd_shared_disk", 26, 72, 88, 100, 101, 102, 182, 184, 186)
    assert lines[26].endswith("[RSVD_TUNNEL_SCSI_OPERATION Request, SCSI: READ(10) LBA: 0x00000800 Len: 128]")
    assert lines[72].endswith("[RSVD_TUNNEL_SCSI_OPERATION Response, SCSI: READ(10) LBA: 0x00000800 Len: 128, GOOD]")
    assert lines[88].endswith("[RSVD_TUNNEL_SCSI_OPERATION Request, SCSI: PERSISTENT RESERVE OUT REGISTER]")
    # SMB2 keeps its "Error: Unknown (0xC05C0001)"; ours names the status and its key
    assert lines[100].endswith("Error: Unknown (0xC05C0001) [STATUS_SVHDX_ERROR_STORED | 1 on WRITE]")
    assert lines[184].endswith("Error: Unknown (0xC05C0001) [STATUS_SVHDX_ERROR_STORED | 1 on READ]")
    assert lines[101].endswith("[RSVD_TUNNEL_SRB_STATUS_OPERATION Request, StatusKey 1]")
    assert lines[102].endswith("[RSVD_TUNNEL_SRB_STATUS_OPERATION Response, StatusKey 1, CHECK CONDITION, "
                               "MEDIUM ERROR: WRITE ERROR]")
    assert lines[182].endswith("[RSVD_TUNNEL_SCSI_OPERATION Response, SCSI: WRITE(10) LBA: 0x00003000 Len: 8, "
                               "STATUS_SVHDX_RESERVATION_CONFLICT]")
    assert lines[186].endswith("CHECK CONDITION, UNIT ATTENTION: RESERVATIONS PREEMPTED]")


def test_rsvd_stored_error_in_a_tunnel_header_and_64_bit_lbas():
    lines = info("rsvd_multichannel", 32)
    assert lines[32].endswith("SCSI: WRITE(10) LBA: 0x00004000 Len: 8, STATUS_SVHDX_ERROR_STORED | 2]")
    lines = info("rsvd_cluster_events", *range(1, 129))
    assert any(v.endswith("SCSI: READ(16) LBA: 0x200000000 Len: 8, GOOD]") for v in lines.values())


def test_clusprep_names_results_and_disks():
    lines = info("clusprep_storage", 10, 12, 71, 72, 74)
    assert lines[10] == "IClusterStorage2 CprepDiskGetProps request, disk 2"
    assert lines[12] == "IClusterStorage2 CprepDiskAttach request, disk {6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30}"
    assert lines[71] == "IClusterStorage2 CprepDiskGetProps request, disk 0x5A3C9E71"  # by signature
    assert lines[72] == "IClusterStorage2 CprepDiskGetProps response ERROR_FILE_NOT_FOUND"
    assert lines[74] == "IClusterStorage2 Opnum8NotUsedOnWire fault nca_s_op_rng_error"
