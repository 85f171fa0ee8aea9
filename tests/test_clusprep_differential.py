"""ClusPrep on real tshark: every parameter the Lua shows equals the Python parse of the same
stub, every method of every interface appears in a sample, and sealed calls keep their
sequence."""
from collections import defaultdict

import pytest

import samples
from clusprep_decoded import MODEL, NDR, calls, lua_view, stub_def
from dissectors.definitions import csvp
from dissectors.model.oracle import flatten_stub as flatten

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

PLAIN = [samples.path(n) for n in ("clusprep_storage", "clusprep_network", "clusprep_setup")]
SEALED = samples.path("clusprep_sealed")


def python_view(call):
    stub = stub_def(call)
    out = defaultdict(list)
    for name, value in flatten(NDR, stub, stub.params.parse(call.raw)):
        if not name.startswith(("clusprep.safearray", "clusprep.brecord")):
            out[name].append(value)
    return dict(out)


@pytest.mark.parametrize("pcap,decrypt", [(p, False) for p in PLAIN] + [(SEALED, True)],
                         ids=[p.stem for p in PLAIN] + ["clusprep_sealed-decrypted"])
def test_every_parameter_matches_python(pcap, decrypt):
    not_on_wire = {m.name for i in csvp.INTERFACES for m in i.methods if not m.used_on_wire}
    decoded = [c for c in calls(pcap, decrypt) if c.direction != "fault" and c.method not in not_on_wire]
    assert len(decoded) >= 14
    for c in decoded:
        assert c.raw is not None, "frame %d: stub not decoded" % c.frame
        assert lua_view(c) == python_view(c), "frame %d %s %s" % (c.frame, c.method, c.direction)


def test_every_method_of_every_interface_is_in_a_sample():
    seen = defaultdict(set)
    for pcap in PLAIN:
        for c in calls(pcap):
            seen[(c.interface, c.method)].add(c.direction)
    missing = []
    for itf in csvp.INTERFACES:
        for m in itf.methods:
            want = {"request", "response"} if m.used_on_wire else {"request", "fault"}
            if not want <= seen[(itf.name, m.name)]:
                missing.append("%s.%s %s" % (itf.name, m.name, sorted(want - seen[(itf.name, m.name)])))
    assert not missing
    assert sum(len(i.methods) for i in csvp.INTERFACES) == 71  # 36 + 15 + 9 + 2 + 3 + 2 + 2 + 2


def test_every_structure_is_decoded_from_a_sample():
    names = set()
    for pcap in PLAIN:
        for c in calls(pcap):
            names.update(c.fields)
    for s in csvp.STRUCTURES:
        assert any(n.endswith("." + s.name.lower().replace("_", "")) or s.name in MODEL.fields.get(n).desc
                   for n in names if MODEL.fields.get(n) is not None and MODEL.fields[n].ftype == "none"), s.name
    packed = {m.abbrev for m in csvp.PROTOCOL.structures}
    shown = {n.split(".")[1] for n in names if n.split(".")[1] in packed}
    assert shown >= packed - {"adapterlist", "adapter"}  # the Windows Server 2008 form is tested apart


def test_sealed_calls_keep_their_sequence():
    sealed = calls(SEALED)
    clear = calls(SEALED, decrypt=True)
    assert [(c.method, c.direction) for c in sealed] == [(c.method, c.direction) for c in clear]
    assert [c.method for c in sealed if c.direction == "request"] == [
        "CprepPrepareNode", "CprepPrepareNodePhase2", "CprepDiskGetProps", "CprepDiskAttach", "CprepDiskPRArbitrate",
        "CprepDiskOnline", "CprepDiskOffline", "CprepDiskRawRead"]
    for c in sealed:
        assert c.raw is None and c.top["clusprep.encrypted"] == "1" and c.top["clusprep.auth_level"] == "6"
        assert "clusprep.request_in" in c.top or c.direction == "request"


def test_values_a_reader_checks_by_eye():
    """A few decoded values pinned outright, so a shared mistake in both views still fails."""
    by = {(c.method, c.direction): c for c in calls(samples.path("clusprep_storage"))}
    props = by[("CprepDiskGetProps3", "response")].fields
    assert props["clusprep.disk_props_ex.pwsz_friendly_name"] == ["Cluster Disk 1"]
    assert props["clusprep.disk_props_ex.pwsz_page83_id"] == ["60014055ee5c8e1b4a5d6c7e8f901234"]
    assert props["clusprep.disk_id.disk_guid"] == [
        "6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30"]
    assert props["clusprep.hresult"] == ["0x00000000"]
    shares = by[("CprepCreateNewSmbShares3", "response")].fields
    assert shares["clusprep.cprep_create_new_smb_shares3.ppwsz_share_paths"] == [
        "\\\\10.0.10.11", "\\\\[fd00:20:11::11]"]
    raw = by[("CprepDiskRawRead", "request")]
    assert raw.fields["clusprep.disk_id.disk_id_type"] == ["0x0001"]
    net = {(c.method, c.direction): c for c in calls(samples.path("clusprep_network"))}
    routes = net[("ProcessAddRoutes", "request")].fields
    assert routes["clusprep.node_route_info.local_unicast_ips"] == [
        "10.0.0.12", "172.16.0.12"]
    assert routes["clusprep.node_route_info.indices"] == ["1", "2"]
    status = net[("GetAddRoutesStatus", "response")].fields
    assert status["clusprep.route_loss_and_state.status"] == ["0x0001", "0x0002"]


def test_fragmented_stubs_are_decoded_once_on_the_last_fragment():
    """RawRead's responses: one whole PDU, three fragments in three frames, and three fragments
    sharing one TCP segment (so one frame carries three stub_data fields)."""
    from decoded import field_values

    reads = [c for c in calls(samples.path("clusprep_storage"))
             if c.method == "CprepDiskRawRead" and c.direction == "response"]
    assert [len(bytes.fromhex(c.fields["clusprep.cprep_disk_raw_read.pb_data"][0].replace(":", "")))
            for c in reads] == [512, 100, 200]
    frags = {int(r["frame.number"]): r["dcerpc.cn_flags"]
             for r in field_values(samples.path("clusprep_storage"), ["dcerpc.cn_flags"])}
    assert frags[reads[1].frame] == ["0x02"] and frags[reads[1].frame - 2] == ["0x01"]
    assert frags[reads[2].frame] == ["0x01", "0x00", "0x02"]


def test_a_shared_type_is_one_field_whatever_the_method():
    """Issue 15 item 4: CPREP_DISKID's members are named once (clusprep.disk_id.*), so one filter finds
    the disk in every call that names it, and clusprep.method still tells the calls apart."""
    from decoded import field_values

    guid = "6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30"
    rows = field_values(samples.path("clusprep_storage"), ["clusprep.method", "clusprep.disk_id.disk_guid"],
                        "-Y", "clusprep.disk_id.disk_guid == %s" % guid)
    methods = {m for r in rows for m in r["clusprep.method"]}
    assert {"CprepDiskAttach", "CprepDiskGetProps3", "CprepDiskPRRegister3", "CprepDiskRawRead",
            "CprepDiskOnline"} <= methods
    assert all(r["clusprep.disk_id.disk_guid"] == [guid] for r in rows)
