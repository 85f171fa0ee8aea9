"""What the C target saves: the same decoders, compiled against the Lua plugin, on the same bytes.

    python bench/c_target.py [--datagrams 200000] [--runs 5]

The C target renders the port binding only so far, so this times MS-RSVD's own structures
carried over UDP (tests/rsvd_on_udp.py): every sample's tunnel requests and open contexts,
as Wireshark's SMB2 finds them, repeated to --datagrams datagrams. tshark runs as `nobody`
(root loads no personal plugin) with a HOME of its own, in three configurations:

- baseline: no plugin (Ethernet, IP and UDP dissection only);
- lua:      the generated Lua plugin (-X lua_script:);
- c:        the generated C plugin, compiled with -O2 (python -m dissectors build's flags);

each in two output modes, as bench/lua_overhead.py's: `fields` (-T fields -e frame.number:
dissection without printing a tree) and `tree` (-V to /dev/null: every item built and printed). Runs alternate between configurations so a
busy machine slows all alike; prints medians, each plugin's cost over the baseline and the
ratio of those costs; writes bench/out/c_target.json.

With --smb2 it times msrsvd decoding in full over SMB2 on that 200,000-packet trace: Wireshark's
built-in rsvd, and the Lua and compiled msrsvd plugins (the built-in disabled), both output modes.

With --analyze it times, instead, the tshark command `analyze` runs (every field it reads) over
the 200,000-packet RSVD-heavy trace (bench/lua_overhead.py's, --keep reuses it), with the Lua
plugins, with msrsvd's compiled export plugin (python -m dissectors build --export-only), and
with both compiled export plugins (no Lua), beside plain tshark (-T fields -e frame.number), as
`nobody` in alternation.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / "out"
MODES = {"fields": ["-T", "fields", "-e", "frame.number"], "tree": ["-V"]}


def as_nobody(home: Path, args) -> list:
    cmd = ["env", "-i", "PATH=" + os.environ["PATH"], "HOME=%s" % home, "XDG_CONFIG_HOME=%s/.config" % home,
           "LANG=C.UTF-8", "tshark", *args]
    return (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []) + cmd


def analyze_command(runs: int, packets: int, keep: bool) -> int:
    """analyze's tshark with the Lua plugins, with msrsvd's compiled export plugin, and with both
    compiled export plugins (no Lua)."""
    from analyzer.capture.source import command, find_tshark
    from dissectors import build
    from dissectors.definitions import csvp, rsvd
    from lua_overhead import heavy_trace

    tshark = find_tshark()
    work = Path(tempfile.mkdtemp(prefix="c-target-bench-", dir="/tmp"))
    try:
        work.chmod(0o755)
        sos = build.build([rsvd.PROTOCOL, csvp.PROTOCOL], dest=work / "plugin", export_only=True)
        for home, names in (("c", ("msrsvd.so",)), ("c2", ("msrsvd.so", "clusprep.so"))):
            plugins = build.personal_plugin_dir(work / home)
            plugins.mkdir(parents=True)
            for so in sos:
                if so.name in names:
                    shutil.copy(so, plugins / so.name)
        (work / "empty").mkdir()
        trace = work / "rsvd_heavy.pcapng"
        shutil.copy(heavy_trace(packets, keep), trace)
        for p_ in [work, *work.rglob("*")]:
            p_.chmod(0o755 if p_.is_dir() else 0o644)
        lua = command(tshark, trace)
        at = lua.index("lua_script:%s" % (ROOT / "dissectors" / "lua" / "msrsvd.lua"))
        no_lua = [a for i, a in enumerate(lua) if not a.startswith("lua_script:") and
                  not (a == "-X" and i + 1 < len(lua) and lua[i + 1].startswith("lua_script:"))]
        configs = {"plain": (work / "empty", [tshark.path, "-n", "-r", str(trace), "-T", "fields", "-e", "frame.number"]),
                   "lua": (work / "empty", lua), "c": (work / "c", lua[:at - 1] + lua[at + 1:]), "c2": (work / "c2", no_lua)}
        times = {c: [] for c in configs}
        for _ in range(runs):
            for name, (home, cmd) in configs.items():
                t0 = time.perf_counter()
                res = subprocess.run(as_nobody(home, cmd[1:]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
                if res.returncode != 0:
                    raise SystemExit("tshark failed (%s): %s" % (name, res.stderr[-2000:]))
                times[name].append(time.perf_counter() - t0)
        med = {c: statistics.median(v) for c, v in times.items()}
        print("analyze's tshark over %s, median of %d: plain %.2f s; the Lua plugins %.2f s (%.2fx plain); msrsvd's "
              "compiled export %.2f s (%.2fx plain, %.2fx the Lua); both compiled exports, no Lua, %.2f s (%.2fx plain, "
              "%.2fx the Lua)" % (trace.name, runs, med["plain"], med["lua"], med["lua"] / med["plain"], med["c"],
                                  med["c"] / med["plain"], med["c"] / med["lua"], med["c2"], med["c2"] / med["plain"],
                                  med["c2"] / med["lua"]))
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "c_target_analyze.json").write_text(json.dumps(dict(runs=runs, seconds=times, medians=med), indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def smb2_plugin(runs: int, packets: int, keep: bool) -> int:
    """msrsvd decoding in full over SMB2 on the RSVD-heavy trace: Wireshark's built-in rsvd, the
    Lua plugin and the compiled one (each of ours with the built-in disabled, as install does)."""
    from dissectors import build
    from dissectors.definitions import rsvd
    from lua_overhead import heavy_trace

    work = Path(tempfile.mkdtemp(prefix="c-target-bench-", dir="/tmp"))
    try:
        work.chmod(0o755)
        build.build([rsvd.PROTOCOL], dest=build.personal_plugin_dir(work / "c"))
        (work / "empty").mkdir()
        trace = work / "rsvd_heavy.pcapng"
        shutil.copy(heavy_trace(packets, keep), trace)
        shutil.copy(ROOT / "dissectors" / "lua" / "msrsvd.lua", work / "msrsvd.lua")
        for p_ in [work, *work.rglob("*")]:
            p_.chmod(0o755 if p_.is_dir() else 0o644)
        base = ["-n", "-r", str(trace)]
        ours = ["--disable-protocol", "rsvd"]
        configs = {"builtin": (work / "empty", base), "lua": (work / "empty", base + ours + ["-X", "lua_script:%s" % (work / "msrsvd.lua")]),
                   "c": (work / "c", base + ours)}
        times = {"%s/%s" % (c, m): [] for c in configs for m in MODES}
        for _ in range(runs):
            for mode, margs in MODES.items():
                for name, (home, args) in configs.items():
                    t0 = time.perf_counter()
                    res = subprocess.run(as_nobody(home, args + margs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True)
                    if res.returncode != 0:
                        raise SystemExit("tshark failed (%s): %s" % (name, res.stderr[-2000:]))
                    times["%s/%s" % (name, mode)].append(time.perf_counter() - t0)
        med = {c: statistics.median(v) for c, v in times.items()}
        for mode in MODES:
            b = med["builtin/" + mode]
            print("%s, %s, median of %d: built-in rsvd %.2f s; msrsvd in Lua %.2f s (%.2fx); msrsvd in C %.2f s "
                  "(%.2fx the built-in, %.2fx the Lua)" % (trace.name, mode, runs, b, med["lua/" + mode],
                                                           med["lua/" + mode] / b, med["c/" + mode], med["c/" + mode] / b,
                                                           med["c/" + mode] / med["lua/" + mode]))
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "c_target_smb2.json").write_text(json.dumps(dict(runs=runs, seconds=times, medians=med), indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datagrams", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--analyze", action="store_true", help="analyze's tshark command, Lua against compiled export")
    ap.add_argument("--smb2", action="store_true",
                    help="msrsvd over SMB2 decoding in full: built-in rsvd, Lua and C, on the RSVD-heavy trace")
    ap.add_argument("--packets", type=int, default=200_000, help="with --analyze or --smb2: the trace's size")
    ap.add_argument("--keep", action="store_true", help="with --analyze or --smb2: reuse bench/out/rsvd_heavy.pcapng")
    args = ap.parse_args(argv)
    if args.analyze:
        return analyze_command(args.runs, args.packets, args.keep)
    if args.smb2:
        return smb2_plugin(args.runs, args.packets, args.keep)

    import rsvd_on_udp
    from dissectors import build
    from dissectors.targets.c import render_c
    from dissectors.targets.lua import render_lua
    from test_c_target import _capture, _raw
    from samples import KEYS, SAMPLES_DIR

    work = Path(tempfile.mkdtemp(prefix="c-target-bench-", dir="/tmp"))
    try:
        work.chmod(0o755)
        p = rsvd_on_udp.PROTOCOL
        plugin = build.compile_plugin(render_c(p), p.name, build.personal_plugin_dir(work / "c"))
        (work / "empty").mkdir()
        lua = work / "rsvdudp.lua"
        lua.write_text(render_lua(p))
        found = []
        for pcap in sorted(SAMPLES_DIR.glob("*.pcapng")):
            if pcap.stem in KEYS:
                continue
            res = subprocess.run(["tshark", "-n", "-r", str(pcap), "-Y", "smb2.ioctl.function == 0x00090304 || "
                                  "smb2.cmd == 5", "-T", "json", "-x", "--no-duplicate-keys", "-J", "smb2"],
                                 capture_output=True, text=True)
            _raw(json.loads(res.stdout or "[]"), found)
        datagrams = [found[i % len(found)] for i in range(args.datagrams)]
        trace = _capture(work / "rsvd_udp.pcapng", datagrams)
        for p_ in [work, *work.rglob("*")]:
            p_.chmod(0o755 if p_.is_dir() else 0o644)
        configs = {"baseline": (work / "empty", []), "lua": (work / "empty", ["-X", "lua_script:%s" % lua]),
                   "c": (work / "c", [])}
        for name in ("lua", "c"):  # each plugin really decodes the trace
            home, extra = configs[name]
            res = subprocess.run(as_nobody(home, ["-n", "-r", str(trace), "-c", "50", *extra, "-V"]),
                                 capture_output=True, text=True)
            if res.stdout.count(p.title) != 50:
                raise SystemExit("%s: the plugin did not decode the trace: %s" % (name, res.stderr[-2000:]))
        times = {(c, m): [] for c in configs for m in MODES}
        for _ in range(args.runs):
            for mode, margs in MODES.items():
                for name, (home, extra) in configs.items():
                    t0 = time.perf_counter()
                    res = subprocess.run(as_nobody(home, ["-n", "-r", str(trace), *extra, *margs]),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    if res.returncode != 0:
                        raise SystemExit("tshark failed (%s/%s): %s" % (name, mode, res.stderr[-2000:]))
                    times[(name, mode)].append(time.perf_counter() - t0)
        version = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        report = dict(datagrams=args.datagrams, distinct_buffers=len(found), runs=args.runs, tshark=version,
                      plugin=str(plugin.name), seconds={}, ratios={})
        print("%d datagrams (%d distinct buffers from the samples), %s, median of %d" % (
            args.datagrams, len(found), version, args.runs))
        for mode in MODES:
            med = {c: statistics.median(times[(c, mode)]) for c in configs}
            lua_cost, c_cost = med["lua"] - med["baseline"], med["c"] - med["baseline"]
            report["seconds"][mode] = {c: dict(median=med[c], all=times[(c, mode)]) for c in configs}
            report["ratios"][mode] = dict(lua_over_baseline=med["lua"] / med["baseline"],
                                          c_over_baseline=med["c"] / med["baseline"],
                                          lua_cost_over_c_cost=lua_cost / c_cost if c_cost > 0 else None)
            print("%-6s baseline %.2f s, lua %.2f s (%.2fx), c %.2f s (%.2fx); the plugin's own cost: lua %.2f s, "
                  "c %.2f s (%s)" % (mode, med["baseline"], med["lua"], med["lua"] / med["baseline"], med["c"],
                                     med["c"] / med["baseline"], lua_cost, c_cost,
                                     ("%.1fx" % (lua_cost / c_cost)) if c_cost > 0 else "c within noise"))
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "c_target.json").write_text(json.dumps(report, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
