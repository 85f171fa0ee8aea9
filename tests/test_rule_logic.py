"""The ClusPrep rules' logic, fed synthetic call sequences through the reconstruction (the way
the spec-conformance review reproduced each flaw): every fixed flaw has its regression test and
a near miss that must stay quiet."""
from construct import Container

from analyzer.rules import clusprep_object_state, clusprep_preparation
from analyzer.reconstruction.clusprep_records import Call, Conversation
from analyzer.reconstruction.clusprep_sequences import ClusPrepTracker
from analyzer.reconstruction.bus import Bus
from analyzer.rules.findings import Findings
from analyzer.reconstruction.tables import Tables

DISK = Container(DiskIdType=1, DiskGuid="6f1d0c2e-5b3a-4e7f-9a21-c4d8e2f71a30")
E_WRONG_DISK, FILE_NOT_FOUND = 0x80070022, 0x80070002


UNANSWERED = "unanswered"


def run(rule_cls, calls, server="10.0.0.11:49668", stream=0):
    """Feed (interface, method, request params, response params, HRESULT or UNANSWERED) through the
    tracker as the capture would (each request, then its answer; unanswered calls at the end);
    return the findings' (rule, methods). A call may name its node first: (server, interface, ...),
    each node a conversation of its own."""
    sink = Findings()
    bus = Bus([rule_cls(sink)])
    tracker = ClusPrepTracker(bus, Tables(keep=False))
    convs = {}
    pending = []
    calls = [c if len(c) == 5 else (server,) + tuple(c) for c in calls]
    for n, (node, itf, method, ins, outs) in enumerate(calls):
        conv = convs.get(node)
        if conv is None:
            conv = convs[node] = Conversation(stream + len(convs), "10.0.0.31:50000", node, started=True)
        frame = 2 * n + 10
        c = Call(conv, itf, method, 0, n + 1, frame, float(n), 6, False)
        c.request = Container(ins or {})
        bus.emit("call_request", c)
        if outs == UNANSWERED:
            pending.append(c)
            continue
        result = outs if isinstance(outs, dict) else {}
        c.response = Container(dict(result, ReturnValue=outs if isinstance(outs, int) else 0))
        c.response_frame, c.response_time = frame + 1, n + 0.001
        tracker.done(c)
    for c in pending:
        tracker.done(c)
    by_frame = {2 * n + 10: m for n, (_, _, m, _, _) in enumerate(calls)}
    return [(f.rule, tuple(by_frame.get(x, "?") for x in f.frames)) for f in sink.items]


S2 = "IClusterStorage2"


def disk(method, outs=None, **params):
    return (S2, method, dict(DiskId=DISK, **params), outs)


PREPARED = [(S2, "CprepPrepareNode", {}, None), (S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), None),
            disk("CprepDiskAttach")]


def test_stop_defense_needs_the_disk_offline_now_not_once():
    """Logic error 1: a second Arbitrate -> Online -> StopDefense cycle lacks its Offline."""
    first = [disk("CprepDiskPRArbitrate"), disk("CprepDiskOnline", dict(MaxPartitionNumber=1)),
             disk("CprepDiskOffline"), disk("CprepDiskStopDefense")]
    assert run(clusprep_preparation.StopDefenseOrder, PREPARED + first) == []  # the near miss: a correct cycle
    second = first + [disk("CprepDiskPRArbitrate"), disk("CprepDiskOnline", dict(MaxPartitionNumber=1)),
                      disk("CprepDiskStopDefense")]
    assert run(clusprep_preparation.StopDefenseOrder, PREPARED + second) == [("clusprep.stop_defense_order", ("CprepDiskStopDefense",))]


def test_reserve_needs_a_registration_in_effect():
    """Logic error 1, PR half: Register -> UnRegister -> Reserve."""
    ok = [disk("CprepDiskPRClear"), disk("CprepDiskPRRegister"), disk("CprepDiskPRReserve"),
          disk("CprepDiskPRRelease"), disk("CprepDiskPRClear"), disk("CprepDiskPRUnRegister")]
    assert run(clusprep_preparation.PrSequence, PREPARED + ok) == []
    bad = [disk("CprepDiskPRRegister"), disk("CprepDiskPRUnRegister"), disk("CprepDiskPRReserve")]
    assert run(clusprep_preparation.PrSequence, PREPARED + bad) == [("clusprep.pr_sequence", ("CprepDiskPRReserve",))]
    released = [disk("CprepDiskPRClear"), disk("CprepDiskPRRegister"), disk("CprepDiskPRReserve"),
                disk("CprepDiskPRRelease"), disk("CprepDiskPRRelease3")]
    assert run(clusprep_preparation.PrSequence, PREPARED + released) == [("clusprep.pr_sequence", ("CprepDiskPRRelease3",))]


def test_a_reservation_is_the_disks_whichever_node_made_it():
    """Issue 23: a PR test reserves from one node and preempts from another (SPC-3: PREEMPT is what an
    initiator that does not hold the reservation sends); 3.3.4.6 orders calls "for a particular disk",
    so the second node's Preempt follows the first node's Reserve. A GUID names the disk on both."""
    a, b = "10.0.0.11:49668", "10.0.0.12:49668"
    on = lambda node, calls: [(node,) + c for c in calls]
    node_a = on(a, PREPARED + [disk("CprepDiskPRClear"), disk("CprepDiskPRRegister"), disk("CprepDiskPRReserve")])
    node_b = on(b, PREPARED + [disk("CprepDiskPRRegister"), disk("CprepDiskPRPreempt")])
    assert run(clusprep_preparation.PrSequence, node_a + node_b) == []
    # near misses: nobody holds it (node A released it first), or node B preempts a disk of its own
    released = node_a + on(a, [disk("CprepDiskPRRelease")])
    assert run(clusprep_preparation.PrSequence, released + node_b) == [("clusprep.pr_sequence", ("CprepDiskPRPreempt",))]
    other_disk = [(n, i, m, dict(p, DiskId=Container(DiskIdType=0, DiskSignature=0x1234)), o)
                  for n, i, m, p, o in node_b]
    assert run(clusprep_preparation.PrSequence, node_a + other_disk) == [("clusprep.pr_sequence", ("CprepDiskPRPreempt",))]
    # a release by the node that does not hold it leaves the reservation where it is (SPC-3 5.7.11.2)
    assert run(clusprep_preparation.PrSequence, node_a + on(b, PREPARED + [disk("CprepDiskPRRegister"), disk("CprepDiskPRRelease")])
               + on(b, [disk("CprepDiskPRPreempt")])) == []
    # a Clear from either node removes every registration: the other node's Reserve then lacks one
    cleared = node_a + on(b, PREPARED + [disk("CprepDiskPRRegister"), disk("CprepDiskPRClear")])
    assert run(clusprep_preparation.PrSequence, cleared + on(a, [disk("CprepDiskPRReserve")])) == [
        ("clusprep.pr_sequence", ("CprepDiskPRReserve",))]


def test_only_ntfs_verifies_a_partition():
    """Logic error 2: GetFSName answering FAT does not make file access safe."""
    online = PREPARED + [disk("CprepDiskPRArbitrate"), disk("CprepDiskOnline", dict(MaxPartitionNumber=2))]
    write = disk("CprepDiskWriteFileData", ulPartition=1)
    fat = online + [disk("CprepDiskGetFSName", dict(FsName="FAT32\x00"), Partition=1), write]
    assert run(clusprep_preparation.FsAccessUnverified, fat) == [("clusprep.fs_access_unverified", ("CprepDiskWriteFileData",))]
    ntfs = online + [disk("CprepDiskGetFSName", dict(FsName="NTFS\x00\x00"), Partition=1), write]
    assert run(clusprep_preparation.FsAccessUnverified, ntfs) == []
    not_ntfs = online + [disk("CprepDiskDiskPartitionIsNtfs", E_WRONG_DISK, ulPartition=1), write]
    assert run(clusprep_preparation.FsAccessUnverified, not_ntfs) == [("clusprep.fs_access_unverified", ("CprepDiskWriteFileData",))]


def test_secret_from_an_earlier_activation_is_fine_and_a_lost_one_is_the_servers_fault():
    """Logic error 3: RetrieveSvcSecret without a ConfigSvcSecret in the capture, answered S_OK or
    ERROR_FILE_NOT_FOUND, is correct; ERROR_FILE_NOT_FOUND after one, on another connection to the
    same server, is not."""
    retrieve_ok = ("IClusterSetup", "RetrieveSvcSecret", {}, dict(SecretBLOB="s"))
    retrieve_fnf = ("IClusterSetup", "RetrieveSvcSecret", {}, FILE_NOT_FOUND)
    config = ("IClusterSetup", "ConfigSvcSecret", dict(SecretBLOB="s"), None)
    assert run(clusprep_object_state.SecretNotConfigured, [retrieve_ok]) == []
    assert run(clusprep_object_state.SecretNotConfigured, [retrieve_fnf]) == []
    assert run(clusprep_object_state.SecretNotConfigured, [config, retrieve_ok]) == []
    found = run(clusprep_object_state.SecretNotConfigured, [config, retrieve_fnf])
    assert found == [("clusprep.secret_not_configured", ("ConfigSvcSecret", "RetrieveSvcSecret", "?"))]


def test_every_call_before_phase2_is_named():
    """Logic error 6: not only the first call made before CprepPrepareNodePhase2."""
    calls = [(S2, "CprepPrepareNode", {}, None), disk("CprepDiskAttach"), disk("CprepDiskGetProps"),
             (S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), None), disk("CprepDiskIsOnline")]
    assert run(clusprep_preparation.Phase2Missing, calls) == [("clusprep.phase2_missing", ("CprepDiskAttach",)),
                                           ("clusprep.phase2_missing", ("CprepDiskGetProps",))]


def test_query_firewall_configuration_is_served_before_initialize_node():
    """Logic error 7: 3.6.4 treats QueryFirewallConfiguration like GetIpConfigSerialized."""
    N = "IClusterNetwork2"
    calls = [(N, "QueryFirewallConfiguration", {}, None), (N, "GetIpConfigSerialized", {}, None),
             (N, "SendRTMessage", {}, None)]
    assert run(clusprep_object_state.NetworkNotInitialized, calls) == [("clusprep.network_not_initialized", ("SendRTMessage",))]


def test_unregister_with_no_register_at_all_is_named():
    """The fuzzer's find: UnRegister on a disk that never saw a Register (no state to read)."""
    assert run(clusprep_preparation.PrSequence, PREPARED + [disk("CprepDiskPRUnRegister")]) == [
        ("clusprep.pr_sequence", ("CprepDiskPRUnRegister",))]


def test_prepare_node_is_first_in_request_order_even_unanswered():
    """Logic error 5, its first half: ordering judged as requests arrive, not as answers do."""
    calls = [(S2, "CprepPrepareNode", {}, UNANSWERED), (S2, "CprepPrepareNodePhase2",
                                                        dict(AttachDisksOnSystemBus=1), None)]
    assert run(clusprep_preparation.PrepareNodeNotFirst, calls) == []
    refused = [(S2, "CprepPrepareNodePhase2", dict(AttachDisksOnSystemBus=1), 0x80070548), calls[0]]
    assert run(clusprep_preparation.PrepareNodeNotFirst, refused) == [
        ("clusprep.prepare_node_not_first", ("CprepPrepareNodePhase2", "?"))]


def test_a_first_call_served_is_a_reconnect_not_a_violation():
    """A bind proves a new connection, not a new object: served, the object was prepared before."""
    served = [(S2, "CprepDiskGetProps", dict(DiskId=DISK), None)]
    assert run(clusprep_preparation.PrepareNodeNotFirst, served) == []
