"""What the two plugins cost on each tshark we support, on an RSVD-heavy and a ClusPrep-heavy trace.

    python bench/plugin_cost_by_version.py [--quick] [--runs 3] [--rsvd-packets N]
                                           [--clusprep-packets N] [--keep] [--versions 4.0,4.4,4.6]

Traces (bench/out/, rebuilt unless --keep finds one of the same size):
- RSVD-heavy: bench/lua_overhead.py's builder (four initiators with shared-disk opens, SCSI
  READ/WRITE of 4 KiB split over TCP segments, INQUIRY, GET_FILE_INFO, CHECK_CONNECTION_STATUS);
- ClusPrep-heavy: the storage-validation and network-validation conversations of
  samples/csvp_scenarios.py, built once each and then repeated, one TCP connection per
  repetition (its own client port), eight connections at a time, their frames interleaved.

For each tshark found (tests/tsharks.py: the system 4.0, the trixie 4.4 and sid 4.6 chroots), on
each trace, `tshark -n -r TRACE -T fields -e frame.number`:
- yardstick: no plugin;
- plugins:   `-X lua_script:msrsvd.lua -X lua_script:clusprep.lua`;
- full:      the same with `-Y "msrsvd || clusprep"` (a display filter on the plugins' own
             protocols: tshark builds the tree for it and keeps only the plugins' packets);
and on the ClusPrep trace with 4.4 and later also both plugin variants with
`-X lua_script2:postdissector` (ClusPrep's 4.0-style postdissector path instead of its native
DCE/RPC sub-dissectors).

After one uncounted warm-up run of each yardstick, every command is run --runs times,
interleaved: round by round, and in a round a version's commands on one trace run back to back
(their order rotated each round), so a ratio is taken pair by pair (each plugin run over the
yardstick run of its own round), then the median over rounds. Chroot tsharks are started with
`chroot --userspec=wstest:wstest ... env -i ... tshark`, the traces and a snapshot of the plugins
staged inside the chroot once; the system tshark with the same `env -i` and an empty HOME (so no
personal plugin or profile is loaded), and as root. The start-up each way costs is measured too
(`tshark -v`, also through tests/wireshark/chroot_tshark.py) and written to the JSON.

Prints a Markdown table (median wall seconds, ratios to the yardstick of the same version and
trace) and writes bench/out/plugin_cost_by_version.json (every run's wall and CPU seconds).
--quick: small traces, one run, no warm-up, results in plugin_cost_by_version.quick.json: a smoke
test that everything loads and runs (its figures are mostly start-up).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import tsharks  # noqa: E402  (tests/tsharks.py: which versions are here, and why not)
from dissectors import plugin_paths  # noqa: E402
from lua_overhead import OUT, build_trace as build_rsvd_trace  # noqa: E402
from samples import csvp_scenarios  # noqa: E402
from samples.network import write_pcapng  # noqa: E402

FIELDS = ["-T", "fields", "-e", "frame.number"]
FILTER = "msrsvd || clusprep"
ENV = ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
USER = "wstest"  # the chroots' unprivileged user (tests/wireshark/chroot_tshark.py)


# -- the ClusPrep-heavy trace ---------------------------------------------------------------------

def _frames(pcapng: bytes) -> List[bytes]:
    """The packets of a pcapng written by samples.network.write_pcapng (SHB, one IDB, EPBs)."""
    off = 28 + 20
    out = []
    while off < len(pcapng):
        btype, length = struct.unpack_from("<II", pcapng, off)
        if btype != 6:
            raise ValueError("unexpected pcapng block type %d" % btype)
        captured = struct.unpack_from("<I", pcapng, off + 20)[0]
        out.append(pcapng[off + 28:off + 28 + captured])
        off += length
    return out


def _csum_replace(csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: a ones'-complement checksum after one 16-bit word changes."""
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


TCP_AT = 14 + 20  # Ethernet + IPv4 without options, as samples.network writes them


def _with_client_port(frames: Sequence[bytes], port: int) -> List[bytes]:
    """The conversation moved to another client port (TCP checksum kept valid)."""
    old = struct.unpack_from("!H", frames[0], TCP_AT)[0]  # the first frame is the client's SYN
    out = []
    for f in frames:
        sp, dp = struct.unpack_from("!HH", f, TCP_AT)
        csum = struct.unpack_from("!H", f, TCP_AT + 16)[0]
        if sp == old:
            sp, csum = port, _csum_replace(csum, old, port)
        if dp == old:
            dp, csum = port, _csum_replace(csum, old, port)
        out.append(f[:TCP_AT] + struct.pack("!HH", sp, dp) + f[TCP_AT + 4:TCP_AT + 16] + struct.pack("!H", csum)
                   + f[TCP_AT + 18:])
    return out


def build_clusprep_trace(packets: int, lanes: int = 8) -> Tuple[bytes, dict]:
    """Storage and network validation conversations repeated until `packets` frames, each
    repetition on its own TCP connection, `lanes` connections interleaved frame by frame."""
    kinds = [("storage", _frames(csvp_scenarios.storage())), ("network", _frames(csvp_scenarios.network()))]
    lane_frames: List[List[bytes]] = [[] for _ in range(lanes)]
    total, reps, counts = 0, 0, {k: 0 for k, _ in kinds}
    while total < packets:
        name, frames = kinds[reps % len(kinds)]
        moved = _with_client_port(frames, 20000 + reps)
        lane_frames[reps % lanes].extend(moved)
        total += len(moved)
        counts[name] += 1
        reps += 1
    merged = []
    longest = max(len(f) for f in lane_frames)
    for i in range(longest):
        for lf in lane_frames:
            if i < len(lf):
                merged.append(lf[i])
    t0 = 1_763_700_000_000_000
    return write_pcapng([(t0 + 40 * i, f) for i, f in enumerate(merged)]), {
        "connections": reps, "conversations": counts, "interleaved_connections": lanes}


# -- tsharks and how to start them ------------------------------------------------------------------

@dataclass
class Runner:
    series: str
    version: str
    lua: str
    prefix: List[str]  # the command up to and including `tshark`
    paths: Dict[str, str]  # name -> path as this tshark sees it
    stage: Optional[Path] = None  # what to remove at the end
    native_possible: bool = False  # ClusPrep registers in dcerpc.uuid (4.4+)

    def argv(self, args: Sequence[str]) -> List[str]:
        return self.prefix + list(args)


def _stage_file(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
        if not os.stat(dest).st_mode & 0o004:
            raise PermissionError
    except OSError:
        if dest.exists():
            dest.unlink()
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o644)


def _chroot_uid(root: Path) -> Tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == USER:
            return int(parts[2]), int(parts[3])
    raise SystemExit("no user %s in %s/etc/passwd" % (USER, root))


def make_runners(files: Dict[str, Path], wanted: Sequence[str]) -> Tuple[List[Runner], Dict[str, str]]:
    runners, skipped = [], {}
    for series, found, why in tsharks.found():
        if series not in wanted:
            skipped[series] = "not asked for (--versions)"
            continue
        if found is None:
            skipped[series] = why
            continue
        suite = tsharks.SERIES[series]
        if suite is None:  # the system tshark: same env -i, an empty HOME of its own
            stage = Path(tempfile.mkdtemp(prefix="plugin-cost-"))
            (stage / "home").mkdir()
            paths = {}
            for name, src in files.items():
                _stage_file(src, stage / src.name)
                paths[name] = str(stage / src.name)
            prefix = ENV + ["HOME=%s" % (stage / "home"), found.argv[0]]
        else:
            root = tsharks.CHROOTS / suite
            stage = Path(tempfile.mkdtemp(prefix="plugin-cost-", dir=root / "tmp"))
            os.chmod(stage, 0o755)
            inside = "/tmp/" + stage.name
            home = stage / "home"
            home.mkdir()
            os.chown(home, *_chroot_uid(root))
            paths = {}
            for name, src in files.items():
                _stage_file(src, stage / src.name)
                paths[name] = "%s/%s" % (inside, src.name)
            prefix = ["chroot", "--userspec=%s:%s" % (USER, USER), str(root)] + ENV + \
                     ["HOME=%s/home" % inside, "tshark"]
        runners.append(Runner(series, found.version, found.lua, prefix, paths, stage, found.at_least("4.4")))
    return runners, skipped


# -- timing ---------------------------------------------------------------------------------------

@dataclass
class Case:
    key: str  # series/trace/config
    series: str
    trace: str
    config: str  # yardstick, plugins, full, plugins-post, full-post
    argv: List[str]
    wall: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)
    lines: List[int] = field(default_factory=list)


def configs(r: Runner, trace: str) -> Dict[str, List[str]]:
    lua = ["-X", "lua_script:%s" % r.paths["msrsvd.lua"], "-X", "lua_script:%s" % r.paths["clusprep.lua"]]
    base = ["-n", "-r", r.paths[trace]]
    out = {
        "yardstick": base + FIELDS,
        "plugins": base + lua + FIELDS,
        "full": base + lua + ["-Y", FILTER] + FIELDS,
    }
    if trace == "clusprep" and r.native_possible:
        post = lua + ["-X", "lua_script2:postdissector"]
        out["plugins-post"] = base + post + FIELDS
        out["full-post"] = base + post + ["-Y", FILTER] + FIELDS
    return out


BAD = ("Lua Error", "lua_error", "Error during loading", "was loaded first", "[string", "attempt to ")


def run_once(argv: List[str], scratch: Path) -> Tuple[float, float, int, str]:
    """Wall and CPU (user+system of the child) seconds, lines written, stderr."""
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    if proc.returncode != 0 or any(b in stderr for b in BAD):
        raise SystemExit("tshark failed (exit %d): %s\n%s" % (proc.returncode, " ".join(argv), stderr[-3000:]))
    with open(out_path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return wall, ru.ru_utime + ru.ru_stime, lines, stderr


def startup(runners: List[Runner], scratch: Path, runs: int) -> dict:
    """What starting a tshark costs each way (tshark -v), including chroot_tshark.py's."""
    out = {}
    for r in runners:
        ways = {"direct": r.argv(["-v"])}
        if tsharks.SERIES[r.series]:
            ways["chroot_tshark.py"] = [sys.executable, str(tsharks.CHROOT_TSHARK), tsharks.SERIES[r.series], "-v"]
        for way, argv in ways.items():
            t = [run_once(argv, scratch)[0] for _ in range(runs)]
            out["%s %s" % (r.series, way)] = statistics.median(t)
    return out


def median(xs: Sequence[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def paired(a: Case, b: Case) -> float:
    return statistics.median([x / y for x, y in zip(a.wall, b.wall)])


# -- the report -----------------------------------------------------------------------------------

def table(results: dict) -> str:
    head = ("| tshark | trace | ClusPrep path | yardstick s | plugins s | ratio | with `-Y` (full decode) s | ratio |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = [head]
    for row in results["rows"]:
        rows.append("| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            row["tshark"], row["trace_label"], row["path"], row["yardstick_s"], row["plugins_s"],
            row["plugins_ratio"], row["full_s"], row["full_ratio"]))
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small traces, one run, no warm-up (a smoke test)")
    ap.add_argument("--runs", type=int, help="runs of each command (default 3; --quick: 1)")
    ap.add_argument("--rsvd-packets", type=int, help="default 100000 (--quick: 4000)")
    ap.add_argument("--clusprep-packets", type=int, help="default 50000 (--quick: 3000)")
    ap.add_argument("--versions", default="4.0,4.4,4.6", help="comma-separated tshark series")
    ap.add_argument("--keep", action="store_true", help="reuse bench/out traces of the same size if present")
    ap.add_argument("--json", type=Path, help="where to write the results (default bench/out/"
                    "plugin_cost_by_version.json; --quick: plugin_cost_by_version.quick.json)")
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    if args.json is None:
        args.json = OUT / ("plugin_cost_by_version%s.json" % (".quick" if args.quick else ""))
    sizes = {"rsvd": args.rsvd_packets or (4000 if args.quick else 100_000),
             "clusprep": args.clusprep_packets or (3000 if args.quick else 50_000)}
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)

    # traces
    traces: Dict[str, Path] = {}
    trace_info: Dict[str, dict] = {}
    for name, n in sizes.items():
        path = OUT / ("%s_heavy_%d.pcapng" % (name, n))
        info_path = path.with_suffix(".json")
        if args.keep and path.exists() and info_path.exists():
            info = json.loads(info_path.read_text())
        else:
            t0 = time.perf_counter()
            if name == "rsvd":
                data, info = build_rsvd_trace(n), {"builder": "bench/lua_overhead.py build_trace"}
            else:
                data, info = build_clusprep_trace(n)
                info["builder"] = "bench/plugin_cost_by_version.py build_clusprep_trace"
            path.write_bytes(data)
            info_path.write_text(json.dumps(info, indent=2))
            print("built %s (%.1f MB) in %.1f s" % (path.name, len(data) / 1e6, time.perf_counter() - t0))
        traces[name] = path
        trace_info[name] = info

    # a snapshot of the plugins, so every version runs the same bytes even if the tree changes meanwhile
    snap = Path(tempfile.mkdtemp(prefix="plugin-cost-snap-"))
    files = dict(traces)
    builds = {}
    for p in plugin_paths.lua_paths():
        if not p.exists():
            raise SystemExit("%s is missing: run python -m dissectors" % p)
        shutil.copyfile(p, snap / p.name)
        files[p.name] = snap / p.name
        text = p.read_text()
        builds[p.stem] = text.split('local BUILD = "', 1)[1].split('"', 1)[0] if 'local BUILD = "' in text else None
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "dissectors/lua"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()

    wanted = [v.strip() for v in args.versions.split(",") if v.strip()]
    runners, skipped = make_runners(files, wanted)
    scratch = Path(tempfile.mkdtemp(prefix="plugin-cost-out-"))
    for series, why in skipped.items():
        print("skipping tshark %s: %s" % (series, why))
    if not runners:
        raise SystemExit("no tshark to measure")
    try:
        for r in runners:
            print("tshark %s (%s): %s" % (r.version, r.lua, " ".join(r.prefix)))
        cases: Dict[str, Case] = {}
        order: List[List[Case]] = []  # groups that run back to back: one version, one trace
        for trace in traces:
            for r in runners:
                group = []
                for config, a in configs(r, trace).items():
                    c = Case("%s/%s/%s" % (r.series, trace, config), r.series, trace, config, r.argv(a))
                    cases[c.key] = c
                    group.append(c)
                order.append(group)

        boot = {}
        if not args.quick:
            boot = startup(runners, scratch, 3)
            print("start-up (tshark -v, median of 3): " + ", ".join("%s %.3f s" % kv for kv in boot.items()))
            for group in order:  # warm-up, not counted: each version's yardstick on each trace (libraries, page cache)
                run_once(group[0].argv, scratch)
            print("warm-up done at %.0f s" % (time.perf_counter() - started))
        load_before = os.getloadavg()
        for rnd in range(runs):
            for group in order:
                # rotate the order in the group each round; the yardstick stays in the pairs' round
                k = rnd % len(group)
                for c in group[k:] + group[:k]:
                    wall, cpu, lines, _ = run_once(c.argv, scratch)
                    c.wall.append(wall)
                    c.cpu.append(cpu)
                    c.lines.append(lines)
            print("round %d/%d done at %.0f s" % (rnd + 1, runs, time.perf_counter() - started))
        load_after = os.getloadavg()

        # sanity: every plain run prints every packet; a filtered run the same set in each path
        packets = {}
        for c in cases.values():
            if len(set(c.lines)) != 1:
                raise SystemExit("%s printed different line counts: %s" % (c.key, c.lines))
        for trace in traces:
            counts = {c.lines[0] for c in cases.values() if c.trace == trace and not c.config.startswith("full")}
            if len(counts) != 1:
                raise SystemExit("%s: runs disagree on the packet count: %s" % (trace, counts))
            packets[trace] = counts.pop()
        matched = {c.key: c.lines[0] for c in cases.values() if c.config.startswith("full")}
        notes = []
        for trace in traces:
            m = {k: v for k, v in matched.items() if k.split("/")[1] == trace}
            if len(set(m.values())) != 1:
                notes.append("%s: -Y %r matched different frame counts: %s" % (trace, FILTER, m))
            if not any(m.values()):
                notes.append("%s: -Y %r matched nothing" % (trace, FILTER))

        labels = {"rsvd": "RSVD-heavy, %s packets" % format(packets["rsvd"], ","),
                  "clusprep": "ClusPrep-heavy, %s packets" % format(packets["clusprep"], ",")}
        rows = []
        for trace in traces:
            for r in runners:
                y = cases["%s/%s/yardstick" % (r.series, trace)]
                variants = [("", "native" if r.native_possible else "postdissector")]
                if trace == "clusprep" and r.native_possible:
                    variants.append(("-post", "postdissector (forced)"))
                for suffix, path in variants:
                    p = cases["%s/%s/plugins%s" % (r.series, trace, suffix)]
                    f = cases["%s/%s/full%s" % (r.series, trace, suffix)]
                    rows.append({
                        "tshark": r.version, "series": r.series, "trace": trace, "trace_label": labels[trace],
                        "path": path if trace == "clusprep" else path + " (no ClusPrep traffic)",
                        "yardstick_s": median(y.wall), "plugins_s": median(p.wall), "full_s": median(f.wall),
                        "plugins_ratio": paired(p, y), "full_ratio": paired(f, y),
                        "plugins_ratio_of_medians": median(p.wall) / median(y.wall),
                        "full_ratio_of_medians": median(f.wall) / median(y.wall),
                        "cpu_yardstick_s": median(y.cpu), "cpu_plugins_s": median(p.cpu), "cpu_full_s": median(f.cpu),
                        "cpu_plugins_ratio": median(p.cpu) / median(y.cpu),
                        "cpu_full_ratio": median(f.cpu) / median(y.cpu),
                        "full_matched_frames": f.lines[0],
                    })
        post_vs_native = {}
        for r in runners:
            if r.native_possible and "%s/clusprep/plugins-post" % r.series in cases:
                for cfg in ("plugins", "full"):
                    post = cases["%s/clusprep/%s-post" % (r.series, cfg)]
                    nat = cases["%s/clusprep/%s" % (r.series, cfg)]
                    post_vs_native["%s %s" % (r.series, cfg)] = paired(post, nat)
        elapsed = time.perf_counter() - started
        results = {
            "what": "tshark -n -r TRACE -T fields -e frame.number; plugins: -X lua_script: msrsvd.lua, clusprep.lua;"
                    " full: plus -Y %r; *-post: plus -X lua_script2:postdissector" % FILTER,
            "runs": runs, "quick": args.quick, "interleaved": True,
            "ratio": "median over rounds of (run / the yardstick run of the same round, version and trace)",
            "seconds": "wall, median of runs; cpu_* = user+system of the tshark process",
            "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_before": load_before, "loadavg_after": load_after},
            "commit": commit, "plugins_uncommitted_changes": dirty.splitlines(), "plugin_builds": builds,
            "tsharks": {r.series: {"version": r.version, "lua": r.lua, "command": r.prefix} for r in runners},
            "skipped": skipped, "startup_tshark_v_s": boot,
            "traces": {t: dict(trace_info[t], packets=packets[t], file=str(traces[t].relative_to(ROOT)))
                       for t in traces},
            "rows": rows, "postdissector_over_native": post_vs_native, "notes": notes,
            "cases": {k: {"argv": c.argv, "wall": c.wall, "cpu": c.cpu, "lines": c.lines[0]} for k, c in cases.items()},
            "elapsed_s": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print()
        print(table(results))
        print()
        for k, v in post_vs_native.items():
            print("ClusPrep trace, tshark %s: forced postdissector / native = %.2f" % (k, v))
        for n in notes:
            print("NOTE: " + n)
        print("median of %d interleaved run%s; ratio = median of per-round ratios to the same version's yardstick"
              % (runs, "" if runs == 1 else "s"))
        print("wrote %s; %.0f s in all" % (args.json, elapsed))
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(snap, ignore_errors=True)
        for r in runners:
            if r.stage:
                shutil.rmtree(r.stage, ignore_errors=True)


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "bench/plugin_cost_by_version.py"))
