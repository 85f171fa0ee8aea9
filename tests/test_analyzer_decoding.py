"""The analyzer decodes RSVD bytes with the definitions: its fast path (compiled views without
the SCSI data overlays) gives the same values as the full parse, message by message."""
import pytest

import samples
from analyzer.reconstruction import decoding
from decoded import messages, request_of
from dissectors.definitions import rsvd

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

SYNC = rsvd.FSCTL_SVHDX_SYNC_TUNNEL_REQUEST
OVERLAYS = ("Data", "DataBuffer")


def test_fast_path_equals_the_full_parse():
    compared = fast = 0
    for name in ("rsvd_shared_disk", "rsvd_cluster_events"):
        pcap = samples.path(name)
        for d in messages(pcap):
            if d.abbrev not in ("tunnel_request", "tunnel_response"):
                continue
            is_response = d.abbrev == "tunnel_response"
            req = request_of(pcap, d) if is_response else None
            request = rsvd.TUNNEL_REQUEST.parse(req.raw) if req else None
            full = (rsvd.TUNNEL_RESPONSE.parse(d.raw, request=request) if is_response
                    else rsvd.TUNNEL_REQUEST.parse(d.raw))
            got, err = decoding.rsvd_message(SYNC, is_response, d.raw, request=request)
            assert err is None
            fast += decoding._scsi_fast(is_response, d.raw, request) is not None
            assert got.Header == full.Header, d.frame
            for k, v in full.Payload.items():
                if k not in OVERLAYS and not k.startswith("_"):
                    assert got.Payload[k] == v, (name, d.frame, k)
            compared += 1
    assert compared >= 100 and fast >= 20


def test_bad_bytes_give_a_reason_not_an_exception():
    value, err = decoding.rsvd_message(SYNC, False, bytes.fromhex("0210000200000000"))
    # worded as the plugin's expert items: the structure, its section, the field, the bytes
    assert value is None and err == "SVHDX tunnel request (MS-RSVD 2.2.5.1).RequestId: 8 bytes needed, 0 present"
    value, err = decoding.open_context(b"\x01\x00")
    assert value is None and err == "SVHDX_OPEN_DEVICE_CONTEXT (MS-RSVD 2.2.5.2).Version: 4 bytes needed, 2 present"
    long_name = bytes.fromhex("01000000" "00" "000000") + bytes(16) + bytes(8) + (4000).to_bytes(2, "little") + b"N\0O\0"
    value, err = decoding.open_context(long_name)
    assert err.endswith(".InitiatorHostName: length 4000 exceeds the 4 bytes left"), err
    value, err = decoding.clusprep_stub("IClusterStorage2", "CprepDiskOnline", "request", b"\x05\x00")
    assert value is None and "CprepDiskOnline request stub does not parse" in err
