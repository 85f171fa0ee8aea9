"""The splitter against whole runs, on mutated captures (analyzer/capture/split.py, analyzer/capture/shards.py).

    .venv/bin/python tests/fuzz/split_fuzz.py [--variants 300] [--seed 1] [--format pcapng|pcap] [--out DIR]

The base is four samples merged by time (two RSVD, two ClusPrep: several connection groups, a
multichannel session). Each variant changes 1 to 64 random bytes anywhere, block and record
headers included, and one in ten is also cut at a random byte. The invariant: tshark's rows read
whole and read split over two tsharks are the same, with the same frame count, truncation, error
lines and dissector bugs. A variant that differs is saved to DIR (default /tmp/msrsvd-split-fuzz)
with its seed; the exit code is the number that differed (0: none).
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.capture.shards import ShardedRun  # noqa: E402
from analyzer.capture.source import Run, find_tshark  # noqa: E402
import samples  # noqa: E402

BASE = ["rsvd_shared_disk", "clusprep_node_violations", "rsvd_multichannel", "clusprep_storage"]


def base(out: Path, fmt: str) -> bytes:
    merged = out / "base.pcapng"
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(merged), *[str(samples.path(n)) for n in BASE]], check=True)
    if fmt == "pcap":
        subprocess.run(["editcap", "-F", "pcap", str(merged), str(out / "base.pcap")], check=True)
        return (out / "base.pcap").read_bytes()
    return merged.read_bytes()


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 4, 16, 64])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    if rng.random() < 0.1:
        del b[rng.randrange(len(b)):]
    return bytes(b)


def outcome(run, rows):
    return rows, run.frames, run.truncated, run.errors, run.dissector_bugs


def differs(tshark, path: Path) -> str:
    """"" when the split run gives what the whole run gives, else what differs."""
    whole = Run(tshark, path)
    try:
        a = outcome(whole, list(whole.rows()))
    except Exception as e:  # noqa: BLE001 - the same error both ways is the same outcome
        a = ("error", str(e))
    split = ShardedRun(tshark, path, jobs=2)
    try:
        b = outcome(split, list(split.rows()))
    except Exception as e:  # noqa: BLE001
        b = ("error", str(e))
    if a == b:
        return ""
    if a[0] == "error" or b[0] == "error":
        return "whole: %s; split: %s" % (a if a[0] == "error" else "%d rows" % len(a[0]),
                                          b if b[0] == "error" else "%d rows" % len(b[0]))
    return "%d rows whole, %d split (%s); errors %s / %s" % (
        len(a[0]), len(b[0]), "split in %d" % split.shards if split.shards else "read whole: %s" % split.whole,
        a[3][:1], b[3][:1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=("pcapng", "pcap"), default="pcapng")
    ap.add_argument("--out", default="/tmp/msrsvd-split-fuzz")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tshark = find_tshark()
    data = base(out, args.format)
    bad = 0
    for i in range(args.variants):
        seed = "%d/%d" % (args.seed, i)
        path = out / ("variant.%s" % args.format)
        path.write_bytes(mutate(data, random.Random(seed)))
        why = differs(tshark, path)
        if why:
            bad += 1
            keep = out / ("differs-%s.%s" % (seed.replace("/", "-"), args.format))
            path.rename(keep)
            print("variant %s differs: %s (%s)" % (seed, why, keep))
    print("%d variants (%s), %d differed" % (args.variants, args.format, bad))
    return min(bad, 100)


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "tests/fuzz/split_fuzz.py"))
