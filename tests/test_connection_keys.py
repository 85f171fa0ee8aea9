"""The split's first pass reads packets' group keys many at a time with numpy
(analyzer.capture.connection_keys.ChunkKeys); the packet-at-a-time Classifier is the reference.
Both must give every packet the same key and SMB2 SessionId: on real captures (the samples and
the public captures made by others), on crafted packets of every kind the split tells apart, and
on thousands of those with their header bytes mutated."""
import random
import struct
from pathlib import Path

import numpy as np
import pytest

import samples
from analyzer.capture.connection_keys import ChunkKeys, Classifier, row
from analyzer.capture.split import Unsplittable, _Records

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = sorted(samples.path(n) for n in samples.SCENARIOS) + sorted(
    p for p in (ROOT / "tests" / "public_captures").iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))


def _v4(src, dst, proto, payload, ident=7, flags=0):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0,
                       bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))) + payload


def _v6(src, dst, proto, payload, extensions=b""):
    return (struct.pack(">IHBB", 0x60000000, len(extensions) + len(payload), proto, 64)
            + bytes([0xfe, 0x80] + [0] * 13 + [src]) + bytes([0xfe, 0x80] + [0] * 13 + [dst]) + extensions + payload)


def _tcp(sport, dport, data=b""):
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + data


def _smb2(session, transform=False):
    if transform:
        body = b"\xfdSMB" + bytes(32) + struct.pack("<IHHQ", 64, 0, 1, session)
    else:
        body = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, 0, 1, 0, 0, 1, 0, 0, session) + bytes(16)
    return struct.pack(">I", len(body)) + body


def _ether(payload, ethertype=0x0800, tags=()):
    return bytes(12) + b"".join(struct.pack(">HH", t, 20) for t in tags) + struct.pack(">H", ethertype) + payload


def crafted():
    """(linktype, packet) of every kind the first pass tells apart."""
    smb = _tcp(50000, 445, _smb2(0x1122334455667788))
    out = [
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, smb))),
        (1, _ether(_v4("10.0.0.2", "10.0.0.1", 6, _tcp(445, 50000, _smb2(0x1122334455667788, True))))),
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, _tcp(50001, 139)))),
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 135)))),
        (1, _ether(_v4("10.0.0.2", "10.0.0.1", 17, bytes(8)))),
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, smb), tags=(0x8100,))),
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, smb), tags=(0x88A8, 0x8100))),  # QinQ
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, _tcp(50002, 445), ident=99, flags=0x2000))),  # first fragment
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, bytes(40), ident=99, flags=185))),  # the next one
        (1, _ether(_v4("10.0.0.9", "10.0.0.1", 1, bytes([3, 4]) + bytes(6)
                       + _v4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445))[:28]))),  # ICMP error quoting SMB
        (1, _ether(_v4("10.0.0.9", "10.0.0.1", 1, bytes([8, 0]) + bytes(6)))),  # an echo: not an error
        (1, _ether(_v6(1, 2, 6, _tcp(50000, 445, _smb2(7))), 0x86DD)),
        (1, _ether(_v6(2, 1, 17, bytes(8)), 0x86DD)),
        (1, _ether(_v6(1, 2, 6, _tcp(50000, 445), extensions=bytes([6, 0]) + bytes(6)), 0x86DD)),  # hop-by-hop
        (1, _ether(_v6(1, 2, 6, _tcp(50000, 445), extensions=bytes([6, 0, 0, 1]) + b"\0\0\0\x05"), 0x86DD)),
        (1, _ether(_v6(9, 1, 58, bytes([1, 0]) + bytes(6) + _v6(1, 2, 6, _tcp(50000, 445))[:48]), 0x86DD)),
        (1, _ether(bytes(28), 0x0806)),  # ARP
        (1, bytes(10)),  # shorter than an Ethernet header
        (1, _ether(_v4("10.0.0.1", "10.0.0.2", 6, smb)[:19])),  # IPv4 header cut short
        (101, _v4("10.0.0.1", "10.0.0.2", 6, smb)),  # raw IP
        (113, bytes(14) + b"\x08\x00" + _v4("10.0.0.1", "10.0.0.2", 6, smb)),  # Linux cooked
        (147, bytes(30)),  # a link type not read
    ]
    quoted4 = _v4("10.0.0.1", "10.0.0.2", 6, _tcp(50000, 445))[:28]
    quoted6 = _v6(1, 2, 6, _tcp(50000, 445))[:48]
    out += [(1, _ether(_v4("10.0.0.9", "10.0.0.1", 1, bytes([t, 0]) + bytes(6) + quoted4))) for t in (3, 4, 5, 11, 12)]
    out += [(1, _ether(_v6(9, 1, 58, bytes([t, 0]) + bytes(6) + quoted6), 0x86DD)) for t in range(0, 6)]
    return out


def keys_both_ways(packets, chunk):
    """Every packet's (key row, session) from ChunkKeys, `chunk` packets a call, and from Classifier."""
    buf = b"".join(p for _, p in packets) + b"\0"
    starts = np.cumsum([0] + [len(p) for _, p in packets])[:-1].astype(np.int64)
    caplen = np.array([len(p) for _, p in packets], np.int64)
    linktype = np.array([lt for lt, _ in packets], np.int64)
    mem = np.frombuffer(buf, np.uint8)
    reader, fast = ChunkKeys(), []
    for i in range(0, len(packets), chunk):
        k, s = reader.keys(mem, buf, starts[i:i + chunk], caplen[i:i + chunk], linktype[i:i + chunk])
        fast += [(bytes(a), int(b)) for a, b in zip(k, s)]
    one = Classifier()
    slow = [(row(k), s) for k, s in (one.key(buf, int(a), int(c), int(lt)) for a, c, lt in zip(starts, caplen, linktype))]
    return fast, slow


def test_crafted_packets_are_keyed_as_one_at_a_time():
    packets = crafted()
    fast, slow = keys_both_ways(packets, 5)
    assert fast == slow
    keys = [k for k, _ in slow]
    assert keys[0] == keys[1] == keys[5] == keys[6] == keys[19] == keys[20]  # one SMB connection, however framed
    assert keys[7] == keys[8] and keys[9] == keys[0]  # a fragment follows its first; an ICMP error its connection
    assert keys[3] == keys[4] != keys[0] and keys[10] != keys[0]
    assert [s for _, s in slow][:2] == [0x1122334455667788] * 2


@pytest.mark.parametrize("seed", range(4))
def test_mutated_headers_are_keyed_as_one_at_a_time(seed):
    """Each packet's first 100 bytes mutated: lengths, versions, protocols, ports, tags, flags."""
    rng = random.Random(seed)
    base = crafted()
    packets = []
    for _ in range(3000):
        lt, p = rng.choice(base)
        p = bytearray(p)
        for _ in range(rng.choice([1, 2, 4, 8])):
            p[rng.randrange(min(len(p), 100))] = rng.choice(
                [0, 1, 6, 0x11, 0x20, 0x3F, 0x45, 0x4F, 0x60, 0x81, 0x86, 0xDD, 0x08, 0x2C, 0x3A, 0x01, 0xBD, 0xFD, 0xFE,
                 0xFF, rng.randrange(256)])
        if rng.random() < 0.2:
            del p[rng.randrange(len(p)):]
        packets.append((lt, bytes(p)))
    fast, slow = keys_both_ways(packets, rng.choice([1, 7, 256, 4096]))
    assert fast == slow


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_real_captures_are_keyed_as_one_at_a_time(capture):
    buf = capture.read_bytes()
    try:
        chunks = list(_Records(buf).chunks(np.frombuffer(buf, np.uint8)))
    except Unsplittable as e:  # the one capture cut mid-record is read whole, never split
        assert capture.stem == "rsvd_truncated" and "cut short" in str(e), (capture.name, e)
        return
    packets = [(int(lt), buf[data:data + caplen]) for c in chunks
               for is_packet, lt, data, caplen in zip(c["packet"], c["linktype"], c["data"], c["caplen"]) if is_packet]
    fast, slow = keys_both_ways(packets, 64)
    assert fast == slow and len(fast) > 0
