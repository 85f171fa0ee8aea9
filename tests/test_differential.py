"""Differential: every field the Lua dissector reports equals the Python parse of the same bytes."""
from collections import defaultdict

import pytest

import samples
from decoded import messages, normalize, request_of
from dissectors.model import build_model
from dissectors import generate
from dissectors.definitions import rsvd
from dissectors.model.oracle import flatten
from dissectors.vocabulary.wire import Variants

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

MODEL = build_model(rsvd.PROTOCOL)
BY_ABBREV = {m.abbrev: m for m in rsvd.PROTOCOL.messages}
# Every sample whose messages parse whole in Python (the malformed one is tested apart).
WELL_FORMED = [samples.path("rsvd_shared_disk"), samples.path("rsvd_cluster_events")]


def params(pcap, d):
    """A response's parse gets its matched request, as the dissector's does."""
    req = request_of(pcap, d)
    return {"request": BY_ABBREV[req.abbrev].parse(req.raw)} if req else {}


def python_view(msg, raw, kw):
    out = defaultdict(list)
    for name, value in flatten(MODEL, msg, msg.parse(raw, **kw), **kw):
        out[name].append(value)
    return dict(out)


def lua_view(decoded):
    out = {}
    for name, values in decoded.fields.items():
        f = MODEL.fields[name]
        if name.endswith(".layout"):
            out[name] = [v.split(":", 1)[0] for v in values]
        else:
            out[name] = [normalize(f.ftype, v) for v in values]
    return out


@pytest.mark.parametrize("pcap", WELL_FORMED, ids=lambda p: p.stem)
def test_every_field_matches_python(pcap):
    decoded = messages(pcap)
    assert len(decoded) >= 40
    for d in decoded:
        msg = BY_ABBREV[d.abbrev]
        assert lua_view(d) == python_view(msg, d.raw, params(pcap, d)), "frame %d %s" % (d.frame, d.abbrev)


def _all_layouts(msg):
    sc = msg.struct
    return {v.name for v in sc.variants} if isinstance(sc, Variants) else set()


def test_every_structure_and_layout_is_decoded_from_a_sample():
    seen_structures, seen_layouts = set(), defaultdict(set)
    for pcap in WELL_FORMED:
        for d in messages(pcap):
            for name, values in d.fields.items():
                if name[len("msrsvd."):] in BY_ABBREV:
                    seen_structures.add(name[len("msrsvd."):])
                if name.endswith(".layout"):
                    seen_layouts[name[len("msrsvd."):-len(".layout")]].update(v.split(":", 1)[0] for v in values)
    for m in rsvd.PROTOCOL.messages:
        assert m.abbrev in seen_structures, m.name
        assert seen_layouts[m.abbrev] == _all_layouts(m), m.name


def test_fields_carry_real_values():
    """A few values checked against what the scenario put on the wire."""
    d = messages(samples.path("rsvd_shared_disk"))
    names = [x.fields.get("msrsvd.open_device_context.initiator_host_name", []) for x in d]
    assert ["NODE1"] in names and ["NODE2.cluster.example"] in names and ["NODE2"] in names
    sizes = [x.fields["msrsvd.file_info_response.virtual_size"] for x in d
             if "msrsvd.file_info_response.virtual_size" in x.fields]
    assert sizes == [[str(64 << 30)], [str(64 << 30)]]
    ops = [x.fields["msrsvd.header.operation_code"][0] for x in d if x.abbrev == "tunnel_request"]
    assert ops.count("0x02001002") == 9  # SCSI: 6 on NODE1, 3 on NODE2
