"""The MS-RSVD conformance rules' logic on synthetic input: hostile create contexts cost bounded
work and never raise; the stored-key sequence wraps; what began before the capture is not judged."""
import struct

from dissectors.definitions import rsvd

from analyzer.reconstruction import decoding
from analyzer.rules import rsvd_answers, rsvd_handles, rsvd_operations, rsvd_zero_fields
from analyzer.rules.findings import Findings
from analyzer.reconstruction.rsvd_records import SRB_STATUS_OP, Open, Operation, StoredError


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
    rule = rsvd_answers.StoredKeySequence(sink)
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
    assert [(f.check, f.frames) for f in sink.items] == [("R32", [703, 704, 705])]  # the highest so far, then the jump


def test_an_unknown_key_is_judged_only_on_an_open_made_in_the_capture():
    from construct import Container
    sink = Findings()
    rule = rsvd_answers.SenseKeyAnswer(sink)
    for pre in (True, False):
        o = an_open(pre_capture=pre)
        op = Operation(SRB_STATUS_OP, 0, o, 20, 0.0, request=Container(Payload=Container(StatusKey=9)),
                       response_frame=21, status=0)
        rule.on_rsvd_response(op)
    assert [(f.check, f.frames) for f in sink.items] == [("R44", [20, 21])]


# -- the sequences judged tolerant of reordering (analyzer.reconstruction.request_numbers) ------------------------
from analyzer.reconstruction.request_numbers import RequestIds, StoredKeys  # noqa: E402


def test_stored_keys_wrap_and_accept_answers_out_of_order():
    seq = StoredKeys(known_start=True, start_frame=1)
    out = []
    for n in range(600):  # 1..0xFF, 0x00, 1, ... twice over: wraps are no repeats
        out += seq.add((n + 1) & 0xFF, 10 + n, 9 + n, in_flight=0)
    assert out == [] and seq.unfilled() == []
    # two requests in flight answered with keys out of order: the jump is explained, the late key fills it
    seq = StoredKeys(known_start=True)
    assert seq.add(2, 20, 10, in_flight=1) == []
    assert seq.unfilled() == [(1, 20)]
    assert seq.add(1, 21, 11, in_flight=0) == []
    assert seq.unfilled() == []
    # ... and across the wrap: 0xFE, then 0x00 (skipping 0xFF with a request in flight), then 0xFF
    seq = StoredKeys(known_start=True)
    for k in range(1, 0xFF):
        seq.add(k, k, k, in_flight=0)
    assert seq.add(0x00, 300, 299, in_flight=1) == [] and seq.unfilled() == [(0xFF, 300)]
    assert seq.add(0xFF, 301, 298, in_flight=0) == [] and seq.unfilled() == []


def test_stored_keys_report_repeats_unexplained_jumps_and_keys_never_filled():
    seq = StoredKeys(known_start=True, start_frame=5)
    assert seq.add(1, 10, 9, in_flight=0) == []
    assert seq.add(2, 12, 11, in_flight=0) == []
    assert seq.add(2, 14, 13, in_flight=0) == [("repeat", 12)]
    assert seq.add(1, 16, 15, in_flight=3) == [("repeat", 10)]  # behind: no reordering explains it
    assert seq.add(5, 18, 17, in_flight=0) == [("jump", 2, 12, True)]  # 3 and 4 skipped, nothing in flight
    assert seq.unfilled() == []  # an unexplained jump is reported once, not again at the CLOSE
    assert seq.add(8, 20, 19, in_flight=2) == []  # 6, 7 skipped with two requests in flight ...
    assert seq.add(9, 22, 21, in_flight=0) == [] and seq.unfilled() == [(6, 20), (7, 20)]  # ... never filled
    # the first key of an open made in the capture is 1
    assert StoredKeys(known_start=True, start_frame=5).add(3, 8, 7, in_flight=0) == [("jump", 2, 5, False)]
    assert StoredKeys(known_start=True, start_frame=5).add(0, 8, 7, in_flight=0) == [("jump", 255, 5, False)]


def test_stored_keys_of_an_open_made_before_the_capture_start_anywhere():
    seq = StoredKeys(known_start=False)
    assert seq.add(0x80, 100, 99, in_flight=0) == []
    assert seq.add(0x7E, 102, 90, in_flight=0) == []  # its request predates the first key seen: may be older
    assert seq.add(0x7F, 104, 103, in_flight=0) == [("jump", 254, 100, True)]  # sent after it: unexplained


def test_stored_keys_stay_bounded():
    seq = StoredKeys(known_start=True)
    lost = []
    for n in range(2000):  # every answer skips 200 keys, with enough requests in flight to explain it
        lost += [v for v in seq.add((seq.high + 201) & 0xFF, n, n, in_flight=250) if v[0] == "lost"]
        assert len(seq.skipped) <= StoredKeys.WINDOW and len(seq.issued) <= 256
    assert lost  # the slots that fell out of the window unfilled were reported


def test_request_ids_fill_gaps_out_of_order_and_report_what_stays_open():
    ids = RequestIds()
    assert ids.add(0x10, 1) == []
    assert ids.add(0x12, 2) == []  # 0x11 sent on another channel, captured later
    assert ids.add(0x11, 3) == []
    assert ids.add(0x11, 4) == [("duplicate", 3)]
    assert ids.add(0x16, 5) == []  # 0x13-0x15 open
    assert ids.add(0x14, 6) == []  # splits the gap
    assert ids.add(0x0F, 7) == []  # just before the first id seen: sent before it, captured after
    assert ids.finish() == [("gap", 0x13, 0x13, 2, 5), ("gap", 0x15, 0x15, 2, 5)]
    assert ids.add(0x16 + RequestIds.GAP_NOW + 2, 8) == [("gap", 0x17, 0x16 + RequestIds.GAP_NOW + 1, 5, 8)]


def test_request_ids_far_below_what_reordering_explains_are_reported():
    """Issue 23: tolerance bounded by what can be in flight. A client whose capture starts at 0x1000
    and that later sends 0x40 (a counter reset) did not add 1; an id just below the first, or as far
    below as twice the operations it had in flight, was sent earlier and captured later."""
    ids = RequestIds()
    assert ids.add(0x1000, 1, in_flight=1) == []
    assert ids.add(0x1001, 2, in_flight=2) == []
    assert ids.add(0x1000 - RequestIds.BEHIND, 3, in_flight=3) == []  # within reach of reordering
    assert ids.add(0x40, 4, in_flight=1) == [("behind", 0x40, 0x1000 - RequestIds.BEHIND, 3)]
    assert ids.add(0x41, 5, in_flight=1) == []  # the counter goes on from there: said once
    busy = RequestIds()  # 200 operations in flight at once: 400 ids below are still reordering
    assert busy.add(0x1000, 1, in_flight=200) == []
    assert busy.add(0x1000 - 400, 2, in_flight=200) == []
    assert busy.add(0x1000 - 400 - 401, 3, in_flight=1) == [("behind", 0x1000 - 801, 0x1000 - 400, 2)]


def test_request_ids_stay_bounded():
    ids = RequestIds()
    reported = []
    for n in range(0, 3 * RequestIds.MAX_GAPS, 1):
        reported += ids.add(2 * n, n)  # every other id missing
        assert len(ids.gaps) <= RequestIds.MAX_GAPS
    assert len(ids.used) <= RequestIds.USED
    assert len(reported) == 3 * RequestIds.MAX_GAPS - 1 - RequestIds.MAX_GAPS  # the oldest gaps, reported
    assert len(ids.finish()) == RequestIds.MAX_GAPS


def test_the_stored_key_rule_judges_skipped_keys_at_the_close_once_nothing_is_in_flight():
    sink = Findings()
    rule = rsvd_answers.StoredKeySequence(sink)
    o = an_open()
    rule.on_rsvd_open(o, None, 5)
    o.in_flight = 1  # a second READ in flight when key 2 comes back
    rule.on_rsvd_stored_error(StoredError(o, 2, 11, "SMB2_READ"), Operation("SMB2_READ", 0, o, 10, 0.0))
    rule.on_rsvd_close(o, 20)  # the other READ is still in flight: wait for it
    assert not sink.items
    again = an_open()  # the FileId reused meanwhile: another open, its own sequence from 1
    rule.on_rsvd_open(again, None, 30)
    rule.on_rsvd_stored_error(StoredError(again, 1, 33, "SMB2_READ"), Operation("SMB2_READ", 0, again, 32, 0.0))
    rule.on_rsvd_response(Operation("SMB2_READ", 0, again, 32, 0.0, response_frame=33, status=0))
    assert not sink.items
    o.in_flight = 0
    rule.on_rsvd_response(Operation("SMB2_READ", 0, o, 12, 0.0, response_frame=21, status=0))
    assert [(f.check, f.frames) for f in sink.items] == [("R32", [11, 20])]


def test_request_id_rule_reports_duplicates_at_once_and_gaps_at_the_end():
    from analyzer.reconstruction.rsvd_records import Connection
    sink = Findings()
    rule = rsvd_operations.RequestIdNotMonotonic(sink)
    conn = Connection(0, "10.0.0.11:49701", "10.0.0.20:445")
    for frame, rid in ((10, 1), (12, 3), (14, 2), (16, 2), (18, 6)):
        rule.on_rsvd_request(Operation("X", 0, None, frame, 0.0, request_id=rid, client="c"), conn)
    assert [(f.check, f.frames) for f in sink.items] == [("R04", [14, 16])]
    rule.on_finish()
    assert [(f.check, f.frames) for f in sink.items][1:] == [("R05", [12, 18])]
    first = Operation("X", 0, None, 22, 0.0, request_id=0x200, client="d")  # another client
    rule.on_rsvd_request(first, conn)
    rule.on_rsvd_response(first)  # answered: nothing of it in flight when 0x100 comes
    rule.on_rsvd_request(Operation("X", 0, None, 24, 0.0, request_id=0x100, client="d"), conn)
    assert [(f.check, f.frames, "below the lowest" in f.message) for f in sink.items][2:] == [("R05", [22, 24], True)]


def test_app_instance_id_context_is_read_and_missing_eas_are_not_reported():
    import uuid
    from construct import Container
    ident = uuid.UUID("55555555-1111-4222-8333-444455556666")
    data = rsvd.SMB2_CREATE_APP_INSTANCE_ID.build(dict(StructureSize=20, Reserved=0, AppInstanceId=ident))
    raw = struct.pack("<IHHHHI", 0, 16, 16, 0, 32, len(data)) + rsvd.SMB2_CREATE_APP_INSTANCE_ID_TAG + data
    assert decoding.app_instance_id(raw) == (str(ident), None)
    assert decoding.create_eas(raw) == ([], None)
    assert decoding.app_instance_id(raw[:40])[0] is None
    sink = Findings()
    rule = rsvd_handles.OpenRequestIncomplete(sink)
    ctx = Container(InitiatorId=str(ident))
    conn = type("C", (), {"label": "c"})()
    mk = lambda eas: type("Q", (), dict(eas=eas, eas_error=None, context=ctx, frame=7, name="d"))()  # noqa: E731
    rule.on_rsvd_create(mk([]), conn)  # no ExtA at all (Windows: the app instance context instead)
    rule.on_rsvd_create(mk([(0, 0, "ClusteredApplicationInstance", ident.bytes_le)]), conn)  # one EA only
    assert not sink.items
    rule.on_rsvd_create(mk([(0, 0x80, "ApplicationTrafficType", ident.bytes_le)]), conn)
    assert [(f.check, f.frames) for f in sink.items] == [("R16", [7])]


def test_a_write_without_no_intermediate_buffering_is_judged_only_once_a_newer_server_shows():
    from construct import Container
    sink = Findings()
    rule = rsvd_answers.WriteAnswer(sink)
    seed_srv, newer = an_open(n=1), an_open(n=2)
    for o in (seed_srv, newer):
        o.create_options = 0x40  # FILE_NON_DIRECTORY_FILE alone
        rule.on_rsvd_open(o, None, 5)
        rule.on_rsvd_response(Operation("SMB2_WRITE", 0, o, 10, 0.0, response_frame=11, status=0))
    assert not sink.items  # held: nothing shows yet which revision the server follows
    info = Container(Header=Container(Status=0), Payload=Container(ServerVersion=2))
    rule.on_rsvd_response(Operation(rsvd_zero_fields.FILE_INFO_OP, 0, newer, 12, 0.0, response=info, response_frame=13, status=0))
    assert [(f.check, f.frames) for f in sink.items] == [("R34", [5, 10, 11])]
    rule.on_rsvd_close(seed_srv, 20)  # the seed's server: listed as not evaluated, not reported
    assert len(sink.items) == 1 and [n.rules for n in sink.not_evaluated()] == [["rsvd.write_answer"]]


def test_a_servers_version_and_a_disks_sector_sizes_are_the_same_in_every_answer():
    """Issue 23: ServerVersion is the server's one ServerServiceVersion (3.2.3), sector sizes the disk's
    (3.2.5.5.1); VirtualSize may change (a resize), and another disk may have other sector sizes."""
    from construct import Container

    sink = Findings()
    rule = rsvd_answers.ResponseInvalid(sink)

    def info(o, frame, version=2, sector=512, physical=4096, size=1 << 30):
        payload = Container(ServerVersion=version, SectorSize=sector, PhysicalSectorSize=physical, VirtualSize=size)
        rule.on_rsvd_response(Operation(rsvd_zero_fields.FILE_INFO_OP, 0, o, frame, 0.0, response_frame=frame + 1, status=0,
                                        response=Container(Header=Container(Status=0), Payload=payload),
                                        response_size=rsvd_zero_fields.HEADER_SIZE + 24))

    disk, other = an_open(n=1), an_open(n=2)
    other.name = "other.vhdx"
    info(disk, 10)
    info(disk, 12, size=2 << 30)  # resized
    info(other, 14, sector=4096)  # another disk, 4K-native
    assert sink.items == []
    info(other, 16, version=1, sector=4096)  # the same server, another version
    info(disk, 18, sector=4096)  # the same disk, another sector size
    assert [(f.check, f.frames, f.message.split(": ", 1)[1][:40]) for f in sink.items] == [
        ("R41", [16, 17], "ServerVersion 1, but this server answere"),
        ("R41", [18, 19], "SectorSize 4096, PhysicalSectorSize 4096")]
