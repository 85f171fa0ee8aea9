"""Fuzz harness: mutated samples through tshark with both plugins, and through `analyze`.

    .venv/bin/python tests/fuzz/fuzz.py --quick               # CI's subset (tests/test_fuzz.py)
    .venv/bin/python tests/fuzz/fuzz.py --variants 10000      # the full run
    .venv/bin/python tests/fuzz/fuzz.py --replay rsvd_shared_disk:struct:123456   # one variant again
    .venv/bin/python tests/fuzz/fuzz.py --shards-check --quick   # split against serial (tests/test_fuzz.py)
    .venv/bin/python tests/fuzz/fuzz.py --replay merged_mix:struct:123456         # one of those again
    .venv/bin/python tests/fuzz/fuzz.py --c-plugin --quick    # C plugin (ASan+UBSan) against the Lua

Options: --seed S (master seed, default 1), --jobs J (default 2), --out DIR (default
/tmp/msrsvd-fuzz; failures go to DIR/failures, the run's figures to DIR/summary.json),
--only SAMPLE (repeatable), --kinds corrupt,truncate,struct. The run is deterministic given
the seed: variant i gets seed Random("S/i"), and its sample and kind go round-robin over
every (sample, kind) pair, so N variants cover each pair N/33 times (11 samples x 3 kinds).
A variant is named <sample>:<kind>:<seed>; --replay rebuilds exactly those bytes.

What each variant does
----------------------
Every sample of `samples` (samples.SCENARIOS) is mutated three ways:

a. corrupt (`editcap -E RATE -o OFFSET --seed N`): random bytes changed with probability
   0.002, 0.01 or 0.05, from an offset that spares the framing before the layer under test:
   SMB2 samples 58 (the SMB2 header: Wireshark must still find SMB2), 122 (the SMB2 body),
   170/178 (the IOCTL response's output / request's input buffer: the RSVD tunnel header)
   and 194 (the tunnel payload); DCE/RPC samples 70 (past the common header), 78 (the stub),
   86 and 110 (past ORPCTHIS: the method's parameters). Offsets follow the samples' framing
   (samples/network.py: Ethernet 14 + IPv4 20 + TCP 20, then NetBIOS 4 for SMB2).
b. truncate: `frame_cut` shortens 1-3 packets' captured length at a random point (80% among
   the packets that carry an RSVD message or a ClusPrep stub, 30% of cuts inside the first
   140 bytes: the headers), rewriting each EPB so the file stays valid, like a snaplen;
   `file_cut` cuts the whole file at a random byte (an incomplete last block; 5% inside the
   section/interface headers, which makes it "not a capture file").
c. struct: faults where they matter, at positions found by parsing each sample's RSVD
   messages and ClusPrep stubs with the definitions themselves (locate.py: construct's and
   NDR's leaf readers are watched while the messages parse, so every length, count, code,
   discriminant, pointer and string has its byte position and its name), then overwritten in
   place (lengths unchanged, so IPv4 stays valid; TCP checksums are not checked by Wireshark):
     length_extreme        any *Length/*Count/*Size field (RSVD, SCSI CDB, SMB2 Input/OutputCount,
                           the create context's DataLength, DCE/RPC alloc_hint, csvp_buffers
                           layouts): 0, 1, all ones, half range, value+1, value-1, 2*value+1...
     rsvd_opcode           the tunnel header's OperationCode: another code, v1 or v2, or none
     rsvd_response_opcode  a response's OperationCode made to differ from its request's
     status                the tunnel header's Status (success where a failure was and the
                           reverse, STATUS_SVHDX_ERROR_STORED|key, the unit attentions, random)
                           and a DCE/RPC fault's status
     smb2_ctl_swap         an IOCTL's CtlCode changed to another RSVD code (0x00090304 <->
                           0x00090300 <-> 0x00090364): request and response disagree
     scsi_opcode           the CDB's operation code (the discriminant of the CDB and data overlays)
     int_extreme           any other integer field (flags, enums, versions, ORPCTHIS...)
     string_no_nul         a UTF-16 string (InitiatorHostName, NDR [string], BSTR, csvp_buffers
                           names) with no NUL left: letters, U+FFFF or lone surrogates
     ndr_count             max_count / offset / actual_count / hoisted conformance / BSTR and
                           SAFEARRAY counts: 0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, value +-1
     ndr_count_disagree    a conformant varying array's max_count and actual_count made to
                           disagree (actual > max, max < actual, a "huge" max)
     ndr_pointer           a referent id: present -> NULL, NULL -> a pointer to nowhere
     ndr_discriminant      a union's discriminant (and SAFEARRAY sfType): another arm, or none
     ndr_word              any 4-byte aligned word past ORPCTHIS/ORPCTHAT: 0, 1, 0xFFFF,
                           0x7FFFFFFF, 0xFFFFFFFF (also on the sealed sample's ciphertext)
     dcerpc_opnum          a request's opnum: another method of the interface, or out of range
     dcerpc_ctx_id         a PDU's presentation context: another bound interface, or unbound
     dcerpc_call_id        a response's call_id: another call's (answers the wrong request)
     smb2_message_id       a CREATE or IOCTL response's SMB2 MessageId: another request's, or none
     rsvd_request_id       a tunnel header's RequestId: another operation's (a duplicate), or random
     hresult               a response's ReturnValue
   Each struct variant applies its mutator 1-3 times.

Invariants (each broken one is a failure)
-----------------------------------------
tshark 4.0 (-n -2, both plugins, filter
"msrsvd || clusprep || _ws.lua.error || _ws.malformed || msrsvd.internal_error || clusprep.internal_error",
-T fields frame.number _ws.lua.error msrsvd.internal_error clusprep.internal_error
_ws.malformed _ws.expert.message; the filter makes the plugins build their trees, with the
default preferences: SCSI decoding and exchange tracking on):
  lua_error       a _ws.lua.error item, or "Lua Error"/"Lua: Error" on stderr
  internal_error  an msrsvd.internal_error / clusprep.internal_error expert item (the plugins'
                  pcall caught an error: "Dissector error (please report)")
  dissector_bug   "Dissector bug, protocol MSRSVD/CLUSPREP..." (not the built-in RSVD's own)
  tshark_exit     an exit other than 0, or 2 (tshark's "cut short"/"damaged" read error)
`analyze --format json --fail-on never VARIANT`:
  traceback       "Traceback" on stderr (the last line of it is the failure's key)
  exit_code       an exit code other than 0, 1, 2
  invalid_json    exit 0/1 and stdout is not one JSON document
  error_message   exit 2 and stderr is not exactly one line
  lua_error       its tshark run reported a Lua error (captures[].tshark_messages)
  analyzer_fault  an analyzer.internal_error finding: analyze caught an exception of its own
                  and kept going (analyzer/pipeline.py) -- no traceback, but the same bug
  internal_error  an analyzer.plugin_error finding: a plugin's caught fault in analyze's run
                  (the export preference takes another path through the plugin)
  dissector_bug   an analyzer.plugin_error finding that is tshark's "Dissector bug" in MSRSVD or CLUSPREP
Both:
  timeout         tshark over 120 s, analyze over 300 s
  slow            more than 5x slower per packet than the unmutated sample, and more than 1 s
                  over it. Rule: expected = max(B, B / n_base * n_variant) where B is the median
                  of three runs on the unmutated sample (startup dominates these small
                  captures, ~0.2 s tshark and ~0.5 s analyze, so a variant with fewer packets is
                  held to the whole sample's time, not a per-packet share of it); ratio =
                  t / expected; slow when ratio > 5 and t - expected > 1 s, on a second timing
                  too (the min of both runs counts: the machine is shared, one run can stall),
                  and against the unmutated sample timed again beside it (B is the slower of the
                  baseline and that: a busier machine slows both, a costly mutation only one).

A failure is saved as DIR/failures/<sample>-<kind>-<seed>.pcapng with a .txt beside it: the
broken invariants, the mutation, the commands to reproduce and the output tails. The run
goes on; at the end a summary (variants per kind and mutator, failures per invariant,
distinct failures, slowest ratios, time) is printed and written to DIR/summary.json, and
the exit status is 1 if anything failed (baselines included), else 0.

--shards-check: one capture split over tsharks against one tshark
-----------------------------------------------------------------
`analyze --jobs N --split-above 0` splits a capture by connection group, one tshark a shard,
and merges the rows back; its output must be --jobs 1's byte for byte. A sample alone is mostly
one group and is read whole, so this mode mutates two bases, each four samples merged by time
(mergecap; SHARD_BASES): merged_mix (split_fuzz.BASE: two RSVD and two ClusPrep samples, a
multichannel session; 5 groups, 498 packets) and merged_cross (rsvd_cluster_events,
rsvd_near_misses, clusprep_storage_near_misses, clusprep_rule_violations, whose state crosses
groups: docs/per-shard-reconstruction.md, section 3; 6 groups, 550 packets). Their parts share
no TCP 4-tuple, so locate.py finds every part's fields in the merge, and the three kinds above
apply to a base as to a sample (editcap's offsets are both families'; a truncation only cuts
packets, since a file cut ends in an incomplete block, which is read whole). These, rather than
split_fuzz.py's random bytes anywhere, because they reach the RSVD and ClusPrep messages the
analyzer reconstructs and judges, and they keep the framing the split reads, so the variant
still splits. Variants go round-robin over every (base, kind) pair; a variant is named
<base>:<kind>:<seed>, and --replay of such a name runs this mode.

Each variant runs `analyze --format json --fail-on never` twice, `--jobs 1 --output DIR1` and
`--jobs 3 --split-above 0 --output DIR2` (--shard-jobs N for another --jobs: N-1 tsharks), and
no tshark of its own: the plugins' invariants are the mode above's. Broken when:
  shards_differ   the exit codes differ, or the JSON on stdout without each capture's
                  "seconds" (key order counts, and then the bytes: analyze writes it unsorted),
                  or stderr, or any --output file but report.json (its seconds; the rest of it
                  is stdout), byte for byte, or one run wrote a file the other did not.
                  The detail says which ("stdout .findings[].frames[], stderr, files
                  findings.csv/jsonl/parquet"), the .txt shows the first JSON difference and
                  unified diffs of stderr and the text files.
  and the serial run's `analyze` invariants above (and the sharded run's, "sharded: ...",
  when the outputs differ); no timing rule (`timeout` still: 300 s a run).
Each variant also records how many shards the sharded run used (split.py's split, as analyze
calls it), or why it read the capture whole; the summary counts the variants that split, and a
base that does not split unmutated, or differs, is a baseline failure. A failure is saved as
above, with both runs' --output folders beside it (<base>-<kind>-<seed>.serial, .sharded).

--c-plugin: the compiled msrsvd against the Lua (issue 26)
---------------------------------------------------------
msrsvd rendered by the C target (or --c-source FILE) is compiled with AddressSanitizer and
UndefinedBehaviorSanitizer for one tshark (--c-tshark 4.0|4.4|4.6; tests/c_plugins.py), and each
variant of the RSVD samples (ClusPrep stays Lua: nothing to run) goes through it as a user other
than root, `-V` and `-2 -V`, and through msrsvd.lua alone, `-V` and `-2 -Y frame -V`. Broken when:
  sanitizer       a sanitizer report (or a runtime that did not load) on the C's stderr
  exit_differs    the C's exit code is not the Lua's (tshark_exit: both other than 0 or 2)
  differs         the -V outputs differ, after normalise(): the known difference (a value a
                  decoder needs was not kept: the Lua's error on a nil value, the C's "a value
                  the decoder needs was not decoded") on the same line of both, counted
  timeout, slow   as above, the C's one pass against the unmutated sample's
--quick is C_QUICK_VARIANTS (one per RSVD sample and kind). The summary counts the variants
run and not run, exit codes, the normalised line pairs; the unmutated samples are baselines.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import capture  # noqa: E402
import locate  # noqa: E402
import mutators  # noqa: E402
import samples  # noqa: E402
import split_fuzz  # noqa: E402
from analyzer.capture.keys import Keys  # noqa: E402
from analyzer.capture.source import tshark_env  # noqa: E402
from analyzer.capture.split import Unsplittable, split  # noqa: E402
from dissectors import plugin_paths  # noqa: E402

QUICK_VARIANTS = 264  # 8 per (sample, kind) pair
DEFAULT_OUT = Path(tempfile.gettempdir()) / "msrsvd-fuzz"
TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TSHARK_TIMEOUT, ANALYZE_TIMEOUT = 120, 300
SLOW_RATIO, SLOW_SECONDS = 5.0, 1.0
FILTER = ("msrsvd || clusprep || _ws.lua.error || _ws.malformed || msrsvd.internal_error || "
          "clusprep.internal_error")
FIELDS = ["frame.number", "_ws.lua.error", "msrsvd.internal_error", "clusprep.internal_error", "_ws.malformed",
          "_ws.expert.message"]
AGG = "\x1f"
OUR_BUG = re.compile(r"Dissector bug, protocol (MSRSVD|CLUSPREP)", re.I)
LUA_ERR = re.compile(r"Lua Error|Lua: Error", re.I)
# analyze's findings for faults it caught (analyzer/pipeline.py FAULTS) -> the invariant they break
FAULT_RULES = {"analyzer.internal_error": "analyzer_fault", "analyzer.plugin_error": "internal_error"}

# --shards-check: the bases, samples merged by time (mergecap), so a variant holds several
# connection groups (5 and 6) and splits; their parts share no TCP 4-tuple, so locate.py finds
# every part's fields in the merge (6,709 and 6,387 targets, as the parts alone have). merged_mix
# is split_fuzz.BASE (two RSVD and two ClusPrep samples, a multichannel session); merged_cross the
# samples whose state crosses groups (docs/per-shard-reconstruction.md, section 3: reservations of
# several initiators on one disk, one client's RequestIds over two servers, share paths of two nodes)
SHARD_BASES = {"merged_mix": list(split_fuzz.BASE),
               "merged_cross": ["rsvd_cluster_events", "rsvd_near_misses", "clusprep_storage_near_misses",
                                "clusprep_rule_violations"]}
SHARD_JOBS = 3  # analyze --jobs 3: two tsharks and the process that merges their rows
QUICK_SHARD_VARIANTS = 24  # 4 per (base, kind) pair


def _unframe(msg: str) -> str:
    """A message without its frame numbers, so the same fault on other frames is one failure."""
    return re.sub(r"\b(frames?|packet) \d+(,\d+)*", r"\1 N", msg)


def _keys(path: Path) -> Optional[Keys]:
    """An encrypted sample (samples.KEYS) and its variants (SAMPLE-kind-seed) run with its keys,
    so mutations reach the decrypted messages."""
    for name, k in samples.KEYS.items():
        if path.stem == name or path.stem.startswith(name + "-"):
            return Keys(**k)
    return None


def tshark_cmd(path: Path) -> List[str]:
    cmd = [TSHARK, "-n", "-2", "-r", str(path)]
    for p in plugin_paths.lua_paths():
        cmd += ["-X", "lua_script:%s" % p]
    keys = _keys(path)
    if keys:
        cmd += keys.args()
    cmd += ["-Y", FILTER, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=" + AGG]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def analyze_cmd(path: Path, *extra: str) -> List[str]:
    keys = _keys(path)
    return [PYTHON, "-m", "analyzer", "--format", "json", "--fail-on", "never", *extra,
            *[a for k in (keys.smb_keys if keys else []) for a in ("--smb-key", k)], str(path)]


def serial_args(out: Path) -> List[str]:
    return ["--jobs", "1", "--output", str(out)]


def sharded_args(out: Path, jobs: int = SHARD_JOBS) -> List[str]:
    return ["--jobs", str(jobs), "--split-above", "0", "--output", str(out)]


def shell(cmd: List[str]) -> str:
    import shlex

    return " ".join("$'%s'" % c.replace(AGG, "\\x1f") if AGG in c else shlex.quote(c) for c in cmd)


# -- samples, their baselines and where their fields are ---------------------------------------
@dataclass
class SampleInfo:
    name: str
    path: Path
    family: str  # rsvd or clusprep
    data: bytes
    cap: capture.Capture
    loc: locate.Located
    struct_mutators: List[str]
    packets: int
    base_tshark: float = 0.0
    base_analyze: float = 0.0
    baseline_failures: List[Tuple[str, str]] = field(default_factory=list)
    parts: List[str] = field(default_factory=list)  # a --shards-check base: the samples merged into it


def load_sample(name: str) -> SampleInfo:
    path = samples.path(name)
    data = path.read_bytes()
    cap = capture.read(data)
    loc = locate.locate(cap)
    return SampleInfo(name, path, "rsvd" if name.startswith("rsvd_") else "clusprep", data, cap, loc,
                      mutators.struct_mutators(loc), len(cap.packets))


def load_base(name: str, work: Path) -> SampleInfo:
    """A --shards-check base: SHARD_BASES[name] merged by time into work/NAME.pcapng (the same
    bytes on every run with one mergecap), its fields located like a sample's."""
    path = work / (name + ".pcapng")
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(path), *[str(samples.path(n)) for n in SHARD_BASES[name]]],
                   check=True, capture_output=True, timeout=120)
    data = path.read_bytes()
    cap = capture.read(data)
    loc = locate.locate(cap)
    return SampleInfo(name, path, "mixed", data, cap, loc, mutators.struct_mutators(loc), len(cap.packets),
                      parts=list(SHARD_BASES[name]))


# -- one variant -----------------------------------------------------------------------------------
@dataclass
class Variant:
    index: int
    sample: str
    kind: str
    seed: int

    @property
    def name(self) -> str:
        return "%s:%s:%d" % (self.sample, self.kind, self.seed)

    @property
    def stem(self) -> str:
        return "%s-%s-%d" % (self.sample, self.kind, self.seed)


@dataclass
class Result:
    variant: str
    sample: str
    kind: str
    seed: int
    mutator: str = ""
    mutation: str = ""
    packets: int = 0
    tshark_s: float = 0.0
    analyze_s: float = 0.0
    tshark_ratio: float = 0.0
    analyze_ratio: float = 0.0
    tshark_rc: Optional[int] = None
    analyze_rc: Optional[int] = None
    failures: List[Tuple[str, str]] = field(default_factory=list)  # (invariant, key detail)
    saved: str = ""
    # --shards-check: the sharded run (analyze_* are the serial one's), and the shards it used
    sharded_s: float = 0.0
    sharded_rc: Optional[int] = None
    shards: Optional[int] = None  # 0: read whole, for the reason in `whole`
    whole: str = ""
    # --c-plugin: tshark_* are the sanitized C plugin's (one pass), lua_rc the Lua's; why a variant
    # was not run; how many -V line pairs the known difference made alike (normalise())
    lua_rc: Optional[int] = None
    skipped: str = ""
    normalised: int = 0


def build_variant(v: Variant, info: SampleInfo, dst: Path) -> Tuple[str, str]:
    """Write the variant's bytes to dst; returns (mutator, description)."""
    rng = random.Random("%s:%s:%d" % (v.sample, v.kind, v.seed))
    if v.kind == "corrupt":
        desc, _ = mutators.editcap_corrupt(rng, info.path, dst, info.family)
        return "editcap", desc
    if v.kind == "truncate":
        # a --shards-check base is only cut packet by packet: a file cut ends in an incomplete
        # block, which is read whole (split.py), never split, so it would compare nothing
        if rng.random() < 0.6 or info.parts:
            cap = info.cap.copy()
            desc = mutators.frame_cut(rng, cap, info.loc)
            dst.write_bytes(cap.pcapng())
            return "frame_cut", desc
        desc, data = mutators.file_cut(rng, info.data)
        dst.write_bytes(data)
        return "file_cut", desc
    if v.kind == "struct":
        if not info.struct_mutators:  # all encrypted: random bytes are what reaches the decryption
            desc, _ = mutators.editcap_corrupt(rng, info.path, dst, info.family)
            return "editcap (no clear-text message)", desc
        name = rng.choice(info.struct_mutators)
        cap = info.cap.copy()
        desc = mutators.struct_mutate(rng, cap, info.loc, name)
        dst.write_bytes(cap.pcapng())
        return name, desc
    raise ValueError(v.kind)


def _run(cmd: List[str], timeout: int, env=None) -> Tuple[Optional[int], str, str, float]:
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env,
                             cwd=str(ROOT))
        return res.returncode, res.stdout, res.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, err, time.monotonic() - t0


_TSHARK_ENV = None  # tshark_env(config=False), set by main(): the checkout's plugins only, no profile


def run_tshark(path: Path):
    return _run(tshark_cmd(path), TSHARK_TIMEOUT, _TSHARK_ENV)


def run_analyze(path: Path, *extra: str):
    return _run(analyze_cmd(path, *extra), ANALYZE_TIMEOUT)


def check_tshark(rc, out: str, err: str) -> List[Tuple[str, str]]:
    bad: List[Tuple[str, str]] = []
    if rc is None:
        return [("timeout", "tshark over %d s" % TSHARK_TIMEOUT)]
    lua, internal, bug = [], [], []
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < len(FIELDS):
            continue
        frame = cols[0]
        if cols[1]:
            lua.append(frame)
        if cols[2] or cols[3]:
            internal.append((frame, cols[5].split(AGG)))
        if OUR_BUG.search(cols[4]) or OUR_BUG.search(cols[5]):
            bug.append((frame, OUR_BUG.search(cols[4] + cols[5]).group(0)))
    err_lines = [ln for ln in err.splitlines() if LUA_ERR.search(ln)]
    if lua or err_lines:
        bad.append(("lua_error", "frames %s%s" % (",".join(lua[:10]) or "-",
                                                  ("; " + err_lines[0].strip()[:200]) if err_lines else "")))
    if internal:
        # the message the pcall caught is one of that frame's expert messages: keep the likely one
        frame, msgs = internal[0]
        msg = next((m for m in msgs if ".lua:" in m or "attempt to" in m), "; ".join(msgs)[:200])
        bad.append(("internal_error", "%s (frames %s)" % (msg.strip()[:200], ",".join(f for f, _ in internal[:10]))))
    bug_err = [ln for ln in err.splitlines() if OUR_BUG.search(ln)]
    if bug or bug_err:
        bad.append(("dissector_bug", (bug_err[0].strip() if bug_err else "frame %s: %s" % bug[0])[:200]))
    if rc not in (0, 2):
        bad.append(("tshark_exit", "tshark exit %s: %s" % (rc, (err.strip().splitlines() or [""])[-1][:200])))
    return bad


def check_analyze(rc, out: str, err: str) -> List[Tuple[str, str]]:
    if rc is None:
        return [("timeout", "analyze over %d s" % ANALYZE_TIMEOUT)]
    bad: List[Tuple[str, str]] = []
    if "Traceback" in err:
        last = [ln for ln in err.strip().splitlines() if ln.strip()]
        bad.append(("traceback", last[-1].strip()[:300] if last else "Traceback"))
    if rc not in (0, 1, 2):
        bad.append(("exit_code", "analyze exit %d" % rc))
    if rc in (0, 1):
        try:
            doc = json.loads(out)
        except ValueError as e:
            bad.append(("invalid_json", "stdout is not JSON: %s" % str(e)[:120]))
        else:
            msgs = [m for c in doc.get("captures", []) if isinstance(c, dict)
                    for m in c.get("tshark_messages", []) or [] if LUA_ERR.search(str(m))]
            if msgs:
                bad.append(("lua_error", "analyze's tshark: %s" % str(msgs[0])[:200]))
            # Faults the analyzer caught and reported as findings instead of dying: still faults.
            for f in doc.get("findings", []):
                rule, msg = f.get("rule"), str(f.get("message", ""))
                if rule in FAULT_RULES:
                    kind = "dissector_bug" if OUR_BUG.search(msg) else FAULT_RULES[rule]
                    bad.append((kind, "%s: %s" % (rule, _unframe(msg)[:300])))
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if len(lines) != 1 and "Traceback" not in err:
            bad.append(("error_message", "exit 2 with %d stderr lines: %s" % (len(lines), " | ".join(lines)[:200])))
    return bad


# -- --shards-check: the same variant split over tsharks and read by one ----------------------------
def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


_SECONDS = re.compile(r'"seconds": [-+0-9.eE]+')


def _without_seconds(doc):
    """The report without each capture's "seconds" (the one field that may differ)."""
    if isinstance(doc, dict):
        for c in doc.get("captures") or []:
            if isinstance(c, dict):
                c.pop("seconds", None)
    return doc


def _first_difference(a, b, where: str = "") -> Optional[Tuple[str, object, object]]:
    """(path, a's value, b's value) of the first place two JSON values differ, None if they do not.
    Key order counts (analyze writes its JSON unsorted, so the same document in another order is
    other bytes)."""
    if type(a) is not type(b):
        return where or ".", a, b
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return "%s.%s" % (where, k), a.get(k, "(missing)"), b.get(k, "(missing)")
            d = _first_difference(a[k], b[k], "%s.%s" % (where, k))
            if d:
                return d
        return None if list(a) == list(b) else ("%s (key order)" % (where or "."), list(a), list(b))
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, "%s[%d]" % (where, i))
            if d:
                return d
        if len(a) != len(b):
            return "%s (%d items against %d)" % (where or ".", len(a), len(b)), a[len(b):][:1], b[len(a):][:1]
        return None
    return None if a == b else (where or ".", a, b)


def _udiff(a: str, b: str, n: int = 40) -> str:
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "serial", "sharded", lineterm="", n=1))
    return "\n".join(ln[:300] for ln in lines[:n]) + ("\n... (%d more lines)" % (len(lines) - n) if len(lines) > n else "")


def shard_differences(serial, sharded, serial_dir: Path, sharded_dir: Path) -> List[Tuple[str, str]]:
    """What `analyze --jobs N --split-above 0` gave and `--jobs 1` did not, as [(what, excerpt)]; []
    when they are the same. `serial` and `sharded` are (exit code, stdout, stderr, ...), the folders
    their --output: the JSON on stdout is compared without each capture's "seconds", stderr as it
    is, and every --output file byte for byte but report.json (its seconds; the rest is stdout)."""
    (rc1, out1, err1), (rc2, out2, err2) = serial[:3], sharded[:3]
    diffs: List[Tuple[str, str]] = []
    if rc1 != rc2:
        diffs.append(("exit %s against %s" % (rc1, rc2), ""))
    doc1, doc2 = _json(out1), _json(out2)
    if doc1 is not None and doc2 is not None:
        d = _first_difference(_without_seconds(doc1), _without_seconds(doc2))
        if d:
            where = re.sub(r"\(\d+ items against \d+\)", "(length)", re.sub(r"\[\d+\]", "[]", d[0]))
            diffs.append(("stdout " + where,
                          "first at %s\n  serial:  %s\n  sharded: %s" % (d[0], json.dumps(d[1])[:1000],
                                                                        json.dumps(d[2])[:1000])))
        elif _SECONDS.sub("", out1) != _SECONDS.sub("", out2):  # the same document, other bytes
            diffs.append(("stdout (bytes)", _udiff(out1, out2)))
    elif out1 != out2:
        diffs.append(("stdout", _udiff(out1, out2)))
    if err1 != err2:
        diffs.append(("stderr", _udiff(err1, err2)))
    names = [{p.name for p in d.iterdir() if p.name != "report.json"} if d.is_dir() else set()
             for d in (serial_dir, sharded_dir)]
    for name in sorted(names[0] ^ names[1]):
        diffs.append(("file %s only %s" % (name, "serial" if name in names[0] else "sharded"), ""))
    for name in sorted(names[0] & names[1]):
        a, b = (serial_dir / name).read_bytes(), (sharded_dir / name).read_bytes()
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            excerpt = "%d bytes serial, %d sharded, first difference at byte %d" % (len(a), len(b), at)
            if name.endswith((".csv", ".jsonl")):
                excerpt += "\n" + _udiff(a.decode("utf-8", "replace"), b.decode("utf-8", "replace"))
            diffs.append(("file " + name, excerpt))
    return diffs


def check_shards(serial, sharded, serial_dir: Path, sharded_dir: Path) -> List[Tuple[str, str]]:
    """[("shards_differ", what differs)] or [] (see shard_differences); the files that differ are
    named by table: "files findings.csv/jsonl/parquet"."""
    whats, files = [], {}  # type: List[str], Dict[str, List[str]]
    for what, _ in shard_differences(serial, sharded, serial_dir, sharded_dir):
        if what.startswith("file ") and " only " not in what:
            stem, dot, ext = what[5:].rpartition(".")
            files.setdefault(stem if dot else what[5:], []).append(ext if dot else "")
        else:
            whats.append(what)
    if files:
        whats.append("files " + ", ".join("%s.%s" % (stem, "/".join(exts)) if any(exts) else stem
                                          for stem, exts in files.items()))
    return [("shards_differ", ", ".join(whats))] if whats else []


def shards_of(path: Path, tsharks: int, directory: Path) -> Tuple[int, str]:
    """How many shards analyze splits `path` into for `tsharks` tsharks (it calls
    analyzer.capture.split.split so, ShardedRun), or 0 and why it reads it whole."""
    try:
        parts = split(path, tsharks, directory)
    except Unsplittable as e:
        return 0, str(e)
    try:
        return len(parts.shards), ""
    finally:
        parts.remove()


def run_both(path: Path, out: Path, jobs: int):
    """analyze --jobs 1 and --jobs JOBS --split-above 0 over one capture, each with its --output
    under `out`: (serial, sharded), each (exit code, stdout, stderr, seconds), and their failures."""
    serial = run_analyze(path, *serial_args(out / "serial"))
    sharded = run_analyze(path, *sharded_args(out / "sharded", jobs))
    bad = check_analyze(*serial[:3])
    if serial[0] is None or sharded[0] is None:  # a timeout: nothing to compare
        return serial, sharded, bad + [(k, "sharded: " + d) for k, d in check_analyze(*sharded[:3])]
    differ = check_shards(serial, sharded, out / "serial", out / "sharded")
    if differ:  # what the sharded run broke besides (the serial run's failures are already there)
        bad += differ + [(k, "sharded: " + d) for k, d in check_analyze(*sharded[:3]) if (k, d) not in bad]
    return serial, sharded, bad


def count_packets(path: Path) -> int:
    try:
        return len(capture.read(path.read_bytes()).packets)
    except Exception:  # noqa: BLE001 - a file cut inside its first header: no packets
        return 0


def ratio(t: float, base: float, n_base: int, n_var: int) -> Tuple[float, float]:
    """(t / expected, expected) under the documented rule."""
    expected = max(base, base / max(n_base, 1) * n_var)
    return t / expected if expected > 0 else 0.0, expected


def is_slow(t: float, base: float, n_base: int, n_var: int) -> bool:
    r, expected = ratio(t, base, n_base, n_var)
    return r > SLOW_RATIO and t - expected > SLOW_SECONDS


def lua_error_text(path: Path, out: str) -> str:
    """The "Lua Error: ..." line of the first frame that has one (for the report only)."""
    frame = next((ln.split("\t")[0] for ln in out.splitlines() if len(ln.split("\t")) > 1 and ln.split("\t")[1]), None)
    if frame is None:
        return ""
    cmd = [TSHARK, "-n", "-2", "-r", str(path)] + [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)]
    rc, o, e, _ = _run(cmd + ["-V", "-Y", "frame.number == %s" % frame], TSHARK_TIMEOUT, _TSHARK_ENV)
    return "\n".join(ln.strip() for ln in o.splitlines() if "Lua Error" in ln)[:2000]


def tail(text: str, n: int = 40) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


# -- --c-plugin: the compiled msrsvd, built with the sanitizers, against msrsvd.lua ----------------
C_QUICK_VARIANTS = 33  # one per (RSVD sample, kind): tests/test_fuzz.py
C_SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error|Sanitizer|ld\.so")
# The one known difference between the targets (README, "A second target"): where a decoder needs a
# value it did not keep (a field a mutation left out), the Lua raises, and its pcall shows the Lua
# error (a nil value) as the internal-error expert item and msrsvd.dissector_error; the C reads 0,
# goes on, and shows this text there instead. Only those lines are normalised, and counted.
C_MISSING = "a value the decoder needs was not decoded"
LUA_NIL = re.compile(r"[^\s\[\]]*msrsvd\.lua:\d+: attempt to [a-z ]+ (?:a nil value|nil with \w+|\w+ with nil)"
                     r"(?: \([^)]*\))?")
NOT_KEPT = "<a value the decoder needs was not kept>"
# tshark's exit after a read error (a file cut short): 2 on 4.0, 14 on 4.6 (both targets alike)
READ_ERROR_EXITS = (2, 14)


@dataclass
class CTarget:
    """The sanitized msrsvd plugin in a HOME of one tshark (tests/c_plugins.py), and the Lua."""

    tshark: object  # tsharks.Tshark
    space: object  # c_plugins.Workspace
    home: object  # c_plugins.Home with msrsvd.so built --sanitize
    env: Dict[str, str]  # its sanitizer_env()
    lua: Path  # msrsvd.lua

    @classmethod
    def build(cls, series: str, source: Optional[Path] = None) -> "CTarget":
        """msrsvd rendered by the C target (or `source`, a C file: a planted fault, say) compiled with
        the sanitizers for that tshark of tests/tsharks.py."""
        sys.path.insert(0, str(ROOT / "tests"))
        import c_plugins
        import tsharks
        from dissectors.definitions import rsvd
        from dissectors.targets.c import render_c

        t = next((t for s, t, _ in tsharks.found() if s == series), None)
        why = "tshark %s is not here: %s" % (series, dict((s, w) for s, _, w in tsharks.found()).get(series, "?")) \
            if t is None else c_plugins.missing(t)
        if why:
            raise SystemExit("fuzz --c-plugin: %s" % why)
        space = c_plugins.Workspace(t)
        try:
            home = space.home("home")
            home.compile(source.read_text() if source else render_c(rsvd.PROTOCOL), rsvd.PROTOCOL.name,
                         sanitize=True)
            lua = plugin_paths.lua_paths()
            lua = next(p for p in lua if Path(p).name == "msrsvd.lua")
            return cls(t, space, home, home.sanitizer_env(), Path(lua))
        except BaseException:
            space.remove()
            raise

    def work(self) -> Path:
        """A folder for the variants that the user tshark runs as can read."""
        return self.home.sibling("variants").host

    def run_c(self, path: Path, *args: str):
        t0 = time.monotonic()
        try:
            res = self.home.run(["-n", "-r", str(path), "-V", *args, *_key_args(path)], env_extra=self.env,
                                timeout=TSHARK_TIMEOUT)
            return res.returncode, res.stdout, res.stderr, time.monotonic() - t0
        except subprocess.TimeoutExpired as e:
            return None, _text(e.stdout), _text(e.stderr), time.monotonic() - t0

    def run_lua(self, path: Path, *args: str):
        return _run([*self.tshark.argv, "-n", "-r", str(path), "-X", "lua_script:%s" % self.lua, "-V", *args,
                     *_key_args(path)], TSHARK_TIMEOUT, _TSHARK_ENV)

    def runs(self, path: Path) -> Dict[str, tuple]:
        """One pass and two (C -2 against Lua -2 -Y frame: the Lua sees SMB2's fields in the first
        pass only with a filter, the C asks for them; tests/test_c_target.py)."""
        return {"c": self.run_c(path), "c2": self.run_c(path, "-2"),
                "lua": self.run_lua(path), "lua2": self.run_lua(path, "-2", "-Y", "frame")}


def _text(x) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else (x or "")


def _key_args(path: Path) -> List[str]:
    keys = _keys(path)
    return keys.args() if keys else []


def normalise(c: str, lua: str) -> Tuple[str, str, int]:
    """Both -V outputs with the known difference's lines made alike: each line of the C's that
    shows C_MISSING and each of the Lua's that shows a Lua error on a nil value, at the same line
    of both (nothing else moves); and how many line pairs that was."""
    cl, ll = c.split("\n"), lua.split("\n")
    n = 0
    if len(cl) == len(ll):
        for i, (a, b) in enumerate(zip(cl, ll)):
            if a != b and C_MISSING in a and LUA_NIL.search(b) and \
                    a.replace(C_MISSING, NOT_KEPT) == LUA_NIL.sub(NOT_KEPT, b):
                cl[i] = ll[i] = a.replace(C_MISSING, NOT_KEPT)
                n += 1
    return "\n".join(cl), "\n".join(ll), n


def first_difference(a: str, b: str) -> str:
    """The first differing line of two -V outputs, with its frame and a few lines of context."""
    al, bl = a.split("\n"), b.split("\n")
    i = next((i for i, (x, y) in enumerate(zip(al, bl)) if x != y), min(len(al), len(bl)))
    frame = next((ln.split(":")[0] for ln in reversed(al[:i + 1]) if ln.startswith("Frame ")), "?")
    diff = difflib.unified_diff(al[max(0, i - 3):i + 6], bl[max(0, i - 3):i + 6], "c", "lua", lineterm="", n=3)
    return "%s, line %d (%d lines against %d)\n%s" % (frame, i + 1, len(al), len(bl), "\n".join(diff))


def check_c(runs: Dict[str, tuple]) -> Tuple[List[Tuple[str, str]], int, List[str]]:
    """The C mode's invariants on one capture: (failures, lines normalised, first differences)."""
    bad: List[Tuple[str, str]] = []
    diffs: List[str] = []
    normalised = 0
    for c, lua in (("c", "lua"), ("c2", "lua2")):
        (crc, cout, cerr, _), (lrc, lout, _, _) = runs[c], runs[lua]
        passes = "two passes" if c == "c2" else "one pass"
        if crc is None or lrc is None:
            bad.append(("timeout", "%s over %d s (%s)" % ("C" if crc is None else "Lua", TSHARK_TIMEOUT, passes)))
            continue
        hit = next((ln for ln in cerr.splitlines() if C_SANITIZER.search(ln)), None)
        if hit:
            detail = next((ln for ln in cerr.splitlines() if "SUMMARY:" in ln or "runtime error" in ln), hit)
            bad.append(("sanitizer", re.sub(r"/\S+/", "", detail.strip())[:200]))
        if OUR_BUG.search(cerr) or OUR_BUG.search(cout):
            bad.append(("dissector_bug", OUR_BUG.search(cerr + cout).group(0)))
        if crc != lrc:
            bad.append(("exit_differs", "C exit %s, Lua exit %s (%s): %s" % (
                crc, lrc, passes, (cerr.strip().splitlines() or [""])[-1][:150])))
        elif crc not in (0, *READ_ERROR_EXITS):
            bad.append(("tshark_exit", "exit %s (%s)" % (crc, passes)))
        a, b, n = normalise(cout, lout)
        normalised += n
        if a != b:
            where = first_difference(a, b)
            diffs.append("%s: %s" % (passes, where))
            line = next((ln for ln in where.splitlines() if ln.startswith("-") and not ln.startswith("---")), "")
            bad.append(("differs", "%s: %s" % (passes, line[1:].strip()[:150])))
    return bad, normalised, diffs


def c_baseline(info: "SampleInfo", c: CTarget, work: Path) -> None:
    """An RSVD sample unmutated: the C as the Lua and clean; the C's -V time (median of three)."""
    path = work / info.path.name  # where the user the C's tshark runs as can read it
    shutil.copyfile(info.path, path)
    path.chmod(0o644)
    runs = c.runs(path)
    bad, _, _ = check_c(runs)
    times = [runs["c"][3], c.run_c(path)[3], c.run_c(path)[3]]
    info.base_tshark, info.baseline_failures = statistics.median(times), sorted(set(bad))
    path.unlink()


def summarize_c(results: List[Result], infos: Dict[str, SampleInfo], seconds: float, args, out: Path,
                c: CTarget) -> dict:
    """--c-plugin's figures: the variants run and skipped, failures per invariant and distinct, the
    known difference (variants and line pairs normalised), exit codes, the slowest."""
    ran = [r for r in results if not r.skipped]
    failures = [r for r in ran if r.failures]
    distinct: Dict[Tuple[str, str], List[Result]] = defaultdict(list)
    for r in failures:
        for k, detail in r.failures:
            key = detail if k != "slow" else "%s %s" % (r.sample, detail.split()[0])
            distinct[(k, re.sub(r"\b(frames?|line) \d+", r"\1 N", key))].append(r)
    slow = max(ran, key=lambda r: r.tshark_ratio, default=None)
    doc = dict(
        mode="c_plugin", tshark=str(c.tshark), series=c.tshark.series, seed=args.seed, variants=len(results),
        ran=len(ran), skipped=dict(Counter(r.skipped for r in results if r.skipped)), jobs=args.jobs,
        seconds=round(seconds, 1), seconds_per_1000=round(seconds / max(len(ran), 1) * 1000, 1),
        per_kind=dict(Counter(r.kind for r in ran)), per_mutator=dict(sorted(Counter(r.mutator for r in ran).items())),
        per_sample=dict(Counter(r.sample for r in ran)),
        exits=dict(sorted(Counter(str(r.tshark_rc) for r in ran).items())),
        normalised=dict(variants=sum(1 for r in ran if r.normalised), lines=sum(r.normalised for r in ran)),
        baselines={n: dict(packets=i.packets, c_s=round(i.base_tshark, 3), failures=i.baseline_failures)
                   for n, i in infos.items() if i.family == "rsvd"},
        failed_variants=len(failures),
        failures_per_invariant=dict(Counter(k for r in failures for k in {k for k, _ in r.failures})),
        distinct_failures=[dict(invariant=k, detail=d, count=len(rs), samples=sorted({r.sample for r in rs}),
                                mutators=sorted({r.mutator for r in rs}),
                                examples=[dict(variant=r.variant, saved=r.saved, mutation=r.mutation[:300])
                                          for r in rs[:3]])
                           for (k, d), rs in sorted(distinct.items(), key=lambda kv: -len(kv[1]))],
        slowest=dict(ratio=slow.tshark_ratio, variant=slow.variant, seconds=slow.tshark_s) if slow else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(dict(doc, results=[asdict(r) for r in results]), indent=1))
    return doc


def print_summary_c(doc: dict) -> None:
    p = print
    p("")
    p("fuzz --c-plugin (%s, msrsvd.so with ASan+UBSan against msrsvd.lua): %d variants, %d run, seed %s, %d jobs, "
      "%.0f s (%.0f s per 1,000 run)" % (doc["tshark"], doc["variants"], doc["ran"], doc["seed"], doc["jobs"],
                                         doc["seconds"], doc["seconds_per_1000"]))
    if doc["skipped"]:
        p("  not run:     " + ", ".join("%d (%s)" % (n, why) for why, n in doc["skipped"].items()))
    p("  per kind:    " + ", ".join("%s %d" % kv for kv in sorted(doc["per_kind"].items())))
    p("  per mutator: " + ", ".join("%s %d" % kv for kv in doc["per_mutator"].items()))
    p("  exits:       " + ", ".join("%s: %d" % kv for kv in doc["exits"].items()))
    p("  known difference (a value not kept: Lua error text / C's \"%s\"): %d variants, %d line pairs "
      "normalised" % (C_MISSING, doc["normalised"]["variants"], doc["normalised"]["lines"]))
    if doc["slowest"]:
        p("  slowest:     C %.2fx its unmutated sample (%s, %.2f s)" % (
            doc["slowest"]["ratio"], doc["slowest"]["variant"], doc["slowest"]["seconds"]))
    for n, b in doc["baselines"].items():
        for k, d in b["failures"]:
            p("  BASELINE %s: [%s] %s" % (n, k, d))
    p("  failed variants: %d%s" % (doc["failed_variants"], (" (" + ", ".join(
        "%s %d" % kv for kv in sorted(doc["failures_per_invariant"].items())) + ")") if doc["failed_variants"] else ""))
    for f in doc["distinct_failures"]:
        p("  [%s] %s" % (f["invariant"], f["detail"]))
        p("      %d variants; samples %s; mutators %s" % (f["count"], ",".join(f["samples"]), ",".join(f["mutators"])))
        for e in f["examples"]:
            p("      e.g. %s  %s" % (e["variant"], e["saved"]))


class Runner:
    def __init__(self, infos: Dict[str, SampleInfo], out: Path, work: Path, master_seed: Optional[int],
                 shard_jobs: int = SHARD_JOBS):
        self.infos, self.out, self.work, self.master_seed = infos, out, work, master_seed
        self.shard_jobs = shard_jobs
        self.c: Optional[CTarget] = None  # --c-plugin

    def _built(self, v: Variant):
        """(its sample, its Result, the variant's capture, or None when the harness failed to build it)."""
        info = self.infos[v.sample]
        r = Result(v.name, v.sample, v.kind, v.seed)
        path = self.work / (v.stem + ".pcapng")
        try:
            r.mutator, r.mutation = build_variant(v, info, path)
        except Exception as e:  # noqa: BLE001 - a harness bug: reported, not hidden
            r.failures.append(("harness", "%s: %s" % (type(e).__name__, e)))
            return info, r, None
        r.packets = count_packets(path)
        return info, r, path

    def run(self, v: Variant) -> Result:
        info, r, path = self._built(v)
        if path is None:
            return r
        t_rc, t_out, t_err, t_s = run_tshark(path)
        a_rc, a_out, a_err, a_s = run_analyze(path)
        r.tshark_rc, r.analyze_rc = t_rc, a_rc
        r.failures += check_tshark(t_rc, t_out, t_err) + check_analyze(a_rc, a_out, a_err)
        # timing: a second run of a tool that looks slow, the faster of the two counts
        if t_rc is not None and is_slow(t_s, info.base_tshark, info.packets, r.packets):
            t_s = min(t_s, run_tshark(path)[3])
        if a_rc is not None and is_slow(a_s, info.base_analyze, info.packets, r.packets):
            a_s = min(a_s, run_analyze(path)[3])
        # still slow: time the unmutated sample again, now, beside it; a machine that got busier
        # since the baseline slows both, a mutation that costs work slows only the variant
        base_t, base_a = info.base_tshark, info.base_analyze
        if t_rc is not None and is_slow(t_s, base_t, info.packets, r.packets):
            base_t = max(base_t, run_tshark(info.path)[3])
        if a_rc is not None and is_slow(a_s, base_a, info.packets, r.packets):
            base_a = max(base_a, run_analyze(info.path)[3])
        r.tshark_s, r.analyze_s = round(t_s, 3), round(a_s, 3)
        r.tshark_ratio = round(ratio(t_s, base_t, info.packets, r.packets)[0], 2)
        r.analyze_ratio = round(ratio(a_s, base_a, info.packets, r.packets)[0], 2)
        for tool, t, base in (("tshark", t_s, base_t), ("analyze", a_s, base_a)):
            if is_slow(t, base, info.packets, r.packets):
                r.failures.append(("slow", "%s %.2f s vs %.2f s unmutated (%d of %d packets): %.1fx" % (
                    tool, t, base, r.packets, info.packets, ratio(t, base, info.packets, r.packets)[0])))
        if r.failures:
            r.saved = str(self.save(v, r, path, (t_rc, t_out, t_err), (a_rc, a_out, a_err)))
        path.unlink(missing_ok=True)
        return r

    def run_c(self, v: "Variant") -> "Result":
        """--c-plugin: one variant through the sanitized C plugin and the Lua."""
        info, r, path = self._built(v)
        if path is None:
            return r
        if info.family != "rsvd":
            r.skipped = "no RSVD: ClusPrep stays Lua"
            path.unlink(missing_ok=True)
            return r
        path.chmod(0o644)
        try:
            runs = self.c.runs(path)
        except Exception as e:  # noqa: BLE001 - a harness bug: reported, not hidden
            r.failures.append(("harness", "%s: %s" % (type(e).__name__, str(e)[:200])))
            r.saved = str(self.save(v, r, path, (None, "", ""), (None, "", "")))
            return r
        r.failures, r.normalised, diffs = check_c(runs)
        r.tshark_rc, r.lua_rc = runs["c"][0], runs["lua"][0]
        t = runs["c"][3]
        if r.tshark_rc is not None and is_slow(t, info.base_tshark, info.packets, r.packets):
            t = min(t, self.c.run_c(path)[3])
        r.tshark_s = round(t, 3)
        r.tshark_ratio = round(ratio(t, info.base_tshark, info.packets, r.packets)[0], 2)
        if is_slow(t, info.base_tshark, info.packets, r.packets):
            r.failures.append(("slow", "C %.2f s vs %.2f s unmutated (%d of %d packets): %.1fx" % (
                t, info.base_tshark, r.packets, info.packets, r.tshark_ratio)))
        if r.failures:
            r.saved = str(self.save_c(v, r, path, runs, diffs))
        path.unlink(missing_ok=True)
        return r


    def save_c(self, v: "Variant", r: "Result", path: Path, runs: Dict[str, tuple], diffs: List[str]) -> Path:
        d = self.out / "failures"
        d.mkdir(parents=True, exist_ok=True)
        dst = d / (v.stem + ".pcapng")
        shutil.copyfile(path, dst)
        keys = " ".join(_key_args(path))
        text = [
            "variant   %s (index %d of master seed %s), --c-plugin on %s" % (v.name, v.index, self.master_seed,
                                                                          self.c.tshark),
            "mutation  %s" % r.mutation,
            "packets   %d (unmutated %d)" % (r.packets, self.infos[v.sample].packets),
            "",
            "broken invariants:",
            *["  %-15s %s" % f for f in r.failures],
            "",
            "reproduce: %s tests/fuzz/fuzz.py --c-plugin --c-tshark %s --replay %s" % (PYTHON, self.c.tshark.series,
                                                                                     v.name),
            "  (the C: msrsvd.so built with `python -m dissectors build --sanitize`, tshark run as a user other than"
            " root with %s; the Lua: tshark -X lua_script:%s)" % (" ".join("%s=%s" % kv for kv in self.c.env.items()),
                                                                  self.c.lua),
            "  tshark -n -r %s -V %s   /   -2 -V (C) and -2 -Y frame -V (Lua)" % (dst, keys),
            "",
        ]
        for what in diffs:
            text += ["--- -V differs, %s" % what]
        for name, run in runs.items():
            text += ["", "%s: exit %s, %.2f s" % (name, run[0], run[3]), "--- stderr (tail) ---", tail(run[2], 30)]
        dst.with_suffix(".txt").write_text("\n".join(text) + "\n")
        return dst

    def run_shards(self, v: Variant) -> Result:
        """--shards-check: the variant analyzed split over tsharks and serially, compared."""
        info, r, path = self._built(v)
        if path is None:
            return r
        r.shards, r.whole = shards_of(path, self.shard_jobs - 1, self.work)
        out = self.work / v.stem
        try:
            serial, sharded, r.failures = run_both(path, out, self.shard_jobs)
            r.analyze_rc, r.analyze_s = serial[0], round(serial[3], 3)
            r.sharded_rc, r.sharded_s = sharded[0], round(sharded[3], 3)
            if r.failures:
                r.saved = str(self.save_shards(v, r, path, out, serial, sharded))
        finally:
            shutil.rmtree(out, ignore_errors=True)
            path.unlink(missing_ok=True)
        return r

    def save_shards(self, v: Variant, r: Result, path: Path, out: Path, serial, sharded) -> Path:
        d = self.out / "failures"
        d.mkdir(parents=True, exist_ok=True)
        dst = d / (v.stem + ".pcapng")
        shutil.copyfile(path, dst)
        for run in ("serial", "sharded"):  # both runs' --output folders, beside the capture
            shutil.rmtree(d / ("%s.%s" % (v.stem, run)), ignore_errors=True)
            if (out / run).is_dir():
                shutil.copytree(out / run, d / ("%s.%s" % (v.stem, run)))
        info = self.infos[v.sample]
        diffs = shard_differences(serial, sharded, out / "serial", out / "sharded") if None not in (
            serial[0], sharded[0]) else []
        again = d / ("%s.again" % v.stem)
        text = [
            "variant   %s (index %d of master seed %s)" % (v.name, v.index, self.master_seed),
            "base      %s: %s merged by time (mergecap)" % (v.sample, ", ".join(info.parts)),
            "mutation  %s" % r.mutation,
            "packets   %d (unmutated %d)" % (r.packets, info.packets),
            "split     %s" % ("%d shards (--jobs %d: %d tsharks)" % (r.shards, self.shard_jobs, self.shard_jobs - 1)
                              if r.shards else "no, read whole: %s" % r.whole),
            "",
            "broken invariants:",
            *["  %-15s %s" % f for f in r.failures],
            "",
            "reproduce (from %s; both runs' --output folders are saved as %s.serial and .sharded):" % (ROOT, v.stem),
            "  " + shell(analyze_cmd(dst, *serial_args(again / "serial"))),
            "  " + shell(analyze_cmd(dst, *sharded_args(again / "sharded", self.shard_jobs))),
            "  %s tests/fuzz/fuzz.py --replay %s%s" % (
                PYTHON, v.name, " --shard-jobs %d" % self.shard_jobs if self.shard_jobs != SHARD_JOBS else ""),
            "",
        ]
        for what, excerpt in diffs:
            text += ["--- differs: %s ---" % what, excerpt] if excerpt else ["--- differs: %s ---" % what]
        for name, run in (("serial", serial), ("sharded", sharded)):
            text += ["", "%s: exit %s, %.2f s" % (name, run[0], run[3]),
                     "--- stdout (tail) ---", tail(run[1], 20), "--- stderr (tail) ---", tail(run[2])]
        dst.with_suffix(".txt").write_text("\n".join(text) + "\n")
        return dst

    def save(self, v: Variant, r: Result, path: Path, t, a) -> Path:
        d = self.out / "failures"
        d.mkdir(parents=True, exist_ok=True)
        dst = d / (v.stem + ".pcapng")
        shutil.copyfile(path, dst)
        lua = lua_error_text(path, t[1]) if any(k == "lua_error" for k, _ in r.failures) else ""
        replay = "%s tests/fuzz/fuzz.py --replay %s" % (PYTHON, v.name)
        text = [
            "variant   %s (index %d of master seed %s)" % (v.name, v.index, self.master_seed),
            "mutation  %s" % r.mutation,
            "packets   %d (unmutated %d)" % (r.packets, self.infos[v.sample].packets),
            "",
            "broken invariants:",
            *["  %-15s %s" % f for f in r.failures],
            "",
            "reproduce (from %s; the harness runs tshark with an empty HOME and XDG_CONFIG_HOME, so no"
            " personal plugin or profile takes part):" % ROOT,
            "  " + shell(tshark_cmd(dst)),
            "  " + shell(analyze_cmd(dst)),
            "  " + replay,
            "",
            "tshark: exit %s, %.2f s" % (t[0], r.tshark_s),
        ]
        if lua:
            text += ["Lua errors (tshark -V on the first frame):", lua]
        rows = "\n".join(ln.replace(AGG, " | ") for ln in t[1].splitlines() if any(ln.split("\t")[1:]))
        text += ["--- tshark stdout: rows with an error column or an expert message (tail) ---", tail(rows),
                 "--- tshark stderr (tail) ---", tail(t[2]), "",
                 "analyze: exit %s, %.2f s" % (a[0], r.analyze_s),
                 "--- analyze stdout (tail) ---", tail(a[1], 20), "--- analyze stderr (tail) ---", tail(a[2])]
        dst.with_suffix(".txt").write_text("\n".join(text) + "\n")
        return dst


# -- the plan, baselines, the summary ---------------------------------------------------------------
def plan(names: List[str], kinds: List[str], n: int, master: int) -> List[Variant]:
    combos = [(s, k) for s in names for k in kinds]
    return [Variant(i, *combos[i % len(combos)], random.Random("%d/%d" % (master, i)).randrange(1, 2 ** 31))
            for i in range(n)]


def shards_baseline(info: SampleInfo, work: Path, jobs: int) -> None:
    """A --shards-check base unmutated: it must split and compare equal."""
    out = work / (info.name + "-unmutated")
    try:
        serial, _, bad = run_both(info.path, out, jobs)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    shards, whole = shards_of(info.path, jobs - 1, work)
    if shards < 2:
        bad.append(("harness", "the base is not split: %s" % whole))
    info.base_analyze, info.baseline_failures = serial[3], sorted(set(bad))


def baseline(info: SampleInfo, runs: int = 3) -> None:
    ts, as_ = [], []
    for _ in range(runs):
        rc, out, err, s = run_tshark(info.path)
        ts.append(s)
        info.baseline_failures += check_tshark(rc, out, err)
        rc, out, err, s = run_analyze(info.path)
        as_.append(s)
        info.baseline_failures += check_analyze(rc, out, err)
    info.base_tshark, info.base_analyze = statistics.median(ts), statistics.median(as_)
    info.baseline_failures = sorted(set(info.baseline_failures))


def summarize(results: List[Result], infos: Dict[str, SampleInfo], seconds: float, args, out: Path) -> dict:
    per_kind = Counter(r.kind for r in results)
    per_mutator = Counter(r.mutator for r in results)
    failures = [r for r in results if r.failures]
    per_invariant = Counter(k for r in failures for k in {k for k, _ in r.failures})
    distinct: Dict[Tuple[str, str], List[Result]] = defaultdict(list)
    for r in failures:
        for k, detail in r.failures:
            key = detail if k != "slow" else "%s %s" % (r.sample, detail.split()[0])
            key = re.sub(r"\(frames [\d,]+\)|frames [\d,]+", "(frames ...)", key) if k != "traceback" else key
            distinct[(k, key)].append(r)
    slow_t = max(results, key=lambda r: r.tshark_ratio, default=None)
    slow_a = max(results, key=lambda r: r.analyze_ratio, default=None)
    doc = dict(
        seed=args.seed, variants=len(results), jobs=args.jobs, seconds=round(seconds, 1),
        seconds_per_1000=round(seconds / max(len(results), 1) * 1000, 1),
        per_kind=dict(per_kind), per_mutator=dict(sorted(per_mutator.items())),
        per_sample=dict(Counter(r.sample for r in results)),
        baselines={n: dict(packets=i.packets, tshark_s=round(i.base_tshark, 3), analyze_s=round(i.base_analyze, 3),
                           failures=i.baseline_failures) for n, i in infos.items()},
        failed_variants=len(failures), failures_per_invariant=dict(per_invariant),
        distinct_failures=[dict(invariant=k, detail=d, count=len(rs),
                                samples=sorted({r.sample for r in rs}), mutators=sorted({r.mutator for r in rs}),
                                examples=[dict(variant=r.variant, saved=r.saved, mutation=r.mutation[:300])
                                          for r in rs[:3]])
                           for (k, d), rs in sorted(distinct.items(), key=lambda kv: -len(kv[1]))],
        slowest_tshark=dict(ratio=slow_t.tshark_ratio, variant=slow_t.variant, seconds=slow_t.tshark_s) if slow_t else None,
        slowest_analyze=dict(ratio=slow_a.analyze_ratio, variant=slow_a.variant, seconds=slow_a.analyze_s) if slow_a else None,
    )
    if args.shards_check:  # no timing rule here; what counts is whether the variants were split at all
        for n, i in infos.items():
            doc["baselines"][n].update(parts=i.parts, tshark_s=None)
        doc.update(mode="shards", shard_jobs=args.shard_jobs, slowest_tshark=None, slowest_analyze=None,
                   split=dict(variants=sum(1 for r in results if (r.shards or 0) >= 2),
                              shards=dict(sorted(Counter(r.shards or 0 for r in results).items())),
                              whole=dict(Counter(r.whole for r in results if (r.shards or 0) < 2)),
                              serial_s=round(sum(r.analyze_s for r in results), 1),
                              sharded_s=round(sum(r.sharded_s for r in results), 1)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(dict(doc, results=[asdict(r) for r in results]), indent=1))
    return doc


def print_summary(doc: dict) -> None:
    p = print
    p("")
    p("fuzz%s: %d variants, seed %s, %d jobs, %.0f s (%.0f s per 1,000 variants)" % (
        " --shards-check" if doc.get("mode") == "shards" else "", doc["variants"], doc["seed"], doc["jobs"],
        doc["seconds"], doc["seconds_per_1000"]))
    if doc.get("mode") == "shards":
        sp = doc["split"]
        p("  split:       %d of %d variants over 2 or more shards (analyze --jobs %d --split-above 0; shards: %s)%s" % (
            sp["variants"], doc["variants"], doc["shard_jobs"], ", ".join("%s: %d" % kv for kv in sp["shards"].items()),
            "; read whole: " + ", ".join("%s %d" % kv for kv in sp["whole"].items()) if sp["whole"] else ""))
    p("  per kind:    " + ", ".join("%s %d" % kv for kv in sorted(doc["per_kind"].items())))
    p("  per mutator: " + ", ".join("%s %d" % kv for kv in doc["per_mutator"].items()))
    if doc["slowest_tshark"]:
        p("  slowest:     tshark %.2fx (%s, %.2f s), analyze %.2fx (%s, %.2f s)" % (
            doc["slowest_tshark"]["ratio"], doc["slowest_tshark"]["variant"], doc["slowest_tshark"]["seconds"],
            doc["slowest_analyze"]["ratio"], doc["slowest_analyze"]["variant"], doc["slowest_analyze"]["seconds"]))
    base_bad = {n: b["failures"] for n, b in doc["baselines"].items() if b["failures"]}
    for n, fs in base_bad.items():
        for k, d in fs:
            p("  BASELINE %s: [%s] %s" % (n, k, d))
    p("  failed variants: %d%s" % (doc["failed_variants"], (" (" + ", ".join(
        "%s %d" % kv for kv in sorted(doc["failures_per_invariant"].items())) + ")") if doc["failed_variants"] else ""))
    for f in doc["distinct_failures"]:
        p("  [%s] %s" % (f["invariant"], f["detail"]))
        p("      %d variants; samples %s; mutators %s" % (f["count"], ",".join(f["samples"]), ",".join(f["mutators"])))
        for e in f["examples"]:
            p("      e.g. %s  %s" % (e["variant"], e["saved"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CI's subset: %d variants (%d with --shards-check)" % (
        QUICK_VARIANTS, QUICK_SHARD_VARIANTS))
    g.add_argument("--variants", type=int, help="how many variants (default: the quick subset's count)")
    g.add_argument("--replay", metavar="SAMPLE:KIND:SEED", help="run one variant again (a base's: --shards-check)")
    ap.add_argument("--shards-check", action="store_true",
                    help="mutate the merged bases (%s) and compare analyze --jobs %d --split-above 0 with --jobs 1"
                    % (", ".join(SHARD_BASES), SHARD_JOBS))
    ap.add_argument("--c-plugin", action="store_true",
                    help="run the RSVD samples' variants through the compiled msrsvd plugin built with ASan+UBSan "
                    "and through msrsvd.lua, and compare (--quick: %d variants)" % C_QUICK_VARIANTS)
    ap.add_argument("--c-source", type=Path, metavar="FILE",
                    help="--c-plugin: compile this C source instead of the rendered msrsvd (a planted fault)")
    ap.add_argument("--c-tshark", default="4.0", metavar="SERIES",
                    help="--c-plugin: the tshark of tests/tsharks.py to build and run on (4.0, 4.4, 4.6)")
    ap.add_argument("--shard-jobs", type=int, default=SHARD_JOBS, metavar="N",
                    help="--shards-check: the sharded run's --jobs (N-1 tsharks; default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where failures and summary.json go (%(default)s)")
    ap.add_argument("--only", action="append", metavar="SAMPLE", help="only this sample or base (repeatable)")
    ap.add_argument("--kinds", default=",".join(mutators.KINDS), help="comma-separated subset of %(default)s")
    args = ap.parse_args(argv)

    if args.replay and args.replay.rsplit(":", 2)[0] in SHARD_BASES:
        args.shards_check = True  # a base's variant is only ever a shards check
    if args.shard_jobs < 3:
        ap.error("--shard-jobs must be 3 or more: --jobs N splits over N-1 tsharks")
    if args.c_plugin and args.shards_check:
        ap.error("--c-plugin and --shards-check are two modes: one at a time")
    pool = SHARD_BASES if args.shards_check else samples.SCENARIOS
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in mutators.KINDS]
    names = sorted(pool)
    if args.c_plugin and not args.only:  # the C target renders msrsvd; ClusPrep stays Lua: nothing to run
        names = [n for n in names if n.startswith("rsvd_")]
    if args.only:
        unknown += [n for n in args.only if n not in names]
        names = [n for n in names if n in args.only]
    if unknown:
        ap.error("unknown %s or kind: %s" % ("base" if args.shards_check else "sample", ", ".join(unknown)))
    if args.replay:
        sample, kind, seed = args.replay.rsplit(":", 2)
        if sample not in pool or kind not in mutators.KINDS:
            ap.error("--replay SAMPLE:KIND:SEED with a sample of samples.SCENARIOS (or a base of %s) and a kind of %s"
                     % (", ".join(SHARD_BASES), mutators.KINDS))
        names, variants = [sample], [Variant(0, sample, kind, int(seed))]
    else:
        quick = QUICK_SHARD_VARIANTS if args.shards_check else C_QUICK_VARIANTS if args.c_plugin else QUICK_VARIANTS
        variants = plan(names, kinds, args.variants or quick, args.seed)

    global _TSHARK_ENV
    _TSHARK_ENV = tshark_env(config=False)
    t0 = time.monotonic()
    if args.c_plugin:
        print("fuzz --c-plugin: building msrsvd.so with the sanitizers for tshark %s..." % args.c_tshark,
              file=sys.stderr, flush=True)
        c = CTarget.build(args.c_tshark, args.c_source)
        work = c.work()
    else:
        c, work = None, Path(tempfile.mkdtemp(prefix="fuzz-work-"))
    results: List[Result] = []
    try:
        if c:
            infos = {n: load_sample(n) for n in names}
            print("fuzz --c-plugin: %d variants over %d samples (%s), seed %d, %d jobs, on %s; baselines..." % (
                len(variants), len(names), ",".join(kinds), args.seed, args.jobs, c.tshark),
                file=sys.stderr, flush=True)
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
                list(ex.map(lambda i: c_baseline(i, c, work), [i for i in infos.values() if i.family == "rsvd"]))
        elif args.shards_check:
            infos = {n: load_base(n, work) for n in names}
            print("fuzz --shards-check: %d variants over %d merged bases (%s), seed %d, %d jobs, analyze --jobs %d "
                  "--split-above 0 against --jobs 1; the bases unmutated..." % (
                      len(variants), len(names), ",".join(kinds), args.seed, args.jobs, args.shard_jobs),
                  file=sys.stderr, flush=True)
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
                list(ex.map(lambda i: shards_baseline(i, work, args.shard_jobs), infos.values()))
        else:
            infos = {n: load_sample(n) for n in names}
            for n, i in infos.items():
                if not i.struct_mutators and "struct" in kinds:
                    print("note: %s has no clear-text RSVD message or ClusPrep stub; its struct variants corrupt bytes"
                          % n, file=sys.stderr)
            print("fuzz: %d variants over %d samples (%s), seed %d, %d jobs; baselines..." % (
                len(variants), len(names), ",".join(kinds), args.seed, args.jobs), file=sys.stderr, flush=True)
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
                list(ex.map(baseline, infos.values()))
        runner = Runner(infos, args.out, work, None if args.replay else args.seed, args.shard_jobs)
        runner.c = c
        run = runner.run_c if c else runner.run_shards if args.shards_check else runner.run
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
            futures = [ex.submit(run, v) for v in variants]
            for k, f in enumerate(concurrent.futures.as_completed(futures), 1):
                r = f.result()
                results.append(r)
                if r.failures:
                    print("FAIL %s (%s): %s" % (r.variant, r.mutator, "; ".join("[%s] %s" % x for x in r.failures)[:300]),
                          file=sys.stderr, flush=True)
                if k % 50 == 0 or k == len(futures):
                    print("  %d/%d done, %d failed, %.0f s" % (k, len(futures), sum(1 for x in results if x.failures),
                                                                time.monotonic() - t0), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if c:
            c.space.remove()
    results.sort(key=lambda r: (r.sample, r.kind, r.seed))
    if c:
        doc = summarize_c(results, infos, time.monotonic() - t0, args, args.out, c)
        print_summary_c(doc)
        if args.replay and results:
            r = results[0]
            print("  mutation: %s" % r.mutation)
            print("  C exit %s %.2f s, Lua exit %s%s" % (r.tshark_rc, r.tshark_s, r.lua_rc,
                                                      "; not run: " + r.skipped if r.skipped else ""))
        bad = doc["failed_variants"] or any(b["failures"] for b in doc["baselines"].values())
        return 1 if bad else 0
    doc = summarize(results, infos, time.monotonic() - t0, args, args.out)
    print_summary(doc)
    if args.replay and results:
        r = results[0]
        print("  mutation: %s" % r.mutation)
        if args.shards_check:
            print("  split: %s; serial exit %s %.2f s, sharded exit %s %.2f s" % (
                "%d shards" % r.shards if r.shards else "no, read whole (%s)" % r.whole, r.analyze_rc, r.analyze_s,
                r.sharded_rc, r.sharded_s))
        else:
            print("  tshark exit %s %.2f s, analyze exit %s %.2f s" % (r.tshark_rc, r.tshark_s, r.analyze_rc,
                                                                     r.analyze_s))
    bad = doc["failed_variants"] or any(i.baseline_failures for i in infos.values())
    return 1 if bad else 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "tests/fuzz/fuzz.py"))
