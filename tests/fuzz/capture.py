"""A small pcapng reader and writer, and TCP byte streams mapped back to frame bytes.

Only what the fuzz harness needs: little-endian sections, Enhanced Packet Blocks on
Ethernet/IPv4/TCP, other blocks kept as they are. A file cut in the middle of a block (as
samples/rsvd_truncated.pcapng is) keeps its incomplete tail as raw bytes, so writing the
capture back gives the same bytes. Packets are mutable (`Packet.data` is a bytearray);
`Capture.pcapng()` rebuilds each EPB with captured length = len(data), the original length
kept (at least the captured length), so a shortened packet looks like a snaplen cut.

`tcp_streams()` concatenates each direction's TCP payload in sequence order and remembers,
for every stream byte, the frame and frame offset it came from: a field found in a
reassembled SMB2 or DCE/RPC message can then be overwritten in place, even when it
straddles two segments. In-place overwrites keep every length, so the IPv4 header checksum
stays valid; the TCP checksum goes stale, which Wireshark does not check by default.
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006


@dataclass
class Packet:
    interface: int
    ts_high: int
    ts_low: int
    data: bytearray
    original: int
    options: bytes = b""

    def block(self) -> bytes:
        data = bytes(self.data)
        pad = bytes(-len(data) % 4)
        length = 28 + len(data) + len(pad) + len(self.options) + 4
        head = struct.pack("<IIIIIII", EPB, length, self.interface, self.ts_high, self.ts_low, len(data),
                           max(self.original, len(data)))
        return head + data + pad + self.options + struct.pack("<I", length)


@dataclass
class Capture:
    items: List[Union[bytes, Packet]]  # raw blocks and packets, in file order
    tail: bytes = b""  # an incomplete last block, kept as it was

    @property
    def packets(self) -> List[Packet]:
        return [i for i in self.items if isinstance(i, Packet)]

    def pcapng(self) -> bytes:
        return b"".join(i.block() if isinstance(i, Packet) else i for i in self.items) + self.tail

    def copy(self) -> "Capture":
        return Capture([Packet(i.interface, i.ts_high, i.ts_low, bytearray(i.data), i.original, i.options)
                        if isinstance(i, Packet) else i for i in self.items], self.tail)


def read(data: bytes) -> Capture:
    items: List[Union[bytes, Packet]] = []
    pos = 0
    while pos + 12 <= len(data):
        btype, length = struct.unpack_from("<II", data, pos)
        if btype == SHB and struct.unpack_from("<I", data, pos + 8)[0] != 0x1A2B3C4D:
            raise ValueError("big-endian pcapng sections are not supported")
        if length < 12 or length % 4 or pos + length > len(data):
            break
        block = data[pos:pos + length]
        if btype == EPB:
            iface, th, tl, caplen, orig = struct.unpack_from("<IIIII", block, 8)
            body_end = 28 + caplen + (-caplen % 4)
            items.append(Packet(iface, th, tl, bytearray(block[28:28 + caplen]), orig,
                                bytes(block[body_end:length - 4])))
        else:
            items.append(bytes(block))
        pos += length
    return Capture(items, bytes(data[pos:]))


# -- Ethernet / IPv4 / TCP ------------------------------------------------------------------
@dataclass
class TcpSegment:
    frame: int  # index into Capture.packets
    src: Tuple[str, int]
    dst: Tuple[str, int]
    seq: int
    flags: int
    payload_offset: int  # in the frame
    payload_length: int  # as captured (may be less than the IP header says)


def tcp_segment(frame: int, data: bytes) -> Optional[TcpSegment]:
    if len(data) < 14 + 20 or data[12:14] != b"\x08\x00":
        return None
    ip = 14
    ihl = (data[ip] & 0x0F) * 4
    if data[ip] >> 4 != 4 or ihl < 20 or data[ip + 9] != 6 or len(data) < ip + ihl + 20:
        return None
    total = struct.unpack_from("!H", data, ip + 2)[0]
    tcp = ip + ihl
    sport, dport, seq = struct.unpack_from("!HHI", data, tcp)
    doff = (data[tcp + 12] >> 4) * 4
    flags = data[tcp + 13]
    start = tcp + doff
    end = min(ip + total, len(data))
    src = (".".join(str(b) for b in data[ip + 12:ip + 16]), sport)
    dst = (".".join(str(b) for b in data[ip + 16:ip + 20]), dport)
    return TcpSegment(frame, src, dst, seq, flags, start, max(0, end - start))


@dataclass
class Stream:
    """One direction of one TCP connection: its payload bytes and where each came from."""

    src: Tuple[str, int]
    dst: Tuple[str, int]
    data: bytearray = field(default_factory=bytearray)
    starts: List[int] = field(default_factory=list)  # stream offset of each piece
    pieces: List[Tuple[int, int, int]] = field(default_factory=list)  # (frame, frame offset, length)

    def where(self, off: int) -> Tuple[int, int]:
        """(frame index, offset in the frame) of stream byte `off`."""
        i = bisect.bisect_right(self.starts, off) - 1
        if i < 0 or off - self.starts[i] >= self.pieces[i][2]:
            raise IndexError(off)
        frame, foff, _ = self.pieces[i]
        return frame, foff + off - self.starts[i]

    def frames(self, off: int, length: int) -> List[int]:
        return sorted({self.where(o)[0] for o in range(off, off + length)})


def tcp_streams(cap: Capture) -> Dict[Tuple, Stream]:
    """Each direction's payload, in order; reassembly stops at the first gap (a cut packet)."""
    streams: Dict[Tuple, Stream] = {}
    nxt: Dict[Tuple, Optional[int]] = {}
    for i, p in enumerate(cap.packets):
        seg = tcp_segment(i, p.data)
        if seg is None:
            continue
        key = (seg.src, seg.dst)
        if seg.flags & 0x02:  # SYN
            nxt[key] = (seg.seq + 1) & 0xFFFFFFFF
            continue
        if not seg.payload_length:
            continue
        s = streams.setdefault(key, Stream(seg.src, seg.dst))
        expected = nxt.get(key, seg.seq)
        if expected is None or seg.seq != expected:
            nxt[key] = None  # a gap or a retransmission: stop following this direction
            continue
        s.starts.append(len(s.data))
        s.pieces.append((i, seg.payload_offset, seg.payload_length))
        s.data += p.data[seg.payload_offset:seg.payload_offset + seg.payload_length]
        full = struct.unpack_from("!H", p.data, 16)[0] - (seg.payload_offset - 14)
        nxt[key] = (seg.seq + full) & 0xFFFFFFFF if seg.payload_length == full else None
    return streams


def overwrite(cap: Capture, stream: Stream, off: int, value: bytes) -> List[int]:
    """Write `value` at stream offset `off`, in the frames that carry those bytes; returns them."""
    packets = cap.packets
    touched = set()
    for k, b in enumerate(value):
        frame, foff = stream.where(off + k)
        packets[frame].data[foff] = b
        touched.add(frame)
    return sorted(touched)
