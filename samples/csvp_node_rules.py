"""The ClusPrep rules outside storage (analyzer.rules_clusprep_node, and the network, firewall,
setup and fault rules of analyzer.rules_clusprep), each broken once and each met as closely as
a conforming peer can, in clear so every rule reads its parameters.

- clusprep_node_violations: IClusterNetwork2: CleanupNode before InitializeNode served,
  QueryFirewallConfiguration refused before it, InitializeNode asked for port 0 and bound to 0,
  SendRTMessage with Timeout 5000 and a host name for an address, another answered S_OK after
  1500 ms, an ADAPTERLIST2 with a name twice, a lower-case MAC, too few Guids and a flag of 2,
  an ADAPTERLIST with too few Guids and a pcbOut 8 bytes short, ProcessAddRoutes with an index
  twice and an address past 255 (the connection closes with the node still initialized, which
  no rule judges: C43 is not checked); IClusterCleanup: Flags 4, DelayBeforeCleanup past TimeOut
  answered S_OK after 5 s, ClearPR
  ending in a fault; IClusterLog: a C:\\ path for LogFilePath, and a request stub cut short
  answered S_OK; IClusterFirewall: GetNext before InitializeAdapterConfiguration answered S_OK,
  then adapterProfile 5; IClusterUpdate: UpdateCount 3 for two <update> elements; IClusterSetup
  at PKT_INTEGRITY answered (every clear conversation is, too: clusprep.low_auth_accepted); and
  on NODE1 a server answering S_OK to ProcessAddRoutes while monitoring, routeUnavailable TRUE
  while monitoring, S_OK to CancelAddRoutesRequest with nothing monitored, S_OK to an idx equal
  to cRetAdapters, and ERROR_FILE_NOT_FOUND for the secret ConfigSvcSecret just stored.
- clusprep_node_near_misses: the same methods where they come closest without breaking a rule
  (NEAR_MISSES says which): GetIpConfigSerialized (ADAPTERLIST2, and ADAPTERLIST with exactly
  2 x adapters Guids, an ADAPTERLIST2 with two bytes after its last Guid, and a Data that is neither
  list, which 3.6.4.3's SHOULD leaves unjudged) and QueryFirewallConfiguration served before
  InitializeNode, port 0 bound
  to 3343, Timeout exactly 1000 with RTElapsedTime 1000, an IPv6 round trip failed, indices
  unique across two NODE_ROUTE_INFOs, the add-routes state answers (E_FAIL twice,
  routeUnavailable FALSE while monitoring), CleanupNode last; Flags 2 answered at TimeOut and
  one answered 3 s past it (latency is not judged), Delay past TimeOut answered WAIT_TIMEOUT as an
  HRESULT and as the Win32 code 0x102, Delay past a TimeOut of 0 served, ClearPR failing without
  a fault; the secret
  retrieved before and after it was configured; an ADMIN$ log path, a cut request stub
  refused with a fault; idx = cRetAdapters - 1 with profile 2, idx = cRetAdapters answered
  E_INVALIDARG; GetUpdates with two updates, with none, and with two in a default namespace
  beside a comment, CDATA and an element 3.16.4.1 does not name.
- clusprep_node_auth: binds at PKT_INTEGRITY whose calls the server refuses (a fault, and
  E_ACCESSDENIED), one at PKT_PRIVACY served, and an unauthenticated bind answered bind_nak.
"""
from __future__ import annotations

from dissectors.definitions import csvp, csvp_buffers as cb
from . import csvp_payloads as P
from . import dcerpc, ntlmssp
from .csvp_scenarios import CLIENT, NODE1, NODE2, ClusPrepClient
from .network import Capture

N, CLEAN, LOG, FW, UPD, SETUP = (csvp.IClusterNetwork2, csvp.IClusterCleanup, csvp.IClusterLog, csvp.IClusterFirewall,
                                 csvp.IClusterUpdate, csvp.IClusterSetup)
E_FAIL, E_INVALIDARG, E_UNEXPECTED, E_ACCESSDENIED = 0x80004005, 0x80070057, 0x8000FFFF, 0x80070005
ERROR_FILE_NOT_FOUND, WAIT_TIMEOUT, ERROR_TIMEOUT = 0x80070002, 0x80070102, 0x800705B4
RPC_X_BAD_STUB_DATA, STATUS_ACCESS_VIOLATION = 0x000006F7, 0xC0000005
VERSIONS = dict(NodeMajorVersion=10, NodeMinorVersion=0, ClusprepVersion=5)
ADAPTER_IDS = ["8d1c6e0a-2b3f-4c5d-9e8f-0a1b2c3d4e5f", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"]
SECRET = "Gx7#kP2m!vQ9$wR4"


def _rt(src="10.0.0.12", dst="10.0.0.11", family="AF_INET", timeout=1000) -> dict:
    return dict(SourceIPAddress=src, DestIPAddress=dst, DestPort=3343, AddressFamily=family, MessageSize=1024,
                Timeout=timeout)


def _ip_config(data: bytes, pcb_out=None) -> dict:
    return dict(Data=data, pcbOut=len(data) if pcb_out is None else pcb_out)


def _route(virtual: str, local, remote, indices) -> dict:
    return dict(remoteVirtualIP=virtual, localUnicastIPs=local, remoteUnicastIPs=remote, indices=indices)


def _firewall(profile) -> dict:
    return dict(adapterId=ADAPTER_IDS[0], adapterProfile=profile, serverRulesEnabled=1, managementRulesEnabled=1,
                commonRulesEnabled=1)


def _late(c: ClusPrepClient, ms: int) -> None:
    """The next answer comes `ms` after its request (the server's think time)."""
    c.conn.think_us = ms * 1000


def _cut_request(c: ClusPrepClient, itf, name: str, ins: dict) -> bytes:
    """A request stub that ends two bytes into its first parameter (after the 32-byte ORPCTHIS)."""
    req, _ = c.stubs(itf, name, ins)
    return req[:34]


def _bad_adapterlist2() -> bytes:
    v = P.adapterlist2_value()
    a0, a1, a2 = v["Adapter2"]
    a1.update(FriendlyName=a0["FriendlyName"], FriendlyNameLength=a0["FriendlyNameLength"])  # a name twice
    a0["PhysicalAddress"] = a0["PhysicalAddress"].lower()  # "00-15-5d-..."
    a2["RdmaCapable"] = 2
    v.update(NumberOfGuids=4, Guid=v["Guid"][:4])  # fewer than 2 x 3 adapters
    return cb.ADAPTERLIST2.build(v)


def _bad_adapterlist() -> bytes:
    v = P.adapterlist_value()
    v.update(NumberOfGuids=2, Guid=v["Guid"][:2])  # fewer than 2 x 2 adapters
    return cb.ADAPTERLIST.build(v)


def violations() -> bytes:
    cap = Capture()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50501))
    c.bind(N)
    c.call(N, "CleanupNode")  # served though nothing is initialized
    c.call(N, "QueryFirewallConfiguration", hresult=E_FAIL)  # refused before InitializeNode
    c.call(N, "InitializeNode", dict(RequestUDPPort=0), dict(BoundUDPPort=0, **VERSIONS))  # 0 means 3343
    c.call(N, "SendRTMessage", _rt(dst="NODE1.corp.contoso.com", timeout=5000), dict(RTElapsedTime=3))
    c.call(N, "SendRTMessage", _rt(), dict(RTElapsedTime=1500))  # the 1000 ms timer expired: must fail
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0), _ip_config(_bad_adapterlist2()))
    data = _bad_adapterlist()
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=1), _ip_config(data, len(data) - 8))
    c.call(N, "ProcessAddRoutes", dict(request=dict(remoteVirtualIP="10.0.0.300", nodeRouteInfos=[
        _route("fe80::5efe:a00:b", ["10.0.0.12", "172.16.0.12"], ["10.0.0.11", "172.16.0.11"], [1, 2]),
        _route("fe80::5efe:a00:d", ["10.0.0.12"], ["10.0.0.13"], [2])])))
    c.conn.close()  # no CleanupNode: the node stays initialized

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50502))
    c.bind(CLEAN, dcom_style=False)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=0, TimeOut=60000, Flags=4))
    _late(c, 5000)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=5000, TimeOut=2000, Flags=0))
    _late(c, 0)
    c.call(CLEAN, "ClearPR", dict(DeviceNumber=2), fault=STATUS_ACCESS_VIOLATION)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50503))
    c.bind(LOG, dcom_style=False)
    c.call(LOG, "GenerateClusterLog", outs=dict(LogFilePath="C:\\Windows\\Cluster\\Reports\\Cluster.log"))
    _, resp = c.stubs(LOG, "GenerateTimeSpanLog", dict(SpanMinutes=15),
                      dict(LogFilePath="ADMIN$\\Cluster\\Reports\\Cluster-15min.log"))
    c.raw(LOG, "GenerateTimeSpanLog", _cut_request(c, LOG, "GenerateTimeSpanLog", dict(SpanMinutes=15)), resp)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50504))
    c.bind(FW, dcom_style=False)
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=0), _firewall("ClusterNetworkProfilePrivate"))
    c.call(FW, "InitializeAdapterConfiguration", outs=dict(cRetAdapters=1))
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=0), _firewall(5))
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50505))
    c.bind(UPD, dcom_style=False)
    c.call(UPD, "GetUpdates", outs=dict(UpdateCount=3, updates=P.updates_xml()))
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE2, 50506))
    c.bind(SETUP, dcom_style=False, ntlm=ntlmssp.Handshake(), level=dcerpc.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY)
    c.call(SETUP, "RetrieveHostLabel", outs=dict(HostLabel="NODE2.corp.contoso.com"))  # signed, not sealed
    c.conn.close()

    # the server side of the route monitoring, the adapter index and the stored secret
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50507))
    c.bind(N)
    c.call(N, "InitializeNode", dict(RequestUDPPort=3343), dict(BoundUDPPort=3343, **VERSIONS))
    request = dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[
        _route("fe80::5efe:a00:c", ["10.0.0.11"], ["10.0.0.12"], [1])])
    c.call(N, "ProcessAddRoutes", dict(request=request))
    c.call(N, "ProcessAddRoutes", dict(request=request))  # already monitoring: must be E_FAIL
    c.call(N, "GetAddRoutesStatus", outs=dict(reply=dict(indices=[], replies=[], routeUnavailable=1)))  # monitoring
    c.call(N, "CancelAddRoutesRequest")  # nothing monitored any more: must be E_FAIL
    c.call(N, "CleanupNode")
    c.alter_context(FW, dcom_style=False)
    c.call(FW, "InitializeAdapterConfiguration", outs=dict(cRetAdapters=2))
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=2), _firewall("ClusterNetworkProfilePublic"))
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50508))
    c.bind(SETUP, dcom_style=False)
    c.call(SETUP, "ConfigSvcSecret", dict(SecretBLOB=SECRET))
    c.call(SETUP, "RetrieveSvcSecret", hresult=ERROR_FILE_NOT_FOUND)  # lost the secret just stored
    c.conn.close()
    return cap.pcapng()


def near_misses() -> bytes:
    cap = Capture()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50601))
    c.bind(N)
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0), _ip_config(P.adapterlist2()))
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=1), _ip_config(P.adapterlist()))
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0), _ip_config(P.adapterlist2() + b"\x00\x00"))
    c.call(N, "GetIpConfigSerialized", dict(ApplyClusterFilter=0), _ip_config(b"\x02\x00\x7a\x22\xff\xff"))
    c.call(N, "QueryFirewallConfiguration", outs=dict(serverRulesEnabled=1, mgmtRulesEnabled=0))
    c.call(N, "InitializeNode", dict(RequestUDPPort=0), dict(BoundUDPPort=3343, **VERSIONS))
    c.call(N, "SendRTMessage", _rt(src="10.0.0.11", dst="10.0.0.12"), dict(RTElapsedTime=1000))
    c.call(N, "SendRTMessage", _rt(src="fd00:20:11::11", dst="fd00:20:12::12", family="AF_INET6"),
           hresult=ERROR_TIMEOUT)  # no reply within the timer: an error, as it must
    request = dict(remoteVirtualIP="fe80::5efe:a00:b", nodeRouteInfos=[
        _route("fe80::5efe:a00:c", ["10.0.0.11", "172.16.0.11"], ["10.0.0.12", "172.16.0.12"], [1, 2]),
        _route("fe80::5efe:a00:d", ["10.0.0.11", "fd00:20:11::11"], ["10.0.0.13", "fd00:20:13::13"], [3, 4])])
    c.call(N, "ProcessAddRoutes", dict(request=request))
    c.call(N, "ProcessAddRoutes", dict(request=request), hresult=E_FAIL)  # already monitoring
    c.call(N, "GetAddRoutesStatus", outs=dict(reply=dict(
        indices=[1, 2, 3, 4], replies=[dict(packetLoss=0, status="UP")] * 3 + [dict(packetLoss=100, status="DOWN")],
        routeUnavailable=0)))
    c.call(N, "CancelAddRoutesRequest", hresult=E_FAIL)  # GetAddRoutesStatus ended the monitoring
    c.call(N, "CleanupNode")
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50602))
    c.bind(CLEAN, dcom_style=False)
    _late(c, 1000)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=0, TimeOut=1000, Flags=2))
    _late(c, 2000)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=3000, TimeOut=2000, Flags=1), hresult=WAIT_TIMEOUT)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=3000, TimeOut=2000, Flags=1), hresult=0x00000102)
    _late(c, 4000)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=0, TimeOut=1000, Flags=1))  # 3 s late: not judged
    _late(c, 0)
    c.call(CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=500, TimeOut=0, Flags=1))  # TimeOut 0: not judged
    c.call(CLEAN, "ClearPR", dict(DeviceNumber=9), hresult=ERROR_FILE_NOT_FOUND)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50603))
    c.bind(SETUP, dcom_style=False)
    c.call(SETUP, "RetrieveSvcSecret", hresult=ERROR_FILE_NOT_FOUND)  # never configured on NODE1
    c.call(SETUP, "ConfigSvcSecret", dict(SecretBLOB=SECRET))
    c.call(SETUP, "RetrieveSvcSecret", outs=dict(SecretBLOB=SECRET))
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50604))
    c.bind(LOG, dcom_style=False)
    c.call(LOG, "GenerateClusterLog", outs=dict(LogFilePath="ADMIN$\\Cluster\\Reports\\Cluster.log"))
    c.raw(LOG, "GenerateTimeSpanLog", _cut_request(c, LOG, "GenerateTimeSpanLog", dict(SpanMinutes=15)),
          fault=RPC_X_BAD_STUB_DATA)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50605))
    c.bind(FW, dcom_style=False)
    c.call(FW, "InitializeAdapterConfiguration", outs=dict(cRetAdapters=2))
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=1), _firewall("ClusterNetworkProfileDomainAuthenticated"))
    c.call(FW, "GetNextAdapterFirewallConfiguration", dict(idx=2), hresult=E_INVALIDARG)
    c.conn.close()

    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50606))
    c.bind(UPD, dcom_style=False)
    c.call(UPD, "GetUpdates", outs=dict(UpdateCount=len(P.UPDATES), updates=P.updates_xml()))
    c.call(UPD, "GetUpdates", outs=dict(UpdateCount=0, updates=P.updates_xml([])))
    namespaced = P.updates_xml().replace('<updates version="1.0">', '<updates xmlns="urn:schemas-contoso-com:updates" '
                                         'version="1.0"><!-- NODE1 --><source><![CDATA[WSUS & WU]]></source>', 1)
    c.call(UPD, "GetUpdates", outs=dict(UpdateCount=len(P.UPDATES), updates=namespaced))
    c.conn.close()
    return cap.pcapng()


def auth() -> bytes:
    cap = Capture()
    for port, level, answer in [(50701, dcerpc.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, dict(fault=0x00000005)),
                                (50702, dcerpc.RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, dict(hresult=E_ACCESSDENIED)),
                                (50703, dcerpc.RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                                 dict(outs=dict(HostLabel="NODE1.corp.contoso.com")))]:
        c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, port))
        c.bind(SETUP, dcom_style=False, ntlm=ntlmssp.Handshake(), level=level)
        c.call(SETUP, "RetrieveHostLabel", **answer)
        if port == 50701:  # a client that tries again is refused again
            c.call(SETUP, "RetrieveSvcSecret", **answer)
        c.conn.close()
    c = ClusPrepClient(dcerpc.start(cap, CLIENT, NODE1, 50704))
    c.conn.bind_nak(c._items(SETUP, False))  # unauthenticated: refused at the bind
    c.conn.close()
    return cap.pcapng()


SCENARIOS = {"clusprep_node_violations": violations, "clusprep_node_near_misses": near_misses,
             "clusprep_node_auth": auth}

NEAR_MISSES = {
    "clusprep_node_near_misses": {
        "C02": "ClearPR failing with ERROR_FILE_NOT_FOUND in a response, and a cut request stub refused with a "
               "fault (what strict NDR checking does)",
        "C03": "a GenerateTimeSpanLog request stub cut short, refused with fault RPC_X_BAD_STUB_DATA",
        "C04": "CancelAddRoutesRequest (opnum 11), next to the reserved opnum 10, which nothing calls",
        "C42": "GetIpConfigSerialized and QueryFirewallConfiguration before InitializeNode (allowed), every other "
               "IClusterNetwork2 method after it",
        "C44": "SendRTMessage and CleanupNode served while InitializeNode is in effect",
        "C45": "GetIpConfigSerialized and QueryFirewallConfiguration served before InitializeNode",
        "C46": "InitializeNode asking for port 0, answered BoundUDPPort 3343",
        "C47": "SendRTMessage with Timeout exactly 1000, AF_INET with dotted decimal and AF_INET6 with IPv6",
        "C48": "RTElapsedTime exactly 1000 answered S_OK; a round trip with no reply answered ERROR_TIMEOUT",
        "C49": "pcbOut equal to the size of Data, for an ADAPTERLIST2 and an ADAPTERLIST",
        "C50": "ProcessAddRoutes while monitoring answered E_FAIL",
        "C51": "GetAddRoutesStatus while monitoring answered routeUnavailable FALSE",
        "C52": "CancelAddRoutesRequest after GetAddRoutesStatus ended the monitoring, answered E_FAIL",
        "C53": "indices 1-4 spread over two NODE_ROUTE_INFOs, none twice; IPv4 dotted decimal beside IPv6",
        "C54": "an ADAPTERLIST with exactly 2 x NumberOfAdapters Guids; a Data that parses as no list (SHOULD: "
               "not judged)",
        "C55": "an ADAPTERLIST2 of three adapters with six Guids, one cluster adapter, MACs in capitals; one with "
               "two bytes after its last Guid",
        "C58": "CleanUpEvictedNode with Flags 2 (CLUSTERCLEANUP_DONT_WAIT_CLUSTER_SERVICE_STOP) and 1",
        "C59": "answered S_OK at TimeOut (1000 ms) and 3 s past it; DelayBeforeCleanup past TimeOut answered "
               "WAIT_TIMEOUT as 0x80070102 and as 0x00000102; DelayBeforeCleanup 500 with TimeOut 0 served",
        "C61": "RetrieveSvcSecret answered ERROR_FILE_NOT_FOUND before any ConfigSvcSecret, then the secret after one",
        "C62": "LogFilePath ADMIN$\\Cluster\\Reports\\Cluster.log",
        "C63": "InitializeAdapterConfiguration before every GetNextAdapterFirewallConfiguration",
        "C64": "GetNextAdapterFirewallConfiguration answered S_OK right after InitializeAdapterConfiguration",
        "C65": "idx = cRetAdapters - 1 answered S_OK, idx = cRetAdapters answered E_INVALIDARG",
        "C66": "adapterProfile 2 (ClusterNetworkProfileDomainAuthenticated), the highest value",
        "C67": 'UpdateCount 2 with two complete <update> elements, and 0 with an empty <updates version="1.0">; '
               'the two in a default namespace beside a comment, CDATA and a <source> element',
    },
    "clusprep_node_auth": {
        "C01": "calls at PKT_INTEGRITY refused (fault nca_s_fault_access_denied, E_ACCESSDENIED), one at "
               "PKT_PRIVACY served, an unauthenticated bind answered bind_nak",
    },
}
