"""The generated decoders run the same under Lua 5.2, 5.3 and 5.4.

The tshark here embeds Lua 5.2 only, so tests/lua/wslua_stub.lua stands in for the few
wslua calls the decoders make and runs the real generated file under each interpreter,
on every message of the samples; the items must equal the Python parse, in order.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

import samples
from decoded import messages, request_of
from dissectors import plugin_paths
from dissectors.model import build_model
from dissectors.definitions import rsvd
from dissectors.model.oracle import flatten

STUB = Path(__file__).resolve().parent / "lua" / "wslua_stub.lua"
MODEL = build_model(rsvd.PROTOCOL)
BY_ABBREV = {m.abbrev: m for m in rsvd.PROTOCOL.messages}


def expected(pcap, d):
    req = request_of(pcap, d)
    kw = {"request": BY_ABBREV[req.abbrev].parse(req.raw)} if req else {}
    return list(flatten(MODEL, BY_ABBREV[d.abbrev], BY_ABBREV[d.abbrev].parse(d.raw, **kw), **kw))


def parse_stub(block, model=MODEL):
    """The stand-in's lines as (field, value) pairs, values typed like the Python parse."""
    items = []
    for line in block:
        name, _, text = line.partition("\t")
        if name == "expert":  # expert items are tested on their own
            continue
        if name == "error":
            items.append((name, text))
            continue
        f = model.fields[name]
        if name.endswith(".layout"):
            value = text.split(":", 1)[0]
        elif f.ftype == "uint64":
            value = int(text, 16)
        elif f.ftype.startswith(("uint", "int")):
            value = int(text)
        elif f.ftype == "bool":
            value = text == "true"
        elif f.ftype == "bytes":
            value = bytes.fromhex(text)
        elif f.ftype == "none":
            value = None
        else:
            value = text
        items.append((name, value))
    return items


@pytest.mark.parametrize("version", ["5.2", "5.3", "5.4"])
def test_decoders_under_lua(version):
    lua = shutil.which("lua" + version)
    if lua is None:
        pytest.skip("lua%s not installed (apt-get install lua%s)" % (version, version))
    pairs = [(pcap, d) for pcap in (samples.path("rsvd_shared_disk"), samples.path("rsvd_cluster_events"))
             for d in messages(pcap)]
    decoded = [d for _, d in pairs]
    lines = []
    for pcap, d in pairs:
        req = request_of(pcap, d)
        lines.append("d_%s %s%s\n" % (d.abbrev, d.raw.hex(), (" d_%s %s" % (req.abbrev, req.raw.hex())) if req else ""))
    blocks = run_stub(lua, plugin_paths.LUA_DIR / "msrsvd.lua", lines)
    assert len(blocks) == len(decoded)
    for (pcap, d), b in zip(pairs, blocks):
        assert parse_stub(b) == expected(pcap, d), "%s frame %d %s" % (pcap.stem, d.frame, d.abbrev)


@pytest.mark.parametrize("version", ["5.2", "5.4"])
def test_malformed_input_under_lua(version):
    """Truncated buffers give expert items, never a Lua error, on every interpreter."""
    lua = shutil.which("lua" + version)
    if lua is None:
        pytest.skip("lua%s not installed" % version)
    request = messages(samples.path("rsvd_shared_disk"))
    full = next(d.raw for d in request if d.abbrev == "tunnel_request" and len(d.raw) == 52)  # an INQUIRY
    cases = ["d_tunnel_request %s" % full[:n].hex() for n in list(range(0, 52, 3)) + [52]]
    res = subprocess.run([lua, str(STUB), str(plugin_paths.LUA_DIR / "msrsvd.lua")], input="\n".join(cases) + "\n",
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "error\t" not in res.stdout
    assert res.stdout.count("expert\t") == len(cases) - 1  # all but the full 52-byte request


def run_stub(lua, plugin, lines):
    """The items wslua_stub.lua printed for each input line, one list per line."""
    res = subprocess.run([lua, str(STUB), str(plugin)], input="".join(lines),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    blocks, block = [], []
    for line in res.stdout.splitlines():
        if line == "end":
            blocks.append(block)
            block = []
        else:
            block.append(line)
    return blocks


@pytest.mark.parametrize("version", ["5.2", "5.3", "5.4"])
def test_ndr_interpreter_under_lua(version):
    """clusprep's NDR interpreter on every stub of the plain samples, against the Python parse."""
    from clusprep_decoded import MODEL as CMODEL, NDR, PLUMBING, calls, stub_def
    from dissectors.model.oracle import flatten_stub as ndr_flatten

    lua = shutil.which("lua" + version)
    if lua is None:
        pytest.skip("lua%s not installed (apt-get install lua%s)" % (version, version))
    todo = [c for name in ("clusprep_storage", "clusprep_network", "clusprep_setup")
            for c in calls(samples.path(name)) if c.raw is not None]
    lines = ["stub %s %d %s %s\n" % (stub_def(c).interface.uuid.lower(), stub_def(c).method.opnum, c.direction,
                                     c.raw.hex()) for c in todo]
    blocks = run_stub(lua, plugin_paths.LUA_DIR / "clusprep.lua", lines)
    assert len(blocks) == len(todo) >= 100
    for c, block in zip(todo, blocks):
        assert not [line for line in block if line.startswith(("error\t", "expert\t"))], c.method
        got = {}
        for name, value in parse_stub(block, CMODEL):
            if not name.startswith(PLUMBING):
                got.setdefault(name, []).append(value)
        want = {}
        stub = stub_def(c)
        for name, value in ndr_flatten(NDR, stub, stub.params.parse(c.raw)):
            if not name.startswith(("clusprep.safearray", "clusprep.brecord")):
                want.setdefault(name, []).append(value)
        assert got == want, "frame %d %s %s" % (c.frame, c.method, c.direction)
