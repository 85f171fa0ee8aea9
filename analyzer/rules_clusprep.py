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
ERROR_INVALID_STATE = 0x8007139F
REJECTED_STATE = {0x80070548: "ERROR_INVALID_SERVER_STATE", ERROR_INVALID_STATE: "ERROR_INVALID_STATE"}
ERROR_FILE_NOT_FOUND = 0x80070002
E_FAIL, E_INVALIDARG = 0x80004005, 0x80070057


class PrepareNodeNotFirst(Rule):
    id, severity, spec = "clusprep.prepare_node_not_first", "error", "MS-CSVP 3.3.4.1, 3.5.4.1"
    checks = ("C08",)
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
    id, severity, spec = "clusprep.phase2_missing", "error", "MS-CSVP 3.3.4.1, 3.5.4.1"
    checks = ("C09",)
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
    checks = ("C10",)
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
    id, severity, spec = "clusprep.disk_not_attached", "error", "MS-CSVP 3.3.4.2, 3.5.4.2"
    checks = ("C28",)
    title = "CprepDiskAttach comes before the methods that need an attached disk"

    def check(self, c, d):
        if c.method in NEEDS_ATTACH and not d.attached:
            self.report([c.request_frame], "%s on disk %s, which no CprepDiskAttach attached" % (c.method, c.disk),
                        c.subject)


class DiskNotOwned(DiskRule):
    id, severity, spec = "clusprep.disk_not_owned", "error", "MS-CSVP 3.2.4, 3.4.4"
    title = "StopDefense, Online and SetOnline on a disk this server does not own are refused with ERROR_INVALID_STATE"
    side, checks = "server", ("C14",)
    # "owned": a successful CprepDiskPRArbitrate since the last CprepDiskStopDefense (3.2.1)

    def check(self, c, d):
        if c.method in OWNED and not d.owned and c.hresult is not None and c.hresult != ERROR_INVALID_STATE:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; no CprepDiskPRArbitrate "
                        "made it OwnedByThisServer, so it must be ERROR_INVALID_STATE" % (c.method, c.disk, c.result_text),
                        c.subject)


class DiskNotOnline(DiskRule):
    id, severity, spec = "clusprep.disk_not_online", "error", "MS-CSVP 3.3.4.4, 3.5.4.4"
    checks = ("C30",)
    title = "The disk is online for partition and file-system methods"

    def check(self, c, d):
        if c.method in ONLINE and not d.online:
            self.report([c.request_frame], "%s on disk %s, which is not online" % (c.method, c.disk), c.subject)


class StopDefenseOrder(DiskRule):
    id, severity, spec = "clusprep.stop_defense_order", "error", "MS-CSVP 3.2.4.6, 3.3.4.6, 3.5.4.6"
    checks = ("C20",)
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
    id, severity, spec = "clusprep.pr_sequence", "warning", "MS-CSVP 3.3.4.6, 3.5.4.6"
    level, checks = "SHOULD", ("C33", "C34", "C35", "C36")
    CHECK = {"CprepDiskPRUnRegister": "C33", "CprepDiskPRReserve": "C34", "CprepDiskPRPreempt": "C35",
             "CprepDiskPRRelease": "C36"}
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
            self.report([c.request_frame], "%s on disk %s %s" % (c.method, c.disk, why), c.subject,
                        check=self.CHECK[base_method(c.method)])


class PartitionOutOfRange(DiskRule):
    id, severity, spec = "clusprep.partition_out_of_range", "warning", "MS-CSVP 3.3.4.4, 3.5.4.4"
    level, checks = "SHOULD", ("C31",)  # SHOULD NOT name a partition outside 1..MaxPartitionNumber
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
    id, severity, spec = "clusprep.fs_access_unverified", "warning", "MS-CSVP 3.3.4.5, 3.5.4.5"
    level, checks = "SHOULD", ("C32",)
    title = "IsNtfs or GetFSName before file access on a partition"

    def check(self, c, d):
        if c.method in FILE_ACCESS and c.param("ulPartition") not in d.verified:
            self.report([c.request_frame], "%s on disk %s partition %d, never checked with CprepDiskDiskPartitionIsNtfs "
                        "or CprepDiskGetFSName" % (c.method, c.disk, c.param("ulPartition")), c.subject)


class RawIoWithoutArbSectors(DiskRule):
    id, severity, spec = "clusprep.raw_io_without_arb_sectors", "warning", "MS-CSVP 3.3.4.3, 3.5.4.3"
    level, checks = "SHOULD", ("C29",)
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
    id, severity, spec = "clusprep.network_not_initialized", "error", "MS-CSVP 3.7.4"
    checks = ("C42",)  # 3.7.4 (the client): MUST; 3.6.4 (the server's view) says SHOULD
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
    checks = ("C63",)
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
    title = "An idx at or past cRetAdapters is answered E_INVALIDARG"
    side, checks = "server", ("C65",)
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != "IClusterFirewall" or not c.readable:
            return
        s = self.state.setdefault(c.coclass, {})
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
    title = "Route Monitoring State decides the answers of ProcessAddRoutes, GetAddRoutesStatus and CancelAddRoutesRequest"
    side, checks = "server", ("C50", "C51", "C52")
    needs_stub = True  # judges the HRESULT and routeUnavailable

    def on_call(self, c: Call):
        if c.interface != "IClusterNetwork2" or c.method not in (
                "ProcessAddRoutes", "GetAddRoutesStatus", "CancelAddRoutesRequest") or c.hresult is None:
            return
        s = self.state.setdefault(c.coclass, {})
        monitoring, since = s.get("monitoring", False), s.get("since")
        frames = ([since] if since else []) + [c.request_frame, c.response_frame]
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
    id, severity, spec = "clusprep.insufficient_auth_level", "observation", "MS-CSVP 2.1"
    level, side = None, None  # the MUST binds the server, which must refuse (clusprep.low_auth_accepted)
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
    id, severity, spec = "clusprep.server_rejected_state", "observation", "MS-CSVP 3.2.4, 3.4.4"
    level, side = None, None  # the server doing what its state requires
    title = "The server refused a call for its state"
    needs_stub = True

    def on_call(self, c: Call):
        if c.hresult in REJECTED_STATE:
            self.report([c.request_frame, c.response_frame], "%s returned %s%s" % (
                c.method, REJECTED_STATE[c.hresult], " for disk %s" % c.disk if c.disk else ""), c.subject)


class Fault(Rule):
    id, severity, spec = "clusprep.fault", "error", "MS-CSVP 3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4"
    title = "A ClusPrep method that ended in a fault PDU (its methods MUST NOT throw exceptions)"
    side, checks = "server", ("C02",)
    # Not a fault for an opnum the tables say is not used on the wire (the RPC runtime's
    # nca_s_op_rng_error, clusprep.opnum_not_used_on_wire observes those), nor one that
    # rejects a request stub that does not parse (C03 asks for that).

    def __init__(self, sink):
        super().__init__(sink)
        self.malformed: Set[int] = set()  # request frames whose stub did not parse

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if frame == c.request_frame:
            self.malformed.add(frame)

    def on_call(self, c: Call):
        if c.fault_status is None or not c.used_on_wire or c.request_frame in self.malformed:
            return
        from .decoding import HRESULTS

        self.report([c.request_frame, c.response_frame], "%s ended in fault %s" % (
            c.method, HRESULTS.get(c.fault_status, "0x%08X" % c.fault_status)), c.subject)


class UnansweredCall(Rule):
    id, severity, spec = "clusprep.unanswered_call", "observation", "MS-RPCE 3.3.1.5"
    level, side = None, None  # a capture may end before the answer
    title = "A call the capture never answers"

    def on_unanswered_call(self, c: Call):
        self.report([c.request_frame], "%s (call_id %d) has no response in the capture" % (c.method, c.call_id),
                    c.subject)


class UnknownContext(Rule):
    id, severity, spec = "clusprep.unknown_context", "observation", "MS-RPCE 3.3.1.5.6"
    level, side = None, None  # the capture's gap, not a violation
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
    side = "both"  # a request's stub is the client's, a response's the server's
    title = "A stub that does not parse as its method's parameters"
    needs_stub = True

    def on_call_malformed(self, c: Call, frame: int, why: str):
        self.report([frame], why, c.subject, side="client" if frame == c.request_frame else "server")


RULES: List[type] = [PrepareNodeNotFirst, Phase2Missing, Phase2BadArgument, DiskNotAttached, DiskNotOwned,
                     DiskNotOnline, StopDefenseOrder, PrSequence, PartitionOutOfRange, FsAccessUnverified,
                     RawIoWithoutArbSectors, NetworkNotInitialized, FirewallNotInitialized, FirewallIndexOutOfRange,
                     SecretNotConfigured, AddRoutesState, OpnumNotUsedOnWire, InsufficientAuthLevel,
                     ServerRejectedState, Fault, UnansweredCall, UnknownContext, StubMalformed]
