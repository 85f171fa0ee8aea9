"""One capture file into N shard files by connection, for one tshark per core (analyze --jobs).

Two streaming passes over the records, nothing dissected: the first reads each packet's
addresses and, on SMB ports, its SMB2 SessionId, and joins what tshark must see together;
the second writes each packet to its group's shard, in capture order. Every shard gets every
section and interface block, so interface ids, timestamps and link types are the original's,
and beside each shard a file of the original frame number of each of its frames.

What must stay together, so each tshark sees what a serial run sees:
- a TCP connection to SMB (445, 139), and every connection whose SMB2 headers (or SMB 3
  TRANSFORM_HEADERs) carry a SessionId it carries: Wireshark keeps trees, file names and
  decryption keys per session, and multichannel spreads a session over connections;
- all other IP traffic of one pair of hosts: DCE/RPC binds, DCOM objects and the endpoint
  mapper's answers stay with the calls they explain;
- IP fragments with their first fragment, ICMP errors with the connection they quote.
Anything the splitter cannot place exactly (a format or block it does not know, a record cut
short) raises Unsplittable, and the caller reads the capture whole, as before.
"""
from __future__ import annotations

import errno
import gzip
import mmap
import os
import shutil
import struct
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from . import work_folders

SMB_PORTS = (445, 139)
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_NRB, PCAPNG_ISB, PCAPNG_EPB, PCAPNG_DSB = (
    0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0A)
METADATA_BLOCKS = {PCAPNG_SHB, PCAPNG_IDB, PCAPNG_NRB, PCAPNG_ISB, PCAPNG_DSB}  # copied to every shard
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
MAX_KEYS = 250_000  # connections and host pairs held (~40 MB); a scan's millions are read whole
FRAGMENTS_KEPT = 4096  # first fragments remembered, for the fragments that follow them
CHUNK = 1 << 16  # entries per array flushed to disk: memory stays flat whatever the capture's size
ROW_BYTES = 600  # what a frame's -T fields row takes, generously (RSVD rows carry message bytes in hex)
SPARE = 64 << 20  # left free beyond that
RELEASE = 4 << 20  # bytes of the mapped capture read between giving its pages back


class Unsplittable(Exception):
    """Why a capture is read whole instead (the result is the same, only slower)."""


class NoRoom(Unsplittable):
    """Not enough disk where the shards would go: worth telling the user, who can choose another."""


@dataclass
class Shard:
    path: Path  # the shard capture
    frames_path: Path  # the original frame number of each of its frames (array "Q", this machine's byte order)
    frames: int = 0
    bytes: int = 0


@dataclass
class Split:
    shards: List[Shard]
    frames: int  # packets in the capture
    groups: int  # connection groups found
    directory: Path  # the shards, their frame numbers and rows: removed whole

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class _Groups:
    """Union-find over keys (a connection, a host pair), and the bytes each key's packets hold."""

    def __init__(self):
        self.ids: Dict[bytes, int] = {}
        self.parent: List[int] = []
        self.size: List[int] = []

    def id(self, key: bytes) -> int:
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.parent)
            self.parent.append(i)
            self.size.append(0)
        return i

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a


class _Records:
    """The packet and metadata records of a pcap or pcapng file held in `buf` (an mmap)."""

    def __init__(self, buf):
        self.buf = buf
        magic = bytes(buf[:4])
        self.pcapng = magic == b"\x0a\x0d\x0d\x0a"
        if not self.pcapng and magic not in PCAP_MAGICS:
            raise Unsplittable("not a pcap or pcapng file")

    def walk(self):
        """(is_packet, start, end, linktype, data_start, caplen) for each record, in file order."""
        return self._pcapng() if self.pcapng else self._pcap()

    def _pcap(self):
        buf = self.buf
        order = PCAP_MAGICS[bytes(buf[:4])]
        if len(buf) < 24:
            raise Unsplittable("the file header is cut short")
        linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0x0FFFFFFF
        header = struct.Struct(order + "IIII")
        yield False, 0, 24, None, 0, 0
        pos, end = 24, len(buf)
        while pos < end:
            if pos + 16 > end:
                raise Unsplittable("the last record is cut short")
            caplen = header.unpack_from(buf, pos)[2]
            stop = pos + 16 + caplen
            if stop > end:
                raise Unsplittable("the last record is cut short")
            if caplen > 0x10000000:
                raise Unsplittable("a record claims %d bytes" % caplen)
            yield True, pos, stop, linktype, pos + 16, caplen
            pos = stop

    def _pcapng(self):
        buf = self.buf
        pos, end = 0, len(buf)
        order = "<"
        linktypes: List[int] = []
        snaplens: List[int] = []
        while pos < end:
            if pos + 12 > end:
                raise Unsplittable("the last block is cut short")
            if bytes(buf[pos:pos + 4]) == b"\x0a\x0d\x0d\x0a":
                bom = bytes(buf[pos + 8:pos + 12])
                order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
                if order is None:
                    raise Unsplittable("a section header with an unknown byte order")
                linktypes, snaplens = [], []
            btype, blen = struct.unpack_from(order + "II", buf, pos)
            if blen < 12 or blen % 4 or pos + blen > end:
                raise Unsplittable("a block is damaged or cut short")
            stop = pos + blen
            if btype == PCAPNG_EPB:
                iface, _, _, caplen = struct.unpack_from(order + "IIII", buf, pos + 8)
                if iface >= len(linktypes) or 28 + caplen > blen:
                    raise Unsplittable("a packet block names an unknown interface or overruns its block")
                yield True, pos, stop, linktypes[iface], pos + 28, caplen
            elif btype == PCAPNG_SPB:
                if not linktypes:
                    raise Unsplittable("a simple packet block before any interface")
                origlen = struct.unpack_from(order + "I", buf, pos + 8)[0]
                caplen = min(origlen, blen - 16, snaplens[0] or origlen)
                yield True, pos, stop, linktypes[0], pos + 12, caplen
            elif btype == PCAPNG_PB:
                iface = struct.unpack_from(order + "H", buf, pos + 8)[0]
                caplen = struct.unpack_from(order + "I", buf, pos + 20)[0]
                if iface >= len(linktypes) or 28 + caplen > blen:
                    raise Unsplittable("a packet block names an unknown interface or overruns its block")
                yield True, pos, stop, linktypes[iface], pos + 28, caplen
            elif btype in METADATA_BLOCKS:
                if btype == PCAPNG_IDB:
                    lt, _, snap = struct.unpack_from(order + "HHI", buf, pos + 8)
                    linktypes.append(lt)
                    snaplens.append(snap)
                yield False, pos, stop, None, 0, 0
            else:  # a block some tshark may count as a frame (journal, custom): numbering would be unsure
                raise Unsplittable("a pcapng block of type 0x%X" % btype)
            pos = stop


_VLANS = (0x8100, 0x88A8, 0x9100)


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


_OTHER = b"O"  # what has no address read here: all of it in one group


class _Classifier:
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


def _release(buf, upto: int) -> int:
    """Give back the mapped pages before `upto`: they stay in the page cache, but out of this
    process's resident memory, which then stays flat whatever the capture's size."""
    upto -= upto % mmap.PAGESIZE
    if upto > 0 and hasattr(buf, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        buf.madvise(mmap.MADV_DONTNEED, 0, upto)
    return upto


def _balance(sizes: Dict[int, int], n: int) -> Dict[int, int]:
    """Groups to shards, largest first onto the least loaded (LPT): group -> shard."""
    loads = [0] * n
    out = {}
    for g, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        k = min(range(n), key=loads.__getitem__)
        out[g] = k
        loads[k] += size
    return out


def _open(path: Path, scratch: Path):
    """(the file's bytes as an mmap, the file object): a gzip file is first inflated into `scratch`."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        plain = scratch / "inflated"
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        path = plain
    f = open(path, "rb")
    try:
        if os.fstat(f.fileno()).st_size == 0:
            raise Unsplittable("empty")
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), f
    except BaseException:
        f.close()
        raise


def split(path: Path, n: int, directory: Optional[Path] = None,
          progress: Optional[Callable[[float], None]] = None) -> Split:
    """`path` into at most `n` shards (in a new folder under `directory`); Unsplittable when it
    cannot be split exactly, or when it holds a single group (nothing to share). `progress` is
    told the fraction done now and then (two passes: each is half)."""
    work = Path(work_folders.make("shards", directory))
    try:
        return _split(path, n, work, progress)
    except OSError as e:  # the disk filled up, a file that cannot be mapped: read whole, as before
        shutil.rmtree(work, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise NoRoom("%s ran out of space (choose another with --work-dir)" % work.parent) from None
        raise Unsplittable("%s: %s" % (path.name, e.strerror or e)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _split(path: Path, n: int, work: Path, progress) -> Split:
    buf, fobj = _open(path, work)
    try:
        records = _Records(buf)
        groups, classify = _Groups(), _Classifier()
        sessions: Dict[int, int] = {}
        seen = array("I")
        spill = open(work / "groups", "wb")
        frames = released = 0
        with spill:
            for is_packet, start, stop, linktype, data, caplen in records.walk():
                if not is_packet:
                    continue
                frames += 1
                key, session = classify.key(buf, data, caplen, linktype)
                g = groups.id(key)
                if g >= MAX_KEYS:
                    raise Unsplittable("more than %d connections" % MAX_KEYS)
                groups.size[g] += stop - start
                if session:
                    s = sessions.get(session)
                    if s is None:
                        sessions[session] = g
                    else:
                        groups.join(s, g)
                seen.append(g)
                if len(seen) >= CHUNK:
                    seen.tofile(spill)
                    del seen[:]
                if stop - released > RELEASE:
                    released = _release(buf, stop)
                    if progress is not None:
                        progress(stop / len(buf) / 2)
            seen.tofile(spill)
        sizes: Dict[int, int] = {}  # group (its root) -> bytes
        for g in range(len(groups.parent)):
            r = groups.find(g)
            sizes[r] = sizes.get(r, 0) + groups.size[g]
        if len(sizes) < 2:
            raise Unsplittable("one connection group")
        need = len(buf) + frames * ROW_BYTES  # the shards, and their tsharks' rows
        free = shutil.disk_usage(work).free
        if free < need + SPARE:
            raise NoRoom("%s has %.1f GB free; splitting needs about %.1f GB (choose another with --work-dir)" % (
                work.parent, free / 1e9, (need + SPARE) / 1e9))
        n = min(n, len(sizes))
        to_shard = _balance(sizes, n)
        shard_of = array("H", (to_shard[groups.find(g)] for g in range(len(groups.parent))))
        shards = [Shard(work / ("shard-%d.pcapng" % k if records.pcapng else "shard-%d.pcap" % k),
                        work / ("shard-%d.frames" % k)) for k in range(n)]
        outs = [open(s.path, "wb", buffering=1 << 20) for s in shards]
        numbers = [array("Q") for _ in range(n)]
        number_files = [open(s.frames_path, "wb") for s in shards]
        try:
            with open(work / "groups", "rb") as spill:
                pending = array("I")
                i = frame = released = 0
                run, run_start, run_stop = -1, 0, 0  # consecutive packets of one shard: one write
                for is_packet, start, stop, _, _, _ in records.walk():
                    if not is_packet:
                        if run >= 0:
                            outs[run].write(buf[run_start:run_stop])
                            run = -1
                        block = buf[start:stop]
                        for out in outs:
                            out.write(block)
                        continue
                    if i == len(pending):
                        pending = array("I")
                        pending.frombytes(spill.read(CHUNK * pending.itemsize))
                        i = 0
                    k = shard_of[pending[i]]
                    i += 1
                    frame += 1
                    if k != run or start != run_stop:
                        if run >= 0:
                            outs[run].write(buf[run_start:run_stop])
                        run, run_start = k, start
                    run_stop = stop
                    shards[k].frames += 1
                    shards[k].bytes += stop - start
                    numbers[k].append(frame)
                    if len(numbers[k]) >= CHUNK:
                        numbers[k].tofile(number_files[k])
                        del numbers[k][:]
                    if stop - released > RELEASE:
                        released = _release(buf, stop)
                        if progress is not None:
                            progress(0.5 + stop / len(buf) / 2)
                if run >= 0:
                    outs[run].write(buf[run_start:run_stop])
                for k in range(n):
                    numbers[k].tofile(number_files[k])
        finally:
            for f in outs + number_files:
                f.close()
        (work / "groups").unlink()
        return Split(shards, frames, len(sizes), work)
    finally:
        buf.close()
        fobj.close()
