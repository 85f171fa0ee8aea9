"""Sequences a side numbers one by one but the capture may show out of order: the client's
RequestIdentifier (MS-RSVD 3.1.4.1, 2.2.5.1) and an open's stored-error keys (3.2.5.3-4).

Concurrent requests, on one connection or over multichannel, are numbered in the order they
are sent (or answered, for keys) but captured in another: a number may arrive after a higher
one. Both trackers keep the highest number seen and a bounded set of numbers skipped so far;
a number that fills a skipped slot is fine, and only what no reordering explains is reported:
a number used twice, a jump larger than reordering can explain, and slots never filled.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

MASK64 = 0xFFFFFFFFFFFFFFFF


class RequestIds:
    """One client's RequestIds: duplicates (R04) and gaps never filled (R05).

    `add` answers ("duplicate", earlier frame) for an id already used (of the last USED ids),
    ("gap", lo, hi, frame before, frame after) for a gap of more than GAP_NOW ids at once, or
    for the oldest gap when more than MAX_GAPS are open, and ("behind", id, lowest id seen, its
    frame) for an id below every id seen by more than reordering explains; `finish` gives the
    gaps still open.

    Below the lowest id seen, reordering explains only what was in flight: a request sent before
    the first one captured but captured after it. So an id may be at most BEHIND ids below the
    lowest, or twice the most operations the client had in flight at once, if more (a counter
    reset on reconnect, say, starts far below)."""

    USED = 65536  # ids remembered for duplicates
    GAP_NOW = 1024  # a jump this large is reported at once, not held
    MAX_GAPS = 4096  # open gaps remembered
    BEHIND = 64  # ids below the lowest seen that reordering may explain, at least

    def __init__(self):
        self.high: Optional[int] = None
        self.high_frame = 0
        self.low: Optional[int] = None  # the lowest id seen, and its frame
        self.low_frame = 0
        self.most_in_flight = 0
        # the last USED ids and their frames, oldest overwritten first: two arrays and a set cost
        # ~60 bytes an id where an OrderedDict cost ~190 (12 MB a client at 65536)
        self.used = set()
        self._ids, self._frames, self._next = array("Q"), array("q"), 0
        self.gaps: List[List[int]] = []  # sorted [lo, hi, frame before, frame after]

    def add(self, rid: int, frame: int, in_flight: int = 0) -> List[tuple]:
        """in_flight: the client's operations sent and not yet answered, this one included."""
        rid &= MASK64
        if in_flight > self.most_in_flight:
            self.most_in_flight = in_flight
        used, ids = self.used, self._ids
        if rid in used:
            return [("duplicate", self._frames[ids.index(rid)])]  # each id is held once
        if len(ids) < self.USED:
            ids.append(rid)
            self._frames.append(frame)
        else:
            used.discard(ids[self._next])
            ids[self._next], self._frames[self._next] = rid, frame
            self._next = (self._next + 1) % self.USED
        used.add(rid)
        out: List[tuple] = []
        low = self.low
        if low is None or rid < low:
            if low is not None and low - rid > max(self.BEHIND, 2 * self.most_in_flight):
                out.append(("behind", rid, low, self.low_frame))
            self.low, self.low_frame = rid, frame
        high = self.high
        if high is None:
            self.high, self.high_frame = rid, frame
        elif rid == high + 1:  # the next id, the commonest: no gap, none filled
            self.high, self.high_frame = rid, frame
        elif rid > high:
            lo, hi = high + 1, rid - 1
            if hi - lo + 1 > self.GAP_NOW:
                out.append(("gap", lo, hi, self.high_frame, frame))
            elif hi >= lo:
                self.gaps.append([lo, hi, self.high_frame, frame])  # above every open gap: stays sorted
                if len(self.gaps) > self.MAX_GAPS:
                    out.append(("gap",) + tuple(self.gaps.pop(0)))
            self.high, self.high_frame = rid, frame
        else:
            self.fill(rid)  # below the highest: fills a gap, or predates what is remembered
        return out

    def fill(self, rid: int) -> None:
        i = bisect_right(self.gaps, [rid, MASK64 + 1]) - 1
        if i < 0 or not self.gaps[i][0] <= rid <= self.gaps[i][1]:
            return
        lo, hi, before, after = self.gaps[i]
        parts = [[a, b, before, after] for a, b in ((lo, rid - 1), (rid + 1, hi)) if a <= b]
        self.gaps[i:i + 1] = parts

    def finish(self) -> List[tuple]:
        out = [("gap",) + tuple(g) for g in self.gaps]
        self.gaps = []
        return out


class StoredKeys:
    """One open's stored-error keys (8 bits, 0xFF wraps to 0x00), by position in the open's
    sequence: position p carries key p & 0xFF. For an open whose CREATE is in the capture the
    sequence starts at 0 (3.2.5.1), so the first key is 1; for one made before the capture the
    first key seen starts it, and a key before it is judged only when its request came after.

    `add` answers ("repeat", frame it was issued), ("jump", skipped, frame of the highest, whether any key
    was issued before), or
    ("lost", [keys], frame) for skipped keys that fall out of the 255-key window unfilled;
    `unfilled` lists the keys skipped and not yet filled."""

    WINDOW = 255

    def __init__(self, known_start: bool, start_frame: int = 0):
        self.high: Optional[int] = 0 if known_start else None  # position of the highest key issued
        self.floor = 1  # positions below it predate the capture
        self.first_frame = 0  # the answer of the first key seen (an open made before the capture)
        self.high_frame = start_frame  # the answer of the highest key; before any, the open's CREATE
        self.skipped: "OrderedDict[int, int]" = OrderedDict()  # position -> frame of the answer that skipped it
        self.issued: Dict[int, Tuple[int, int]] = {}  # key -> (position, frame) of its last issue

    def add(self, key: int, frame: int, request_frame: int, in_flight: int) -> List[tuple]:
        key &= 0xFF
        if self.high is None:
            self.high = self.floor = key + 256
            self.first_frame = self.high_frame = frame
            self.issued[key] = (self.high, frame)
            return []
        d = (key - self.high) & 0xFF or 256  # how far ahead of the highest
        back = self.high - 256 + d if d < 256 else self.high  # the position behind (or at) the highest
        if back in self.skipped:
            del self.skipped[back]
            self.issued[key] = (back, frame)
            return []
        if d <= in_flight + 1:  # the d - 1 keys between went to requests still in flight
            return self.advance(key, d, frame)
        if back >= self.floor and self.issued.get(key, (None,))[0] == back:
            return [("repeat", self.issued[key][1])]
        if back < self.floor and self.floor > 1 and request_frame < self.first_frame:
            return []  # a request older than the first key seen: its key may predate the capture
        return [("jump", d - 1, self.high_frame, self.high >= self.floor)] + self.advance(key, d, frame, skip=False)

    def advance(self, key: int, d: int, frame: int, skip: bool = True) -> List[tuple]:
        if skip:
            for p in range(self.high + 1, self.high + d):
                self.skipped[p] = frame
        self.high += d
        self.high_frame = frame
        self.issued[key] = (self.high, frame)
        lost = [p for p in self.skipped if p <= self.high - 256]
        for p in lost:
            del self.skipped[p]
        return [("lost", [p & 0xFF for p in lost], frame)] if lost else []

    def unfilled(self) -> List[Tuple[int, int]]:
        """(key, frame of the answer that skipped it) for each key skipped and never filled."""
        return [(p & 0xFF, f) for p, f in self.skipped.items()]
