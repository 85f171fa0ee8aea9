"""MS-CSVP rules on preparing a node and its disks (the rules on the node's answers about disks
are clusprep_disk_answers'). State lives per DCOM object (its IPIDs, on whatever connection:
IClusterStorage2 and IClusterStorage3 share one; analyzer.reconstruction.clusprep_identities) and, where stubs
are readable, per disk, whatever CPREP_DISKID form names it. Rules that read parameters or
results say so (needs_stub); a sealed conversation lists them as not evaluated instead of
passing them silently.

The server rules judge an answer against the state the spec defines when the request came
(Prepare State; a disk's Attached, Owned and Online states), rebuilt from the answers the
capture holds. They need the object from its start (needs_start): one first seen mid-conversation
is listed as not evaluated. A bind proves a new connection, not a new object, so an object is
taken as new (Prepare State Initial) only when its first captured call is CprepPrepareNode;
otherwise its Prepare State and disk states are unknown until an answer establishes them (a
CprepPrepareNodePhase2 served), and the rules that judge against them list it as not evaluated
(UNKNOWN_STATE). A refusal is judged wrong only where a success in the capture established the
state that allows the call.
"""
from __future__ import annotations

from typing import List, Set, Tuple

from ..reconstruction.clusprep_records import (ERROR_INVALID_SERVER_STATE, ERROR_INVALID_STATE, UNKNOWN, Call,
                                               DiskState, base_method)
from ..reconstruction.decoding import HRESULT_CODE, HRESULTS
from .findings import Rule

# §3.2.4 and §3.4.4: what each method requires of the ClusPrepDisk it names
ATTACHED = {
    "CprepDiskRawRead", "CprepDiskRawWrite", "CprepDiskVerifyUnique", "CprepDiskPRArbitrate", "CprepDiskPRRegister",
    "CprepDiskPRUnRegister", "CprepDiskPRReserve", "CprepDiskPRRelease", "CprepDiskGetArbSectors",
    "CprepDiskIsPRPresent", "CprepDiskPRPreempt", "CprepDiskPRClear", "CprepDiskIsOnline", "CprepDiskIsReadable",
    "CprepDiskIsReadOnly3", "CprepDiskPRRegister3", "CprepDiskFindKey3", "CprepDiskPRPreempt3", "CprepDiskPRReserve3",
    "CprepDiskIsPRPresent3", "CprepDiskPRRelease3", "CprepDiskPRClear3"}
OWNED = {"CprepDiskStopDefense", "CprepDiskOnline", "CprepDiskSetOnline"}
ONLINE = {"CprepDiskWriteFileData", "CprepDiskVerifyFileData", "CprepDiskDeleteFile", "CprepDiskOffline",
          "CprepDiskDiskPartitionIsNtfs", "CprepDiskGetFSName"}
NEEDS_ATTACH = ATTACHED | OWNED | ONLINE  # the owned and online states need Attached first (§3.2.4)
PARTITION = {"CprepDiskWriteFileData": "ulPartition", "CprepDiskVerifyFileData": "ulPartition",
             "CprepDiskDeleteFile": "ulPartition", "CprepDiskDiskPartitionIsNtfs": "ulPartition",
             "CprepDiskGetFSName": "Partition"}
FILE_ACCESS = {"CprepDiskWriteFileData", "CprepDiskVerifyFileData", "CprepDiskDeleteFile"}
STORAGE = {"IClusterStorage2", "IClusterStorage3"}
REJECTED_STATE = {c: HRESULTS[c] for c in (ERROR_INVALID_SERVER_STATE, ERROR_INVALID_STATE)}
E_FAIL, E_INVALIDARG = HRESULT_CODE["E_FAIL"], HRESULT_CODE["E_INVALIDARG"]
ERROR_READ_FAULT, ERROR_WRITE_FAULT = HRESULT_CODE["ERROR_READ_FAULT"], HRESULT_CODE["ERROR_WRITE_FAULT"]
ERROR_UNRECOGNIZED_VOLUME = HRESULT_CODE["ERROR_UNRECOGNIZED_VOLUME"]
ERROR_INSUFFICIENT_BUFFER = HRESULT_CODE["ERROR_INSUFFICIENT_BUFFER"]
SECTOR = 512  # CprepDiskRawRead/RawWrite move one 512-byte sector (3.2.4.1, 3.2.4.2)
# 3.2.4: served whatever the disk's state
ANY_DISK_STATE = {"CprepDiskGetProps", "CprepDiskGetProps3", "CprepDiskGetUniqueIds", "CprepDiskGetUniqueIds3",
                  "CprepDiskAttach"}
MAX_PATHS = 256  # share paths judged per answer
UNKNOWN_STATE = ("its storage object's first call in the capture is not CprepPrepareNode (a reconnect, a second "
                 "connection for a concurrent call, or a capture begun mid-validation: a bind proves a new connection, "
                 "not a new object), or the server refused its CprepPrepareNode for a Prepare State another object "
                 "set: its Prepare State and disk states are unknown until a CprepPrepareNodePhase2 answer sets them")


def hr(value: int) -> str:
    return HRESULTS.get(value, "0x%08X" % value)


class PrepareNodeNotFirst(Rule):
    id, severity, spec = "clusprep.prepare_node_not_first", "error", "MS-CSVP 3.3.4.1, 3.5.4.1"
    checks = ("C08",)
    title = "The client called a storage method before preparing the node (CprepPrepareNode)"
    advice = ("The validation client skipped CprepPrepareNode on this object; check the client's validation log for "
              "an earlier failure or a reconnect to an object prepared before the capture.")
    needs_start = True

    # A bind proves a new connection, not a new object: a reconnect to an object prepared on a
    # connection the capture lacks starts with any method. Only the server's answer tells them
    # apart: the first call refused with ERROR_INVALID_SERVER_STATE shows an object in the Initial
    # state (3.2.4), so the client called out of order; served, the object was prepared before;
    # sealed, faulted or unanswered, it is not evaluated.

    def __init__(self, sink):
        super().__init__(sink)
        self.started: Set[Tuple] = set()
        self.first: Set[Tuple[int, int]] = set()  # (stream, call_id) of first calls that are not CprepPrepareNode

    def on_call_request(self, c: Call):
        # in request order: a CprepPrepareNode whose answer never comes is still first
        if c.interface not in STORAGE or c.dcom_object in self.started or not c.used_on_wire:
            return
        self.started.add(c.dcom_object)
        if c.method != "CprepPrepareNode":
            self.first.add((c.conversation.stream, c.call_id))

    def on_call(self, c: Call):
        key = (c.conversation.stream, c.call_id)
        if key not in self.first:
            return
        self.first.discard(key)
        if c.hresult == ERROR_INVALID_SERVER_STATE:
            self.report([c.request_frame, c.response_frame], "%s is the first call on the storage object, and the "
                        "server's ERROR_INVALID_SERVER_STATE shows the object was not prepared: CprepPrepareNode must "
                        "come before any other method" % c.method, c.subject)
        elif c.hresult is None:
            self.cannot_evaluate(c.subject, "the first call on a storage object is not CprepPrepareNode and its "
                                 "answer is %s: only an ERROR_INVALID_SERVER_STATE answer shows the object was not "
                                 "prepared on a connection the capture lacks" % c.result_text)


class Phase2Missing(Rule):
    id, severity, spec = "clusprep.phase2_missing", "error", "MS-CSVP 3.3.4.1, 3.5.4.1"
    checks = ("C09",)
    title = "The client called a storage method before the node's second preparation step completed"
    advice = ("Look for CprepPrepareNodePhase2 on this object: it failed or never came, so later calls hit an "
              "unprepared node; check the validation report's storage enumeration step for its error.")
    needs_start = True

    # Judged where the capture shows the object's Prepare State: Initial or Preparing is a Phase2 not
    # yet completed; an object whose start the capture lacks may have completed it before.

    def on_call(self, c: Call):
        if c.interface not in STORAGE or not c.used_on_wire or c.method in (
                "CprepPrepareNode", "CprepPrepareNodePhase2"):
            return
        if c.prepare_state == UNKNOWN:
            self.cannot_evaluate(c.subject, UNKNOWN_STATE)
        elif c.prepare_state != "Online":
            # every call made before Phase2 completed, each one its own finding
            self.report([c.request_frame], "%s before CprepPrepareNodePhase2 completed" % c.method, c.subject)


class Phase2BadArgument(Rule):
    id, severity, spec = "clusprep.phase2_bad_argument", "error", "MS-CSVP 3.2.4.4"
    checks = ("C10",)
    title = "The client passed AttachDisksOnSystemBus other than 1 to the second preparation step"
    advice = ("Check the validation tool's version: CprepPrepareNodePhase2 must pass AttachDisksOnSystemBus 1; any "
              "other value suggests a third-party or outdated validation client.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.method == "CprepPrepareNodePhase2" and c.readable and c.param("AttachDisksOnSystemBus") != 1:
            self.report([c.request_frame], "CprepPrepareNodePhase2 with AttachDisksOnSystemBus %d (must be 1)"
                        % c.param("AttachDisksOnSystemBus"), c.subject)


class DiskRule(Rule):
    """A rule over one disk's state before a call (kept once, by the reconstruction)."""

    needs_start = True  # a disk's state comes from the calls before
    needs_stub = True
    needs_known = True  # judged against what the object's disks are, which its start in the capture shows

    def on_call(self, c: Call):
        if c.interface in STORAGE and c.disk_state is not None:
            if self.needs_known and not c.disks_known:
                self.cannot_evaluate(c.subject, UNKNOWN_STATE)
                return
            self.check(c, c.disk_state)

    def check(self, c: Call, d: DiskState):
        raise NotImplementedError


class DiskNotAttached(DiskRule):
    id, severity, spec = "clusprep.disk_not_attached", "error", "MS-CSVP 3.3.4.2, 3.5.4.2"
    checks = ("C28",)
    title = "The client used a disk it had not attached (no CprepDiskAttach)"
    advice = ("Find the CprepDiskAttach for this disk: the client used the disk without one, or after its attach "
              "failed; check the validation log for that disk's attach error and the disk ID passed.")

    def check(self, c, d):
        if c.method in NEEDS_ATTACH and not d.attached:
            self.report([c.request_frame], "%s on disk %s, which no CprepDiskAttach attached" % (c.method, c.disk),
                        c.subject)


class ServerDiskRule(DiskRule):
    """A server rule over one disk: the answer is read against the state before the call, once the
    object is prepared (before that, clusprep.prepare_state_not_enforced judges the answer)."""

    side = "server"

    def on_call(self, c: Call):
        if c.hresult is not None and c.prepare_state in ("Online", UNKNOWN):
            super().on_call(c)


class DiskStateNotEnforced(ServerDiskRule):
    id, severity, spec = "clusprep.disk_state_not_enforced", "error", "MS-CSVP 3.2.4, 3.4.4"
    title = "The node did not refuse as required a call on a disk it does not own or that is offline"
    advice = ("The node served a call needing ownership or online state the disk lacked; check the node's System "
              "event log for disk arbitration or online events and whether another tool touched the disk.")
    checks = ("C14", "C15")
    # "owned": a successful CprepDiskPRArbitrate since the last CprepDiskStopDefense (3.2.1). Judged on an
    # attached disk: on one not attached, 3.2.4 and 3.4.4 ask for different codes (SHOULD;
    # clusprep.unattached_disk_answer). After a CprepDiskSetOnline no answer has yet said whether the
    # disk came online (3.2.4.26 only starts it), so the online state is not judged until one does.
    # CprepCsvTestSetup3 and CprepConnectToNewSmbShares3 (3.4.4 lists them too) name no disk: not judged.

    # After a refusal with ERROR_INVALID_STATE or ERROR_NOT_READY the owned and online states may have
    # changed by local events (3.2.6, arbitration lost to another node): not judged until an answer
    # sets them again (DiskState.owned_known, online_known).

    def check(self, c, d):
        if not d.attached or c.hresult == ERROR_INVALID_STATE:
            return
        if c.method in OWNED and not d.owned and d.owned_known:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; no CprepDiskPRArbitrate "
                        "made it OwnedByThisServer, so it must be ERROR_INVALID_STATE" % (c.method, c.disk, c.result_text),
                        c.subject, check="C14")
        elif c.method in ONLINE and not d.online and not d.online_pending and d.online_known:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; the disk is not Online (%s), "
                        "so it must be ERROR_INVALID_STATE" % (
                            c.method, c.disk, c.result_text, "no CprepDiskOnline made it so" if not d.owned or
                            "CprepDiskOnline" not in d.seen else "CprepDiskOffline took it offline"),
                        c.subject, check="C15")


class DiskNotOnline(DiskRule):
    id, severity, spec = "clusprep.disk_not_online", "error", "MS-CSVP 3.3.4.4, 3.5.4.4"
    checks = ("C30",)
    title = "The client used a disk it had not brought online (CprepDiskOnline)"
    advice = ("The client used partitions or files on a disk it never brought online with CprepDiskOnline; check the "
              "validation log for that disk's online step failing or being skipped.")
    # 3.3.4.4 names CprepDiskOnline: CprepDiskSetOnline only starts the transition and returns no
    # MaxPartitionNumber to number partitions by. CprepDiskOffline needs the disk online either way.

    def check(self, c, d):
        if c.method in PARTITION and not d.online_called:
            self.report([c.request_frame], "%s on disk %s, which %s" % (
                c.method, c.disk, "only CprepDiskSetOnline started bringing online; CprepDiskOnline must come first"
                if d.online else "is not online"), c.subject)
        elif c.method in ONLINE and not d.online:
            self.report([c.request_frame], "%s on disk %s, which is not online" % (c.method, c.disk), c.subject)


class StopDefenseOrder(DiskRule):
    id, severity, spec = "clusprep.stop_defense_order", "error", "MS-CSVP 3.2.4.6, 3.3.4.6, 3.5.4.6"
    checks = ("C20",)
    title = "The client stopped defending a disk without arbitrating for it and taking it offline first"
    advice = ("Check this disk's calls in order: CprepDiskStopDefense needs an arbitrate and then an offline first; a "
              "missing offline usually follows an earlier failure in the disk failover test.")

    def check(self, c, d):
        # the state now, not the history: a second Arbitrate -> Online -> StopDefense cycle lacks its Offline
        if c.method == "CprepDiskStopDefense":
            missing = []
            if not d.owned:
                missing.append("a CprepDiskPRArbitrate since the last CprepDiskStopDefense")
            elif not d.offline_since_arbitrate:
                missing.append("a CprepDiskOffline since the last CprepDiskPRArbitrate")
            elif d.online:  # 3.2.4.6: the disk Not Online, now (an Online after the Offline undoes it)
                missing.append("a CprepDiskOffline since its last CprepDiskOnline or CprepDiskSetOnline")
            if missing:
                self.report([c.request_frame], "CprepDiskStopDefense on disk %s without %s"
                            % (c.disk, " and ".join(missing)), c.subject)


class PrSequence(DiskRule):
    id, severity, spec = "clusprep.pr_sequence", "warning", "MS-CSVP 3.3.4.6, 3.5.4.6"
    level, checks = "SHOULD", ("C33", "C34", "C35", "C36", "C37", "C38", "C39", "C40")
    title = "The client issued persistent reservation (PR) calls out of order"
    advice = ("Read the disk's persistent-reservation calls in order (clear, register, reserve, preempt, release); a "
              "step out of order usually follows a failed call, so check the validation's SCSI-3 PR test.")
    # What each call needs, the call that gives it, and the inventory rule. Reserve, Preempt and Release
    # need it in effect now (Register -> UnRegister -> Reserve is out of order); UnRegister only a
    # Register before it: unregistering what a Clear already removed is a harmless cleanup (SPC-3
    # 5.7.7). A registration or reservation made through either interface counts for both.
    BEFORE = {"CprepDiskPRUnRegister": ("C33", None, "CprepDiskPRRegister"),
              "CprepDiskPRReserve": ("C34", "registered", "CprepDiskPRRegister"),
              "CprepDiskPRPreempt": ("C35", "reserved", "CprepDiskPRReserve"),
              "CprepDiskPRRelease": ("C36", "reserved", "CprepDiskPRReserve"),
              "CprepDiskPRReserve3": ("C38", "registered", "CprepDiskPRRegister3"),
              "CprepDiskFindKey3": ("C38", "registered", "CprepDiskPRRegister3"),
              "CprepDiskIsPRPresent3": ("C39", "reserved", "CprepDiskPRReserve3"),
              "CprepDiskPRPreempt3": ("C39", "reserved", "CprepDiskPRReserve3"),
              "CprepDiskPRRelease3": ("C39", "reserved", "CprepDiskPRReserve3")}
    # The Clear -> Register -> Reserve(3) sequence (C37, C40): judged at the Reserve that completes it.
    SEQUENCE = {"CprepDiskPRReserve": ("C37", "CprepDiskPRClear", "CprepDiskPRRegister"),
                "CprepDiskPRReserve3": ("C40", "CprepDiskPRClear3", "CprepDiskPRRegister3")}

    def check(self, c, d):
        need = self.BEFORE.get(c.method)
        if need is not None:
            check, state, giver = need
            if (base_method(giver) not in d.seen) if state is None else not getattr(d, state):
                undone = {"registered": "CprepDiskPRUnRegister or CprepDiskPRClear",
                          "reserved": "CprepDiskPRRelease, CprepDiskPRUnRegister or CprepDiskPRClear"}.get(state, "")
                why = ("before any %s" % giver) if base_method(giver) not in d.seen else (
                    "while no %s is in effect (undone by %s)" % (giver, undone))
                self.report([c.request_frame], "%s on disk %s %s" % (c.method, c.disk, why), c.subject, check=check)
                return
        seq = self.SEQUENCE.get(c.method)
        if seq is not None and d.registered and not d.register_cleared:
            self.report([c.request_frame], "%s on disk %s completes a %s -> %s sequence with no %s before the %s"
                        % (c.method, c.disk, seq[2], c.method, seq[1], seq[2]), c.subject, check=seq[0])


class PartitionOutOfRange(DiskRule):
    id, severity, spec = "clusprep.partition_out_of_range", "warning", "MS-CSVP 3.3.4.4, 3.5.4.4"
    level, checks = "SHOULD", ("C31",)  # SHOULD NOT name a partition outside 1..MaxPartitionNumber
    title = "The client named a partition number that the disk does not have"
    advice = ("Compare the partition number with the count CprepDiskOnline returned: the client named a partition the "
              "disk lacks; check whether the disk was repartitioned or the client used a stale layout.")
    needs_known = False  # judged against a CprepDiskOnline answer the capture holds

    def check(self, c, d):
        name = PARTITION.get(c.method)
        top = d.partitions
        if name is None or top is None:
            return
        p = c.param(name)
        if not 1 <= p <= top:
            self.report([c.request_frame], "%s on disk %s names partition %d; CprepDiskOnline reported partitions 1-%d"
                        % (c.method, c.disk, p, top), c.subject)


class FsAccessUnverified(DiskRule):
    id, severity, spec = "clusprep.fs_access_unverified", "warning", "MS-CSVP 3.3.4.5, 3.5.4.5"
    level, checks = "SHOULD", ("C32",)
    title = "The client accessed files on a partition without first checking its file system"
    advice = ("The client read or wrote a test file without first checking the partition is NTFS; expect the file "
              "test to fail on a RAW or other-format disk, so check the disk's format on that node.")

    def check(self, c, d):
        if c.method in FILE_ACCESS and c.param("ulPartition") not in d.verified:
            self.report([c.request_frame], "%s on disk %s partition %d, never checked with CprepDiskDiskPartitionIsNtfs "
                        "or CprepDiskGetFSName" % (c.method, c.disk, c.param("ulPartition")), c.subject)


class RawIoWithoutArbSectors(DiskRule):
    id, severity, spec = "clusprep.raw_io_without_arb_sectors", "warning", "MS-CSVP 3.3.4.3, 3.5.4.3"
    level, checks = "SHOULD", ("C29",)
    title = "The client read or wrote raw sectors that CprepDiskGetArbSectors did not give it"
    advice = ("The client did raw sector I/O on sectors CprepDiskGetArbSectors did not hand out; check which sector "
              "was written, as it may hold real disk data, and whether the validation tool is current.")

    def check(self, c, d):
        if c.method not in ("CprepDiskRawRead", "CprepDiskRawWrite"):
            return
        sector = c.param("ulSector")
        if d.arb_sectors is None:
            self.report([c.request_frame], "%s of sector %d on disk %s without a prior CprepDiskGetArbSectors"
                        % (c.method, sector, c.disk), c.subject)
        elif sector not in d.arb_sectors[:2]:
            x, y, frame = d.arb_sectors
            self.report([frame, c.request_frame], "%s of sector %d on disk %s; CprepDiskGetArbSectors gave sectors %d "
                        "and %d for raw I/O" % (c.method, sector, c.disk, x, y), c.subject)


class PrepareStateNotEnforced(Rule):
    id, severity, spec = "clusprep.prepare_state_not_enforced", "error", "MS-CSVP 3.2.4, 3.4.4"
    side, checks = "server", ("C05", "C06", "C07")
    title = "The node did not refuse a call made too early in its preparation, or refused it when ready"
    advice = ("The node answered as if in another preparation stage (served too early, or refused when ready); check "
              "whether two validation sessions shared the node and the node's ClusPrep build.")
    needs_start = needs_stub = True
    NEEDS = {"CprepPrepareNode": ("Initial", "C05"), "CprepPrepareNodePhase2": ("Preparing", "C06")}

    def on_call(self, c: Call):
        if c.interface not in STORAGE or not c.used_on_wire or c.hresult is None:
            return
        need, check = self.NEEDS.get(c.method, ("Online", "C07"))
        state, refused = c.prepare_state, c.hresult == ERROR_INVALID_SERVER_STATE
        if state == UNKNOWN:
            self.cannot_evaluate(c.subject, UNKNOWN_STATE)
            return
        if state != need and not refused:
            self.report([c.request_frame, c.response_frame], "%s answered %s while the object's Prepare State is %s "
                        "(it needs %s): it must be ERROR_INVALID_SERVER_STATE" % (c.method, c.result_text, state, need),
                        c.subject, check=check)
        elif state == need and refused and need != "Initial":  # Initial is assumed, the others were seen
            self.report([c.request_frame, c.response_frame], "%s answered ERROR_INVALID_SERVER_STATE while the "
                        "object's Prepare State is %s, the state it needs" % (c.method, state), c.subject, check=check)


RULES: List[type] = [PrepareNodeNotFirst, Phase2Missing, Phase2BadArgument, DiskNotAttached, DiskStateNotEnforced,
                     DiskNotOnline, StopDefenseOrder, PrSequence, PartitionOutOfRange, FsAccessUnverified,
                     RawIoWithoutArbSectors, PrepareStateNotEnforced]
