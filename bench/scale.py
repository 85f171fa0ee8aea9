"""One big capture over every core: `analyze --jobs 1` and `--jobs 2` against tshark alone, with
the peak memory of every process and where the time goes, measured side by side.

    python bench/scale.py [--packets 200000] [--runs 3] [--keep] [--jobs 1 2 3] [--dask 1 2]

The trace is bench/lua_overhead.py's RSVD-heavy one (four initiators; --keep reuses
bench/out/rsvd_heavy.pcapng). Each round runs, alternated so a busy machine slows them alike:

- tshark:   `tshark -n -r TRACE -T fields -e frame.number`, no plugins (the issue's yardstick);
- export:   the tshark command analyze runs on the whole trace (plugins, their fields);
- jobs=N:   `analyze --format json --jobs N TRACE`, end to end;
- dask=W:   with --dask, `analyze --dask local --jobs W`: a LocalCluster of W workers dissects the
            shards (W=1: nothing is split, the trace is read here as by --jobs 1); its start, a
            few seconds, is in the figure.
Every analyze run has --split-above 0, so a small trace splits as a big one does.

For each analyze run a thread in its process samples VmHWM (peak resident memory) of the process
and of every descendant (the tsharks) every 20 ms, and when the dissecting tsharks were first and
last seen: the serial part is the time before the first (start, imports, the split's first pass)
plus the time after the last (rows left to merge and reconstruct, the end, the report); getrusage
gives the CPU seconds of the Python process and of its children. Phases, timed once: the split
alone (analyzer.capture.split: its first pass, then its second into files) and the export on each
shard. From these: the expected wall time on more cores and what bounds it,
the serial fraction (the split and the Python process) and Amdahl's speed-up from it (were the
serial part not overlapped with the tsharks: a pessimistic figure).
Prints medians and ratios; writes bench/out/scale.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from analyzer.capture.source import command, find_tshark, tshark_env  # noqa: E402
from analyzer.capture.split import plan  # noqa: E402
from lua_overhead import OUT, heavy_trace  # noqa: E402

# Run in the analyzing process: peaks of it and its descendants, its own and its children's CPU.
DRIVER = r"""
import os, resource, sys, threading, time
peaks, stop = {}, threading.Event()

def hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            s = f.read()
        name = s.split("Name:", 1)[1].split()[0]
        kb = int(s.split("VmHWM:", 1)[1].split()[0])
        return name, kb
    except (OSError, IndexError, ValueError):
        return None

def kids(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out

dissecting = []  # when a tshark dissecting the capture (its -T fields) was first and last seen

def fields(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"fields" in f.read()
    except OSError:
        return False

def sample():
    while not stop.is_set():
        todo, me = [os.getpid()], os.getpid()
        while todo:
            pid = todo.pop()
            h = hwm(pid)
            if h:
                key = "analyze (python)" if pid == me else "%s[%d]" % (h[0], pid)
                peaks[key] = max(peaks.get(key, 0), h[1])
                if h[0] == "tshark" and fields(pid):
                    now = time.perf_counter()
                    dissecting[:] = [dissecting[0] if dissecting else now, now]
            todo += kids(pid)
        stop.wait(0.02)

threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
from analyzer.output.cli import main
imported = time.perf_counter() - t0
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
stop.set()
me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
peaks["analyze (python)"] = max(peaks.get("analyze (python)", 0), int(
    [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]))
import json
# the serial part: before the first dissecting tshark (start, imports, the split's first pass) and
# after the last (the rows left to merge and reconstruct, the end of the capture, the report); 20 ms samples
before = (dissecting[0] - t0) if dissecting else None
after = (wall - (dissecting[1] - t0)) if dissecting else None
sys.stderr.write("BENCH " + json.dumps(dict(wall=wall, imported=imported, before_tsharks=before, after_tsharks=after,
                                            cpu_python=me.ru_utime + me.ru_stime,
                                            cpu_children=ch.ru_utime + ch.ru_stime, peaks_kb=peaks)) + "\n")
sys.exit(code)
"""


def timed(cmd, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    return time.perf_counter() - t0


def analyze(pcap: Path, jobs: int, dask: bool = False) -> dict:
    # every run splits what it can, whatever the trace's size (the default splits above 16 MB)
    extra = ["--split-above", "0"] + (["--dask", "local"] if dask else [])
    res = subprocess.run([sys.executable, "-c", DRIVER, "--format", "json", "--fail-on", "never", "--jobs", str(jobs),
                          *extra, str(pcap)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("BENCH ")]
    if not line:
        raise SystemExit("analyze failed: %s" % res.stderr[-2000:])
    return json.loads(line[-1][6:])


def _serial(rs: list) -> dict:
    """Medians of what the tsharks wait for and what waits for them (DRIVER's samples)."""
    def med(key):
        values = [r[key] for r in rs if r.get(key) is not None]
        return round(statistics.median(values), 2) if values else None
    before, after, imported = med("before_tsharks"), med("after_tsharks"), med("imported")
    return dict(imports=imported, before_tsharks=before, after_tsharks=after,
                total=round(before + after, 2) if before is not None and after is not None else None)


def cpu_of(cmd, env) -> tuple:
    """(wall, CPU seconds) of one command."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    after = os.times()
    return time.perf_counter() - t0, (after.children_user - before.children_user) + (
        after.children_system - before.children_system)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--keep", action="store_true", help="reuse bench/out/rsvd_heavy.pcapng if it exists")
    ap.add_argument("--dask", type=int, nargs="*", default=[], metavar="WORKERS",
                    help="also `analyze --dask local --jobs WORKERS --split-above 0` (its cluster's start included)")
    args = ap.parse_args(argv)
    tshark = find_tshark()
    OUT.mkdir(parents=True, exist_ok=True)
    pcap = heavy_trace(args.packets, args.keep)
    env = tshark_env()
    yardstick = [tshark.path, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"]
    export = command(tshark, pcap)
    walls = {k: [] for k in ["tshark", "export"] + ["jobs=%d" % j for j in args.jobs]
             + ["dask=%d" % w for w in args.dask]}
    runs = {j: [] for j in args.jobs}
    for _ in range(args.runs):
        walls["tshark"].append(timed(yardstick, env))
        walls["export"].append(timed(export, env))
        for j in args.jobs:
            r = analyze(pcap, j)
            runs[j].append(r)
            walls["jobs=%d" % j].append(r["wall"])
        for w in args.dask:
            walls["dask=%d" % w].append(analyze(pcap, w, dask=True)["wall"])
    med = {k: statistics.median(v) for k, v in walls.items()}
    # phases, once: the split (its first pass, which the tsharks wait for, and its second, which
    # feeds them as it writes: here into files), the export of the whole and of each shard (CPU seconds)
    t0 = time.perf_counter()
    parts = plan(pcap, 2)
    plan_s = time.perf_counter() - t0
    parts.write([open(s.path, "wb", buffering=1 << 20) for s in parts.shards])
    split_s = time.perf_counter() - t0
    try:
        export_whole = cpu_of(export, env)
        shard_exports = [cpu_of(command(tshark, s.path), env) for s in parts.shards]
        shard_frames = [s.frames for s in parts.shards]
    finally:
        parts.remove()
    per_job = {}
    for j, rs in runs.items():
        peaks = {}
        for r in rs:
            for name, kb in r["peaks_kb"].items():
                kind = name.split("[")[0]
                peaks[kind] = max(peaks.get(kind, 0), kb)
        per_job[j] = dict(
            wall_median_s=round(med["jobs=%d" % j], 2), ratio_to_tshark=round(med["jobs=%d" % j] / med["tshark"], 2),
            cpu_python_median_s=round(statistics.median(r["cpu_python"] for r in rs), 2),
            cpu_children_median_s=round(statistics.median(r["cpu_children"] for r in rs), 2),
            peak_mb={k: round(v / 1024, 1) for k, v in sorted(peaks.items())},
            serial_s=_serial(rs),
            peak_tsharks=max(len([n for n in r["peaks_kb"] if n.startswith("tshark")]) for r in rs))
    split_jobs = [j for j in args.jobs if j > 2]  # --jobs N splits over N-1 tsharks
    python_cpu = per_job[split_jobs[0] if split_jobs else args.jobs[0]]["cpu_python_median_s"]
    rest = max(python_cpu - split_s, 0.0)  # reading, merging and reconstructing the rows
    shard_cpu = sum(c for _, c in shard_exports)
    # More cores: after the split's first pass (one core) N-1 tsharks divide the export's CPU among
    # them while the Python process feeds them (the second pass) and reads their rows as they come,
    # on the Nth core: the slower wins.
    estimate = {n: round(plan_s + max(shard_cpu / (n - 1), python_cpu - plan_s), 1) for n in (4, 8, 16)}
    # Amdahl's law from the measured serial fraction (the split and the Python process, against the
    # tsharks' CPU): the speed-up on n cores were the serial part not overlapped with the tsharks at
    # all (it is: the rows are reconstructed as they come, so `estimate` above is nearer the truth)
    serial = split_s + rest
    amdahl = {n: round((serial + shard_cpu) / (serial + shard_cpu / n), 2) for n in (2, 4, 8, 16)}
    # On this machine: whatever the split, the CPU to spend is tshark's and Python's
    serial_python = per_job[args.jobs[0]]["cpu_python_median_s"]
    floor = (export_whole[1] + serial_python) / (os.cpu_count() or 1)
    doc = dict(packets=args.packets, trace_mb=round(pcap.stat().st_size / 1e6, 1), tshark=tshark.version_text,
               runs=args.runs, cores=os.cpu_count(), loadavg=os.getloadavg(),
               wall_s={k: dict(median=round(med[k], 2), all=[round(x, 2) for x in v]) for k, v in walls.items()},
               jobs=per_job,
               phases=dict(split_s=round(split_s, 2), split_first_pass_s=round(plan_s, 2),
                           export_whole_cpu_s=round(export_whole[1], 2),
                           export_shards_cpu_s=[round(c, 2) for _, c in shard_exports], shard_frames=shard_frames),
               expected_wall_s_by_cores=estimate,
               serial_fraction=round(serial / (serial + shard_cpu), 3), amdahl_speedup_by_cores=amdahl,
               cpu_floor_here=dict(seconds=round(floor, 2), ratio_to_tshark=round(floor / med["tshark"], 2),
                                   why="(export CPU %.1f s + Python CPU %.1f s) / %d cores" % (
                                       export_whole[1], serial_python, os.cpu_count() or 1)),
               bound="the split's first pass (%.1f s) then the Python process: %.1f s of CPU feeding the tsharks, "
                     "reading, merging and reconstructing every row, on one core, against %.1f s of tshark CPU shared "
                     "by the cores" % (plan_s, python_cpu - plan_s, shard_cpu))
    (OUT / "scale.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("%d packets (%.0f MB), tshark %s, %d alternated runs, %d cores" % (
        args.packets, doc["trace_mb"], tshark.version_text, args.runs, os.cpu_count()))
    for k in walls:
        print("  %-8s median %6.2f s  %.2fx tshark" % (k, med[k], med[k] / med["tshark"]))
    for j, d in per_job.items():
        print("  --jobs %d: python CPU %.1f s, children CPU %.1f s, peaks MB %s" % (
            j, d["cpu_python_median_s"], d["cpu_children_median_s"], d["peak_mb"]))
    print("  split %.2f s (first pass %.2f s); export CPU whole %.1f s, shards %s s" % (
        split_s, plan_s, export_whole[1], ", ".join("%.1f" % c for _, c in shard_exports)))
    for j, d in per_job.items():
        ser = d["serial_s"]
        if ser["total"] is not None:
            print("  --jobs %d serial part: %.2f s before the tsharks (imports %.2f s), %.2f s after them: %.2f s, "
                  "%.0f%% of tshark alone" % (j, ser["before_tsharks"], ser["imports"], ser["after_tsharks"],
                                              ser["total"], 100 * ser["total"] / med["tshark"]))
    print("  expected wall by cores: %s (bound: %s)" % (estimate, doc["bound"]))
    print("  serial fraction %.2f: Amdahl's speed-up by cores, no overlap: %s" % (doc["serial_fraction"], amdahl))
    print("  the floor here, whatever the split: %s = %.1f s, %.2fx tshark" % (
        doc["cpu_floor_here"]["why"], floor, floor / med["tshark"]))
    return 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "bench/scale.py"))
