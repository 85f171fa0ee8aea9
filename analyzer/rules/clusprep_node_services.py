"""MS-CSVP rules on IClusterCleanup, IClusterLog, IClusterFirewall and IClusterUpdate.

Server rules judge an answer against the state the server was in when the request came,
rebuilt from the capture; a conversation whose start the capture lacks is listed as not
evaluated for them (needs_start). Lengths and counts read from the wire bound nothing but the
bytes already captured, and no input raises.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Set, Tuple

from dissectors.definitions import csvp_buffers as cb

from ..reconstruction.clusprep_records import Call
from ..reconstruction.decoding import int_of
from .clusprep_network import CLEANUP, CLEANUP_FLAGS, E_UNEXPECTED, FIREWALL, LOG, UPDATE, WAIT_TIMEOUT
from .findings import MAX_LISTED, Rule, listed


# -- IClusterCleanup (3.8) -----------------------------------------------------------------------
class CleanupFlags(Rule):
    id, severity, spec = "clusprep.cleanup_flags", "error", "MS-CSVP 3.8.4.1"
    checks = ("C58",)
    title = "The client passed undefined flags to the cleanup of an evicted node"
    advice = ("Check the tool that cleaned up the evicted node: it passed cleanup flags beyond stop, don't-stop and "
              "don't-wait; the node may ignore or reject the unknown bits.")
    needs_stub = True
    # "A set of bit flags ... at least one of" 0, 1 and 2: combinations of 1 and 2 pass, any other bit does not.

    def on_call_request(self, c: Call):
        if c.interface == CLEANUP and c.method == "CleanUpEvictedNode" and c.readable:
            flags = c.param("Flags", 0)
            if flags & ~CLEANUP_FLAGS:
                self.report([c.request_frame], "CleanUpEvictedNode Flags 0x%08X: only CLUSTERCLEANUP_STOP_CLUSTER_SERVICE "
                            "(0), _DONT_STOP_CLUSTER_SERVICE (1) and _DONT_WAIT_CLUSTER_SERVICE_STOP (2) are defined"
                            % flags, c.subject)


class CleanupTimeout(Rule):
    id, severity, spec = "clusprep.cleanup_timeout", "error", "MS-CSVP 3.8.4.1"
    side, checks = "server", ("C59",)
    title = "The node answered an evicted node's cleanup as done though its delay exceeded the timeout"
    advice = ("The node reported cleanup success although its delay exceeded the timeout; verify cleanup really "
              "finished (cluster service stopped, cluster configuration removed) before reusing it.")
    needs_stub = True

    # Judged: a success when DelayBeforeCleanup exceeds TimeOut (the Cleanup Timer expires first).
    # Not judged: TimeOut 0 (no timer to compare with); WAIT_TIMEOUT as 0x00000102 or 0x80070102
    # (a Win32 code in an HRESULT's place, as Windows returns it, or its HRESULT form); and the
    # answer's latency, which a capture point measures with the network's delays and the server's
    # scheduling in it.

    def on_call(self, c: Call):
        if c.interface != CLEANUP or c.method != "CleanUpEvictedNode" or not c.readable or c.response_frame is None:
            return
        delay, timeout = c.param("DelayBeforeCleanup", 0), c.param("TimeOut", 0xFFFFFFFF)
        if timeout and delay > timeout and c.succeeded and c.hresult not in WAIT_TIMEOUT:
            self.report([c.request_frame, c.response_frame], "CleanUpEvictedNode DelayBeforeCleanup %d ms exceeds "
                        "TimeOut %d ms, so the Cleanup Timer expires first and the answer must be WAIT_TIMEOUT, not %s"
                        % (delay, timeout, c.result_text), c.subject)


# -- IClusterLog (3.12) --------------------------------------------------------------------------
# MS-DTYP 2.2.57 UncPath: share-name is 1-80 pchar; the path and file names after it 1-255
# characters, none of these (fchar is the looser set; the share's pchar also excludes + , ; = [ ]).
_NOT_FCHAR = set('"*/:<>?\\|') | {chr(i) for i in range(0x20)}
_NOT_PCHAR = _NOT_FCHAR | set("+,;=[]")


def log_path_problem(path) -> Optional[str]:
    if not path:
        return "is empty"
    if path.startswith("\\"):
        return "starts with \\; it must start with the share name"
    if re.match(r"^[A-Za-z]:", path):
        return "is a local path (drive %s), not <share>\\<file>" % path[:2]
    parts = path.split("\\")
    if len(parts) < 2:
        return "has no \\ between a share name and a file name"
    share, rest = parts[0], parts[1:]
    if len(share) > 80 or set(share) & _NOT_PCHAR:
        return "share name \"%s\" is not a valid UNC share name" % share[:80]
    for p in rest:
        if not p or len(p) > 255 or p in (".", "..") or set(p) & _NOT_FCHAR:
            return "path component \"%s\" is not valid in a UNC path" % p[:80]
    return None


class LogPathNotUnc(Rule):
    id, severity, spec = "clusprep.log_path_not_unc", "error", "MS-CSVP 3.12.4.1, 3.12.4.2"
    side, checks = "server", ("C62",)
    title = "The node returned a cluster log path that is not a share\\file path"
    advice = ("Check the log path the node returned: it must be share\\file, reachable as \\\\node\\share\\file; a "
              "local drive path or a bad name means the client cannot fetch the cluster log.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != LOG or c.method not in ("GenerateClusterLog", "GenerateTimeSpanLog") or not c.succeeded:
            return
        path = c.param("LogFilePath")
        why = log_path_problem(path.rstrip("\x00") if path else path)
        if why:
            self.report([c.request_frame, c.response_frame], '%s answered LogFilePath "%s", which %s' % (
                c.method, (path or "")[:120], why), c.subject)


# -- IClusterFirewall (3.14) ---------------------------------------------------------------------
class FirewallUninitializedAnswer(Rule):
    id, severity, spec = "clusprep.firewall_uninitialized_answer", "error", "MS-CSVP 3.14.4.2"
    side, checks = "server", ("C64",)
    # The method's return table is the only statement: E_UNEXPECTED means "InitializeAdapterConfiguration
    # has not yet been called". Read as binding, as the idx rule next to it is.
    title = "The node did not refuse an adapter firewall query made before initialization"
    advice = ("The node answered an adapter firewall query made before any initialize call with something other than "
              "E_UNEXPECTED; check whether it returned stale data from another session.")
    needs_start, needs_stub = True, True

    def __init__(self, sink):
        super().__init__(sink)
        self.initialized: Set[Tuple] = set()
        self.at_request: Dict[Tuple[int, int], bool] = {}

    def on_call_request(self, c: Call):
        if c.interface == FIREWALL:
            self.at_request[(c.conversation.stream, c.call_id)] = c.dcom_object in self.initialized

    def on_call(self, c: Call):
        if c.interface != FIREWALL:
            return
        init = self.at_request.pop((c.conversation.stream, c.call_id), None)
        if c.method == "InitializeAdapterConfiguration" and c.succeeded:
            self.initialized.add(c.dcom_object)
        elif (c.method == "GetNextAdapterFirewallConfiguration" and init is False and c.hresult is not None
              and c.hresult != E_UNEXPECTED):
            self.report([c.request_frame, c.response_frame], "GetNextAdapterFirewallConfiguration answered %s before "
                        "any InitializeAdapterConfiguration; it must be E_UNEXPECTED" % c.result_text, c.subject)


class FirewallProfileInvalid(Rule):
    id, severity, spec = "clusprep.firewall_profile_invalid", "error", "MS-CSVP 3.14.4.2, 2.2.15"
    side, checks = "server", ("C66",)
    title = "The node reported an unknown network profile for an adapter (not public, private, domain)"
    advice = ("Check the adapter's network profile on that node (Get-NetConnectionProfile): the answer is not public, "
              "private or domain; an adapter on an unidentified network is a likely cause.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != FIREWALL or c.method != "GetNextAdapterFirewallConfiguration" or not c.succeeded:
            return
        profile = c.param("adapterProfile")
        if profile is not None and int_of(profile) not in cb.CLUSTER_NETWORK_PROFILE.values():
            profile = int_of(profile)
            idx = c.param("idx")  # None when the request did not decode
            self.report([c.request_frame, c.response_frame], "GetNextAdapterFirewallConfiguration idx %s answered "
                        "adapterProfile %d; it must be ClusterNetworkProfilePublic (0), Private (1) or "
                        "DomainAuthenticated (2)" % ("?" if idx is None else int_of(idx), profile), c.subject)


# -- IClusterUpdate (3.16) -----------------------------------------------------------------------
UPDATE_CHILDREN = ("id", "title", "description", "supportUrl", "knowledgebase", "securityBulletin", "superseded")
LIST_CHILD = {"knowledgebase": "articleId", "securityBulletin": "bulletinId", "superseded": "updateId"}


_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)\b", re.I)


def updates_problems(count: int, text) -> List[str]:
    """What breaks 3.16.4.1's form. A default namespace on the elements is allowed (their local names
    are read); comments and CDATA are XML like any other; a DOCTYPE or ENTITY declaration is refused
    before parsing (entity expansion). Elements besides <update> are not judged (no MUST names them)."""
    if text is None:
        return ["updates is NULL"]
    text = text.rstrip("\x00")
    if _DECLARATION.search(text):
        return ["the XML holds a DOCTYPE or ENTITY declaration; the form is <updates version=\"1.0\"> and update "
                "elements"]
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        return ["updates is not well-formed XML (%s)" % str(e)[:80]]
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") and "}" in root.tag else ""
    if ns:  # the root's namespace, declared as the default: read the local names
        for e in root.iter():
            if isinstance(e.tag, str) and e.tag.startswith(ns):
                e.tag = e.tag[len(ns):]
    out = []
    if root.tag != "updates" or root.get("version") != "1.0":
        out.append('the root is <%s%s>, not <updates version="1.0">' % (
            root.tag[:40], "".join(' %s="%s"' % (k, v[:20]) for k, v in list(root.attrib.items())[:2])))
    updates = [e for e in root if e.tag == "update"]
    if len(updates) != count:
        out.append("UpdateCount %d but %d <update> elements" % (count, len(updates)))
    for k, u in enumerate(updates):
        missing = [n for n in UPDATE_CHILDREN if u.find(n) is None]
        if missing:
            out.append("<update> %d lacks %s" % (k + 1, ", ".join("<%s>" % n for n in missing)))
        for parent, child in LIST_CHILD.items():
            p = u.find(parent)
            wrong = sorted({e.tag[:40] for e in p if e.tag != child}) if p is not None else []
            if wrong:
                out.append("<update> %d <%s> holds %s, only <%s>" % (k + 1, parent, "<%s>" % wrong[0], child))
        if len(out) > MAX_LISTED:
            break
    return out


class UpdatesMalformed(Rule):
    id, severity, spec = "clusprep.updates_malformed", "error", "MS-CSVP 3.16.4.1"
    side, checks = "server", ("C67",)
    title = "The node's list of installed updates is malformed or its count is wrong"
    advice = ("Check the installed updates on that node (Get-HotFix, Windows Update history): the update count does "
              "not match the XML, or entries are missing fields; compare the node's builds.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != UPDATE or c.method != "GetUpdates" or not c.succeeded:
            return
        problems = updates_problems(c.param("UpdateCount"), c.param("updates"))
        if problems:
            self.report([c.request_frame, c.response_frame], "GetUpdates: " + listed(problems), c.subject)


RULES: List[type] = [CleanupFlags, CleanupTimeout, LogPathNotUnc, FirewallUninitializedAnswer, FirewallProfileInvalid,
                     UpdatesMalformed]
