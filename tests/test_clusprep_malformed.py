"""Bad ClusPrep stubs: each gets the expert item its fault deserves, the call is still shown,
and Python's parse of the same bytes refuses them too. (No Lua error on any sample is
tested in test_lua_health.py; the cases are built in samples/csvp_scenarios.py.)"""
import pytest

import samples
from clusprep_decoded import calls, stub_def
from dissectors.vocabulary.ndr import NdrError
from samples.csvp_scenarios import MALFORMED_CASES

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

PCAP = samples.path("clusprep_malformed")
EXPERT = {"length": "clusprep.malformed.length", "short": "clusprep.malformed.short",
          "ndr": "clusprep.malformed.ndr", "trailing": "clusprep.trailing"}


def experts(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k.startswith("clusprep.") and k.count(".") >= 1 and k.split(".")[1] in (
                    "malformed", "trailing", "unknown_opnum"):
                out.append(k)
            experts(v, out)
    elif isinstance(node, list):
        for v in node:
            experts(v, out)
    return out


@pytest.mark.parametrize("method", sorted(MALFORMED_CASES))
def test_each_bad_stub_gets_its_expert(method):
    direction, kind = MALFORMED_CASES[method]
    [call] = [c for c in calls(PCAP) if c.method == method and c.direction == direction]
    found = experts(call.top, [])
    assert found == [EXPERT[kind]], found
    assert call.top["clusprep.interface"].startswith("ICluster")
    if kind != "trailing":
        with pytest.raises(NdrError):
            stub_def(call).params.parse(call.raw)


def test_the_good_half_of_each_call_still_decodes():
    for method, (direction, _) in MALFORMED_CASES.items():
        other = "response" if direction == "request" else "request"
        [call] = [c for c in calls(PCAP) if c.method == method and c.direction == other]
        assert experts(call.top, []) == [], method
        stub_def(call).params.parse(call.raw)


def test_an_opnum_the_interface_lacks():
    [req] = [c for c in calls(PCAP) if c.method == "opnum 40" and c.direction == "request"]
    assert experts(req.top, []) == ["clusprep.unknown_opnum"]
    [fault] = [c for c in calls(PCAP) if c.method == "opnum 40" and c.direction == "fault"]
    assert fault.top["clusprep.fault_status"] == "0x1c010002"


def test_a_rejected_context_is_not_decoded():
    """The DCOM-style bind offers NDR64 on context 1; the server rejects it, so a call there is
    not ClusPrep to this dissector (only accepted NDR32 contexts are tracked)."""
    from decoded import field_values
    from samples.csvp_scenarios import REJECTED_CONTEXT_CALL, malformed

    malformed()
    [call_id] = REJECTED_CONTEXT_CALL
    rows = [r for r in field_values(PCAP, ["dcerpc.cn_call_id", "dcerpc.cn_ctx_id", "clusprep.method"])
            if r["dcerpc.cn_call_id"] == [str(call_id)]]
    assert len(rows) == 2 and all(r["dcerpc.cn_ctx_id"] == ["1"] and r["clusprep.method"] == [] for r in rows)
    assert any(r["clusprep.method"] for r in field_values(PCAP, ["clusprep.method"]))


def test_an_answer_that_does_not_parse_is_not_called_sealed():
    """Issue 11: on an unauthenticated connection, a response stub that fails to parse is said to be
    malformed; only an encrypted one is 'sealed'."""
    import analyzer

    calls = analyzer.load(samples.path("clusprep_malformed")).clusprep_calls
    assert not calls.encrypted.any() and "sealed" not in set(calls.result)
    assert (calls.result == "answer not decoded (malformed stub)").sum() == 3
