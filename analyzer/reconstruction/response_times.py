"""Response times of one group (an RSVD operation, a SCSI opcode, a ClusPrep method), kept so
their percentiles are exact, in memory that does not grow with the capture: the first KEPT in
memory (8 bytes each), the rest in a temporary file. Percentiles past KEPT take passes over the
file: a histogram finds the bin that holds each rank, and that bin's values are sorted (or, when
a bin holds too many, histogrammed again within it)."""
from __future__ import annotations

import tempfile
from array import array
from typing import Iterator

import numpy

KEPT = 1 << 17  # values in memory (1 MB) a group before the file: 20 groups, 20 MB
BINS = 1 << 16


def rank(n: int, p: float) -> int:
    """The nearest-rank index of percentile p among n ascending values."""
    return max(0, min(n - 1, int(round(p / 100.0 * n + 0.5)) - 1))


class ResponseTimes:
    def __init__(self, kept: int = KEPT):
        self.kept = kept
        self.values = array("d")
        self.count = 0
        self._file = None

    def append(self, value: float) -> None:
        self.values.append(value)
        self.count += 1
        if len(self.values) >= self.kept:
            if self._file is None:
                self._file = tempfile.TemporaryFile()
            self.values.tofile(self._file)
            del self.values[:]

    def __len__(self) -> int:
        return self.count

    def _chunks(self) -> Iterator[numpy.ndarray]:
        if self._file is not None:
            self._file.seek(0)
            while True:
                block = self._file.read(self.kept * 8)
                if not block:
                    break
                yield numpy.frombuffer(block, dtype="float64")
        if len(self.values):
            yield numpy.frombuffer(self.values, dtype="float64")

    def summary(self, percentiles=(50, 99)) -> dict:
        """count, min, max and the percentiles (p50, p99), exact."""
        if self._file is None:
            v = numpy.sort(numpy.asarray(self.values, dtype="float64"))
            out = dict(count=self.count, min=float(v[0]), max=float(v[-1]))
            out.update({"p%d" % p: float(v[rank(self.count, p)]) for p in percentiles})
            return _ordered(out, percentiles)
        lo = min(float(c.min()) for c in self._chunks())
        hi = max(float(c.max()) for c in self._chunks())
        out = dict(count=self.count, min=lo, max=hi)
        for p in percentiles:
            out["p%d" % p] = self._select(rank(self.count, p), lo, hi)
        return _ordered(out, percentiles)

    def _select(self, k: int, lo: float, hi: float) -> float:
        """The k-th smallest value (0-based, among all), which lies in [lo, hi]."""
        for _ in range(64):  # each round narrows the range 65536-fold: float precision ends it
            if lo >= hi:
                return lo
            edges = numpy.linspace(lo, hi, BINS + 1)
            counts = numpy.zeros(BINS, dtype="int64")
            below = 0  # values under lo
            for c in self._chunks():
                below += int(numpy.count_nonzero(c < lo))
                counts += numpy.bincount(_bin(edges, c[(c >= lo) & (c <= hi)]), minlength=BINS)
            t = k - below  # its rank among the values in [lo, hi]
            cum = numpy.cumsum(counts)
            b = int(numpy.searchsorted(cum, t, side="right"))
            start = int(cum[b - 1]) if b else 0
            if counts[b] <= self.kept:  # few enough to sort
                found = [c[(c >= lo) & (c <= hi)] for c in self._chunks()]
                found = [f[_bin(edges, f) == b] for f in found]
                return float(numpy.sort(numpy.concatenate(found))[t - start])
            # the bin: [edges[b], edges[b+1]), the last one closed
            lo, hi = float(edges[b]), float(edges[b + 1]) if b == BINS - 1 else float(
                numpy.nextafter(edges[b + 1], -numpy.inf))
        return lo

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _bin(edges: numpy.ndarray, values: numpy.ndarray) -> numpy.ndarray:
    """Each value's bin: [edges[i], edges[i+1]), the last bin closed."""
    return numpy.clip(numpy.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def _ordered(out: dict, percentiles) -> dict:
    return dict(count=out["count"], min=out["min"], **{"p%d" % p: out["p%d" % p] for p in percentiles},
                max=out["max"])
