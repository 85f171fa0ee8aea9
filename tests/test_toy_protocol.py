"""Issue 15 item 2: a protocol the generator has never seen, on a transport neither RSVD nor
ClusPrep uses (UDP), generated and decoded by real tshark with no change to the generator or
the shared templates: only its definitions (tests/toy_udp.py) and a declared port binding."""
import struct
import subprocess

import pytest

import decoded
import toy_udp
from analyzer.capture.source import tshark_env
from dissectors.targets.lua import render_lua
from samples.network import Capture, Ethernet, IPv4, _checksum, host

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py


def udp_frame(src, dst, sport, dport, payload, ident):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
    ip = IPv4.build(dict(tos=0, total_length=20 + len(udp), ident=ident, flags_frag=0x4000, ttl=64, protocol=17,
                         checksum=0, src=src.ip_bytes, dst=dst.ip_bytes))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return Ethernet.build(dict(dst=dst.mac, src=src.mac)) + ip + udp


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    lua = d / "toyudp.lua"
    lua.write_text(render_lua(toy_udp.PROTOCOL))
    a, b = host(1, "10.9.0.1"), host(2, "10.9.0.2")
    build = toy_udp.TOY_MESSAGE.build
    datagrams = [
        (a, b, 50000, toy_udp.PORT, build(dict(Kind="PING", Flags=0, Sequence=7, Length=4, Payload=b"ping"))),
        (b, a, toy_udp.PORT, 50000, build(dict(Kind="PONG", Flags=0, Sequence=7, Length=4, Payload=b"ping"))),
        # a Length past the datagram and above the rule's 64: expert items, no Lua error
        (a, b, 50000, toy_udp.PORT, bytes([1, 0]) + struct.pack("<IH", 8, 300) + b"xy"),
        # another port: not ours
        (a, b, 50000, 40405, build(dict(Kind="PING", Flags=0, Sequence=9, Length=0, Payload=b""))),
    ]
    cap = Capture()
    for i, (src, dst, sp, dp, payload) in enumerate(datagrams):
        cap.add(udp_frame(src, dst, sp, dp, payload, i + 1))
    pcap = d / "toy.pcapng"
    pcap.write_bytes(cap.pcapng())
    return pcap, lua


def fields(capture, *names):
    pcap, lua = capture
    cmd = decoded.tshark_argv() + ["-n", "-r", str(pcap), "-X", "lua_script:%s" % lua, "-T", "fields",
                                   "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"]
    for n in names:
        cmd += ["-e", n]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=tshark_env(config=False))
    assert res.returncode == 0, res.stderr
    return [line.split("\t") for line in res.stdout.splitlines()]


def test_the_toy_is_decoded_on_its_port(capture):
    rows = fields(capture, "toyudp.message.kind", "toyudp.sequence", "toyudp.message.length",
                  "toyudp.message.payload", "_ws.col.Info", "toyudp.dissector_error")
    assert rows[0][1:5] == ["0x01", "7", "4", "70696e67"]
    assert rows[1][1:3] == ["0x02", "7"]
    assert [r[5] for r in rows[:2]] == ["PING", "PONG"]
    assert rows[2][1:4] == ["0x01", "8", "300"]
    assert rows[3][1:5] == [""] * 4 and "40405" in rows[3][5]  # port 40405 is not the toy's: plain UDP
    assert all(r[6] == "" for r in rows)  # no dissector fault anywhere


def test_malformed_toy_gets_expert_items_not_errors(capture):
    rows = fields(capture, "_ws.expert.message")
    experts = rows[2][1]
    assert "TOY_MESSAGE Length is 300; at most 64 is allowed [TOY 2.1]" in experts
    assert "TOY_MESSAGE (TOY 2.1).Payload: length 300 exceeds the 2 bytes left" in experts
    assert rows[0][1] == "" and rows[1][1] == ""


def test_its_reference_lists_the_expert_items_its_plugin_registers(capture, tshark):
    """The docs render the model's expert catalogue: the port binding's five, not DCE/RPC's or
    SMB2's, as `tshark -G fields` lists them from the toy's generated plugin."""
    from dissectors.model import build_model
    from dissectors.targets.docs import render_docs

    name = toy_udp.PROTOCOL.name
    res = subprocess.run(decoded.tshark_argv() + ["-G", "fields", "-X", "lua_script:%s" % capture[1]],
                         capture_output=True, text=True, timeout=120, env=tshark_env(config=False))
    model = build_model(toy_udp.PROTOCOL)
    registered = sorted(line.split("\t")[2] for line in res.stdout.splitlines()
                        if line.startswith("F\t") and line.split("\t")[4] == name and line.split("\t")[3] == "FT_NONE"
                        and line.split("\t")[2] not in model.fields)
    docs = render_docs([toy_udp.PROTOCOL])
    listed = sorted(line.split("`")[1] for line in docs.splitlines() if line.startswith("| `%s." % name)
                    and ("| MALFORMED |" in line or "| RESPONSE_CODE |" in line or "| SEQUENCE |" in line
                         or "| SECURITY |" in line or "| PROTOCOL |" in line))
    assert registered == listed == sorted("%s.%s" % (name, s) for s in (
        "malformed.short", "malformed.length", "internal_error", "malformed.value", "status"))
    assert "%s.sealed" % name not in docs and "%s.unanswered" % name not in docs
