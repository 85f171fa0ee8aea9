"""analyzer.reconstruction.flat_parsers against construct's own compiled parsers: for every layout the analyzer
parses on each message, the same Container (keys in order, value types, reprs) on random bytes
and on CDBs of every operation code; bytes too short for the layout get construct's answer.
(Every sample's analysis, compared with its expected JSON in test_analyzer, covers real messages.)"""
import random
import struct

import pytest

from analyzer.reconstruction import decoding, flat_parsers
from dissectors.definitions import scsi

LAYOUTS = ["header", "scsi_request", "scsi_response", "cdb"]


def construct_parse(name, raw):
    return (decoding._funcs.get(name) or decoding._func(name))(decoding.BytesIO(raw), decoding._ROOT)


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b and repr(a) == repr(b)


@pytest.mark.parametrize("name", LAYOUTS)
def test_each_layout_the_analyzer_reads_has_a_flat_parser(name):
    assert decoding._flat_of(name) is not None


@pytest.mark.parametrize("name", LAYOUTS)
def test_random_bytes_parse_as_construct_parses_them(name):
    rng = random.Random(name)
    flat = decoding._flat_of(name)
    opcodes = list(scsi.OPERATION_CODES.values())
    parsed = 0
    for _ in range(4000):
        raw = bytearray(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 8, 15, 16, 20, 24, 36, 40, 64])))
        if name == "cdb" and raw:
            raw[0] = rng.choice(opcodes + [rng.getrandbits(8)])
        raw = bytes(raw)
        try:
            value = flat(raw)
        except (flat_parsers.ShortRead, struct.error):
            continue  # decoding._run then asks construct
        parsed += 1
        assert same(value, construct_parse(name, raw)), raw.hex()
    assert parsed > 1000


def test_short_bytes_give_what_construct_gives():
    cdb = bytes.fromhex("2800000008000000800000000000000000")
    request = bytes(20) + cdb[:16] + bytes(4)
    for cut in range(len(request)):
        raw = request[:cut]
        try:
            expected = ("value", construct_parse("scsi_request", raw))
        except Exception as e:  # noqa: BLE001 - construct's answer to short bytes, whatever it is
            expected = ("error", type(e))
        try:
            got = ("value", decoding._run("scsi_request", raw))
        except Exception as e:  # noqa: BLE001
            got = ("error", type(e))
        assert got[0] == expected[0] and (same(got[1], expected[1]) if got[0] == "value" else got[1] is expected[1])


def test_a_read_10_cdb_decodes_its_fields():
    value = decoding._run("cdb", bytes.fromhex("28000000080000008000") + bytes(6))
    assert str(value["OperationCode"]) == "READ_10"
    assert value["Fields"]["LogicalBlockAddress"] == 0x800 and value["Fields"]["TransferLength"] == 128


def test_a_container_changed_by_its_caller_does_not_change_the_next_parse():
    raw = bytes(40)
    first = decoding._flat_of("scsi_response")(raw)
    first["SrbFlags"]["SRB_FLAGS_DATA_IN"] = "changed"
    first["SrbStatus"]["Status"] = "changed"
    again = decoding._flat_of("scsi_response")(raw)
    assert same(again, construct_parse("scsi_response", raw))


# Whole tunnel messages (decoding.rsvd_message's parse of what the SCSI view does not take): a header
# naming each operation, answered with success or not, then random payload bytes of the sizes met.
MESSAGES = [(e.name, side, m) for e in decoding._IOCTLS.values() for side, m in (("request", e.request),
                                                                                  ("response", e.response))
            if m is not None and decoding._whole_of(m) is not None]


def test_the_tunnel_messages_have_flat_parsers():
    from dissectors.definitions import rsvd

    flat = {(f, side) for f, side, _ in MESSAGES}
    for name in ("FSCTL_SVHDX_SYNC_TUNNEL_REQUEST", "FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST"):
        assert {(name, "request"), (name, "response")} <= flat
    assert rsvd.TUNNEL_REQUEST in [m for _, _, m in MESSAGES] and rsvd.TUNNEL_RESPONSE in [m for _, _, m in MESSAGES]


@pytest.mark.parametrize("function,side,msg", MESSAGES, ids=["%s-%s" % (f, s) for f, s, _ in MESSAGES])
def test_whole_messages_parse_as_construct_parses_them(function, side, msg):
    from dissectors.definitions import rsvd

    flat = decoding._whole_of(msg)
    build = rsvd.SVHDX_TUNNEL_OPERATION_HEADER.struct.build
    rng = random.Random(function + side)
    codes = list(rsvd.OPERATION_CODES.values()) + [0x7FFFFFFF]
    parsed = 0
    for _ in range(3000):
        header = build(dict(OperationCode=rng.choice(codes), Status=rng.choice([0, 0, 0, 0xC05CFF0C]),
                            RequestId=rng.getrandbits(64)))
        size = rng.choice([0, 1, 4, 8, 15, 16, 20, 24, 28, 36, 40, 56, 64])
        raw = header + bytes(rng.choice([0, rng.getrandbits(8)]) for _ in range(size))
        if rng.random() < 0.1:
            raw = raw[:rng.randrange(len(raw) + 1)]
        try:
            value = flat(raw)
        except (flat_parsers.ShortRead, struct.error):
            continue  # decoding.rsvd_message then asks construct
        parsed += 1
        assert same(value, decoding._parser(msg).parse(raw)), raw.hex()
    assert parsed > 500
