"""How much the generated Lua dissector costs, against Wireshark's built-in rsvd.

    python bench/lua_overhead.py [--packets 200000] [--runs 5] [--keep]

Builds an RSVD-heavy trace (four initiators, SCSI READ/WRITE of 4 KiB split over TCP
segments, INQUIRY, GET_FILE_INFO, CHECK_CONNECTION_STATUS), then times tshark over it:

- builtin:  the built-in rsvd dissector, no Lua;
- ours:     our msrsvd.lua, built-in rsvd disabled;
- baseline: neither (SMB2 dissection only);
- lean:     ours with -o msrsvd.scsi:FALSE -o msrsvd.exchanges:FALSE;

each in two output modes: `fields` (-T fields -e frame.number, dissection without
printing a tree) and `tree` (-V to /dev/null, every item built and printed).
Prints median seconds and the ratios; writes bench/out/lua_overhead.json.

With --breakdown it also times two cut-down copies of the generated plugin, to show
where our time goes: `extract` stops after reading the SMB2 fields and pairing them,
`wrapper` also adds the protocol item but runs no decoder.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dissectors import plugin_paths  # noqa: E402
from samples.network import Capture, host  # noqa: E402
from samples.rsvd_scenarios import (INQUIRY_DATA, cdb, connect, open_context_windows, open_disk,  # noqa: E402
                                    pattern, support_answer)

OUT = ROOT / "bench" / "out"


def build_trace(packets: int) -> bytes:
    cap = Capture()
    server = host(0x10, "10.0.0.20")
    clients = []
    for i in range(4):
        c = connect(cap, host(0x20 + i, "10.0.1.%d" % (11 + i)), server, 50000 + i, 0x0000040000000100 + i, 1)
        fid = bytes([i + 1]) + bytes(7) + bytes([0x20 + i]) + bytes(7)
        initiator = uuid.UUID(int=0x4E4F4445 << 96 | i)
        open_disk(c, "disk.vhdx", open_context_windows("NODE%d" % (i + 1), initiator, version=1, open_request_id=i),
                  None, fid, initiator, support_answer("windows", "HandleStateShared"))
        clients.append((c, fid))
    data4k = pattern(4096, 9)
    fi = dict(_variant="windows", ServerVersion=0, SectorSize=0, PhysicalSectorSize=0, Reserved=0, VirtualSize=0)
    fo = dict(_variant="windows", ServerVersion=2, SectorSize=512, PhysicalSectorSize=4096, Reserved=0,
              VirtualSize=64 << 30)
    n = 0
    while len(cap.frames) < packets:
        c, fid = clients[n % len(clients)]
        lba = (n * 8) & 0xFFFFFF
        step = n % 5
        if step == 0:
            c.scsi(cdb(0x28, 0, 0, lba >> 16, (lba >> 8) & 0xFF, lba & 0xFF, 0, 0, 8, 0), 10, data_in=True,
                   length=4096, returned=data4k, file_id=fid, think_us=300)
        elif step == 1:
            c.scsi(cdb(0x2A, 0, 0, lba >> 16, (lba >> 8) & 0xFF, lba & 0xFF, 0, 0, 8, 0), 10, data_in=False,
                   length=4096, out=data4k, file_id=fid, think_us=300)
        elif step == 2:
            c.scsi(cdb(0x12, 0, 0, 0, 36, 0), 6, data_in=True, length=36, returned=INQUIRY_DATA, file_id=fid)
        elif step == 3:
            c.tunnel("RSVD_TUNNEL_GET_FILE_INFO_OPERATION", fi, fo, file_id=fid)
        else:
            c.tunnel("RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION", {}, {}, file_id=fid)
        n += 1
    return cap.pcapng()


CONFIGS = {
    "builtin": [],
    "ours": ["--disable-protocol", "rsvd"] + [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)],
    "baseline": ["--disable-protocol", "rsvd"],
    # ours with the plugin's costly layers off (its preferences)
    "lean": ["--disable-protocol", "rsvd", "-o", "msrsvd.scsi:FALSE", "-o", "msrsvd.exchanges:FALSE"]
    + [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)],
}
MODES = {
    "fields": ["-T", "fields", "-e", "frame.number"],
    "tree": ["-V"],
}


CUTS = {
    # Lines of the generated plugin a cut-down copy returns at (see --breakdown).
    "extract": ("  local r = fi.range\n", "  do return what end\n"),
    "wrapper": ("  local top = tree:add(proto, r)\n", "  local top = tree:add(proto, r)\n  do return what end\n"),
}


def cut_plugins() -> dict:
    """Cut-down copies of the generated plugins, one config per cut."""
    configs = {}
    for cut, (marker, replacement) in CUTS.items():
        args = ["--disable-protocol", "rsvd"]
        for p in plugin_paths.lua_paths():
            text = p.read_text()
            if marker not in text:
                raise SystemExit("--breakdown: %r not found in %s; update CUTS" % (marker.strip(), p))
            q = OUT / ("%s.%s.lua" % (p.stem, cut))
            q.write_text(text.replace(marker, replacement, 1))
            args += ["-X", "lua_script:%s" % q]
        configs["ours-" + cut] = args
    return configs


def time_once(tshark: str, pcap: Path, config: str, mode: str) -> float:
    cmd = [tshark, "-n", "-r", str(pcap)] + CONFIGS[config] + MODES[mode]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0 or "Lua Error" in res.stderr:
        raise SystemExit("tshark failed (%s/%s): %s" % (config, mode, res.stderr[-2000:]))
    return elapsed


def heavy_trace(packets: int, keep: bool) -> Path:
    """bench/out/rsvd_heavy.pcapng, the trace every analyzer bench times: built, or with `keep`
    the one already there (whatever its packet count)."""
    OUT.mkdir(parents=True, exist_ok=True)
    pcap = OUT / "rsvd_heavy.pcapng"
    if not (keep and pcap.exists()):
        t0 = time.perf_counter()
        pcap.write_bytes(build_trace(packets))
        print("built %s in %.1f s" % (pcap, time.perf_counter() - t0))
    return pcap


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="reuse bench/out/rsvd_heavy.pcapng if it exists")
    ap.add_argument("--breakdown", action="store_true", help="also time cut-down plugins (fields mode)")
    ap.add_argument("--modes", default="fields,tree", help="comma-separated: fields, tree")
    args = ap.parse_args(argv)
    tshark = shutil.which("tshark")
    if not tshark:
        raise SystemExit("tshark not found: apt-get install -y tshark")
    pcap = heavy_trace(args.packets, args.keep)
    count = subprocess.run([tshark, "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True).stdout.count("\n")
    rsvd_msgs = subprocess.run([tshark, "-n", "-r", str(pcap), "-Y", "rsvd", "-T", "fields", "-e", "frame.number"],
                               capture_output=True, text=True).stdout.count("\n")
    print("%d packets, %d with RSVD; tshark: %s" % (count, rsvd_msgs, subprocess.run(
        [tshark, "--version"], capture_output=True, text=True).stdout.splitlines()[0]))
    results = {"packets": count, "rsvd_frames": rsvd_msgs, "runs": args.runs, "seconds": {}, "ratios": {}}
    if args.breakdown:
        CONFIGS.update(cut_plugins())
    for mode in args.modes.split(","):
        for config in CONFIGS:
            if config.startswith("ours-") and mode != "fields":
                continue
            times = []
            for _ in range(args.runs):
                times.append(time_once(tshark, pcap, config, mode))
            results["seconds"]["%s/%s" % (mode, config)] = {"median": statistics.median(times), "all": times}
            print("%-6s %-9s median %.2f s  (runs: %s)" % (mode, config, statistics.median(times),
                                                         ", ".join("%.2f" % t for t in times)))
        med = {c: results["seconds"]["%s/%s" % (mode, c)]["median"] for c in CONFIGS
               if "%s/%s" % (mode, c) in results["seconds"]}
        results["ratios"][mode] = {
            "ours/builtin": med["ours"] / med["builtin"],
            "lean/builtin": med["lean"] / med["builtin"],
            "ours/baseline": med["ours"] / med["baseline"],
            "builtin/baseline": med["builtin"] / med["baseline"],
        }
        for cut in [c for c in med if c.startswith("ours-")]:
            results["ratios"][mode]["%s/builtin" % cut] = med[cut] / med["builtin"]
        print("%-6s %s" % (mode, "   ".join("%s %.3f" % kv for kv in results["ratios"][mode].items())))
    (OUT / "lua_overhead.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "bench/lua_overhead.py"))
