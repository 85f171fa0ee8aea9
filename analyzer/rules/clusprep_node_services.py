"""MS-CSVP rules outside storage: IClusterNetwork2, IClusterCleanup, IClusterSetup, IClusterLog,
IClusterFirewall, IClusterUpdate, and the RPC-level ones (authentication level, stub consistency).

Server rules judge an answer against the state the server was in when the request came
(initialized, enumeration initialized), rebuilt from the capture; a conversation whose start
the capture lacks is listed as not evaluated for them (needs_start). Lengths and counts read
from the wire bound nothing but the bytes already captured, and no input raises.
"""
from __future__ import annotations

import io
import ipaddress
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Set, Tuple

from dissectors.definitions import csvp_buffers as cb
from ..reconstruction.clusprep_sequences import PKT_PRIVACY, Call
from ..reconstruction.decoding import HRESULT_CODE, int_of
from .findings import Rule

NETWORK, CLEANUP, LOG, FIREWALL, UPDATE = ("IClusterNetwork2", "IClusterCleanup", "IClusterLog", "IClusterFirewall",
                                           "IClusterUpdate")
E_UNEXPECTED, E_ACCESSDENIED = HRESULT_CODE["E_UNEXPECTED"], HRESULT_CODE["E_ACCESSDENIED"]
WAIT_TIMEOUT = (0x00000102, HRESULT_CODE["WAIT_TIMEOUT"])  # the Win32 code as returned, and as an HRESULT
DEFAULT_CLUSTER_PORT = 3343  # 3.6.4.1
RT_TIMER_MS = 1000  # 3.6.4.2: the Round-Trip Message Timer, and the most Timeout may be
AF_INET, AF_INET6 = 0x0002, 0x0017
CLEANUP_FLAGS = 0x00000003  # 3.8.4.1: STOP (0), DONT_STOP (1), DONT_WAIT (2); any other bit is none of them
MAX_LISTED = 4  # problems named per finding; the rest counted


def _result(c: Call) -> str:
    return c.result_text


def _listed(problems: List[str]) -> str:
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + ("; and %d more" % more if more > 0 else "")


# -- addresses (2.2.18, 3.6.4.2): IPv4 in dotted decimal, IPv6 as text --------------------------
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(r"^%s(\.%s){3}$" % (_OCTET, _OCTET))
_RFC1924 = re.compile(r"^[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20}$")  # the form 2.2.18 cites for IPv6


def is_ipv4(text: str) -> bool:
    return bool(_DOTTED.match(text))


def is_ipv6(text: str) -> bool:
    """IPv6 text as Windows writes it (RFC 4291/5952, with a %zone), or RFC 1924's 20 characters."""
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
        return ":" in text
    except ValueError:
        return bool(_RFC1924.match(text))


def address_problem(text) -> Optional[str]:
    """Why `text` is not an IP address in the form MS-CSVP requires, or None."""
    if text is None:
        return "NULL"
    if is_ipv4(text) or is_ipv6(text):
        return None
    if re.match(r"^[0-9.]+$", text) or re.match(r"^(0[xX][0-9a-fA-F]+|[0-9]+)(\.[0-9a-fA-Fx]+)*$", text):
        return '"%s" is not dotted decimal (four decimal octets 0-255)' % text[:64]
    return '"%s" is not an IPv4 or IPv6 address' % text[:64]


# -- RPC level ----------------------------------------------------------------------------------
class LowAuthAccepted(Rule):
    id, severity, spec = "clusprep.low_auth_accepted", "error", "MS-CSVP 2.1"
    side, checks = "server", ("C01",)
    title = "The node served a call below packet privacy (not encrypted), which it must refuse"
    advice = ("Security issue: the node served a call below packet privacy; check its DCOM and RPC hardening settings "
              "and patch level, and the authentication level the client asked for.")
    # The server MUST require packet privacy. A bind_ack alone does not break that (Windows acks the
    # bind and refuses the call); answering the call does, unless the answer is the refusal itself
    # (a fault, or E_ACCESSDENIED). Once per conversation: every later call there is the same.

    def __init__(self, sink):
        super().__init__(sink)
        self.flagged: Set[int] = set()

    def on_call(self, c: Call):
        if (c.unbound or c.response_frame is None or c.fault_status is not None or c.auth_level >= PKT_PRIVACY
                or c.hresult == E_ACCESSDENIED or c.conversation.stream in self.flagged):
            return
        self.flagged.add(c.conversation.stream)
        level = "no authentication" if c.auth_level <= 1 else "authentication level %d" % c.auth_level
        self.report([c.request_frame, c.response_frame], "%s at %s answered %s: the server must refuse calls below "
                    "packet privacy (6) with a fault or E_ACCESSDENIED (later calls of this conversation not listed)"
                    % (c.method, level, _result(c)), c.subject)


class MalformedStubAccepted(Rule):
    id, severity = "clusprep.malformed_stub_accepted", "error"
    spec = "MS-CSVP 3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4; MS-RPCE 3"
    side, checks = "server", ("C03",)
    title = "The node served a request whose parameters do not decode"
    advice = ("The node served a request whose parameters do not parse; confirm the frame is complete in the capture, "
              "then report the node's build: its RPC runtime should have rejected it.")
    needs_stub = True
    # Every ClusPrep interface asks the RPC runtime for a strict NDR consistency check: an
    # inconsistent request stub never reaches the method. A success answer shows it did.

    def __init__(self, sink):
        super().__init__(sink)
        self.malformed: Dict[int, str] = {}  # request frame -> why its stub does not parse

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if frame == c.request_frame:
            self.malformed[frame] = why

    def on_call(self, c: Call):
        why = self.malformed.pop(c.request_frame, None)
        if why is not None and c.succeeded:
            self.report([c.request_frame, c.response_frame], "%s answered %s to a request stub that does not parse "
                        "(%s); strict NDR checking must reject it" % (c.method, _result(c), why), c.subject)


# -- IClusterNetwork2 (3.6, 3.7) -----------------------------------------------------------------
class NetworkStateAnswer(Rule):
    id, severity, spec = "clusprep.network_state_answer", "warning", "MS-CSVP 3.6.4.2-3.6.4.5"
    level, side, checks = "SHOULD", "server", ("C44", "C45")
    title = "The node answered a network test call against its initialization state"
    advice = ("The node served or refused a network test call regardless of InitializeNode; check whether an "
              "InitializeNode succeeded on a connection the capture lacks, else report the node build.")
    needs_start, needs_stub = True, True
    NEED_INIT = {"SendRTMessage": "3.6.4.2", "CleanupNode": "3.6.4.4"}
    ANY_STATE = {"GetIpConfigSerialized": "3.6.4.3", "QueryFirewallConfiguration": "3.6.4.5"}

    def __init__(self, sink):
        super().__init__(sink)
        self.initialized: Dict[Tuple, int] = {}  # object -> frame of the InitializeNode in effect
        self.at_request: Dict[Tuple[int, int], Optional[int]] = {}  # (stream, call_id) -> that, when requested

    def on_call_request(self, c: Call):
        if c.interface == NETWORK:
            self.at_request[(c.conversation.stream, c.call_id)] = self.initialized.get(c.dcom_object)

    def on_call(self, c: Call):
        if c.interface != NETWORK or (c.conversation.stream, c.call_id) not in self.at_request:
            return
        init = self.at_request.pop((c.conversation.stream, c.call_id))
        if c.method == "InitializeNode" and c.succeeded:
            self.initialized[c.dcom_object] = c.request_frame
        elif c.method == "CleanupNode" and c.succeeded:
            self.initialized.pop(c.dcom_object, None)
        if init is not None or c.fault_status is not None:  # faults are clusprep.fault's
            return
        if c.method in self.NEED_INIT and c.succeeded:
            self.report([c.request_frame, c.response_frame], "%s answered %s while IClusterNetwork2 is not initialized "
                        "(no InitializeNode in effect); the server should fail it" % (c.method, _result(c)),
                        c.subject, check="C44", spec="MS-CSVP " + self.NEED_INIT[c.method])
        elif c.method in self.ANY_STATE and c.succeeded is False:
            self.report([c.request_frame, c.response_frame], "%s answered %s while IClusterNetwork2 is not initialized; "
                        "the server should serve it without InitializeNode" % (c.method, _result(c)), c.subject,
                        check="C45", spec="MS-CSVP " + self.ANY_STATE[c.method])


class BoundUdpPort(Rule):
    id, severity, spec = "clusprep.bound_udp_port", "error", "MS-CSVP 3.6.4.1"
    side, checks = "server", ("C46",)
    title = "The node bound another UDP port than the one asked (or 3343 by default)"
    advice = ("Check the cluster UDP port on that node: it should bind the requested port, or 3343 by default; a "
              "different port suggests 3343 is taken by another service or blocked.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != NETWORK or c.method != "InitializeNode" or not c.succeeded or not c.readable:
            return
        asked, bound = c.param("RequestUDPPort"), c.param("BoundUDPPort")
        want = asked or DEFAULT_CLUSTER_PORT
        if bound != want:
            self.report([c.request_frame, c.response_frame], "InitializeNode with RequestUDPPort %d answered BoundUDPPort "
                        "%d; it must be %d%s" % (asked, bound, want, ", the default when 0 is asked" if not asked else ""),
                        c.subject)


class SendRtMessageArguments(Rule):
    id, severity, spec = "clusprep.send_rt_message_arguments", "error", "MS-CSVP 3.6.4.2"
    checks = ("C47",)
    title = "The client sent a round-trip test with a bad timeout, address family or addresses"
    advice = ("Check the addresses and timeout the client passed: both addresses in the named family and a timeout of "
              "at most 1000 ms; an IPv4/IPv6 mix suggests a wrong adapter pairing.")
    needs_stub = True

    def on_call_request(self, c: Call):
        if c.interface != NETWORK or c.method != "SendRTMessage" or not c.readable:
            return
        problems = []
        timeout, family = c.param("Timeout", 0), int_of(c.param("AddressFamily", 0))
        if timeout > RT_TIMER_MS:
            problems.append("Timeout %d ms exceeds the maximum of 1000" % timeout)
        if family not in (AF_INET, AF_INET6):
            problems.append("AddressFamily 0x%04X is neither AF_INET (0x0002) nor AF_INET6 (0x0017)" % family)
        for name in ("SourceIPAddress", "DestIPAddress"):
            text = c.param(name)
            if family == AF_INET and not (text is not None and is_ipv4(text)):
                problems.append("%s %s with AF_INET" % (name, address_problem(text) or '"%s" is IPv6' % text[:64]))
            elif family == AF_INET6 and not (text is not None and is_ipv6(text)):
                problems.append("%s %s with AF_INET6" % (name, address_problem(text) or '"%s" is IPv4' % text[:64]))
        if problems:
            self.report([c.request_frame], "SendRTMessage: " + _listed(problems), c.subject)


class RoundTripTimeout(Rule):
    id, severity, spec = "clusprep.round_trip_timeout", "error", "MS-CSVP 3.6.4.2"
    side, checks = "server", ("C48",)
    title = "The node answered success to a round-trip test whose reply took over 1000 ms"
    advice = ("The node reported success for a round trip slower than 1000 ms; check the latency between those two "
              "addresses, and treat that network test as failed whatever the report says.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != NETWORK or c.method != "SendRTMessage" or not c.succeeded:
            return
        elapsed = c.param("RTElapsedTime")
        if elapsed is not None and elapsed > RT_TIMER_MS:
            self.report([c.request_frame, c.response_frame], "SendRTMessage answered %s with RTElapsedTime %d ms: the "
                        "reply came after the 1000 ms timer expired, so it must return an error" % (_result(c), elapsed),
                        c.subject)


class IpConfigSize(Rule):
    id, severity, spec = "clusprep.ip_config_size", "error", "MS-CSVP 3.6.4.3"
    side, checks = "server", ("C49",)
    title = "The node's IP configuration answer gives a wrong byte count (pcbOut)"
    advice = ("Compare the returned byte count with the adapter data actually sent: a mismatch points at the node's "
              "serializer; re-run the network validation and report it with the node build.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.interface != NETWORK or c.method != "GetIpConfigSerialized" or not c.succeeded:
            return
        size, said = len(c.param("Data") or b""), c.param("pcbOut")
        if said != size:
            self.report([c.request_frame, c.response_frame], "GetIpConfigSerialized answered pcbOut %d for a Data of %d "
                        "bytes; pcbOut must be the size of Data" % (said, size), c.subject)


class AddRoutesRequestMalformed(Rule):
    id, severity, spec = "clusprep.add_routes_request_malformed", "error", "MS-CSVP 2.2.18, 2.2.19"
    checks = ("C53",)
    title = "The client sent a route list with repeated indices or bad IP addresses"
    advice = ("Check the route list the client sent: repeated route indices, or addresses not in dotted decimal or "
              "IPv6 text; look at the cluster network configuration the tool read.")
    needs_stub = True

    def on_call_request(self, c: Call):
        if c.interface != NETWORK or c.method != "ProcessAddRoutes" or not c.readable:
            return
        req = c.param("request")
        if req is None:
            return
        problems: List[str] = []
        # the IDL names the request's first field remoteVirtualIP; 2.2.19 calls it localVirtualIP
        addresses = [("localVirtualIP", req.get("remoteVirtualIP"))]
        seen: Dict[int, int] = {}
        for n, nri in enumerate(req.get("nodeRouteInfos") or []):
            if nri is None:
                continue
            addresses.append(("nodeRouteInfos[%d].remoteVirtualIP" % n, nri.get("remoteVirtualIP")))
            for field in ("localUnicastIPs", "remoteUnicastIPs"):
                addresses += [("nodeRouteInfos[%d].%s[%d]" % (n, field, k), a) for k, a in enumerate(nri.get(field) or [])]
            for i in nri.get("indices") or []:
                if i in seen:
                    problems.append("index %d appears in nodeRouteInfos[%d] and [%d]" % (i, seen[i], n)
                                    if seen[i] != n else "index %d appears twice in nodeRouteInfos[%d]" % (i, n))
                seen.setdefault(i, n)
        for where, a in addresses:
            why = address_problem(a)
            if why:
                problems.append("%s %s" % (where, why))
        if problems:
            self.report([c.request_frame], "ProcessAddRoutes: " + _listed(problems), c.subject,
                        spec="MS-CSVP 2.2.18" if all(p.startswith("index") for p in problems) else "")


class AdapterListMalformed(Rule):
    id, severity, spec = "clusprep.adapter_list_malformed", "error", "MS-CSVP 2.2.11-2.2.13, 2.2.16-2.2.17"
    side, checks = "server", ("C54", "C55")
    title = "The node returned an adapter list with invalid fields (names, MAC, flags, addresses)"
    advice = ("Check the adapters on that node (ipconfig /all): the returned list has bad names, MAC format, flags or "
              "address families; a virtual or teamed adapter is a likely source.")
    needs_stub = True

    # 3.6.4.3 says Data SHOULD be an ADAPTERLIST2 (<35>: Windows before 2012 sends an ADAPTERLIST):
    # a Data that parses as neither breaks no MUST and is not judged (listed as not evaluated); once it
    # parses, 2.2.11-2.2.17's MUSTs on its fields are. Bytes after the last Guid are not judged
    # either: no requirement names them, and pcbOut (C49) covers the whole Data.

    def on_call(self, c: Call):
        if c.interface != NETWORK or c.method != "GetIpConfigSerialized" or not c.succeeded:
            return
        data = c.param("Data")
        if not data:
            return
        check, name, problems = adapter_list_problems(bytes(data))
        if check is None:
            self.cannot_evaluate(c.subject, "GetIpConfigSerialized's Data parses as neither an ADAPTERLIST2 nor an "
                                 "ADAPTERLIST (3.6.4.3 says SHOULD, so that alone is no violation): its fields are "
                                 "not judged")
        elif problems:
            self.report([c.response_frame], "GetIpConfigSerialized Data, %s: %s" % (name, _listed(problems)), c.subject,
                        check=check, spec="MS-CSVP 2.2.11-2.2.13" if check == "C54" else "MS-CSVP 2.2.16-2.2.17")


_MAC = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2})*$")


def _text_problems(where: str, value: dict, fields) -> List[str]:
    """A Unicode field read by its length: a NUL inside means a terminator the spec forbids."""
    out = []
    for f in fields:
        length, text = value.get(f + "Length"), value.get(f)
        if isinstance(length, int) and isinstance(text, str) and len(text.encode("utf-16-le")) != length:
            out.append("%s%s holds a NUL within its %d bytes (no terminator allowed)" % (where, f, length))
    return out


def _adapter_problems(where: str, a: dict, second: bool) -> List[str]:
    out = []
    if second:
        if a.Adapter2IdentifierLength != cb.ADAPTER2_IDENTIFIER_LENGTH or a.Adapter2Identifier != cb.ADAPTER2_IDENTIFIER:
            out.append("%sAdapter2IdentifierLength/Adapter2Identifier 0x%04X/0x%04X, must be 0x0002/0x227B"
                       % (where, a.Adapter2IdentifierLength, a.Adapter2Identifier))
    elif a.AdapterNameLength != cb.ADAPTER_NAME_LENGTH or a.AdapterName != cb.ADAPTER_NAME:
        out.append('%sAdapterName "%s" (%d bytes), must be "%s" (0x0026)' % (where, a.AdapterName[:40],
                                                                          a.AdapterNameLength, cb.ADAPTER_NAME))
    out += _text_problems(where, a, ("Description", "FriendlyName", "Name"))
    kind = int_of(a.AdapterType)
    mac = a.PhysicalAddress
    if kind == 6 and not (_MAC.match(mac) and len(mac) == 17):
        out.append('%sPhysicalAddress "%s" is not "AA-BB-CC-DD-EE-FF" in capitals' % (where, mac[:40]))
    elif mac and not _MAC.match(mac):
        out.append('%sPhysicalAddress "%s" is not hex pairs in capitals joined by "-"' % (where, mac[:40]))
    if int_of(a.OperStatus) not in cb.IF_OPER_STATUS.values():
        out.append("%sOperStatus %d is not an RFC 2863 value (1-7)" % (where, int_of(a.OperStatus)))
    flags = ["DhcpEnabled", "InternalNetwork", "ClusterAdapter"] + (
        ["ConnectedToiSCSI", "RdmaCapable", "RssCapable"] if second else [])
    for f in flags:
        if int_of(a[f]) not in (0, 1):
            out.append("%s%s is %d, must be 0 or 1" % (where, f, int_of(a[f])))
    for f in ("Prefix", "Address", "GatewayAddress"):
        for k, s in enumerate(a[f]):
            s = s.Endpoint if f == "Prefix" else s
            if int_of(s.ss_family) not in (2, 23):
                out.append("%s%s[%d] has family %d, not a sockaddr_in or sockaddr_in6" % (where, f, k,
                                                                                       int_of(s.ss_family)))
    return out


def adapter_list_problems(data: bytes) -> Tuple[Optional[str], str, List[str]]:
    """(inventory id, structure name, what breaks 2.2.11-2.2.17) for a GetIpConfigSerialized Data;
    (None, "", []) when it parses as neither structure."""
    first_old = int.from_bytes(data[:2], "little") == cb.ADAPTERLIST_NAME_LENGTH
    for old in (first_old, not first_old):
        msg = cb.ADAPTERLIST if old else cb.ADAPTERLIST2
        try:
            v = msg.struct.parse_stream(io.BytesIO(data))
            break
        except Exception:  # noqa: BLE001 - a count or length past the end: not this structure
            continue
    else:
        return None, "", []
    check, name = ("C54", "ADAPTERLIST") if old else ("C55", "ADAPTERLIST2")
    out = []
    if old:
        if v.AdapterListNameLength != cb.ADAPTERLIST_NAME_LENGTH or v.AdapterListName != cb.ADAPTERLIST_NAME:
            out.append('AdapterListName "%s" must be "%s"' % (v.AdapterListName[:40], cb.ADAPTERLIST_NAME))
        adapters, count = v.Adapter, v.NumberOfAdapters
    else:
        if (v.AdapterList2IdentifierLength != cb.ADAPTERLIST2_IDENTIFIER_LENGTH
                or v.AdapterList2Identifier != cb.ADAPTERLIST2_IDENTIFIER):
            out.append("AdapterList2IdentifierLength/AdapterList2Identifier 0x%04X/0x%04X, must be 0x0002/0x227A"
                       % (v.AdapterList2IdentifierLength, v.AdapterList2Identifier))
        adapters, count = v.Adapter2, v.NumberOfAdapter2s
    out += _text_problems("", v, ("ServerName",))
    if v.NumberOfGuids < 2 * count:
        out.append("NumberOfGuids %d is less than twice the %d adapters" % (v.NumberOfGuids, count))
    for k, g in enumerate(v.Guid):
        if g.GuidLength != cb.GUID_LENGTH or not _is_uuid(g.Guid):
            out.append('Guid[%d] "%s" (%d bytes) is not a 72-byte UUID string' % (k, g.Guid[:40], g.GuidLength))
    item = "Adapter" if old else "Adapter2"
    for f in ("FriendlyName", "Name"):  # MUST be unique; Description only SHOULD
        seen: Set[str] = set()
        for k, a in enumerate(adapters):
            if a[f] in seen:
                out.append('%s[%d].%s "%s" is not unique in the list' % (item, k, f, a[f][:40]))
            seen.add(a[f])
    for k, a in enumerate(adapters):
        out += _adapter_problems("%s[%d]." % (item, k), a, not old)
    return check, name, out


_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _is_uuid(text: str) -> bool:
    return bool(_UUID.match(text or ""))


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
                        % (delay, timeout, _result(c)), c.subject)


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
                        "any InitializeAdapterConfiguration; it must be E_UNEXPECTED" % _result(c), c.subject)


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
            self.report([c.request_frame, c.response_frame], "GetUpdates: " + _listed(problems), c.subject)


RULES: List[type] = [LowAuthAccepted, MalformedStubAccepted, NetworkStateAnswer, BoundUdpPort,
                     SendRtMessageArguments, RoundTripTimeout, IpConfigSize, AddRoutesRequestMalformed,
                     AdapterListMalformed, CleanupFlags, CleanupTimeout, LogPathNotUnc, FirewallUninitializedAnswer,
                     FirewallProfileInvalid, UpdatesMalformed]
