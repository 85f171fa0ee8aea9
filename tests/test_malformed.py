"""Truncated and hostile buffers become expert info, with the spec section; never a Lua error."""
import re

import pytest

import samples
from decoded import field_values, run

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

PCAP = samples.path("rsvd_malformed")


def test_expert_items():
    rows = field_values(PCAP, ["_ws.expert.message"], "-2", "-Y", "msrsvd")
    ours = [(int(r["frame.number"]), m) for r in rows for m in r["_ws.expert.message"]
            if "(MS-RSVD" in m or re.search(r"\[(MS-RSVD|SPC-3|SAM-3) [^]]+\]$", m)]
    # a message's one warning is added once the message is decoded: where it lands among that
    # frame's other items depends on the version, so each frame's items are compared as a set
    assert sorted(ours) == sorted([
        (10, "SVHDX_OPEN_DEVICE_CONTEXT (MS-RSVD 2.2.5.2).InitiatorHostName: length 4000 exceeds the 12 bytes left"),
        (12, "SVHDX_TUNNEL_OPERATION_HEADER (MS-RSVD 2.2.5.1): 16 bytes needed, 10 present"),
        (13, "SVHDX_TUNNEL_FILE_INFO_RESPONSE (MS-RSVD 2.2.5.4): 20 bytes needed, 12 present"),
        (14, "SVHDX_TUNNEL_SCSI_REQUEST (MS-RSVD 2.2.5.11): 36 bytes needed, 7 present"),
        # A success status promises a payload (3.2.5.5.5); a bare header is short.
        (15, "SVHDX_TUNNEL_SCSI_RESPONSE (MS-RSVD 2.2.5.12): 36 bytes needed, 0 present"),
        (16, "No error was stored under StatusKey 3 on this open in the capture [MS-RSVD 3.1.5.3, 3.1.5.4, 3.2.5.5.3]"),
        # one event, one expert item: the ASC/ASCQ's (not also the sense key's and CHECK CONDITION's)
        (17, "Additional sense: INVALID FIELD IN CDB [SPC-3 4.5.6]"),
        (17, "SVHDX_TUNNEL_SRB_STATUS_RESPONSE (MS-RSVD 2.2.5.8).SenseDataEx: length 240 exceeds the 18 bytes left"),
        (18, "SVHDX_TUNNEL_OPERATION_HEADER OperationCode 0x2009999 is not defined by the specification "
             "[MS-RSVD 2.2.2, 3.2.5.5]"),
        (19, "SVHDX_TUNNEL_OPERATION_HEADER OperationCode 0x2009999 is not defined by the specification "
             "[MS-RSVD 2.2.2, 3.2.5.5]"),
        (19, "STATUS_SVHDX_VERSION_MISMATCH: the server does not know the OperationCode [MS-RSVD 3.2.5.5]"),
        (21, "STATUS_SVHDX_WRONG_FILE_TYPE: the file is not a shared virtual disk [MS-RSVD 2.2.3]"),
        (22, "SVHDX_OPEN_DEVICE_CONTEXT Version is 3; it must be 1 [MS-RSVD 3.2.5.1]"),
        (22, "SVHDX_OPEN_DEVICE_CONTEXT HasInitiatorId is 0x2; it must be one of FALSE (0x0), TRUE (0x1) "
             "[MS-RSVD 3.2.5.1]"),
        (22, "SVHDX_OPEN_DEVICE_CONTEXT OriginatorFlags is SVHDX_ORIGINATOR_VHDMP; it must be "
             "SVHDX_ORIGINATOR_PVHDPARSER (0x1) [MS-RSVD 2.2.5.2]"),
    ])


def test_partial_decode_still_shows_what_fits():
    rows = {int(r["frame.number"]): r for r in field_values(
        PCAP, ["msrsvd.header.operation_code", "msrsvd.file_info_response.sector_size",
               "msrsvd.scsi_request.cdb_length", "msrsvd.tunnel_request.body_not_decoded"])}
    assert rows[12]["msrsvd.header.operation_code"] == ["0x02001001"]  # 10 of 16 header bytes
    assert rows[13]["msrsvd.file_info_response.sector_size"] == ["0"]
    assert rows[14]["msrsvd.scsi_request.cdb_length"] == ["10"]
    assert rows[18]["msrsvd.tunnel_request.body_not_decoded"] == ["deadbeef"]  # unknown OperationCode


def test_info_column_names_the_operation_even_when_cut():
    res = run(PCAP, "-Y", "frame.number == 14")
    assert "[RSVD_TUNNEL_SCSI_OPERATION Request]" in res.stdout
