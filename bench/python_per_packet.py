"""What the analyzing Python process costs a packet, without tshark: issue 25's "Python at
≤ 15 µs a packet" yardstick.

    python bench/python_per_packet.py [--packets 200000] [--keep] [--runs 5] [--vs OTHER_CHECKOUT]

tshark runs once over the RSVD-heavy trace (bench/lua_overhead.py's, bench/out/rsvd_heavy.pcapng),
its field rows are saved, and each run then feeds those rows to analyze_capture in a fresh
process (the CLI's Tables: statistics only, no --output), timing CPU seconds in stages:

- rows:   reading the lines and cutting them into columns (source.columns);
- events: rows into typed frames (events.frame_of), without the reading;
- all:    the whole analysis (rows, events, reconstruction, rules, the result).

With --vs, the same is timed for another checkout of the analyzer (e.g. a `git worktree` of an
older commit) in alternate runs, so a busy machine slows both alike; the ratio of medians is
the figure to quote. Writes bench/out/python_per_packet.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from lua_overhead import OUT, heavy_trace  # noqa: E402

# Run in a fresh process per checkout: its analyzer over the saved rows, CPU seconds per stage.
MEASURE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from analyzer import pipeline
try:  # the analyzer laid out by stage, or an older checkout's flat one
    from analyzer.capture import source
    from analyzer.reconstruction import events
    from analyzer.reconstruction.tables import Tables
except ImportError:
    from analyzer import events, source
    from analyzer.tables import Tables
ROWS, TRACE = sys.argv[2], sys.argv[3]

def lines():
    with open(ROWS, encoding="utf-8", errors="replace") as f:
        yield from f

def rows(self):
    escaped = self.tshark.version >= source.ESCAPES_TEXT
    for line in lines():
        cols = source.columns(line, escaped)
        if cols is not None:
            self.frames += 1
            yield cols

t = time.process_time()
n = sum(1 for line in lines() if source.columns(line, False) is not None)
read = time.process_time() - t
t = time.process_time()
for line in lines():
    cols = source.columns(line, False)
    if cols is not None:
        events.frame_of(cols)
typed = time.process_time() - t - read  # that loop read the rows again
source.Run.rows = rows
tshark = source.Tshark("tshark", tuple(int(x) for x in sys.argv[4].split(".")))
t = time.process_time()
result = pipeline.analyze_capture(Path(TRACE), tshark, Tables(keep=False))
whole = time.process_time() - t
print(json.dumps(dict(packets=n, rows=read, events=typed, all=whole, findings=len(result.findings))))
"""


def measure(checkout: Path, rows: Path, trace: Path, version: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(checkout), str(rows), str(trace), version],
                         capture_output=True, text=True, check=True, cwd=str(OUT))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true", help="reuse bench/out/rsvd_heavy.pcapng if it exists")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vs", type=Path, help="another checkout of the analyzer, timed alternately")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from analyzer.capture.source import command, find_tshark, tshark_env

    trace = heavy_trace(args.packets, args.keep)
    tshark = find_tshark()
    rows = OUT / "rsvd_heavy.rows"
    with open(rows, "wb") as f:
        subprocess.run(command(tshark, trace), stdout=f, stderr=subprocess.DEVNULL, env=tshark_env(), check=True)
    checkouts = {"this": ROOT}
    if args.vs:
        checkouts["vs"] = args.vs.resolve()
    runs = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, path in checkouts.items():
            runs[name].append(measure(path, rows, trace, tshark.version_text))
    os.unlink(rows)
    report = dict(trace=trace.name, tshark=tshark.version_text, runs=args.runs, checkouts={k: str(v) for k, v in checkouts.items()})
    for name, rs in runs.items():
        n = rs[0]["packets"]
        per = {stage: statistics.median(r[stage] for r in rs) / n * 1e6 for stage in ("rows", "events", "all")}
        report[name] = dict(packets=n, us_per_packet=per, findings=rs[0]["findings"])
        print("%-5s %d packets: %.1f us a packet in all (reading rows %.1f, typed events %.1f), median of %d"
              % (name, n, per["all"], per["rows"], per["events"], args.runs))
    if args.vs:
        ratio = report["this"]["us_per_packet"]["all"] / report["vs"]["us_per_packet"]["all"]
        report["ratio_this_to_vs"] = ratio
        print("this / vs: %.2f" % ratio)
    (OUT / "python_per_packet.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
