"""Which connection group a packet belongs to, by its addresses (analyzer.capture.split's first pass).

A packet's key is `T` + its TCP connection's two (address, port) ends, lower first, when either
port is SMB's; else `H` + its two host addresses, lower first; `O` when no address is read here.
An SMB connection's packets also name the SMB2 SessionId of their first SMB2 header, by which
the split joins a session's channels.

`Classifier` reads one packet at a time and is the reference. `ChunkKeys` reads many at once
with numpy, for the common packets (Ethernet with at most one VLAN tag, then IPv4 that is not a
fragment, or IPv6 without extension headers), and hands every other packet to a Classifier in
capture order, so its state (first fragments) sees exactly what it would alone. Both give each
key as the same row of KEY_WIDTH bytes (`row`), so the keys of either compare equal.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

SMB_PORTS = (445, 139)
FRAGMENTS_KEPT = 4096  # first fragments remembered, for the fragments that follow them
KEY_WIDTH = 38  # a key's length, then the key (at most 37 bytes: T + two IPv6 addresses and ports), zeros after

_VLANS = (0x8100, 0x88A8, 0x9100)
_OTHER = b"O"  # what has no address read here: all of it in one group


def row(key: bytes) -> bytes:
    """A key as ChunkKeys' rows hold it: its length, itself, zeros to KEY_WIDTH."""
    return bytes((len(key),)) + key + bytes(KEY_WIDTH - 1 - len(key))


def _network(buf, p: int, end: int, linktype: int) -> Tuple[int, int]:
    """(ethertype, offset of the network header), or (0, 0) for a link type not read here."""
    if linktype == 1:  # Ethernet
        if p + 14 > end:
            return 0, 0
        et, p = (buf[p + 12] << 8) | buf[p + 13], p + 14
        while et in _VLANS and p + 4 <= end:
            et, p = (buf[p + 2] << 8) | buf[p + 3], p + 4
        return et, p
    if linktype == 113:  # Linux cooked (SLL)
        return ((buf[p + 14] << 8) | buf[p + 15], p + 16) if p + 16 <= end else (0, 0)
    if linktype == 276:  # SLL2
        return ((buf[p] << 8) | buf[p + 1], p + 20) if p + 20 <= end else (0, 0)
    if linktype in (101, 12, 14):  # raw IP
        if p >= end:
            return 0, 0
        v = buf[p] >> 4
        return (0x0800 if v == 4 else 0x86DD if v == 6 else 0), p
    if linktype == 228:
        return 0x0800, p
    if linktype == 229:
        return 0x86DD, p
    if linktype in (0, 108):  # BSD loopback: a 4-byte address family, host or network order
        if p + 4 > end:
            return 0, 0
        fam = int.from_bytes(buf[p:p + 4], "little" if linktype == 0 and buf[p] else "big")
        return (0x0800 if fam == 2 else 0x86DD if fam in (10, 24, 28, 30) else 0), p + 4
    return 0, 0


class Classifier:
    """A packet's group key, and the SMB SessionId its first SMB2 header carries (0 if none)."""

    def __init__(self):
        self.fragments: Dict[bytes, bytes] = {}

    def key(self, buf, p: int, caplen: int, linktype: int, quoted: bool = False) -> Tuple[bytes, int]:
        end = p + caplen
        et, p = _network(buf, p, end, linktype) if linktype is not None else (0x0800 if buf[p] >> 4 == 4 else 0x86DD, p)
        if et == 0x0800:
            if p + 20 > end:
                return _OTHER, 0
            ihl = (buf[p] & 15) * 4
            proto = buf[p + 9]
            src, dst = bytes(buf[p + 12:p + 16]), bytes(buf[p + 16:p + 20])
            frag = ((buf[p + 6] & 0x1F) << 8) | buf[p + 7]
            more = buf[p + 6] & 0x20
            ident = bytes(buf[p + 4:p + 6])
            q = p + ihl
        elif et == 0x86DD:
            if p + 40 > end:
                return _OTHER, 0
            proto, src, dst, q = buf[p + 6], bytes(buf[p + 8:p + 24]), bytes(buf[p + 24:p + 40]), p + 40
            frag, more, ident = 0, 0, b""
            for _ in range(8):  # extension headers, a bounded walk
                if proto in (0, 43, 60) and q + 2 <= end:
                    proto, q = buf[q], q + (buf[q + 1] + 1) * 8
                elif proto == 44 and q + 8 <= end:
                    off = (buf[q + 2] << 8) | buf[q + 3]
                    proto, frag, more, ident, q = buf[q], off >> 3, off & 1, bytes(buf[q + 4:q + 8]), q + 8
                else:
                    break
        else:
            return _OTHER, 0
        pair = b"H" + (src + dst if src <= dst else dst + src)
        if frag:  # not the first fragment: where the first one went
            return self.fragments.get(src + dst + ident + bytes((proto,)), pair), 0
        key, session = pair, 0
        if proto == 6 and q + 4 <= end:  # an ICMP error quotes 8 bytes of TCP: the ports are there
            sport, dport = (buf[q] << 8) | buf[q + 1], (buf[q + 2] << 8) | buf[q + 3]
            if sport in SMB_PORTS or dport in SMB_PORTS:
                a, b = src + bytes(buf[q:q + 2]), dst + bytes(buf[q + 2:q + 4])
                key = b"T" + (a + b if a <= b else b + a)
                data = q + (buf[q + 12] >> 4) * 4 if q + 20 <= end else end
                if not quoted and data + 8 <= end:
                    tag = bytes(buf[data + 4:data + 8])
                    at = 40 if tag == b"\xfeSMB" else 44 if tag == b"\xfdSMB" else 0
                    if at and data + 4 + at + 8 <= end:
                        session = int.from_bytes(buf[data + 4 + at:data + 12 + at], "little")
        elif not quoted and ((proto == 1 and q + 8 <= end and buf[q] in (3, 4, 5, 11, 12))
                             or (proto == 58 and q + 8 <= end and 1 <= buf[q] <= 4)):
            # an ICMP error quotes the packet it is about: tshark dissects that TCP header too
            inner, _ = self.key(buf, q + 8, end - q - 8, None, quoted=True) if q + 9 <= end else (_OTHER, 0)
            if inner[:1] == b"T":
                key = inner
        if more:
            if len(self.fragments) >= FRAGMENTS_KEPT:
                self.fragments.clear()
            self.fragments[src + dst + ident + bytes((proto,))] = key
        return key, session


def _gather(mem: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The `width` bytes at each offset, one row each."""
    return mem[at[:, None] + np.arange(width)]


def _lower_first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows a+b where a <= b as bytes, else b+a."""
    differ = a != b
    first = differ.argmax(axis=1)
    rows = np.arange(len(a))
    swap = differ[rows, first] & (a[rows, first] > b[rows, first])
    return np.where(swap[:, None], np.concatenate([b, a], axis=1), np.concatenate([a, b], axis=1))


class ChunkKeys:
    """Many packets' keys at once: `keys(mem, data, caplen, linktype)` gives each packet's key row
    (an (n, KEY_WIDTH) uint8 array) and SessionId (0 if none), for packets in capture order, over
    successive calls; `mem` is the whole file as a uint8 array (its mmap)."""

    def __init__(self):
        self.classifier = Classifier()  # the packets numpy does not read, in order

    def keys(self, mem: np.ndarray, buf, data: np.ndarray, caplen: np.ndarray,
             linktype: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        n = len(data)
        end = data + caplen
        out = np.zeros((n, KEY_WIDTH), np.uint8)
        sessions = np.zeros(n, np.uint64)
        last = len(mem) - 1

        def at(offset: np.ndarray, enough: np.ndarray) -> np.ndarray:
            """The byte at each offset where `enough` says it is inside the packet, else 0."""
            return mem[np.where(enough, np.minimum(offset, last), 0)].astype(np.int64) * enough

        ether = (linktype == 1) & (data + 14 <= end)
        et = at(data + 12, ether) << 8 | at(data + 13, ether)
        p = data + 14
        tagged = np.isin(et, _VLANS) & (p + 4 <= end)
        et = np.where(tagged, at(p + 2, tagged) << 8 | at(p + 3, tagged), et)
        p = np.where(tagged, p + 4, p)
        slow = (linktype != 1) | (tagged & np.isin(et, _VLANS))  # a second tag: read one at a time
        v4 = ~slow & (et == 0x0800) & (p + 20 <= end)
        v6 = ~slow & (et == 0x86DD) & (p + 40 <= end)
        other = ~slow & ~v4 & ~v6  # not IP, or its header cut short
        out[other, 0], out[other, 1] = 1, ord("O")
        # IPv4: a fragment goes by its first fragment (a Classifier remembers those)
        flags = at(p + 6, v4)
        slow |= v4 & (((flags & 0x3F) != 0) | (at(p + 7, v4) != 0))
        v4 &= ~slow
        proto = np.where(v4, at(p + 9, v4), at(p + 6, v6))
        q = np.where(v4, p + (at(p, v4) & 15) * 4, p + 40)
        slow |= v6 & np.isin(proto, (0, 43, 60, 44))  # IPv6 extension headers: one at a time
        v6 &= ~slow
        ip = v4 | v6
        icmp_error = ip & (q + 8 <= end) & (((proto == 1) & np.isin(at(q, ip & (q < end)), (3, 4, 5, 11, 12)))
                                            | ((proto == 58) & np.isin(at(q, ip & (q < end)), (1, 2, 3, 4))))
        slow |= icmp_error  # it quotes a packet, whose connection it joins: one at a time
        v4 &= ~slow
        v6 &= ~slow
        tcp = (v4 | v6) & (proto == 6) & (q + 4 <= end)
        sport = at(q, tcp) << 8 | at(q + 1, tcp)
        dport = at(q + 2, tcp) << 8 | at(q + 3, tcp)
        smb = tcp & (np.isin(sport, SMB_PORTS) | np.isin(dport, SMB_PORTS))
        for version, size, src_at in ((v4, 4, 12), (v6, 16, 8)):
            for kind, chosen in ((b"H", version & ~smb), (b"T", version & smb)):
                if not chosen.any():
                    continue
                pi, qi = p[chosen], q[chosen]
                src, dst = _gather(mem, pi + src_at, size), _gather(mem, pi + src_at + size, size)
                if kind == b"T":
                    src = np.concatenate([src, _gather(mem, qi, 2)], axis=1)
                    dst = np.concatenate([dst, _gather(mem, qi + 2, 2)], axis=1)
                both = _lower_first(src, dst)
                out[chosen, 0] = 1 + both.shape[1]
                out[chosen, 1] = kind[0]
                out[chosen, 2:2 + both.shape[1]] = both
        # an SMB connection's first SMB2 header (past NetBIOS's 4 bytes) names its session
        offset = at(q + 12, smb & (q + 20 <= end)) >> 4
        payload = np.where(q + 20 <= end, q + offset * 4, end)
        framed = smb & (payload + 8 <= end)
        tag = np.zeros(n, np.int64)
        for i in range(4):
            tag = tag << 8 | at(payload + 4 + i, framed)
        header = np.where(tag == 0xFE534D42, 40, np.where(tag == 0xFD534D42, 44, 0))
        named = framed & (header > 0) & (payload + 4 + header + 8 <= end)
        if named.any():
            raw = _gather(mem, (payload + 4 + header)[named], 8)
            sessions[named] = raw.copy().view("<u8").ravel()
        for i in np.flatnonzero(slow):  # in capture order: fragments follow their first
            key, session = self.classifier.key(buf, int(data[i]), int(caplen[i]), int(linktype[i]))
            out[i] = np.frombuffer(row(key), np.uint8)
            sessions[i] = session
        return out, sessions
