"""Every sample decodes the same on every tshark of the matrix: each msrsvd.* and clusprep.*
item (names, values, nesting, our expert items), frame by frame, equals what the system
tshark 4.0 shows. ClusPrep also decodes the same through its two ways in: the DCE/RPC
sub-dissector (4.4 and later) and the postdissector (4.0, or forced with a script argument).

Differences that cannot be removed are listed in KNOWN with the reason; there are none today.
"""
from __future__ import annotations

import functools
import json

import pytest

import samples
import tsharks
from clusprep_decoded import PASSWORD
from decoded import tshark_cmd
from dissectors import generate, plugin_paths

import subprocess

SAMPLES = sorted(samples.path(n) for n in samples.SCENARIOS)
# one pass, as analyze runs; two passes with a filter, as the GUI shows a frame (links both
# ways); two passes without one (no tree in the first pass: the plugins first look in the second)
MODES = {"one-pass": (), "two-pass": ("-2", "-Y", "msrsvd || clusprep"), "two-pass-unfiltered": ("-2",)}
POSTDISSECTOR = ("-X", "lua_script%d:postdissector" % (1 + [p.stem for p in plugin_paths.lua_paths()].index("clusprep")))
KNOWN: dict = {}  # (sample, field) -> why it differs between versions


def _normal(node):
    """JSON of our layers with the booleans printed one way (1/0 up to 4.2, True/False after)."""
    if isinstance(node, dict):
        return {k: _normal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    return {"True": "1", "False": "0"}.get(node, node)


@functools.lru_cache(maxsize=None)
def layers(tshark: tsharks.Tshark, pcap, mode: str, extra: tuple = ()):
    """frame -> {"msrsvd": ..., "clusprep": ...} for frames where our plugins showed something."""
    import decoded
    saved, decoded.CURRENT = decoded.CURRENT, tshark
    try:
        cmd = tshark_cmd(pcap, *MODES[mode], *extra, "-T", "json", "--no-duplicate-keys", "-J", "frame msrsvd clusprep")
    finally:
        decoded.CURRENT = saved
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode in (0, 2, 14), res.stderr  # 2 and 14: the truncated sample, per version
    out = {}
    for pkt in json.loads(res.stdout or "[]"):
        lay = pkt["_source"]["layers"]
        ours = {k: _normal(lay[k]) for k in ("msrsvd", "clusprep") if k in lay}
        if ours:
            out[int(lay["frame"]["frame.number"])] = ours
    return out


def _extra(pcap):
    return PASSWORD if pcap.stem == "clusprep_sealed" else ()


def _diff(ref, got):
    """The first differing frames, short enough to read in a failure."""
    frames = sorted(set(ref) | set(got))
    bad = [f for f in frames if ref.get(f) != got.get(f)]
    return ["frame %d: 4.0 %s\n   this %s" % (f, json.dumps(ref.get(f))[:600], json.dumps(got.get(f))[:600])
            for f in bad[:3]], len(bad)


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.stem)
def test_same_decode_as_tshark_4_0(pcap, mode, tshark):
    if tshark.series == "4.0":
        got = layers(tshark, pcap, mode, _extra(pcap))
        assert got, "nothing decoded"  # the reference itself must say something
        return
    ref = layers(tsharks.system(), pcap, mode, _extra(pcap))
    got = layers(tshark, pcap, mode, _extra(pcap))
    shown, n = _diff(ref, got)
    assert n == 0, "%d frames differ from tshark 4.0:\n%s" % (n, "\n".join(shown))


@pytest.mark.tshark_matrix
@pytest.mark.parametrize("pcap", [p for p in SAMPLES if p.stem.startswith("clusprep_")], ids=lambda p: p.stem)
def test_clusprep_same_through_either_way_in(pcap, tshark):
    """The sub-dissector (where Wireshark takes one) and the forced postdissector agree."""
    native = layers(tshark, pcap, "two-pass", _extra(pcap))
    post = layers(tshark, pcap, "two-pass", _extra(pcap) + POSTDISSECTOR)
    shown, n = _diff(post, native)
    assert n == 0, "%d frames differ between the two ways in:\n%s" % (n, "\n".join(shown))


@pytest.mark.tshark_matrix
def test_clusprep_registers_natively_where_wireshark_can(tshark):
    """4.4 and later: each interface is a DCE/RPC sub-dissector, filterable by its protocol
    (clusprep_iclusterstorage2); 4.0, or with the postdissector forced: none is called."""
    import decoded

    def frames(*extra):
        rows = decoded.field_values(samples.path("clusprep_storage"), ["clusprep.method"], *extra, "-Y",
                                    "clusprep_iclusterstorage2 || clusprep_iclusterstorage3")
        return [int(r["frame.number"]) for r in rows]

    calls = decoded.field_values(samples.path("clusprep_storage"), [], "-Y", "clusprep && !clusprep.fault_status")
    native = frames()
    if tshark.at_least("4.4"):
        assert native == [int(r["frame.number"]) for r in calls] and len(native) > 100
    else:
        assert native == []
    assert frames(*POSTDISSECTOR) == []


@pytest.mark.tshark_matrix
def test_every_interface_protocol_of_the_field_reference_is_registered(tshark):
    import re

    import decoded
    documented = re.findall(r"^\| I\w+ \| `(clusprep_\w+)` \|$", generate.DOCS_PATH.read_text(), re.M)
    assert len(documented) == 8
    res = subprocess.run(decoded.tshark_argv() + ["-G", "protocols"] + [
        a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)], capture_output=True, text=True,
        timeout=120, env=decoded.tshark_env(config=False))
    names = {line.split("\t")[2] for line in res.stdout.splitlines() if line.count("\t") >= 2}
    assert set(documented) <= names and "clusprep" in names and "msrsvd" in names
