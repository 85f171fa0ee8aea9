"""MS-CSVP rules. State lives per DCOM object (connection and coclass: IClusterStorage2 and
IClusterStorage3 share one) and, where stubs are readable, per DiskId. Rules that read
parameters or results say so (needs_stub); a sealed conversation lists them as not
evaluated instead of passing them silently."""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

from .clusprep_sequences import PKT_PRIVACY, Call, Conversation, DiskState, base_method
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
REJECTED_STATE = {0x80070548: "ERROR_INVALID_SERVER_STATE", 0x8007139F: "ERROR_INVALID_STATE"}
ERROR_FILE_NOT_FOUND = 0x80070002


class PrepareNodeNotFirst(Rule):
    id, severity, spec = "clusprep.prepare_node_not_first", "error", "MS-CSVP 3.2.4, 3.3.4.1"
    title = "CprepPrepareNode comes first"
    needs_start = True

    def __init__(self, sink):
        super().__init__(sink)
        self.started: Set[Tuple] = set()

    def on_call_request(self, c: Call):
        # judged in request order: a CprepPrepareNode whose answer never comes is still first
        if c.interface not in STORAGE or c.coclass in self.started or not c.used_on_wire:
            return
        self.started.add(c.coclass)
        if c.method != "CprepPrepareNode":
            self.report([c.request_frame], "%s is the first call on the storage object; CprepPrepareNode must come "
                        "before any other method" % c.method, c.subject)


class Phase2Missing(Rule):
    id, severity, spec = "clusprep.phase2_missing", "error", "MS-CSVP 3.3.4.1"
    title = "CprepPrepareNodePhase2 completes before other methods"
    needs_start = True

    def __init__(self, sink):
        super().__init__(sink)
        self.ready: Set[Tuple] = set()

    def on_call(self, c: Call):
        if c.interface not in STORAGE or not c.used_on_wire:
            return
        if c.method == "CprepPrepareNodePhase2":
            if c.answered_ok:
                self.ready.add(c.coclass)
        elif c.method != "CprepPrepareNode" and c.coclass not in self.ready:
            # every call made before Phase2 completed, each one its own finding
            self.report([c.request_frame], "%s before CprepPrepareNodePhase2 completed" % c.method, c.subject)


class Phase2BadArgument(Rule):
    id, severity, spec = "clusprep.phase2_bad_argument", "error", "MS-CSVP 3.2.4.4"
    title = "AttachDisksOnSystemBus is 1"
    needs_stub = True

    def on_call(self, c: Call):
        if c.method == "CprepPrepareNodePhase2" and c.readable and c.param("AttachDisksOnSystemBus") != 1:
            self.report([c.request_frame], "CprepPrepareNodePhase2 with AttachDisksOnSystemBus %d (must be 1)"
                        % c.param("AttachDisksOnSystemBus"), c.subject)


class DiskRule(Rule):
    """A rule over one disk's state before a call (kept once, by the reconstruction)."""

    needs_start = True  # a disk's state comes from the calls before
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface in STORAGE and c.disk_state is not None:
            self.check(c, c.disk_state)

    def check(self, c: Call, d: DiskState):
        raise NotImplementedError


class DiskNotAttached(DiskRule):
    id, severity, spec = "clusprep.disk_not_attached", "error", "MS-CSVP 3.2.4, 3.3.4.2"
    title = "CprepDiskAttach comes before the methods that need an attached disk"

    def check(self, c, d):
        if c.method in NEEDS_ATTACH and not d.attached:
            self.report([c.request_frame], "%s on disk %s, which no CprepDiskAttach attached" % (c.method, c.disk),
                        c.subject)


class DiskNotOwned(DiskRule):
    id, severity, spec = "clusprep.disk_not_owned", "error", "MS-CSVP 3.2.4"
    title = "CprepDiskPRArbitrate comes before StopDefense, Online and SetOnline"

    def check(self, c, d):
        if c.method in OWNED and not d.owned:
            self.report([c.request_frame], "%s on disk %s without a prior CprepDiskPRArbitrate" % (c.method, c.disk),
                        c.subject)


class DiskNotOnline(DiskRule):
    id, severity, spec = "clusprep.disk_not_online", "error", "MS-CSVP 3.2.4, 3.3.4.4"
    title = "The disk is online for partition and file-system methods"

    def check(self, c, d):
        if c.method in ONLINE and not d.online:
            self.report([c.request_frame], "%s on disk %s, which is not online" % (c.method, c.disk), c.subject)


class StopDefenseOrder(DiskRule):
    id, severity, spec = "clusprep.stop_defense_order", "error", "MS-CSVP 3.3.4.6"
    title = "CprepDiskPRArbitrate and CprepDiskOffline come before CprepDiskStopDefense"

    def check(self, c, d):
        # the state now, not the history: a second Arbitrate -> Online -> StopDefense cycle lacks its Offline
        if c.method == "CprepDiskStopDefense":
            missing = []
            if not d.owned:
                missing.append("a CprepDiskPRArbitrate since the last CprepDiskStopDefense")
            elif not d.offline_since_arbitrate:
                missing.append("a CprepDiskOffline since the last CprepDiskPRArbitrate")
            if missing:
                self.report([c.request_frame], "CprepDiskStopDefense on disk %s without %s"
                            % (c.disk, " and ".join(missing)), c.subject)


class PrSequence(DiskRule):
    id, severity, spec = "clusprep.pr_sequence", "warning", "MS-CSVP 3.3.4.6"
    title = "Register before UnRegister and Reserve; Reserve before Preempt and Release"
    # What each call needs, and the call that gives it. Reserve, Preempt and Release need it in effect
    # now (Register -> UnRegister -> Reserve is out of order); UnRegister only a Register before it:
    # unregistering what a Clear already removed is a harmless cleanup (SPC-3 5.7.7).
    BEFORE = {"CprepDiskPRUnRegister": (None, "CprepDiskPRRegister"),
              "CprepDiskPRReserve": ("registered", "CprepDiskPRRegister"),
              "CprepDiskPRPreempt": ("reserved", "CprepDiskPRReserve"),
              "CprepDiskPRRelease": ("reserved", "CprepDiskPRReserve")}

    def check(self, c, d):
        need = self.BEFORE.get(base_method(c.method))
        if need and (need[1] not in d.seen if need[0] is None else not getattr(d, need[0])):
            undone = {"registered": "CprepDiskPRUnRegister or CprepDiskPRClear",
                      "reserved": "CprepDiskPRRelease, CprepDiskPRUnRegister or CprepDiskPRClear"}.get(need[0], "")
            why = ("before any %s" % need[1]) if need[1] not in d.seen else (
                "while no %s is in effect (undone by %s)" % (need[1], undone))
            self.report([c.request_frame], "%s on disk %s %s" % (c.method, c.disk, why), c.subject)


class PartitionOutOfRange(DiskRule):
    id, severity, spec = "clusprep.partition_out_of_range", "warning", "MS-CSVP 3.3.4.4"
    title = "Partitions are 1 to the MaxPartitionNumber CprepDiskOnline returned"

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
    id, severity, spec = "clusprep.fs_access_unverified", "warning", "MS-CSVP 3.3.4.5"
    title = "IsNtfs or GetFSName before file access on a partition"

    def check(self, c, d):
        if c.method in FILE_ACCESS and c.param("ulPartition") not in d.verified:
            self.report([c.request_frame], "%s on disk %s partition %d, never checked with CprepDiskDiskPartitionIsNtfs "
                        "or CprepDiskGetFSName" % (c.method, c.disk, c.param("ulPartition")), c.subject)


class RawIoWithoutArbSectors(DiskRule):
    id, severity, spec = "clusprep.raw_io_without_arb_sectors", "warning", "MS-CSVP 3.3.4.3"
    title = "CprepDiskGetArbSectors before raw sector I/O"

    def check(self, c, d):
        if c.method in ("CprepDiskRawRead", "CprepDiskRawWrite") and "CprepDiskGetArbSectors" not in d.seen:
            self.report([c.request_frame], "%s of sector %d on disk %s without a prior CprepDiskGetArbSectors"
                        % (c.method, c.param("ulSector"), c.disk), c.subject)


class ObjectState(Rule):
    """Sequence rules over one object's calls, readable from the headers alone."""

    needs_start = True

    def __init__(self, sink):
        super().__init__(sink)
        self.state: Dict[Tuple, Dict[str, object]] = {}


class NetworkNotInitialized(ObjectState):
    id, severity, spec = "clusprep.network_not_initialized", "warning", "MS-CSVP 3.6.4"
    title = "InitializeNode before the other IClusterNetwork2 methods"
    # 3.6.4: served whatever the state: GetIpConfigSerialized (3.6.4.3) and QueryFirewallConfiguration (3.6.4.9)
    EXEMPT = {"InitializeNode", "GetIpConfigSerialized", "QueryFirewallConfiguration"}

    def on_call(self, c: Call):
        if c.interface != "IClusterNetwork2" or not c.used_on_wire:
            return
        s = self.state.setdefault(c.coclass, {})
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
    title = "InitializeAdapterConfiguration before GetNextAdapterFirewallConfiguration"

    def on_call(self, c: Call):
        if c.interface != "IClusterFirewall":
            return
        s = self.state.setdefault(c.coclass, {})
        if c.method == "InitializeAdapterConfiguration":
            s["init"] = c.answered_ok
            s["count"] = c.param("cRetAdapters")
        elif c.method == "GetNextAdapterFirewallConfiguration" and not s.get("init"):
            self.report([c.request_frame], "GetNextAdapterFirewallConfiguration before InitializeAdapterConfiguration",
                        c.subject)


class FirewallIndexOutOfRange(ObjectState):
    id, severity, spec = "clusprep.firewall_index_out_of_range", "error", "MS-CSVP 3.14.4.2"
    title = "idx below the cRetAdapters InitializeAdapterConfiguration returned"
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != "IClusterFirewall" or not c.readable:
            return
        s = self.state.setdefault(c.coclass, {})
        if c.method == "InitializeAdapterConfiguration" and c.succeeded:
            s["count"] = c.param("cRetAdapters")
        elif c.method == "GetNextAdapterFirewallConfiguration" and s.get("count") is not None:
            if c.param("idx") >= s["count"]:
                self.report([c.request_frame], "GetNextAdapterFirewallConfiguration idx %d; InitializeAdapterConfiguration "
                            "reported %d adapters" % (c.param("idx"), s["count"]), c.subject)


class SecretNotConfigured(Rule):
    id, severity, spec = "clusprep.secret_not_configured", "error", "MS-CSVP 3.10.4.1, 3.10.4.2"
    title = "A server keeps the secret ConfigSvcSecret stored"
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
        server = c.conversation.server.rsplit(":", 1)[0]
        if c.method == "ConfigSvcSecret" and c.succeeded:
            self.configured[server] = c.request_frame
        elif c.method == "RetrieveSvcSecret" and c.hresult == ERROR_FILE_NOT_FOUND and server in self.configured:
            self.report([self.configured[server], c.request_frame, c.response_frame],
                        "server %s answered RetrieveSvcSecret with ERROR_FILE_NOT_FOUND after ConfigSvcSecret stored "
                        "a secret in frame %d" % (server, self.configured[server]), c.subject)


class AddRoutesState(ObjectState):
    id, severity, spec = "clusprep.add_routes_state", "error", "MS-CSVP 3.6.4.6, 3.6.4.7, 3.6.4.8"
    title = "ProcessAddRoutes, then GetAddRoutesStatus or CancelAddRoutesRequest"

    def on_call(self, c: Call):
        if c.interface != "IClusterNetwork2":
            return
        s = self.state.setdefault(c.coclass, {})
        monitoring = s.get("monitoring", False)
        if c.method == "ProcessAddRoutes":
            if monitoring:
                self.report([s["since"], c.request_frame], "ProcessAddRoutes while the routes of frame %d are still "
                            "monitored (E_FAIL)" % s["since"], c.subject)
            elif c.answered_ok:
                s["monitoring"], s["since"] = True, c.request_frame
        elif c.method in ("GetAddRoutesStatus", "CancelAddRoutesRequest"):
            if not monitoring:
                self.report([c.request_frame], "%s with no ProcessAddRoutes monitoring (%s)" % (
                    c.method, "routeUnavailable" if c.method == "GetAddRoutesStatus" else "E_FAIL"), c.subject)
            s["monitoring"] = False


class OpnumNotUsedOnWire(Rule):
    id, severity, spec = "clusprep.opnum_not_used_on_wire", "error", "MS-CSVP 3.2.4, 3.6.4"
    title = "Opnums the method tables reserve"
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
    id, severity, spec = "clusprep.insufficient_auth_level", "error", "MS-CSVP 2.1"
    title = "Binds and calls at RPC_C_AUTHN_LEVEL_PKT_PRIVACY"

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
    id, severity, spec = "clusprep.server_rejected_state", "warning", "MS-CSVP 3.2.4"
    title = "The server refused a call for its state"
    needs_stub = True

    def on_call(self, c: Call):
        if c.hresult in REJECTED_STATE:
            self.report([c.request_frame, c.response_frame], "%s returned %s%s" % (
                c.method, REJECTED_STATE[c.hresult], " for disk %s" % c.disk if c.disk else ""), c.subject)


class Fault(Rule):
    id, severity, spec = "clusprep.fault", "warning", "MS-RPCE 2.2.2.11"
    title = "A call that ended in a fault PDU"

    def on_call(self, c: Call):
        if c.fault_status is not None:
            from .decoding import HRESULTS

            self.report([c.request_frame, c.response_frame], "%s ended in fault %s" % (
                c.method, HRESULTS.get(c.fault_status, "0x%08X" % c.fault_status)), c.subject)


class UnansweredCall(Rule):
    id, severity, spec = "clusprep.unanswered_call", "warning", "MS-RPCE 3.3.1.5"
    title = "A call the capture never answers"

    def on_unanswered_call(self, c: Call):
        self.report([c.request_frame], "%s (call_id %d) has no response in the capture" % (c.method, c.call_id),
                    c.subject)


class UnknownContext(Rule):
    id, severity, spec = "clusprep.unknown_context", "warning", "MS-RPCE 3.3.1.5.6"
    title = "A call on a presentation context whose bind was not captured"

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
    title = "A stub that does not parse as its method's parameters"
    needs_stub = True

    def on_call_malformed(self, c: Call, frame: int, why: str):
        self.report([frame], why, c.subject)


RULES: List[type] = [PrepareNodeNotFirst, Phase2Missing, Phase2BadArgument, DiskNotAttached, DiskNotOwned,
                     DiskNotOnline, StopDefenseOrder, PrSequence, PartitionOutOfRange, FsAccessUnverified,
                     RawIoWithoutArbSectors, NetworkNotInitialized, FirewallNotInitialized, FirewallIndexOutOfRange,
                     SecretNotConfigured, AddRoutesState, OpnumNotUsedOnWire, InsufficientAuthLevel,
                     ServerRejectedState, Fault, UnansweredCall, UnknownContext, StubMalformed]
