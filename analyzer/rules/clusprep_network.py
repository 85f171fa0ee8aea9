"""MS-CSVP rules on IClusterNetwork2 (3.6, 3.7): its initialization, the UDP port, round-trip
messages, IP configurations, routes and adapter lists. Lengths and counts read from the wire
bound nothing but the bytes already captured, and no input raises.
"""
from __future__ import annotations

import io
import ipaddress
import re
from typing import Dict, List, Optional, Set, Tuple

from dissectors.definitions import csvp_buffers as cb

from ..reconstruction.clusprep_records import Call
from ..reconstruction.decoding import HRESULT_CODE, int_of
from .findings import Rule, listed

NETWORK, CLEANUP, LOG, FIREWALL, UPDATE = ("IClusterNetwork2", "IClusterCleanup", "IClusterLog", "IClusterFirewall",
                                           "IClusterUpdate")
E_UNEXPECTED, E_ACCESSDENIED = HRESULT_CODE["E_UNEXPECTED"], HRESULT_CODE["E_ACCESSDENIED"]
WAIT_TIMEOUT = (0x00000102, HRESULT_CODE["WAIT_TIMEOUT"])  # the Win32 code as returned, and as an HRESULT
DEFAULT_CLUSTER_PORT = 3343  # 3.6.4.1
RT_TIMER_MS = 1000  # 3.6.4.2: the Round-Trip Message Timer, and the most Timeout may be
AF_INET, AF_INET6 = 0x0002, 0x0017
CLEANUP_FLAGS = 0x00000003  # 3.8.4.1: STOP (0), DONT_STOP (1), DONT_WAIT (2); any other bit is none of them


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
                        "(no InitializeNode in effect); the server should fail it" % (c.method, c.result_text),
                        c.subject, check="C44", spec="MS-CSVP " + self.NEED_INIT[c.method])
        elif c.method in self.ANY_STATE and c.succeeded is False:
            self.report([c.request_frame, c.response_frame], "%s answered %s while IClusterNetwork2 is not initialized; "
                        "the server should serve it without InitializeNode" % (c.method, c.result_text), c.subject,
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
            self.report([c.request_frame], "SendRTMessage: " + listed(problems), c.subject)


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
                        "reply came after the 1000 ms timer expired, so it must return an error"
                        % (c.result_text, elapsed), c.subject)


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
            self.report([c.request_frame], "ProcessAddRoutes: " + listed(problems), c.subject,
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
            self.report([c.response_frame], "GetIpConfigSerialized Data, %s: %s" % (name, listed(problems)), c.subject,
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


RULES: List[type] = [NetworkStateAnswer, BoundUdpPort, SendRtMessageArguments, RoundTripTimeout, IpConfigSize,
                     AddRoutesRequestMalformed, AdapterListMalformed]
