"""How much `analyze --jobs N` gains on many captures, measured side by side.

    python bench/many_captures.py [--runs 5] [--jobs 1 2]

Times `analyze --fail-on never --jobs N` over every unencrypted bundled sample (several
captures of 26-201 packets each, where tshark's start-up dominates), alternating the --jobs
values run by run so a busy machine slows them alike, and prints the median of each and the
ratio to --jobs 1. Writes bench/out/many_captures.json. The machine is shared: quote ratios
and medians, not single runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def captures():
    # the keyed samples need their keys; the rest are analyzed as a user would
    return sorted(str(p) for p in (ROOT / "samples").glob("*.pcapng") if "encrypted" not in p.name
                  and "kerberos" not in p.name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    caps = captures()
    times = {j: [] for j in args.jobs}
    for _ in range(args.runs):
        for j in args.jobs:  # alternated: each round sees the same load
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", "--jobs", str(j), *caps],
                           cwd=ROOT, check=True, capture_output=True)
            times[j].append(time.monotonic() - start)
    base = statistics.median(times[args.jobs[0]])
    doc = dict(captures=len(caps), runs=args.runs,
               results=[dict(jobs=j, median_s=round(statistics.median(t), 3), ratio=round(statistics.median(t) / base, 3),
                             runs_s=[round(x, 3) for x in t]) for j, t in times.items()])
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "many_captures.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("%d captures, %d runs each, alternated" % (len(caps), args.runs))
    for r in doc["results"]:
        print("  --jobs %d: median %.2f s (%.2fx of --jobs %d)" % (r["jobs"], r["median_s"], r["ratio"], args.jobs[0]))
    return 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "bench/many_captures.py"))
