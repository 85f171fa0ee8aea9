"""How fast `analyze` is, and how much memory its Python process needs.

    python bench/analyze_throughput.py [--packets 200000] [--runs 3] [--keep]

Builds (or, with --keep, reuses) the RSVD-heavy trace of bench/lua_overhead.py
(four initiators with shared-disk opens, SCSI READ/WRITE of 4 KiB, INQUIRY,
GET_FILE_INFO, CHECK_CONNECTION_STATUS), then times, median of --runs:

- tshark:       `tshark -r X -T fields -e frame.number` (dissection only, no plugins): the goal's yardstick;
- tshark+plugins: the same with the generated plugins loaded;
- export:       the tshark command `analyze` runs (plugins, export preference, its fields);
- analyze:      `python -m analyzer --format json X`, end to end;
- pyshark:      pyshark's FileCapture (XML) over the first --pyshark-packets packets,
                for the rate the batch path avoids.

The analyzer's peak RSS is its own (VmHWM of the analyzing process; tshark is a separate
process). Goals (issue 5): analyze <= 1.5x tshark, peak RSS <= 150 MB.
Writes bench/out/analyze_throughput.json.
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from analyzer.capture.source import command, find_tshark, plugin_args  # noqa: E402
from lua_overhead import OUT, heavy_trace  # noqa: E402

# VmHWM, not ru_maxrss: ru_maxrss keeps the high-water mark of the forked parent's pages
# from before exec (a bench that just built a 150 MB trace would report that).
DRIVER = """
import sys, time
t0 = time.perf_counter()
from analyzer.output.cli import main
code = main(sys.argv[1:])
hwm = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
sys.stderr.write("BENCH %.3f %s\\n" % (time.perf_counter() - t0, hwm))
sys.exit(code)
"""


def timed(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="reuse bench/out/rsvd_heavy.pcapng if it exists")
    ap.add_argument("--pyshark-packets", type=int, default=2000)
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the analyzer's tshark command without plugins, with an empty Lua "
                         "postdissector, and with the msrsvd plugin alone")
    args = ap.parse_args(argv)
    tshark = find_tshark()
    OUT.mkdir(parents=True, exist_ok=True)
    pcap = heavy_trace(args.packets, args.keep)
    packets = subprocess.run([tshark.path, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True).stdout.count("\n")
    runs = {"tshark": [], "tshark+plugins": [], "export": [], "analyze": []}
    export = command(tshark, pcap)
    lua = [a for a in plugin_args() if a != "-X"]
    if args.breakdown:
        empty = OUT / "empty_postdissector.lua"
        empty.write_text('local p = Proto("emptypost", "empty")\nfunction p.dissector() end\nregister_postdissector(p)\n')
        plain = []  # the analyzer's command without plugins, their preferences, or their fields
        skip = False
        for a in export:
            if skip:
                skip = False
            elif a == "-X" or a in lua:
                continue
            elif a == "-o":
                skip = True
            elif a.startswith(("msrsvd.", "clusprep.")):
                plain.pop()  # the "-e" before it
            else:
                plain.append(a)
        head = plain[:4]  # tshark -n -r FILE
        variants = {
            "fields, no plugins": plain,
            "fields, one empty postdissector": head + ["-X", "lua_script:%s" % empty] + plain[4:],
            "fields, msrsvd export only": head + ["-X", next(a for a in lua if "msrsvd" in a), "-o",
                                                  "msrsvd.export:TRUE"] + plain[4:],
        }
        for k in variants:
            runs[k] = []
    rss = []
    for _ in range(args.runs):
        if args.breakdown:
            for k, cmd in variants.items():
                runs[k].append(timed(cmd))
        runs["tshark"].append(timed([tshark.path, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"]))
        runs["tshark+plugins"].append(timed([tshark.path, "-n", "-r", str(pcap), *plugin_args(), "-T", "fields",
                                             "-e", "frame.number"]))
        runs["export"].append(timed(export))
        res = subprocess.run([sys.executable, "-c", DRIVER, "--format", "json", "--fail-on", "never", str(pcap)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = [ln for ln in res.stderr.splitlines() if ln.startswith("BENCH ")][-1].split()
        runs["analyze"].append(float(line[1]))
        rss.append(int(line[2]) / 1024.0)
    med = {k: statistics.median(v) for k, v in runs.items()}
    # pyshark's default (XML) path, for the rate the batch path avoids
    import pyshark

    t0 = time.perf_counter()
    cap = pyshark.FileCapture(str(pcap), tshark_path=tshark.path, custom_parameters=plugin_args())
    n = 0
    for _ in cap:
        n += 1
        if n >= args.pyshark_packets:
            break
    cap.close()
    pyshark_rate = n / (time.perf_counter() - t0)
    result = {
        "packets": packets, "tshark": tshark.version_text, "runs": args.runs,
        "seconds": {k: {"median": med[k], "all": v} for k, v in runs.items()},
        "ratios": {"analyze/tshark": med["analyze"] / med["tshark"],
                   "analyze/tshark+plugins": med["analyze"] / med["tshark+plugins"],
                   "export/tshark": med["export"] / med["tshark"]},
        "analyze_packets_per_second": packets / med["analyze"],
        "pyshark_xml_packets_per_second": pyshark_rate,
        "analyzer_peak_rss_mb": max(rss),
    }
    for k, v in runs.items():
        print("%-32s median %6.2f s  (%s)" % (k, med[k], ", ".join("%.2f" % x for x in v)))
    print("analyze / tshark         %.2f   (goal <= 1.5)" % result["ratios"]["analyze/tshark"])
    print("analyze / tshark+plugins %.2f" % result["ratios"]["analyze/tshark+plugins"])
    print("analyze: %.0f packets/s; pyshark XML: %.0f packets/s" % (result["analyze_packets_per_second"], pyshark_rate))
    print("analyzer peak RSS %.1f MB   (goal <= 150)" % result["analyzer_peak_rss_mb"])
    (OUT / "analyze_throughput.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "bench/analyze_throughput.py"))
