"""Small, exact edits of a sample's pcapng for regression captures: the same file with a few
bytes of one frame changed (block lengths, so timestamps and framing, stay as they were)."""
from __future__ import annotations

import struct

EPB = 6  # Enhanced Packet Block


def frames(data: bytes):
    """(frame number, offset of its packet data, captured length) for each EPB."""
    off, n = 0, 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if blen < 12:
            raise ValueError("bad block length %d at offset %d" % (blen, off))
        if btype == EPB:
            n += 1
            yield n, off + 28, struct.unpack_from("<I", data, off + 20)[0]
        off += blen


def replace_in_frame(data: bytes, frame: int, old: bytes, new: bytes, nth: int = 1) -> bytes:
    """The capture with the nth occurrence of `old` in frame `frame` replaced by `new` (same length)."""
    if len(old) != len(new):
        raise ValueError("a replacement keeps the length")
    for n, body, caplen in frames(data):
        if n != frame:
            continue
        at = body - 1
        for _ in range(nth):
            at = data.find(old, at + 1, body + caplen)
            if at < 0:
                raise ValueError("%s not in frame %d" % (old.hex(), frame))
        return data[:at] + new + data[at + len(new):]
    raise ValueError("no frame %d" % frame)
