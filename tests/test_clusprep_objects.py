"""ClusPrep state keyed as the spec keys it: by DCOM object (its IPIDs), not by connection, and
disks by identity whatever CPREP_DISKID form names them. Calls go through the tracker as tshark's
events do (object UUID and stub bytes), built with the samples' client."""
from dissectors.definitions import csvp
from analyzer.rules import ALL_RULES, clusprep_disk_answers, clusprep_preparation
from analyzer.reconstruction.clusprep_sequences import ClusPrepTracker
from analyzer.reconstruction.events import RpcCall
from analyzer.reconstruction.bus import Bus
from analyzer.rules.findings import Findings
from analyzer.reconstruction.tables import Tables
from samples.csvp_scenarios import DISK, MBR_DISK, NUMBERED_DISK, ClusPrepClient, disk_props, ipid

S2, S3 = csvp.IClusterStorage2, csvp.IClusterStorage3
SERVER = "10.0.0.11:49668"


class Wire:
    """Requests and answers as RpcCall events, one connection per client port."""

    def __init__(self, *rules):
        self.sink = Findings()
        self.bus = Bus([r(self.sink) for r in rules])
        self.tracker = ClusPrepTracker(self.bus, Tables(keep=False))
        self.frame = 1
        self.call_id = 1
        self.stubs = ClusPrepClient.__new__(ClusPrepClient)

    def connect(self, stream: int, port: int):
        """A connection whose bind the capture holds: IClusterStorage2, IClusterStorage3 and IClusterSetup
        on contexts 0, 1 and 2."""
        from analyzer.reconstruction.events import RpcPdu

        uuids = [i.uuid.lower() for i in (S2, S3, csvp.IClusterSetup)]
        self.tracker.pdu(RpcPdu(self.frame, 0.0, stream, 11, self.call_id, [0, 1, 2], 6, interfaces=uuids),
                         "10.0.0.31:%d" % port, SERVER)
        self.frame += 1

    def call(self, stream, port, itf, name, ins=None, outs=None, hresult=0, object_id=None):
        req, resp = ClusPrepClient.stubs(self.stubs, itf, name, ins, outs, hresult)
        m = next(m for m in itf.methods if m.name == name)
        client = "10.0.0.31:%d" % port
        for direction, stub, src, dst in (("request", req, client, SERVER), ("response", resp, SERVER, client)):
            self.tracker.call(RpcCall(self.frame, float(self.frame), stream, itf.name, name, m.opnum, 0, self.call_id,
                                      direction, 6, False, object_id if direction == "request" else None,
                                      stub=stub), src, dst)
            self.frame += 1
        self.call_id += 1

    def rules(self):
        return sorted({(f.rule, f.check) for f in self.sink.items})


PREPARE = [(S2, "CprepPrepareNode", None, dict(pulMajorVersion=10)),
           (S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3))]
ALL = [rule for rule in ALL_RULES if rule.id.startswith("clusprep.")]


def test_attach_by_guid_then_calls_by_signature_and_number():
    """GetProps links the GUID the disk was attached by to its device number and signature."""
    w = Wire(*ALL)
    w.connect(0, 50000)
    for itf, name, ins, outs in PREPARE:
        w.call(0, 50000, itf, name, ins, outs, object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    props = dict(disk_props(), DiskId=MBR_DISK)  # the disk reports its signature and number 2
    w.call(0, 50000, S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=props), object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskPRArbitrate", dict(DiskId=MBR_DISK), object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskIsReadable", dict(DiskId=NUMBERED_DISK), object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskOnline", dict(DiskId=NUMBERED_DISK), dict(MaxPartitionNumber=1),
           object_id=str(ipid(0x100)))
    assert w.rules() == []


def test_unlinked_forms_stay_apart():
    """The near miss: without a DISK_PROPS answer joining them, a signature is another disk."""
    w = Wire(clusprep_preparation.DiskNotAttached)
    w.connect(0, 50000)
    for itf, name, ins, outs in PREPARE:
        w.call(0, 50000, itf, name, ins, outs, object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskPRArbitrate", dict(DiskId=MBR_DISK), object_id=str(ipid(0x100)))
    assert w.rules() == [("clusprep.disk_not_attached", "C28")]


def test_a_second_connection_to_the_same_object_keeps_its_state():
    w = Wire(*ALL)
    w.connect(0, 50000)
    for itf, name, ins, outs in PREPARE:
        w.call(0, 50000, itf, name, ins, outs, object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    w.connect(1, 50001)  # a reconnect: same IPID, new TCP connection
    w.call(1, 50001, S2, "CprepDiskPRArbitrate", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    # IClusterStorage3's IPID, first seen here, joins the object this connection is using
    w.call(1, 50001, S3, "CprepDiskIsReadOnly3", dict(DiskId=DISK), dict(pbReadOnly=0), object_id=str(ipid(0x101)))
    assert w.rules() == []


def test_two_objects_on_one_connection_do_not_share_state():
    w = Wire(clusprep_preparation.PrepareNodeNotFirst, clusprep_preparation.Phase2Missing, clusprep_preparation.DiskNotAttached)
    w.connect(0, 50000)
    for itf, name, ins, outs in PREPARE:
        w.call(0, 50000, itf, name, ins, outs, object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    # a second ClusterStorage2 object (its own IClusterStorage2 IPID) on the same connection
    w.call(0, 50000, S2, "CprepDiskPRArbitrate", dict(DiskId=DISK), object_id=str(ipid(0x200)))
    # its first call is not CprepPrepareNode but is served: an object prepared before the capture
    # (no C08); its state is unknown, so C09 and C28 are not judged for it
    assert w.rules() == []


def test_an_object_first_seen_mid_conversation_is_not_judged_on_a_new_connection():
    """Its state began before the capture: the rules that need it say so instead of guessing."""
    w = Wire(clusprep_preparation.PrepareNodeNotFirst, clusprep_preparation.Phase2Missing)
    # stream 0: no bind in the capture
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    w.connect(1, 50001)
    w.call(1, 50001, S2, "CprepDiskPRArbitrate", dict(DiskId=DISK), object_id=str(ipid(0x100)))
    assert w.rules() == []
    conv = w.tracker.conversations[1]
    assert conv.started and conv.inherited


def _prepared(*rules):
    w = Wire(*rules)
    w.connect(0, 50000)
    for itf, name, ins, outs in PREPARE:
        w.call(0, 50000, itf, name, ins, outs, object_id=str(ipid(0x100)))
    return w


def test_set_online_leaves_the_online_state_open_until_an_answer_settles_it():
    """3.2.4.26 only starts the transition: IsOnline may still say ERROR_NOT_READY, and a file
    system call may be served; once IsOnline says S_OK the disk is Online."""
    w = _prepared(clusprep_disk_answers.DiskQueryAnswer, clusprep_preparation.DiskStateNotEnforced)
    o = dict(object_id=str(ipid(0x100)))
    for name, outs in (("CprepDiskAttach", None), ("CprepDiskPRArbitrate", None), ("CprepDiskSetOnline", None)):
        w.call(0, 50000, S2, name, dict(DiskId=DISK), outs, **o)
    w.call(0, 50000, S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=0x80070015, **o)
    w.call(0, 50000, S2, "CprepDiskIsOnline", dict(DiskId=DISK), **o)
    assert w.rules() == []
    w.call(0, 50000, S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=0x80070015, **o)  # now it is online
    assert w.rules() == [("clusprep.disk_query_answer", "C24")]


def test_phase2_builds_the_disk_list_anew():
    """A disk attached before a second Phase2 is Not Attached after it (3.2.4.4)."""
    w = _prepared(clusprep_preparation.DiskNotAttached)
    o = dict(object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), **o)
    w.call(0, 50000, S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3), **o)
    w.call(0, 50000, S2, "CprepDiskIsReadable", dict(DiskId=DISK), **o)
    assert w.rules() == [("clusprep.disk_not_attached", "C28")]


def test_a_device_number_past_the_disk_count_is_no_proof_of_anything():
    """Windows disk numbers keep gaps after a LUN removal (READINGS["C56"]): device 3 of 3 is judged
    by what the server answers of it, not by the count."""
    w = _prepared(clusprep_disk_answers.UnknownDiskAnswer, clusprep_disk_answers.DiskIdInvalid, clusprep_disk_answers.UnattachedDiskAnswer)
    far = dict(DiskIdType="CprepIdNumber", DeviceNumber=3)
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=far), object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskIsReadable", dict(DiskId=far), object_id=str(ipid(0x100)))
    assert w.rules() == []


def _unknown(w, stream=1, port=50001):
    """A connection to an object whose start the capture lacks: a bind, then not CprepPrepareNode."""
    w.connect(stream, port)
    return dict(object_id=str(ipid(0x300)))


def test_an_object_whose_first_call_is_not_prepare_node_has_an_unknown_state():
    """A bind proves a new connection, not a new object: served calls are not accused, the rules
    that need the state are listed as not evaluated, and the client's first call, served, is no C08."""
    w = Wire(*ALL)
    o = _unknown(w)
    for name in ("CprepDiskAttach", "CprepDiskPRArbitrate", "CprepDiskIsReadable", "CprepDiskOffline"):
        w.call(1, 50001, S2, name, dict(DiskId=DISK), **o)
    w.call(1, 50001, S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=0x80070015, **o)
    assert w.rules() == [] and w.sink.items == []
    skipped = {r for n in w.sink.not_evaluated() for r in n.rules}
    assert {"clusprep.prepare_state_not_enforced", "clusprep.phase2_missing", "clusprep.disk_state_not_enforced",
            "clusprep.disk_query_answer", "clusprep.disk_not_attached"} <= skipped
    # a Phase2 served establishes the state: Online, every disk Not Attached (3.2.4.4)
    w.call(1, 50001, S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), dict(pulNumDisks=3), **o)
    w.call(1, 50001, S2, "CprepDiskIsReadable", dict(DiskId=DISK), **o)
    assert ("clusprep.disk_not_attached", "C28") in w.rules()


def test_a_prepare_node_refused_for_the_server_state_makes_the_state_unknown():
    """3.2.1: one Prepare State per server; another object prepared it. The refusal is not accused,
    nor are the calls after it."""
    w = _prepared(*ALL)
    o = dict(object_id=str(ipid(0x400)))
    w.call(0, 50000, S2, "CprepPrepareNode", hresult=0x80070548, **o)
    w.call(0, 50000, S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=disk_props()), **o)
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), **o)
    assert w.rules() == [("clusprep.server_rejected_state", "")]  # an observation only


def test_a_refusal_for_the_disk_state_makes_owned_and_online_unknown():
    """After ERROR_INVALID_STATE or ERROR_NOT_READY a local event (3.2.6) may have taken the disk:
    the next answers are not judged against the state before."""
    w = _prepared(clusprep_preparation.DiskStateNotEnforced, clusprep_disk_answers.DiskQueryAnswer, clusprep_disk_answers.DiskCallRefused)
    o = dict(object_id=str(ipid(0x100)))
    for name, outs in (("CprepDiskAttach", None), ("CprepDiskPRArbitrate", None),
                       ("CprepDiskOnline", dict(MaxPartitionNumber=1))):
        w.call(0, 50000, S2, name, dict(DiskId=DISK), outs, **o)
    w.call(0, 50000, S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), hresult=0x80070015, **o)
    w.call(0, 50000, S2, "CprepDiskIsOnline", dict(DiskId=DISK), hresult=0x80070015, **o)  # C24 not judged
    w.call(0, 50000, S2, "CprepDiskOnline", dict(DiskId=DISK), hresult=0x8007139F, **o)  # C21 not judged
    assert w.rules() == []
    w.call(0, 50000, S2, "CprepDiskOffline", dict(DiskId=DISK), **o)  # Not Online again, known
    w.call(0, 50000, S2, "CprepDiskOffline", dict(DiskId=DISK), **o)
    assert w.rules() == [("clusprep.disk_state_not_enforced", "C15")]


def test_malformed_answers_never_raise():
    """Answers whose values are out of every range the rules compare: findings, no exception."""
    w = _prepared(*ALL)
    o = dict(object_id=str(ipid(0x100)))
    w.call(0, 50000, S2, "CprepDiskAttach", dict(DiskId=DISK), **o)
    w.call(0, 50000, S2, "CprepDiskRawRead", dict(DiskId=DISK, ulSector=0xFFFFFFFF, cbData=0xFFFFFFFF),
           dict(pcbDataRead=0xFFFFFFFF), **o)
    w.call(0, 50000, S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=0xFFFFFFFF), dict(FsName="N" * 100), **o)
    bad = dict(disk_props(), StackType=7, DiskNumber=0xFFFFFFFF)
    w.call(0, 50000, S2, "CprepDiskGetProps", dict(DiskId=DISK), dict(DiskProps=bad), **o)
    assert ("clusprep.disk_props_invalid", "C57") in w.rules()


def test_stop_defense_needs_the_disk_offline_now():
    """Arbitrate -> Online -> Offline -> Online -> StopDefense: an Offline came after the Arbitrate,
    but the disk is online again (3.2.4.6 wants it Not Online)."""
    w = _prepared(clusprep_preparation.StopDefenseOrder)
    o = dict(object_id=str(ipid(0x100)))
    for name, outs in (("CprepDiskAttach", None), ("CprepDiskPRArbitrate", None),
                       ("CprepDiskOnline", dict(MaxPartitionNumber=1)), ("CprepDiskOffline", None)):
        w.call(0, 50000, S2, name, dict(DiskId=DISK), outs, **o)
    w.call(0, 50000, S2, "CprepDiskOnline", dict(DiskId=DISK), dict(MaxPartitionNumber=1), **o)
    w.call(0, 50000, S2, "CprepDiskStopDefense", dict(DiskId=DISK), **o)
    assert w.rules() == [("clusprep.stop_defense_order", "C20")]


def test_partition_methods_need_cprep_disk_online_not_set_online():
    w = _prepared(clusprep_preparation.DiskNotOnline)
    o = dict(object_id=str(ipid(0x100)))
    for name in ("CprepDiskAttach", "CprepDiskPRArbitrate", "CprepDiskSetOnline"):
        w.call(0, 50000, S2, name, dict(DiskId=DISK), **o)
    w.call(0, 50000, S2, "CprepDiskIsOnline", dict(DiskId=DISK), **o)
    w.call(0, 50000, S2, "CprepDiskOffline", dict(DiskId=DISK), **o)  # online, however it got there: fine
    assert w.rules() == []
    w.call(0, 50000, S2, "CprepDiskSetOnline", dict(DiskId=DISK), **o)
    w.call(0, 50000, S2, "CprepDiskGetFSName", dict(DiskId=DISK, Partition=1), dict(FsName="NTFS"), **o)
    assert w.rules() == [("clusprep.disk_not_online", "C30")]
