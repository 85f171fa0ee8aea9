"""SMB2 transport cases: compounds, async tunnel requests, reassembly, both directions."""
import pytest

import samples
from decoded import field_values, messages

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

PCAP = samples.path("rsvd_shared_disk")
FIELDS = ["tcp.stream", "smb2.nt_status", "smb2.flags.async", "smb2.ioctl.function",
          "msrsvd.header.request_id", "msrsvd.scsi_response.data_transfer_length", "msrsvd.scsi_response.data_buffer"]


def rows():
    return {int(r["frame.number"]): r for r in field_values(PCAP, FIELDS)}


def test_compound_of_two_tunnel_operations_decodes_both():
    both = [r for r in rows().values() if len(r["msrsvd.header.request_id"]) == 2]
    assert [[int(x, 16) for x in r["msrsvd.header.request_id"]] for r in both] == [[1000, 1001], [1000, 1001]]


def test_async_tunnel_links_past_the_pending_interim():
    r = rows()
    pending = [f for f, x in r.items() if x["smb2.nt_status"] == ["0x00000103"]]
    assert len(pending) == 1 and r[pending[0]]["msrsvd.header.request_id"] == []  # the interim has no buffer
    final = [f for f, x in r.items() if x["smb2.flags.async"] == ["1"] and x["msrsvd.header.request_id"]]
    assert len(final) == 1 and final[0] > pending[0]
    assert r[final[0]]["smb2.ioctl.function"] == ["0x00090364"]
    assert int(r[final[0]]["msrsvd.header.request_id"][0], 16) == 1005
    assert r[final[0]]["msrsvd.scsi_response.data_transfer_length"] == ["65536"]


def test_reassembled_64k_read_is_decoded_whole():
    big = [d for d in messages(PCAP) if len(d.raw) > 65536]
    assert len(big) == 2  # NODE1's READ(10) and NODE2's async READ(10), both answered with 64 KiB
    for d in big:
        data = d.fields["msrsvd.scsi_response.data_buffer"][0]
        assert len(bytes.fromhex(data.replace(":", ""))) == 65536


def test_two_initiators_share_one_disk():
    names = {}
    for d in messages(PCAP):
        if "msrsvd.open_device_context.initiator_host_name" in d.fields:
            names.setdefault(d.frame, d.fields["msrsvd.open_device_context.initiator_host_name"][0])
    streams = {int(r["tcp.stream"][0]) for f, r in rows().items() if f in names}
    assert set(names.values()) == {"NODE1", "NODE2.cluster.example", "NODE2"}
    assert streams == {0, 1}
