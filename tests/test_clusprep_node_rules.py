"""The non-storage ClusPrep rules (analyzer.rules.clusprep_rpc, clusprep_network, clusprep_node_services) at their boundaries, fed through
the reconstruction as a capture feeds them; and their parsers on hostile input (no raise, no
unbounded work)."""
import random

from construct import Container

from analyzer.rules import clusprep_network, clusprep_node_services, clusprep_rpc
from analyzer.reconstruction.clusprep_records import Call, Conversation
from analyzer.reconstruction.clusprep_sequences import ClusPrepTracker
from analyzer.reconstruction.bus import Bus
from analyzer.rules.findings import Findings
from analyzer.reconstruction.tables import Tables
from dissectors.definitions import csvp_buffers as cb
from samples import csvp_payloads as P

N, FW, CLEAN = "IClusterNetwork2", "IClusterFirewall", "IClusterCleanup"


def run(rule_cls, calls, level=6):
    """(interface, method, request params, response params or HRESULT, latency s). Returns the
    findings' checks."""
    sink = Findings()
    bus = Bus([rule_cls(sink)])
    tracker = ClusPrepTracker(bus, Tables(keep=False))
    conv = Conversation(0, "10.0.0.31:50000", "10.0.0.11:49668", started=True)
    tracker.conversations[0] = conv
    t = 0.0
    for n, (itf, method, ins, outs, *latency) in enumerate(calls):
        frame = 3 * n + 10
        c = Call(conv, itf, method, 0, n + 1, frame, t, level, False)
        c.request = Container(ins or {})
        bus.emit("call_request", c)
        result = outs if isinstance(outs, dict) else {}
        c.response = Container(dict(result, ReturnValue=outs if isinstance(outs, int) else 0))
        t += latency[0] if latency else 0.001
        c.response_frame, c.response_time = frame + 1, t
        tracker.done(c)
    bus.emit("finish")
    return [f.check for f in sink.items]


def test_addresses():
    assert clusprep_network.address_problem("10.0.0.1") is None and clusprep_network.address_problem("fe80::5efe:a00:b%6") is None
    assert clusprep_network.address_problem("255.255.255.255") is None and clusprep_network.address_problem("::1") is None
    for bad in ("10.0.0.256", "010.0.0.1", "10.0.0", "NODE1.corp.contoso.com", "", None, "0x0a000001"):
        assert clusprep_network.address_problem(bad), bad


def test_initialize_node_port():
    ok = [(N, "InitializeNode", dict(RequestUDPPort=0), dict(BoundUDPPort=3343)),
          (N, "InitializeNode", dict(RequestUDPPort=4000), dict(BoundUDPPort=4000)),
          (N, "InitializeNode", dict(RequestUDPPort=0), 0x80004005)]  # a failure's outputs are not judged
    assert run(clusprep_network.BoundUdpPort, ok) == []
    assert run(clusprep_network.BoundUdpPort, [(N, "InitializeNode", dict(RequestUDPPort=4000), dict(BoundUDPPort=3343))]) == ["C46"]


def rt(timeout=1000, family=2, src="10.0.0.12", dst="10.0.0.11"):
    return dict(SourceIPAddress=src, DestIPAddress=dst, DestPort=3343, AddressFamily=family, MessageSize=0,
                Timeout=timeout)


def test_send_rt_message_arguments_and_timer():
    assert run(clusprep_network.SendRtMessageArguments, [(N, "SendRTMessage", rt(), {}),
                                          (N, "SendRTMessage", rt(family=0x17, src="fd00::1", dst="fd00::2"), {})]) == []
    for bad in (rt(timeout=1001), rt(family=3), rt(family=0x17), rt(dst="fd00::2")):
        assert run(clusprep_network.SendRtMessageArguments, [(N, "SendRTMessage", bad, {})]) == ["C47"], bad
    assert run(clusprep_network.RoundTripTimeout, [(N, "SendRTMessage", rt(), dict(RTElapsedTime=1000)),
                                    (N, "SendRTMessage", rt(), 0x800705B4)]) == []
    assert run(clusprep_network.RoundTripTimeout, [(N, "SendRTMessage", rt(), dict(RTElapsedTime=1001))]) == ["C48"]


def test_initialization_state_is_the_one_at_request_time():
    init = (N, "InitializeNode", dict(RequestUDPPort=0), dict(BoundUDPPort=3343))
    assert run(clusprep_network.NetworkStateAnswer, [(N, "GetIpConfigSerialized", {}, dict(Data=b"", pcbOut=0)), init,
                                      (N, "SendRTMessage", rt(), {}), (N, "CleanupNode", {}, {}),
                                      (N, "SendRTMessage", rt(), 0x80004005),
                                      (N, "QueryFirewallConfiguration", {}, {})]) == []
    assert run(clusprep_network.NetworkStateAnswer, [init, (N, "CleanupNode", {}, {}), (N, "CleanupNode", {}, {}),
                                      (N, "QueryFirewallConfiguration", {}, 0x80004005)]) == ["C44", "C45"]


def test_cleanup_node_missing_is_not_checked():
    """C43: no finite capture shows the client never calls CleanupNode (NOT_CHECKED says why)."""
    from analyzer.rules import RULE_CLASSES
    from analyzer.rules.spec_inventory import NOT_CHECKED

    assert "C43" in NOT_CHECKED and not any("C43" in cls.checks for cls in RULE_CLASSES)


def test_adapter_lists():
    assert clusprep_network.adapter_list_problems(P.adapterlist2()) == ("C55", "ADAPTERLIST2", [])
    assert clusprep_network.adapter_list_problems(P.adapterlist()) == ("C54", "ADAPTERLIST", [])
    v = P.adapterlist2_value()
    v["Adapter2"][1]["Name"], v["Adapter2"][1]["NameLength"] = v["Adapter2"][0]["Name"], v["Adapter2"][0]["NameLength"]
    v["Adapter2"][2]["PhysicalAddress"] = "02-F1-7C-3D-5A-9"  # one digit short
    _, _, problems = clusprep_network.adapter_list_problems(cb.ADAPTERLIST2.build(v))
    assert len(problems) == 2 and "not unique" in problems[0] and "PhysicalAddress" in problems[1]
    # bytes after the last Guid: no requirement names them (pcbOut covers Data)
    assert clusprep_network.adapter_list_problems(P.adapterlist2() + b"\x00\x00") == ("C55", "ADAPTERLIST2", [])


def test_a_data_that_is_neither_list_is_not_judged():
    """3.6.4.3: Data SHOULD be an ADAPTERLIST2; one that parses as neither is listed as not evaluated."""
    assert clusprep_network.adapter_list_problems(b"\x01\x02\x03") == (None, "", [])
    sink = Findings()
    rule = clusprep_network.AdapterListMalformed(sink)
    conv = Conversation(0, "10.0.0.31:50000", "10.0.0.11:49668", started=True)
    c = Call(conv, N, "GetIpConfigSerialized", 0, 1, 10, 0.0, 6, False)
    c.request, c.response, c.response_frame = Container({}), Container(dict(Data=b"\x01\x02\x03", pcbOut=3,
                                                                            ReturnValue=0)), 11
    rule.on_call(c)
    assert sink.items == [] and [n.rules for n in sink.not_evaluated()] == [["clusprep.adapter_list_malformed"]]


def test_adapter_list_parser_on_hostile_bytes():
    data = P.adapterlist2()
    hostile = bytearray(data)
    hostile[-(2 + 74 * 6):-(74 * 6)] = b"\xff\xff"  # NumberOfGuids 65535, six Guids present
    assert clusprep_network.adapter_list_problems(bytes(hostile)) == (None, "", [])  # parses as neither: not judged
    rnd = random.Random(7)
    for n in range(300):
        b = bytearray(data[:rnd.randrange(len(data))])
        for _ in range(4):
            if b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        clusprep_network.adapter_list_problems(bytes(b))  # never raises


def test_cleanup_flags_and_timeout():
    call = lambda flags=0, delay=0, timeout=1000, outs=None, latency=0.001: (
        CLEAN, "CleanUpEvictedNode", dict(DelayBeforeCleanup=delay, TimeOut=timeout, Flags=flags),
        {} if outs is None else outs, latency)
    assert run(clusprep_node_services.CleanupFlags, [call(0), call(1), call(2), call(3)]) == []
    assert run(clusprep_node_services.CleanupFlags, [call(4)]) == ["C58"]
    # latency is not judged; WAIT_TIMEOUT in either form; TimeOut 0 is not judged
    assert run(clusprep_node_services.CleanupTimeout, [call(timeout=1000, latency=2.1), call(delay=3000, timeout=2000, outs=0x80070102),
                                  call(delay=3000, timeout=2000, outs=0x00000102), call(delay=500, timeout=0)]) == []
    assert run(clusprep_node_services.CleanupTimeout, [call(delay=2001, timeout=2000)]) == ["C59"]


def test_log_paths():
    for ok in ("ADMIN$\\Cluster\\Reports\\Cluster.log", "ClusterLogs\\NODE1_cluster.log"):
        assert clusprep_node_services.log_path_problem(ok) is None, ok
    for bad in ("C:\\Windows\\Cluster\\Reports\\Cluster.log", "\\\\NODE1\\ADMIN$\\Cluster.log", "Cluster.log",
                "ADMIN$\\", "ADMIN$\\a\\..\\b.log", "AD[MIN]\\a.log", "ADMIN$\\a?.log", ""):
        assert clusprep_node_services.log_path_problem(bad), bad


def test_firewall_answers():
    init = (FW, "InitializeAdapterConfiguration", {}, dict(cRetAdapters=2))
    get = lambda outs, idx=0: (FW, "GetNextAdapterFirewallConfiguration", dict(idx=idx), outs)
    assert run(clusprep_node_services.FirewallUninitializedAnswer, [get(0x8000FFFF), init, get(dict(adapterProfile=1))]) == []
    assert run(clusprep_node_services.FirewallUninitializedAnswer, [get(0x80070057)]) == ["C64"]
    assert run(clusprep_node_services.FirewallProfileInvalid, [get(dict(adapterProfile=p)) for p in (0, 1, 2)] + [get(0x80070057)]) == []
    assert run(clusprep_node_services.FirewallProfileInvalid, [get(dict(adapterProfile=3))]) == ["C66"]


def test_updates_xml():
    assert clusprep_node_services.updates_problems(2, P.updates_xml()) == [] and clusprep_node_services.updates_problems(0, P.updates_xml([])) == []
    assert clusprep_node_services.updates_problems(2, P.updates_xml() + "\x00") == []
    assert "UpdateCount 1 but 2" in clusprep_node_services.updates_problems(1, P.updates_xml())[0]
    assert "not <updates version" in clusprep_node_services.updates_problems(0, "<updates/>")[0]
    assert "lacks <title>" in clusprep_node_services.updates_problems(1, '<updates version="1.0"><update><id>1</id></update></updates>')[0]
    assert "DOCTYPE" in clusprep_node_services.updates_problems(0, '<!DOCTYPE x [<!ENTITY a "b">]><updates version="1.0"/>')[0]
    # a default namespace, comments, CDATA and other elements are fine
    ns = P.updates_xml().replace('<updates version="1.0">', '<updates xmlns="urn:x" version="1.0"><!-- c --><x/>', 1)
    assert '<updates xmlns="urn:x"' in ns and clusprep_node_services.updates_problems(2, ns) == []
    assert clusprep_node_services.updates_problems(0, '<updates version="1.0"><![CDATA[ text ]]></updates>') == []
    assert "not well-formed" in clusprep_node_services.updates_problems(0, "<updates version='1.0'")[0]
    assert clusprep_node_services.updates_problems(0, None) == ["updates is NULL"]


def test_low_auth_and_malformed_stubs():
    assert run(clusprep_rpc.LowAuthAccepted, [(N, "GetIpConfigSerialized", {}, {})], level=6) == []
    assert run(clusprep_rpc.LowAuthAccepted, [(N, "GetIpConfigSerialized", {}, 0x80070005)], level=5) == []
    assert run(clusprep_rpc.LowAuthAccepted, [(N, "GetIpConfigSerialized", {}, {}), (N, "CleanupNode", {}, {})], level=5) == ["C01"]
