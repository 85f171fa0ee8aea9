"""Ethernet/IPv4/TCP/NetBIOS framing and a pcapng writer for deterministic samples."""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import List, Tuple

from construct import Bytes, Const, GreedyBytes, Int8ub, Int16ub, Int24ub, Int32ub, Int16ul, Int32ul, Int64ul, Struct

Ethernet = Struct(
    "dst" / Bytes(6),
    "src" / Bytes(6),
    "ethertype" / Const(0x0800, Int16ub),
)
IPv4 = Struct(
    "version_ihl" / Const(0x45, Int8ub),
    "tos" / Int8ub,
    "total_length" / Int16ub,
    "ident" / Int16ub,
    "flags_frag" / Int16ub,
    "ttl" / Int8ub,
    "protocol" / Int8ub,
    "checksum" / Int16ub,
    "src" / Bytes(4),
    "dst" / Bytes(4),
)
TCP = Struct(
    "src_port" / Int16ub,
    "dst_port" / Int16ub,
    "seq" / Int32ub,
    "ack" / Int32ub,
    "offset_flags" / Int16ub,
    "window" / Int16ub,
    "checksum" / Int16ub,
    "urgent" / Int16ub,
)
# RFC 1002 4.3.1 session message, as SMB2 over TCP 445 uses it (MS-SMB2 2.1).
NetBiosSession = Struct("type" / Const(0, Int8ub), "length" / Int24ub)

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MSS = 1460


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def netbios(payload: bytes) -> bytes:
    return NetBiosSession.build(dict(length=len(payload))) + payload


@dataclass
class Host:
    mac: bytes
    ip: str

    @property
    def ip_bytes(self) -> bytes:
        return ipaddress.IPv4Address(self.ip).packed


def host(n: int, ip: str) -> Host:
    return Host(mac=bytes([0x00, 0x15, 0x5D, 0x00, 0x00, n]), ip=ip)


@dataclass
class Capture:
    """Frames with timestamps (microseconds), written as one pcapng section."""

    frames: List[Tuple[int, bytes]] = field(default_factory=list)
    clock_us: int = 1_763_700_000_000_000  # a fixed start keeps the bytes deterministic

    def tick(self, us: int) -> None:
        self.clock_us += us

    def add(self, frame: bytes, gap_us: int = 50) -> None:
        self.tick(gap_us)
        self.frames.append((self.clock_us, frame))

    def pcapng(self) -> bytes:
        return write_pcapng(self.frames)


@dataclass
class TcpFlow:
    """One TCP connection between a client and a server, with sequence numbers."""

    cap: Capture
    client: Host
    server: Host
    cport: int
    sport: int = 445
    cseq: int = 1000
    sseq: int = 500000
    ident: int = 1

    def _frame(self, from_client: bool, flags: int, payload: bytes) -> bytes:
        a, b = (self.client, self.server) if from_client else (self.server, self.client)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        seq, ack = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        tcp = TCP.build(dict(src_port=sp, dst_port=dp, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                             offset_flags=(5 << 12) | flags, window=0xFFFF, checksum=0, urgent=0))
        pseudo = a.ip_bytes + b.ip_bytes + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        csum = _checksum(pseudo + tcp + payload)
        tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
        ip = IPv4.build(dict(tos=0, total_length=20 + len(tcp) + len(payload), ident=self.ident & 0xFFFF,
                             flags_frag=0x4000, ttl=128, protocol=6, checksum=0,
                             src=a.ip_bytes, dst=b.ip_bytes))
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        self.ident += 1
        eth = Ethernet.build(dict(dst=b.mac, src=a.mac))
        return eth + ip + tcp + payload

    def handshake(self) -> None:
        self.cap.add(self._frame(True, TCP_SYN, b""))
        self.cseq += 1
        self.cap.add(self._frame(False, TCP_SYN | TCP_ACK, b""), 120)
        self.sseq += 1
        self.cap.add(self._frame(True, TCP_ACK, b""), 40)

    def send(self, from_client: bool, payload: bytes, gap_us: int = 200, mss: int = MSS) -> None:
        """Send payload in MSS-sized segments; a large message spans many."""
        for i in range(0, len(payload), mss):
            chunk = payload[i:i + mss]
            self.cap.add(self._frame(from_client, TCP_PSH | TCP_ACK, chunk), gap_us if i == 0 else 8)
            if from_client:
                self.cseq += len(chunk)
            else:
                self.sseq += len(chunk)

    def close(self) -> None:
        self.cap.add(self._frame(True, TCP_FIN | TCP_ACK, b""))
        self.cseq += 1
        self.cap.add(self._frame(False, TCP_FIN | TCP_ACK, b""), 60)
        self.sseq += 1
        self.cap.add(self._frame(True, TCP_ACK, b""), 30)


# pcapng (draft-ietf-opsawg-pcapng): SHB, one Ethernet IDB, then EPBs.
SectionHeader = Struct(
    "type" / Const(0x0A0D0D0A, Int32ul),
    "length" / Const(28, Int32ul),
    "magic" / Const(0x1A2B3C4D, Int32ul),
    "major" / Const(1, Int16ul),
    "minor" / Const(0, Int16ul),
    "section_length" / Const(0xFFFFFFFFFFFFFFFF, Int64ul),
    "length2" / Const(28, Int32ul),
)
InterfaceDescription = Struct(
    "type" / Const(1, Int32ul),
    "length" / Const(20, Int32ul),
    "linktype" / Const(1, Int16ul),
    "reserved" / Const(0, Int16ul),
    "snaplen" / Const(262144, Int32ul),
    "length2" / Const(20, Int32ul),
)
EnhancedPacketHead = Struct(
    "type" / Const(6, Int32ul),
    "length" / Int32ul,
    "interface" / Const(0, Int32ul),
    "ts_high" / Int32ul,
    "ts_low" / Int32ul,
    "captured" / Int32ul,
    "original" / Int32ul,
)


def write_pcapng(frames: List[Tuple[int, bytes]]) -> bytes:
    out = [SectionHeader.build({}), InterfaceDescription.build({})]
    for ts, data in frames:
        pad = bytes(-len(data) % 4)
        length = 28 + len(data) + len(pad) + 4
        out.append(EnhancedPacketHead.build(dict(length=length, ts_high=ts >> 32, ts_low=ts & 0xFFFFFFFF,
                                                 captured=len(data), original=len(data))))
        out.append(data + pad + Int32ul.build(length))
    return b"".join(out)
