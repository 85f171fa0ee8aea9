"""MS-CSVP rules. State lives per DCOM object (its IPIDs, on whatever connection:
IClusterStorage2 and IClusterStorage3 share one; analyzer.reconstruction.clusprep_sequences) and, where stubs
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
state that allows the call."""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

import ipaddress

from dissectors.definitions import csvp_buffers as B
from ..reconstruction.clusprep_sequences import (ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_INVALID_SERVER_STATE, ERROR_INVALID_STATE,
                                 ERROR_NOT_FOUND, ERROR_NOT_READY, ERROR_WRONG_DISK, PKT_PRIVACY, UNKNOWN, Call,
                                 Conversation, DiskState, base_method, host_of)
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


class DiskCallRefused(ServerDiskRule):
    id, severity, spec = "clusprep.disk_call_refused", "error", "MS-CSVP 3.2.4, 3.4.4, 3.2.4.7, 3.2.4.14"
    checks = ("C11", "C21")
    title = "The node refused a disk call it must always serve, or failed a repeated attach or online"
    advice = ("The node refused a disk call it must always serve (properties, IDs, attach) or failed a repeated "
              "attach or online; check the disk in Disk Management and the node's System event log.")

    def check(self, c, d):
        if c.method in ANY_DISK_STATE and c.hresult == ERROR_INVALID_STATE:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered ERROR_INVALID_STATE; it must be "
                        "served whatever the disk's state" % (c.method, c.disk), c.subject, check="C11",
                        spec="MS-CSVP 3.2.4, 3.4.4")
        elif c.succeeded is False and d.missing is None and (
                c.method == "CprepDiskAttach" and d.attached or
                c.method == "CprepDiskOnline" and d.online and not d.online_pending and d.online_known):
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; the disk is already %s, so "
                        "it returns S_OK" % (c.method, c.disk, c.result_text,
                                             "Attached" if c.method == "CprepDiskAttach" else "Online"),
                        c.subject, check="C21", spec="MS-CSVP 3.2.4.7, 3.2.4.14")


def unknown_disk(c: Call, d: DiskState):
    """Why the server has no such disk, or None: it said so (the list is fixed until the next Phase2).
    A device number at or past Phase2's pulNumDisks is no proof: Windows disk numbers keep gaps after
    a LUN is removed, until a reboot (READINGS["C56"])."""
    if d.missing is not None:
        return "the server answered that it has no such disk in frame %d" % d.missing
    return None


class UnknownDiskAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.unknown_disk_answer", "warning", "MS-CSVP 3.2.4, 3.4.4"
    level, checks = "SHOULD", ("C12",)
    title = "The node answered a call on a disk it does not have with the wrong error code"
    advice = ("Low impact: the node answered an unknown disk ID with an unexpected code; check that the disk list did "
              "not change after enumeration (a LUN removed or a rescan during validation).")
    # Attach: 3.2.4's general text says ERROR_FILE_NOT_FOUND, its own table and <15> ERROR_NOT_FOUND: either.

    def check(self, c, d):
        why = unknown_disk(c, d)
        ok = (ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND) if c.method == "CprepDiskAttach" else (ERROR_FILE_NOT_FOUND,)
        if why and c.hresult not in ok:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; %s, so it should be %s"
                        % (c.method, c.disk, c.result_text, why, " or ".join(hr(x) for x in ok)), c.subject)


class UnattachedDiskAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.unattached_disk_answer", "warning", "MS-CSVP 3.2.4, 3.4.4"
    level, checks = "SHOULD", ("C13",)
    title = "The node did not refuse a call on an unattached disk with the expected error"
    advice = ("The node did not refuse a call on a disk no CprepDiskAttach attached; check whether the call really "
              "ran against the disk, and report the returned code with the node's Windows build.")
    # 3.2.4 says ERROR_INVALID_STATE, 3.4.4 (the same object's other interface) ERROR_FILE_NOT_FOUND,
    # <16>/<22> ERROR_NOT_FOUND for IsOnline and SetOnline (Windows): any of them is a refusal as asked.

    def check(self, c, d):
        if c.method not in NEEDS_ATTACH or d.attached or unknown_disk(c, d):
            return
        ok = {ERROR_INVALID_STATE, ERROR_FILE_NOT_FOUND}
        if c.method in ("CprepDiskIsOnline", "CprepDiskSetOnline"):
            ok.add(ERROR_NOT_FOUND)
        if c.hresult not in ok:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; no CprepDiskAttach attached "
                        "the disk, so it should be refused with %s" % (
                            c.method, c.disk, c.result_text, " or ".join(hr(x) for x in sorted(ok))), c.subject)


class PartitionAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.partition_answer", "error", "MS-CSVP 3.2.4, 3.4.4"
    checks = ("C16", "C17")
    title = "The node did not refuse a missing partition, or a volume with no file system, as required"
    advice = ("Check the disk's partitions and volumes on that node (Get-Partition, Get-Volume): it did not refuse a "
              "partition past the count or file access on a RAW volume; a stale volume mount is likely.")
    # Partition numbers: 3.3.4.4 gives the client 1 to MaxPartitionNumber (clusprep.partition_out_of_range
    # holds it to that: Windows numbers partitions from 1, Partition0 being the whole disk); 3.2.1 numbers
    # them 0 to N-1. A server following either maps neither a number past MaxPartitionNumber, so only
    # those are judged here: 0 and N are each mappable in one reading.

    def check(self, c, d):
        name = PARTITION.get(c.method)
        if (name is None or not d.attached or not d.online or d.online_pending or not d.online_known
                or c.hresult == ERROR_INVALID_STATE):
            return
        p = c.param(name)
        if d.partitions is not None and isinstance(p, int) and p > d.partitions and c.hresult != ERROR_FILE_NOT_FOUND:
            self.report([c.request_frame, c.response_frame], "%s on disk %s partition %d answered %s; CprepDiskOnline "
                        "reported %d partitions, so it maps to no volume and must be ERROR_FILE_NOT_FOUND"
                        % (c.method, c.disk, p, c.result_text, d.partitions), c.subject, check="C16")
        elif c.method in FILE_ACCESS and d.fs.get(p, ("",))[0].upper() == "RAW" and (
                c.hresult != ERROR_UNRECOGNIZED_VOLUME):
            self.report([d.fs[p][1], c.request_frame, c.response_frame], "%s on disk %s partition %d answered %s; "
                        "CprepDiskGetFSName found no file system there (RAW), so it must be ERROR_UNRECOGNIZED_VOLUME"
                        % (c.method, c.disk, p, c.result_text), c.subject, check="C17")


class RawIoAnswer(Rule):
    id, severity, spec = "clusprep.raw_io_answer", "error", "MS-CSVP 3.2.4.1, 3.2.4.2"
    side, checks = "server", ("C18", "C19")
    title = "The node misreported a raw sector read or write (over 512 bytes served, or wrong count)"
    advice = ("Compare cbData with the byte count returned: raw I/O moves one 512-byte sector, so a wrong count or an "
              "oversized transfer served points at the node's storage stack or a 4K-native disk.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.method not in ("CprepDiskRawRead", "CprepDiskRawWrite") or c.hresult is None or c.request is None:
            return
        read = c.method == "CprepDiskRawRead"
        check, fault = ("C18", ERROR_READ_FAULT) if read else ("C19", ERROR_WRITE_FAULT)
        cb, frames = c.param("cbData"), [c.request_frame, c.response_frame]
        done = c.param("pcbDataRead" if read else "pcbDataWritten")
        if not isinstance(cb, int) or not isinstance(done, int):
            return
        what = "%s of %d bytes on disk %s" % (c.method, cb, c.disk)
        # ERROR_READ_FAULT / ERROR_WRITE_FAULT for 512 bytes or fewer is not judged: a failing disk returns them.
        if c.succeeded and cb > SECTOR:
            self.report(frames, "%s answered %s; more than one 512-byte sector must be %s" % (what, c.result_text,
                        hr(fault)), c.subject, check=check)
        elif c.succeeded and done != (cb if read else SECTOR):
            self.report(frames, "%s succeeded with %s %d; it must be %d" % (
                what, "pcbDataRead" if read else "pcbDataWritten", done, cb if read else SECTOR), c.subject, check=check)
        elif not read and c.succeeded is False and done != 0:
            self.report(frames, "%s failed (%s) with pcbDataWritten %d; on an error it must be 0" % (
                what, c.result_text, done), c.subject, check=check)


class FileSystemAnswer(DiskRule):
    id, severity, spec = "clusprep.file_system_answer", "error", "MS-CSVP 3.2.4.20, 3.2.4.27"
    side, checks = "server", ("C22", "C25")
    title = "The node reported a partition's file system inconsistently, or with an empty or bad name"
    advice = ("The node's NTFS check and file system name disagree for a partition, or the name is empty or "
              "unterminated; check the volume on that node (Get-Volume) and for a format or remount meanwhile.")

    needs_known = False  # one answer against another, both in the capture

    def check(self, c, d):
        if c.hresult is None:
            return
        if c.method == "CprepDiskDiskPartitionIsNtfs" and c.hresult in (0, ERROR_WRONG_DISK):
            p = c.param("ulPartition")
            known = d.fs.get(p)
            if known is not None and (known[0].upper() == "NTFS") != (c.hresult == 0):
                self.report([known[1], c.request_frame, c.response_frame], "CprepDiskDiskPartitionIsNtfs on disk %s "
                            "partition %d answered %s; CprepDiskGetFSName named its file system %r" % (
                                c.disk, p, c.result_text, known[0]), c.subject, check="C22", spec="MS-CSVP 3.2.4.20")
        elif c.method == "CprepDiskGetFSName" and c.succeeded:
            p, name = c.param("Partition"), str(c.param("FsName", "")).rstrip("\x00")
            said = d.ntfs.get(p)
            if said is not None and said[0] != (name.upper() == "NTFS"):
                self.report([said[1], c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d "
                            "names %r; CprepDiskDiskPartitionIsNtfs answered %s" % (
                                c.disk, p, name, "S_OK (NTFS)" if said[0] else "ERROR_WRONG_DISK"), c.subject,
                            check="C22", spec="MS-CSVP 3.2.4.20")
            if not name:
                self.report([c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d answered "
                            "an empty name; no file system must be \"RAW\"" % (c.disk, p), c.subject, check="C25",
                            spec="MS-CSVP 3.2.4.27")
            elif len(str(c.param("FsName", ""))) >= 100:
                self.report([c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d answered "
                            "100 characters with no NUL terminator" % (c.disk, p), c.subject, check="C25",
                            spec="MS-CSVP 3.2.4.27")


class DiskQueryAnswer(DiskRule):
    id, severity, spec = "clusprep.disk_query_answer", "error", "MS-CSVP 3.2.4.22, 3.2.4.25"
    side, checks = "server", ("C23", "C24")
    title = "The node misreported a disk's reservation-present value or online state"
    advice = ("Check the disk's real state on that node: the reservation-present value is out of range or the "
              "is-online answer contradicts earlier calls; look for another tool onlining or offlining the disk.")
    needs_known = False  # Present needs no history; IsOnline is judged only where c.disks_known

    def on_call(self, c: Call):
        if c.method == "CprepDiskIsOnline" and c.hresult is not None and not c.disks_known:
            self.cannot_evaluate(c.subject, UNKNOWN_STATE)
        super().on_call(c)

    def check(self, c, d):
        if c.method == "CprepDiskIsPRPresent" and c.succeeded and c.param("Present", 0) not in (0, 1, 2):
            self.report([c.request_frame, c.response_frame], "CprepDiskIsPRPresent on disk %s answered Present %s "
                        "(must be 0, 1 or 2)" % (c.disk, c.param("Present")), c.subject, check="C23",
                        spec="MS-CSVP 3.2.4.22")
        elif (c.method == "CprepDiskIsOnline" and c.hresult is not None and c.prepare_state == "Online" and d.attached
              and not d.online_pending and d.missing is None and d.online_known and c.disks_known):
            want = 0 if d.online else ERROR_NOT_READY
            if c.hresult != want:
                self.report([c.request_frame, c.response_frame], "CprepDiskIsOnline on disk %s answered %s; the disk "
                            "is %s, so it must be %s" % (c.disk, c.result_text, "Online" if d.online else "not Online",
                                                         hr(want)), c.subject, check="C24", spec="MS-CSVP 3.2.4.25")


class BufferSizeAnswer(Rule):
    id, severity, spec = "clusprep.buffer_size_answer", "error", "MS-CSVP 3.2.4.13, 3.4.4.1"
    side, checks = "server", ("C26",)
    title = "The node misreported the size of a disk's device IDs against the client's buffer"
    advice = ("Compare the device ID answer's sizes with the client's buffer: the node overstated or misreported what "
              "it needed; read the disk's VPD pages 83h and 80h from that node.")
    needs_stub = True
    # CprepDiskGetDsms (3.2.4.29): ERROR_MORE_DATA when the DSMs do not fit in Size; its answer does not
    # say how many bytes they need (pReserved is to be ignored), and NDR itself keeps the data within
    # Size, so nothing of it is left to judge.

    def on_call(self, c: Call):
        if c.hresult is None or c.response is None:
            return
        frames = [c.request_frame, c.response_frame]
        if c.method == "CprepDiskGetUniqueIds":
            cb, out, needed = c.param("cbData"), c.param("pcbDataOut"), c.param("pcbNeeded")
            if c.request is None or not all(isinstance(x, int) for x in (cb, out, needed)):
                return  # a request stub that does not parse: clusprep.stub_malformed says so
            if c.succeeded and out > cb:
                self.report(frames, "CprepDiskGetUniqueIds on disk %s succeeded with pcbDataOut %d, more than the "
                            "cbData %d given" % (c.disk, out, cb), c.subject)
            elif c.hresult == ERROR_INSUFFICIENT_BUFFER and needed <= cb:
                self.report(frames, "CprepDiskGetUniqueIds on disk %s answered ERROR_INSUFFICIENT_BUFFER with "
                            "pcbNeeded %d, which the cbData %d given holds" % (c.disk, needed, cb), c.subject)
        elif c.method == "CprepDiskGetUniqueIds3" and c.succeeded:
            size, data = c.param("pcbDdSize"), c.param("ppDeviceDescriptor")
            if (size == 0) != (data is None):
                self.report(frames, "CprepDiskGetUniqueIds3 on disk %s answered pcbDdSize %d with %s "
                            "ppDeviceDescriptor; without a page 80h serial number both are 0 and NULL" % (
                                c.disk, size, "a NULL" if data is None else "a non-NULL"), c.subject,
                            spec="MS-CSVP 3.4.4.1")


class SharePathsInvalid(Rule):
    id, severity, spec = "clusprep.share_paths_invalid", "error", "MS-CSVP 3.4.4.5"
    side, checks = "server", ("C27",)
    title = "The node returned test share paths that are not \\\\<IP address>"
    advice = ("Check the test share paths the node returned: each must be \\\\ plus an IPv4 address or a bracketed "
              "IPv6 one; a host name or malformed address means the node builds them wrongly.")
    needs_stub = True
    # The NUL terminator each path MUST carry is not judged: the NDR layer ([string]) reads the text up
    # to it and keeps no trace of whether it was there.

    def on_call(self, c: Call):
        if c.method != "CprepCreateNewSmbShares3" or not c.succeeded:
            return
        bad = [p for p in list(c.param("ppwszSharePaths") or [])[:MAX_PATHS] if not share_path_ok(str(p))]
        if bad:
            self.report([c.request_frame, c.response_frame], "CprepCreateNewSmbShares3 returned %s; each path must "
                        "be \\\\ and an IPv4 address, or \\\\[IPv6 address]" % ", ".join(repr(p) for p in bad[:4]),
                        c.subject)


def share_path_ok(path: str) -> bool:
    if not path.startswith("\\\\"):
        return False
    rest = path[2:]
    try:
        if rest.startswith("[") and rest.endswith("]"):
            ipaddress.IPv6Address(rest[1:-1].split("%", 1)[0])
        else:
            ipaddress.IPv4Address(rest)
    except ValueError:
        return False
    return True


class SharesNotCreated(Rule):
    id, severity, spec = "clusprep.shares_not_created", "warning", "MS-CSVP 3.5.4.7"
    level, checks = "SHOULD", ("C41",)
    title = "The client connected to test share paths that no node created in the capture"
    advice = ("Find the CprepCreateNewSmbShares3 on the other node that should have produced these paths; if it is "
              "outside the capture, capture both nodes, else the client passed stale paths.")
    needs_start = needs_stub = True
    # Create on one node, Connect on another (3.5.4.7): the reconstruction looks the paths up among
    # every Create answer of the capture (Call.shares_created).

    def on_call(self, c: Call):
        if c.method == "CprepConnectToNewSmbShares3" and c.shares_created is False:
            paths = [str(p) for p in list(c.param("ppwszSharePaths") or [])[:4]]
            self.report([c.request_frame], "CprepConnectToNewSmbShares3 with %s, which no CprepCreateNewSmbShares3 "
                        "in the capture returned" % (", ".join(repr(p) for p in paths) or "no paths"), c.subject)


class DiskIdInvalid(Rule):
    id, severity, spec = "clusprep.disk_id_invalid", "error", "MS-CSVP 2.2.2"
    side, checks = "both", ("C56",)
    title = "A client or server sent a disk identifier (CPREP_DISKID) of unknown type"
    advice = ("Decode the CPREP_DISKID in the frame: its type is not signature, GUID, number or unknown; check the "
              "build of the side that sent it for a corrupt or mismatched interface definition.")
    needs_stub = True
    # A DiskIdType outside CPREP_DISKID_ENUM has no union arm, so the stub does not parse
    # (clusprep.stub_malformed says so too); this names the field and whose it is. The device number
    # is not held to the disk count CprepPrepareNodePhase2 reported (READINGS["C56"]).

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if "no union arm for DiskIdType" in why:
            self.report([frame], "%s: %s; DiskIdType must be CprepIdSignature (0), CprepIdGuid (1), CprepIdNumber "
                        "(0xFA0) or CprepIdUnknown (0x1388)" % (c.method, why.split(": ", 1)[-1]), c.subject,
                        side="client" if frame == c.request_frame else "server")


ALL_DISK_FLAGS = sum(B.DISK_FLAGS.values())
ALL_EXTENDED_FLAGS = sum(B.DISK_EXTENDED_FLAGS.values())
DISK_POOL_DRIVE = B.DISK_FLAGS["DISK_POOL_DRIVE"]
GUID_NULL = "00000000-0000-0000-0000-000000000000"


class DiskPropsInvalid(Rule):
    id, severity, spec = "clusprep.disk_props_invalid", "error", "MS-CSVP 2.2.5, 2.2.6"
    side, checks = "server", ("C57",)
    title = "The node reported invalid disk properties (stack, SCSI address, bus type, flags, pool)"
    advice = ("Check the disk's properties on that node (Get-PhysicalDisk: bus type, SCSI address, storage pool): the "
              "node reported values outside the allowed set; a third-party storage driver is a likely cause.")
    needs_stub = True
    # DISK_PROPS's DiskBusType and Flags "MAY" be the listed values (2.2.5); DISK_PROPS_EX's MUST (2.2.6).

    def on_call(self, c: Call):
        if c.method not in ("CprepDiskGetProps", "CprepDiskGetProps3") or not c.succeeded:
            return
        ex = c.method == "CprepDiskGetProps3"
        p = c.param("pDiskProps" if ex else "DiskProps")
        if p is None:
            return
        bad = []
        if int(p.StackType) not in B.DISK_STACK_TYPE.values():
            bad.append("StackType %d is no DiskStackType" % int(p.StackType))
        if p.ScsiAddress.Length != 8:
            bad.append("ScsiAddress.Length %d (the structure is 8 bytes)" % p.ScsiAddress.Length)
        if ex:
            if int(p.DiskBusType) not in B.DISK_BUS_TYPE.values():
                bad.append("DiskBusType %d is not a listed bus type" % int(p.DiskBusType))
            if int(p.Flags) & ~ALL_DISK_FLAGS:
                bad.append("Flags 0x%08X has undefined bits 0x%08X" % (int(p.Flags), int(p.Flags) & ~ALL_DISK_FLAGS))
            if int(p.ExtendedFlags) & ~ALL_EXTENDED_FLAGS:
                bad.append("ExtendedFlags 0x%08X has undefined bits" % int(p.ExtendedFlags))
            if not int(p.Flags) & DISK_POOL_DRIVE:
                if p.get("pwszPoolName") is not None:
                    bad.append("pwszPoolName %r for a disk not in a pool (DISK_POOL_DRIVE clear) must be NULL"
                               % p.pwszPoolName)
                if str(p.get("guidPoolId", GUID_NULL)).lower() != GUID_NULL:
                    bad.append("guidPoolId %s for a disk not in a pool must be GUID_NULL" % p.guidPoolId)
        if bad:
            self.report([c.request_frame, c.response_frame], "%s on disk %s: %s" % (c.method, c.disk, "; ".join(bad)),
                        c.subject)


class ObjectState(Rule):
    """Sequence rules over one object's calls, readable from the headers alone."""

    needs_start = True

    def __init__(self, sink):
        super().__init__(sink)
        self.state: Dict[Tuple, Dict[str, object]] = {}


class NetworkNotInitialized(ObjectState):
    id, severity, spec = "clusprep.network_not_initialized", "error", "MS-CSVP 3.7.4"
    checks = ("C42",)  # 3.7.4 (the client): MUST; 3.6.4 (the server's view) says SHOULD
    title = "The client used the network test interface before InitializeNode"
    advice = ("The client called network test methods before a successful InitializeNode on this object; check "
              "whether InitializeNode failed (see its answer) or ran on another object.")
    # 3.6.4: served whatever the state: GetIpConfigSerialized (3.6.4.3) and QueryFirewallConfiguration (3.6.4.9)
    EXEMPT = {"InitializeNode", "GetIpConfigSerialized", "QueryFirewallConfiguration"}

    def on_call(self, c: Call):
        if c.interface != "IClusterNetwork2" or not c.used_on_wire:
            return
        s = self.state.setdefault(c.dcom_object, {})
        if c.method == "InitializeNode":
            s["init"] = c.answered_ok
        elif c.method == "CleanupNode":
            if not s.get("init"):
                self.report([c.request_frame], "CleanupNode before InitializeNode", c.subject)
            s["init"] = False
        elif c.method not in self.EXEMPT and not s.get("init"):
            self.report([c.request_frame], "%s before InitializeNode" % c.method, c.subject)


class FirewallNotInitialized(ObjectState):
    id, severity, spec = "clusprep.firewall_not_initialized", "error", "MS-CSVP 3.14.4"
    checks = ("C63",)
    title = "The client asked for adapter firewall settings before InitializeAdapterConfiguration"
    advice = ("The client asked for adapter firewall settings before InitializeAdapterConfiguration succeeded on this "
              "object; check that call's answer and the validation log's network test.")

    def on_call(self, c: Call):
        if c.interface != "IClusterFirewall":
            return
        s = self.state.setdefault(c.dcom_object, {})
        if c.method == "InitializeAdapterConfiguration":
            s["init"] = c.answered_ok
            s["count"] = c.param("cRetAdapters")
        elif c.method == "GetNextAdapterFirewallConfiguration" and not s.get("init"):
            self.report([c.request_frame], "GetNextAdapterFirewallConfiguration before InitializeAdapterConfiguration",
                        c.subject)


class FirewallIndexOutOfRange(ObjectState):
    id, severity, spec = "clusprep.firewall_index_out_of_range", "error", "MS-CSVP 3.14.4.2"
    title = "The node did not refuse an adapter index past the adapter count it reported"
    advice = ("The node served an adapter index past the count it reported; check whether adapters were added or "
              "removed during validation and re-run the firewall check.")
    side, checks = "server", ("C65",)
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != "IClusterFirewall" or not c.readable:
            return
        s = self.state.setdefault(c.dcom_object, {})
        if c.method == "InitializeAdapterConfiguration" and c.succeeded:
            s["count"] = c.param("cRetAdapters")
        elif c.method == "GetNextAdapterFirewallConfiguration" and s.get("count") is not None:
            if c.param("idx") >= s["count"] and c.hresult is not None and c.hresult != E_INVALIDARG:
                self.report([c.request_frame, c.response_frame], "GetNextAdapterFirewallConfiguration idx %d answered "
                            "%s; InitializeAdapterConfiguration reported %d adapters, so it must be E_INVALIDARG"
                            % (c.param("idx"), c.result_text, s["count"]), c.subject)


class SecretNotConfigured(Rule):
    id, severity, spec = "clusprep.secret_not_configured", "error", "MS-CSVP 3.10.4.1, 3.10.4.2"
    side, checks = "server", ("C61",)
    title = "The node lost the cluster secret it had stored (RetrieveSvcSecret found none)"
    advice = ("The node lost the cluster secret it had just stored; check the node's cluster configuration (ClusSvc, "
              "registry) and look for a reboot or node cleanup between the two calls.")
    # The secret belongs to the server and persists across activations and reboots (3.10.3, 3.10.4.1):
    # a RetrieveSvcSecret without a ConfigSvcSecret in the capture is fine (an earlier activation may
    # have set it) whatever it answers; ERROR_FILE_NOT_FOUND after a successful ConfigSvcSecret to
    # the same server is the server's fault. Keyed by server address, not by connection.

    def __init__(self, sink):
        super().__init__(sink)
        self.configured: Dict[str, int] = {}  # server host -> frame of its last successful ConfigSvcSecret

    def on_call(self, c: Call):
        if c.interface != "IClusterSetup":
            return
        server = host_of(c.conversation.server)
        if c.method == "ConfigSvcSecret" and c.succeeded:
            self.configured[server] = c.request_frame
        elif c.method == "RetrieveSvcSecret" and c.hresult == ERROR_FILE_NOT_FOUND and server in self.configured:
            self.report([self.configured[server], c.request_frame, c.response_frame],
                        "server %s answered RetrieveSvcSecret with ERROR_FILE_NOT_FOUND after ConfigSvcSecret stored "
                        "a secret in frame %d" % (server, self.configured[server]), c.subject)


class AddRoutesState(ObjectState):
    id, severity, spec = "clusprep.add_routes_state", "error", "MS-CSVP 3.6.4.6, 3.6.4.7, 3.6.4.8"
    title = "The node answered a route-monitoring call as if monitoring were in the other state"
    advice = ("Follow the route-monitoring calls on this object (add, status, cancel): the node answered as if "
              "monitoring were in the other state; check for two validation runs sharing the node.")
    side, checks = "server", ("C50", "C51", "C52")
    needs_stub = True  # judges the HRESULT and routeUnavailable

    def on_call(self, c: Call):
        if c.interface != "IClusterNetwork2" or c.method not in (
                "ProcessAddRoutes", "GetAddRoutesStatus", "CancelAddRoutesRequest") or c.hresult is None:
            return
        s = self.state.setdefault(c.dcom_object, {})
        monitoring, since = s.get("monitoring", False), s.get("since")
        frames = ([since] if monitoring and since else []) + [c.request_frame, c.response_frame]
        if c.method == "ProcessAddRoutes":
            if monitoring and c.hresult != E_FAIL:
                self.report(frames, "ProcessAddRoutes answered %s while the routes of frame %d are monitored (must be "
                            "E_FAIL)" % (c.result_text, since), c.subject, check="C50", spec="MS-CSVP 3.6.4.6")
            if c.succeeded and not monitoring:
                s["monitoring"], s["since"] = True, c.request_frame
        elif c.method == "GetAddRoutesStatus":
            unavailable = c.param("reply", {}).get("routeUnavailable") if c.succeeded else None
            if unavailable is not None and bool(unavailable) == monitoring:
                self.report(frames, "GetAddRoutesStatus answered routeUnavailable %s while %s" % (
                    "TRUE" if unavailable else "FALSE", "the routes of frame %d are monitored" % since if monitoring
                    else "no ProcessAddRoutes is monitored"), c.subject, check="C51", spec="MS-CSVP 3.6.4.7")
            s["monitoring"] = False
        else:
            if not monitoring and c.hresult != E_FAIL:
                self.report(frames, "CancelAddRoutesRequest answered %s with no ProcessAddRoutes monitored (must be "
                            "E_FAIL)" % c.result_text, c.subject, check="C52", spec="MS-CSVP 3.6.4.8")
            if c.succeeded:
                s["monitoring"] = False


class OpnumNotUsedOnWire(Rule):
    id, severity, spec = "clusprep.opnum_not_used_on_wire", "observation", "MS-CSVP 3.2.4, 3.6.4"
    level, side, checks = None, None, ("C04",)  # the method tables say "not used on the wire", no MUST
    title = "A client called a method number (opnum) that the interface does not use"
    advice = ("Harmless if the node refused it; otherwise compare the client's and node's Windows builds: a newer "
              "validation tool may call a method the node does not have.")
    needs_bind = True  # the interface comes from the bind

    def on_call_request(self, c: Call):
        if c.used_on_wire:
            return
        if c.method.startswith("opnum "):
            text = "opnum %d is not in %s's method table" % (c.opnum, c.interface)
        else:
            text = "%s.%s (opnum %d) is not used on the wire" % (c.interface, c.method, c.opnum)
        self.report([c.request_frame], text, c.subject)


class InsufficientAuthLevel(Rule):
    id, severity, spec = "clusprep.insufficient_auth_level", "observation", "MS-CSVP 2.1"
    level, side = None, None  # the MUST binds the server, which must refuse (clusprep.low_auth_accepted)
    title = "A client bound or called below packet privacy (RPC encryption, PKT_PRIVACY)"
    advice = ("No action if the node refused the calls; otherwise check the client's DCOM authentication level and "
              "whether the caller is a tool other than the cluster validation wizard.")

    def __init__(self, sink):
        super().__init__(sink)
        self.flagged: Set[int] = set()

    def on_rpc_bind(self, conv: Conversation, pdu):
        if pdu.auth_level is None or pdu.auth_level < PKT_PRIVACY:
            self._flag(conv, pdu.frame, "bind" if pdu.ptype == 11 else "alter_context", pdu.auth_level)

    def on_call_request(self, c: Call):
        if c.auth_level < PKT_PRIVACY:
            self._flag(c.conversation, c.request_frame, c.method, c.auth_level)

    def _flag(self, conv, frame, what, level):
        if conv.stream in self.flagged:
            return
        self.flagged.add(conv.stream)
        self.report([frame], "%s at %s; the server requires packet privacy (6) and every later call here is the "
                    "same" % (what, "no authentication" if level in (None, 1) else "auth level %d" % level), conv.id)


class ServerRejectedState(Rule):
    id, severity, spec = "clusprep.server_rejected_state", "observation", "MS-CSVP 3.2.4, 3.4.4"
    level, side = None, None  # the server doing what its state requires
    title = "The node refused a call because it or the disk was not ready for it"
    advice = ("Normal when a disk or node is not ready; read the calls just before it on the same object or disk to "
              "see which step (prepare, attach, arbitrate, online) failed or was skipped.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.hresult in REJECTED_STATE:
            self.report([c.request_frame, c.response_frame], "%s returned %s%s" % (
                c.method, REJECTED_STATE[c.hresult], " for disk %s" % c.disk if c.disk else ""), c.subject)


class Fault(Rule):
    id, severity, spec = "clusprep.fault", "error", "MS-CSVP 3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4"
    title = "A node's method failed with an RPC fault instead of returning an error code"
    advice = ("Read the fault status in the response: the node's method crashed or threw instead of returning an "
              "error; collect the node's Application event log and the cluster validation report.")
    side, checks = "server", ("C02",)
    # Not a fault for an opnum the tables say is not used on the wire (the RPC runtime's
    # nca_s_op_rng_error, clusprep.opnum_not_used_on_wire observes those), nor one that
    # rejects a request stub that does not parse (C03 asks for that), nor access denied to a
    # call below packet privacy (2.1 asks for that; clusprep.low_auth_accepted).

    def __init__(self, sink):
        super().__init__(sink)
        self.malformed: Set[int] = set()  # request frames whose stub did not parse

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if frame == c.request_frame:
            self.malformed.add(frame)

    def on_call(self, c: Call):
        if c.fault_status is None or not c.used_on_wire or c.request_frame in self.malformed:
            return
        if c.auth_level < PKT_PRIVACY and c.fault_status in ACCESS_DENIED:
            return
        from ..reconstruction.decoding import HRESULTS

        self.report([c.request_frame, c.response_frame], "%s ended in fault %s" % (
            c.method, HRESULTS.get(c.fault_status, "0x%08X" % c.fault_status)), c.subject)


class UnansweredCall(Rule):
    id, severity, spec = "clusprep.unanswered_call", "observation", "MS-RPCE 3.3.1.5"
    level, side = None, None  # a capture may end before the answer
    title = "A ClusPrep call has no answer in the capture"
    advice = ("Check whether the capture ended first; if not, the node is stuck in that method (often a disk online "
              "or arbitration), so check its System log and storage latency at that time.")

    def on_unanswered_call(self, c: Call):
        self.report([c.request_frame], "%s (call_id %d) has no response in the capture" % (c.method, c.call_id),
                    c.subject)


class UnknownContext(Rule):
    id, severity, spec = "clusprep.unknown_context", "observation", "MS-RPCE 3.3.1.5.6"
    level, side = None, None  # the capture's gap, not a violation
    title = "A call whose bind is not in the capture: its interface and method are unknown"
    advice = ("Start the capture before validation begins, or merge the earlier capture file, so the bind is "
              "included; until then these calls cannot be decoded or judged.")

    def __init__(self, sink):
        super().__init__(sink)
        self.seen: Set[Tuple[int, int]] = set()

    def on_rpc_unknown_context(self, conv: Conversation, pdu, ctx: int):
        if (conv.stream, ctx) in self.seen:
            return
        self.seen.add((conv.stream, ctx))
        self.report([pdu.frame], "request (call_id %d) on context %d, whose bind or alter_context is not in the "
                    "capture: its interface and method are unknown" % (pdu.call_id, ctx), conv.id)


class StubMalformed(Rule):
    id, severity, spec = "clusprep.stub_malformed", "error", "MS-CSVP 6; MS-RPCE 2.2.5"
    side = "both"  # a request's stub is the client's, a response's the server's
    title = "A call's parameters (its stub) could not be decoded as its method's"
    advice = ("Check the snaplen and lost TCP segments first; if the frame is whole, the sender marshalled parameters "
              "that do not match the method's definition, so compare client and node builds.")
    needs_stub = True

    def on_call_malformed(self, c: Call, frame: int, why: str):
        self.report([frame], why, c.subject, side="client" if frame == c.request_frame else "server")


RULES: List[type] = [PrepareNodeNotFirst, Phase2Missing, Phase2BadArgument, DiskNotAttached, DiskStateNotEnforced,
                     DiskNotOnline, StopDefenseOrder, PrSequence, PartitionOutOfRange, FsAccessUnverified,
                     RawIoWithoutArbSectors, PrepareStateNotEnforced, DiskCallRefused, UnknownDiskAnswer,
                     UnattachedDiskAnswer, PartitionAnswer, RawIoAnswer, FileSystemAnswer, DiskQueryAnswer,
                     BufferSizeAnswer, SharePathsInvalid, SharesNotCreated, DiskIdInvalid, DiskPropsInvalid,
                     NetworkNotInitialized, FirewallNotInitialized, FirewallIndexOutOfRange,
                     SecretNotConfigured, AddRoutesState, OpnumNotUsedOnWire, InsufficientAuthLevel,
                     ServerRejectedState, Fault, UnansweredCall, UnknownContext, StubMalformed]
