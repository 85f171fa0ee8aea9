"""Truncated and hostile buffers become expert info, with the spec section; never a Lua error."""
import samples
from decoded import field_values, run

PCAP = samples.path("rsvd_malformed")


def test_expert_items():
    rows = field_values(PCAP, ["_ws.expert.message"], "-Y", "msrsvd")
    ours = [(int(r["frame.number"]), m) for r in rows for m in r["_ws.expert.message"] if "(MS-RSVD" in m]
    assert ours == [
        (10, "SVHDX_OPEN_DEVICE_CONTEXT (MS-RSVD 2.2.5.2).InitiatorHostName: length 4000 exceeds the 12 bytes left"),
        (12, "SVHDX_TUNNEL_OPERATION_HEADER (MS-RSVD 2.2.5.1): 16 bytes needed, 10 present"),
        (13, "SVHDX_TUNNEL_FILE_INFO_RESPONSE (MS-RSVD 2.2.5.4): 20 bytes needed, 12 present"),
        (14, "SVHDX_TUNNEL_SCSI_REQUEST (MS-RSVD 2.2.5.11): 36 bytes needed, 7 present"),
        # A success status promises a payload (3.2.5.5.5); a bare header is short.
        (15, "SVHDX_TUNNEL_SCSI_RESPONSE (MS-RSVD 2.2.5.12): 36 bytes needed, 0 present"),
        (17, "SVHDX_TUNNEL_SRB_STATUS_RESPONSE (MS-RSVD 2.2.5.8).SenseDataEx: length 240 exceeds the 18 bytes left"),
    ]


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
