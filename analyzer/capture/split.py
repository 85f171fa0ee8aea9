"""One capture file into N shard files by connection, for one tshark per core (analyze --jobs).

Two streaming passes over the records, nothing dissected: the first (`plan`) reads each packet's
addresses and, on SMB ports, its SMB2 SessionId, many packets at a time (connection_keys), joins
what tshark must see together and notes where each record goes; the second (Split.write) writes
each packet to its group's shard, in capture order, into a file or straight into the tshark that
dissects it, without reading the records' headers again. Every shard gets every
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
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import work_folders
from .connection_keys import KEY_WIDTH, ChunkKeys

PCAPNG_SHB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SPB, PCAPNG_NRB, PCAPNG_ISB, PCAPNG_EPB, PCAPNG_DSB = (
    0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0A)
METADATA_BLOCKS = {PCAPNG_SHB, PCAPNG_IDB, PCAPNG_NRB, PCAPNG_ISB, PCAPNG_DSB}  # copied to every shard
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
MAX_KEYS = 250_000  # connections and host pairs held (~40 MB); a scan's millions are read whole
CHUNK = 1 << 16  # entries per array flushed to disk: memory stays flat whatever the capture's size
ROW_BYTES = 600  # what a frame's -T fields row takes, generously (RSVD rows carry message bytes in hex)
SPARE = 64 << 20  # left free beyond that
RELEASE = 4 << 20  # bytes of the mapped capture read between giving its pages back
RECORD = np.dtype([("start", "<i8"), ("stop", "<i8"), ("group", "<u4")])  # a record's place in the file, its group
EVERY_SHARD = 0xFFFFFFFF  # the group of a metadata record (section, interfaces...): copied to every shard


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
    _pending: Optional[tuple] = None  # what write() reads: (the mapped capture, its file, the records, group -> shard)

    def write(self, outs: list, progress: Optional[Callable[[float], None]] = None) -> None:
        """The second pass, once: each shard's records, in capture order, into its writable in `outs`
        (a file, or the stdin of the tshark that dissects it), each closed at the end. A tshark that
        stops reading is left out and the others are written to the end."""
        buf, fobj, spill, shard_of = self._pending
        self._pending = None
        live = list(outs)
        try:
            released = 0
            for entries in _chunks(spill):
                k = shard_of[np.minimum(entries["group"], len(shard_of) - 1)]
                start, stop = entries["start"], entries["stop"]
                # a run: consecutive records of one shard, each right after the last (one write);
                # a metadata record (k -1) goes to every shard
                new = np.ones(len(k), bool)
                new[1:] = (k[1:] != k[:-1]) | (start[1:] != stop[:-1]) | (k[1:] < 0)
                firsts = np.flatnonzero(new)
                lasts = np.append(firsts[1:], len(k)) - 1
                for shard, a, b in zip(k[firsts].tolist(), start[firsts].tolist(), stop[lasts].tolist()):
                    block = buf[a:b]
                    for j in (range(len(live)) if shard < 0 else (shard,)):
                        if live[j] is not None:
                            try:
                                live[j].write(block)
                            except BrokenPipeError:  # its tshark stopped: it says why on its stderr
                                live[j] = None
                end = int(stop[-1])
                if end - released > RELEASE:
                    released = _release(buf, end)
                if progress is not None:
                    progress(end / len(buf))
        finally:
            for out in outs:
                try:
                    out.close()
                except BrokenPipeError:
                    pass
            _close(buf, fobj)
            spill.unlink()

    def remove(self) -> None:
        if self._pending is not None:
            _close(*self._pending[:2])
            self._pending = None
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

    def chunks(self, mem: np.ndarray) -> Iterator[Dict[str, np.ndarray]]:
        """The records in file order, about CHUNK at a time: each chunk's columns start, stop,
        packet (bool), linktype, data (where the packet's bytes start) and caplen. `mem` is the
        file as a uint8 array. The records packets are mostly in (enhanced packet blocks, pcap
        records) are found by their lengths alone and their fields read at once."""
        columns = ("start", "stop", "packet", "linktype", "data", "caplen")
        parts: List[Dict[str, np.ndarray]] = []
        single = {c: array("q") for c in columns}  # records read one at a time, since the last run
        count = 0

        def flush_single():
            if single["start"]:
                parts.append({c: np.frombuffer(single[c], np.int64).copy() for c in columns})
                for c in columns:
                    del single[c][:]

        for item in (self._pcapng() if self.pcapng else self._pcap()):
            if isinstance(item, tuple) and item[0] == "run":
                flush_single()
                parts.append(self._run(mem, *item[1:]))
                count += len(parts[-1]["start"])
            else:
                for c, v in zip(columns, item):
                    single[c].append(int(v or 0))
                count += 1
            if count >= CHUNK:
                flush_single()
                yield _joined(parts)
                parts, count = [], 0
        flush_single()
        if parts:
            yield _joined(parts)

    @staticmethod
    def _run(mem: np.ndarray, kind: str, order: str, linktypes: tuple, starts: array) -> Dict[str, np.ndarray]:
        """A run of enhanced packet blocks (`kind` "epb") or pcap records ("pcap"), given their starts."""
        start = np.frombuffer(starts, np.int64)

        def u32(offset: int) -> np.ndarray:
            return mem[(start + offset)[:, None] + np.arange(4)].copy().view(order + "u4").ravel().astype(np.int64)

        if kind == "pcap":
            caplen = u32(8)
            return dict(start=start, stop=start + 16 + caplen, packet=np.ones(len(start), np.int64),
                        linktype=np.full(len(start), linktypes[0], np.int64), data=start + 16, caplen=caplen)
        blen, iface, caplen = u32(4), u32(8), u32(20)
        if (iface >= len(linktypes)).any() or (28 + caplen > blen).any():
            raise Unsplittable("a packet block names an unknown interface or overruns its block")
        return dict(start=start, stop=start + blen, packet=np.ones(len(start), np.int64),
                    linktype=np.array(linktypes, np.int64)[iface], data=start + 28, caplen=caplen)

    def _pcap(self):
        """("run", "pcap", order, (linktype,), starts) for records found by their lengths; a
        tuple of columns for the file header."""
        buf = self.buf
        order = PCAP_MAGICS[bytes(buf[:4])]
        if len(buf) < 24:
            raise Unsplittable("the file header is cut short")
        linktype = struct.unpack_from(order + "I", buf, 20)[0] & 0x0FFFFFFF
        caplen_at = struct.Struct(order + "I").unpack_from
        yield 0, 24, False, None, 0, 0
        pos, end = 24, len(buf)
        while pos < end:
            run, n = array("q"), 0
            add = run.append
            while pos + 16 <= end and n < CHUNK:
                stop = pos + 16 + caplen_at(buf, pos + 8)[0]
                if stop > end or stop - pos - 16 > 0x10000000:
                    break
                add(pos)
                pos, n = stop, n + 1
            if run:
                yield "run", "pcap", order, (linktype,), run
            if n < CHUNK and pos < end:
                if pos + 16 > end:
                    raise Unsplittable("the last record is cut short")
                caplen = caplen_at(buf, pos + 8)[0]
                if pos + 16 + caplen <= end:
                    raise Unsplittable("a record claims %d bytes" % caplen)
                raise Unsplittable("the last record is cut short")

    def _pcapng(self):
        """("run", "epb", order, interfaces' linktypes, starts) for enhanced packet blocks found by
        their lengths; a tuple of columns for any other block."""
        buf = self.buf
        pos, end = 0, len(buf)
        order = "<"
        linktypes: List[int] = []
        snaplens: List[int] = []
        heads = {o: struct.Struct(o + "II").unpack_from for o in "<>"}
        while pos < end:
            run, n = array("q"), 0
            add, head = run.append, heads[order]
            while pos + 12 <= end and n < CHUNK:  # the bulk: their lengths alone here
                btype, blen = head(buf, pos)
                if btype != PCAPNG_EPB or blen < 12 or blen & 3 or pos + blen > end:
                    break
                add(pos)
                pos, n = pos + blen, n + 1
            if run:
                yield "run", "epb", order, tuple(linktypes), run
            if pos >= end or n == CHUNK:
                continue
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
                yield pos, stop, True, linktypes[iface], pos + 28, caplen
            elif btype == PCAPNG_SPB:
                if not linktypes:
                    raise Unsplittable("a simple packet block before any interface")
                origlen = struct.unpack_from(order + "I", buf, pos + 8)[0]
                caplen = min(origlen, blen - 16, snaplens[0] or origlen)
                yield pos, stop, True, linktypes[0], pos + 12, caplen
            elif btype == PCAPNG_PB:
                iface = struct.unpack_from(order + "H", buf, pos + 8)[0]
                caplen = struct.unpack_from(order + "I", buf, pos + 20)[0]
                if iface >= len(linktypes) or 28 + caplen > blen:
                    raise Unsplittable("a packet block names an unknown interface or overruns its block")
                yield pos, stop, True, linktypes[iface], pos + 28, caplen
            elif btype in METADATA_BLOCKS:
                if btype == PCAPNG_IDB:
                    lt, _, snap = struct.unpack_from(order + "HHI", buf, pos + 8)
                    linktypes.append(lt)
                    snaplens.append(snap)
                yield pos, stop, False, None, 0, 0
            else:  # a block some tshark may count as a frame (journal, custom): numbering would be unsure
                raise Unsplittable("a pcapng block of type 0x%X" % btype)
            pos = stop


def _joined(parts: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    return parts[0] if len(parts) == 1 else {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}


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
    """`path` into at most `n` shard files (in a new folder under `directory`); Unsplittable when it
    cannot be split exactly, or when it holds a single group (nothing to share). `progress` is
    told the fraction done now and then (two passes: each is half)."""
    parts = plan(path, n, directory, progress and (lambda f: progress(f / 2)))
    try:
        parts.write([open(s.path, "wb", buffering=1 << 20) for s in parts.shards],
                    progress and (lambda f: progress(0.5 + f / 2)))
    except OSError as e:
        parts.remove()
        if e.errno == errno.ENOSPC:
            raise NoRoom("%s ran out of space (choose another with --work-dir)" % parts.directory.parent) from None
        raise Unsplittable("%s: %s" % (path.name, e.strerror or e)) from None
    except BaseException:
        parts.remove()
        raise
    return parts


def plan(path: Path, n: int, directory: Optional[Path] = None,
         progress: Optional[Callable[[float], None]] = None) -> Split:
    """The first pass: which shard each packet goes to, each shard's frame numbers written beside
    it; Split.write then writes the shards (to files, or straight into their tsharks)."""
    work = Path(work_folders.make("shards", directory))
    try:
        return _plan(path, n, work, progress)
    except OSError as e:  # the disk filled up, a file that cannot be mapped: read whole, as before
        shutil.rmtree(work, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise NoRoom("%s ran out of space (choose another with --work-dir)" % work.parent) from None
        raise Unsplittable("%s: %s" % (path.name, e.strerror or e)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _first_pass(buf, records: _Records, spill_path: Path, progress) -> Tuple[_Groups, int]:
    """Every packet's group, CHUNK records at a time: their keys read at once (ChunkKeys), each new
    key a group in order of first appearance, the groups of one SMB2 session joined. Each record's
    place and group (EVERY_SHARD for metadata) go to `spill_path` for the second pass. (groups, packets)."""
    groups, reader = _Groups(), ChunkKeys()
    sessions: Dict[int, int] = {}
    mem = np.frombuffer(buf, np.uint8)
    frames = released = 0
    try:
        with open(spill_path, "wb") as spill:
            for chunk in records.chunks(mem):
                entries = np.zeros(len(chunk["start"]), RECORD)
                entries["start"], entries["stop"] = chunk["start"], chunk["stop"]
                entries["group"] = EVERY_SHARD
                is_packet = chunk["packet"].astype(bool)
                if is_packet.any():
                    frames += int(is_packet.sum())
                    keys, named = reader.keys(mem, buf, chunk["data"][is_packet], chunk["caplen"][is_packet],
                                              chunk["linktype"][is_packet])
                    unique, first, inverse = np.unique(keys.view("V%d" % KEY_WIDTH).ravel(), return_index=True,
                                                       return_inverse=True)
                    local = np.empty(len(unique), np.int64)  # a chunk's unique keys -> their group ids
                    for u in np.argsort(first, kind="stable"):  # new keys numbered in order of first appearance
                        local[u] = groups.id(unique[u].tobytes())
                    if len(groups.parent) > MAX_KEYS:
                        raise Unsplittable("more than %d connections" % MAX_KEYS)
                    ids = local[inverse.ravel()]
                    entries["group"][is_packet] = ids
                    sums = np.bincount(ids, weights=entries["stop"][is_packet] - entries["start"][is_packet],
                                       minlength=len(groups.parent))
                    for g in np.flatnonzero(sums):
                        groups.size[g] += int(sums[g])
                    # a session's channels join its first connection's group; only the first time a
                    # (session, group) pair is seen can change anything
                    has = np.flatnonzero(named)
                    if len(has):
                        pairs = np.stack([named[has], ids[has].astype(np.uint64)], axis=1)
                        _, once = np.unique(pairs, axis=0, return_index=True)
                        for i in np.sort(once):
                            session, g = int(pairs[i, 0]), int(pairs[i, 1])
                            s = sessions.get(session)
                            if s is None:
                                sessions[session] = g
                            else:
                                groups.join(s, g)
                entries.tofile(spill)
                stop = int(chunk["stop"][-1])
                if progress is not None:
                    progress(stop / len(buf))
                released = _release(buf, stop) if stop - released > RELEASE else released
    finally:
        del mem  # the mmap cannot close while numpy holds a view of it
    return groups, frames


def _chunks(path: Path) -> Iterator[np.ndarray]:
    """The first pass's records back, CHUNK at a time."""
    with open(path, "rb") as f:
        while True:
            entries = np.fromfile(f, RECORD, CHUNK)
            if not len(entries):
                return
            yield entries


def _plan(path: Path, n: int, work: Path, progress) -> Split:
    buf, fobj = _open(path, work)
    try:
        records = _Records(buf)
        spill = work / "records"
        groups, frames = _first_pass(buf, records, spill, progress)
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
        shard_of = np.array([to_shard[groups.find(g)] for g in range(len(groups.parent))] + [-1], np.int64)
        shards = [Shard(work / ("shard-%d.pcapng" % k if records.pcapng else "shard-%d.pcap" % k),
                        work / ("shard-%d.frames" % k)) for k in range(n)]
        number_files = [open(s.frames_path, "wb") for s in shards]
        try:
            frame = 0
            for entries in _chunks(spill):
                k = shard_of[np.minimum(entries["group"], len(shard_of) - 1)]  # EVERY_SHARD: -1
                packets = k >= 0
                numbers = frame + np.cumsum(packets)  # each packet's frame number
                frame = int(numbers[-1])
                sizes_k = np.bincount(k[packets], weights=(entries["stop"] - entries["start"])[packets], minlength=n)
                for j in range(n):
                    mine = k == j
                    numbers[mine].astype(np.uint64).tofile(number_files[j])
                    shards[j].frames += int(mine.sum())
                    shards[j].bytes += int(sizes_k[j])
        finally:
            for f in number_files:
                f.close()
        parts = Split(shards, frames, len(sizes), work)
        parts._pending = (buf, fobj, spill, shard_of)
        buf = fobj = None
        return parts
    finally:
        if buf is not None:
            _close(buf, fobj)


def _close(buf, fobj) -> None:
    try:
        buf.close()
    except BufferError:  # an exception's traceback still holds a numpy view of it: closed when freed
        pass
    fobj.close()
