"""The MS-RSVD conformance rules' logic on synthetic input: hostile create contexts cost bounded
work and never raise; the stored-key sequence wraps; what began before the capture is not judged."""
import struct

from dissectors import rsvd

from analyzer import decoding
from analyzer import rules_rsvd as R
from analyzer.findings import Findings
from analyzer.rsvd_sessions import Open, Operation, StoredError


def context(name: bytes, data: bytes, nxt: int = 0) -> bytes:
    return struct.pack("<IHHHHI", nxt, 16, len(name), 0, 24 if data else 0, len(data)) + name.ljust(8, b"\0") + data


def ea(name: bytes, value: bytes, nxt: int = 0, flags: int = 0) -> bytes:
    e = struct.pack("<IBBH", nxt, flags, len(name), len(value)) + name + b"\0" + value
    return e.ljust(nxt, b"\0") if nxt else e


def test_create_eas_reads_the_chain_and_survives_hostile_bytes():
    two = ea(b"ClusteredApplicationInstance", bytes(16), nxt=56) + ea(b"ApplicationTrafficType", bytes(16))
    eas, err = decoding.create_eas(context(rsvd.EA_CONTEXT_NAME, two))
    assert err is None and [e[2] for e in eas] == ["ClusteredApplicationInstance", "ApplicationTrafficType"]
    assert decoding.create_eas(context(b"DHnQ", bytes(16))) == ([], None)
    # a context whose Next points at itself, an EA list that loops, bytes cut short, garbage
    assert decoding.create_eas(context(b"DHnQ", bytes(16), nxt=0xFFFFFFFF))[0] is None
    eas, err = decoding.create_eas(context(rsvd.EA_CONTEXT_NAME, ea(b"A", b"", nxt=0)))
    assert err is None and eas == [(0, 0, "A", b"")]
    assert decoding.create_eas(context(rsvd.EA_CONTEXT_NAME, ea(b"A", b"x" * 4, nxt=4) * 2))[0] is None
    assert decoding.create_eas(context(rsvd.EA_CONTEXT_NAME, two)[:40])[0] is None
    for junk in (b"", b"\xff" * 7, bytes(range(256)) * 4):
        decoding.create_eas(junk)  # no exception


def an_open(pre_capture: bool = False, n: int = 1) -> Open:
    return Open("0000000%d-0000-0000-0a00-000000000000" % n, 0, "10.0.0.11:49701", "10.0.0.20:445", 1, "", "disk.vhdx",
                None if pre_capture else 5, None, None)


def test_stored_keys_wrap_from_0xff_to_0x00_and_a_pre_capture_open_starts_anywhere():
    sink = Findings()
    rule = R.StoredKeySequence(sink)
    o = an_open()
    rule.on_rsvd_open(o, None, 6)
    for n, key in enumerate(list(range(1, 256)) + [0, 1]):
        op = Operation("SMB2_WRITE", 0, o, 10 + 2 * n, 0.0)
        rule.on_rsvd_stored_error(StoredError(o, key, 11 + 2 * n, "SMB2_WRITE"), op)
    assert not sink.items
    p = an_open(pre_capture=True, n=2)
    rule.on_rsvd_open(p, None, 600)
    for n, key in enumerate((0x80, 0x81, 0x83)):
        rule.on_rsvd_stored_error(StoredError(p, key, 701 + 2 * n, "SMB2_READ"), Operation("SMB2_READ", 0, p, 700 + 2 * n, 0.0))
    assert [(f.check, f.frames) for f in sink.items] == [("R32", [704, 705])]


def test_an_unknown_key_is_judged_only_on_an_open_made_in_the_capture():
    from construct import Container
    sink = Findings()
    rule = R.SenseKeyAnswer(sink)
    for pre in (True, False):
        o = an_open(pre_capture=pre)
        op = Operation(R.SRB_STATUS_OP, 0, o, 20, 0.0, request=Container(Payload=Container(StatusKey=9)),
                       response_frame=21, status=0)
        rule.on_rsvd_response(op)
    assert [(f.check, f.frames) for f in sink.items] == [("R44", [20, 21])]
