"""MS-CSVP rules on the state of the node's other objects: network and firewall initialization,
the firewall's index, the secret, added routes.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from ..reconstruction.clusprep_records import ERROR_FILE_NOT_FOUND, Call, host_of
from .clusprep_preparation import E_FAIL, E_INVALIDARG
from .findings import Rule


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


RULES: List[type] = [NetworkNotInitialized, FirewallNotInitialized, FirewallIndexOutOfRange, SecretNotConfigured,
                     AddRoutesState]
