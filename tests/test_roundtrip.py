"""Every structure round-trips: parse(build(x)) == x, on values taken from the samples."""
import pytest

import samples
from decoded import messages
from dissectors.model import build_model
from dissectors.definitions import rsvd


from construct import Array, GreedyRange, Struct, Switch
from construct.core import Pass

from decoded import request_of
from dissectors import generate
from dissectors.model.introspect import unwrap
from dissectors.vocabulary.wire import IfEquals, Overlay, Present, Variants, When

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

MODEL = build_model(rsvd.PROTOCOL)
BY_ABBREV = {m.abbrev: m for m in rsvd.PROTOCOL.messages}
SAMPLES = [samples.path("rsvd_shared_disk"), samples.path("rsvd_cluster_events")]


def sub_messages(sc, value, ctx, params):
    """(message, value, params) for every spec structure inside a parsed value."""
    m = MODEL._by_struct.get(id(sc))
    if m is not None and value is not None:
        yield m, value, params
    if isinstance(sc, Variants):
        sc = next(v.subcon for v in sc.variants if v.name == value["_variant"])
    if isinstance(sc, Struct):
        for sub in sc.subcons:
            name, _, inner = unwrap(sub)
            if name is not None and inner is not Pass:
                yield from sub_messages(inner, value.get(name), value, params)
    elif isinstance(sc, (Present, Overlay, When)) and value is not None:
        yield from sub_messages(sc.subcon, value, ctx, params)
    elif isinstance(sc, IfEquals):
        picked = sc._pick(ctx)
        if picked is not None:
            yield from sub_messages(picked, value, ctx, params)
    elif isinstance(sc, Switch) and value is not None:
        from dissectors.model.oracle import _eval
        from construct import Container
        case = sc.cases.get(_eval(sc.keyfunc, ctx, Container(params)), sc.default)
        yield from sub_messages(case, value, ctx, params)
    elif isinstance(sc, (Array, GreedyRange)) and value is not None:
        for el in value:
            yield from sub_messages(sc.subcon, el, ctx, params)


def instances():
    """(structure, parsed value, parse params) for every structure found in the samples."""
    for pcap in SAMPLES:
        for d in messages(pcap):
            req = request_of(pcap, d)
            params = {"request": BY_ABBREV[req.abbrev].parse(req.raw)} if req else {}
            msg = BY_ABBREV[d.abbrev]
            yield from sub_messages(msg.struct, msg.parse(d.raw, **params), None, params)


def test_messages_rebuild_to_the_same_bytes():
    for pcap in SAMPLES:
        for d in messages(pcap):
            msg = BY_ABBREV[d.abbrev]
            assert msg.build(msg.parse(d.raw)) == d.raw, (d.frame, d.abbrev)


def test_every_structure_round_trips():
    seen = set()
    for msg, value, params in instances():
        again = msg.parse(msg.build(value, **params), **params)
        assert again == value, msg.name
        assert again.get("_variant") == value.get("_variant"), msg.name
        seen.add(msg.name)
    assert seen == {m.name for m in rsvd.PROTOCOL.messages}


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
