"""Every structure round-trips: parse(build(x)) == x, on values taken from the samples."""
import pytest

import samples
from decoded import messages
from dissectors import rsvd

PAYLOADS = {"tunnel_request": rsvd.REQUEST_PAYLOADS, "tunnel_response": rsvd.RESPONSE_PAYLOADS}
BY_ABBREV = {m.abbrev: m for m in rsvd.PROTOCOL.messages}


def instances():
    """(structure, parsed value) for every structure found in the well-formed sample."""
    out = []
    for d in messages(samples.path("rsvd_shared_disk")):
        msg = BY_ABBREV[d.abbrev]
        parsed = msg.parse(d.raw)
        out.append((msg, parsed))
        if d.abbrev in PAYLOADS:
            out.append((rsvd.SVHDX_TUNNEL_OPERATION_HEADER, parsed.Header))
            if parsed.Payload is not None and int(parsed.Header.Status.intvalue) == 0:
                out.append((PAYLOADS[d.abbrev][str(parsed.Header.OperationCode)], parsed.Payload))
    return out


def test_messages_rebuild_to_the_same_bytes():
    for d in messages(samples.path("rsvd_shared_disk")):
        msg = BY_ABBREV[d.abbrev]
        assert msg.build(msg.parse(d.raw)) == d.raw, (d.frame, d.abbrev)


def test_every_structure_round_trips():
    seen = set()
    for msg, value in instances():
        again = msg.parse(msg.build(value))
        assert again == value, msg.name
        assert again.get("_variant") == value.get("_variant"), msg.name
        seen.add(msg.name)
    assert seen >= {m.name for m in rsvd.STRUCTURES}


@pytest.mark.parametrize("size,variant", [(20, "seed"), (24, "windows")])
def test_file_info_layouts(size, variant):
    value = dict(ServerVersion=1, SectorSize=512, PhysicalSectorSize=4096, VirtualSize=1 << 40, _variant=variant)
    if variant == "windows":
        value["Reserved"] = 0
    raw = rsvd.SVHDX_TUNNEL_FILE_INFO_RESPONSE.build(value)
    assert len(raw) == size
    back = rsvd.SVHDX_TUNNEL_FILE_INFO_RESPONSE.parse(raw)
    assert back._variant == variant and back.VirtualSize == 1 << 40


def test_open_context_sizes():
    from samples.rsvd_scenarios import NODE1_ID, open_context_seed, open_context_windows
    assert len(open_context_windows("H", NODE1_ID, version=1, open_request_id=1)) == 168
    assert len(open_context_windows("H", NODE1_ID, version=2, open_request_id=1)) == 192
    assert len(open_context_seed("NODE1", NODE1_ID)) == 4 + 4 + 16 + 4 + 4 + 2 + 12
