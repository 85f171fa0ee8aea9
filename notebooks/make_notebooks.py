"""Write the notebooks of this folder from their cells here, without outputs (python notebooks/make_notebooks.py).
Editing a notebook in Jupyter is fine too: clear its outputs before committing (tests/test_notebooks.py checks)."""
import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n").splitlines(True)}


def code(text, tags=()):
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": text.strip("\n").splitlines(True)}


def write(name, cells):
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                       "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    for i, c in enumerate(cells):
        c["id"] = "%s-%02d" % (Path(name).stem[:20].replace("_", "-"), i)
    (HERE / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


EXPLORE = [
    md("""
# Explore a capture: MS-RSVD shared disks and MS-CSVP ClusPrep

`analyzer.load()` runs the analyzer's pipeline (tshark with the generated plugins) and keeps its tables as
pandas DataFrames (README: "Tables"). Put your capture's path in the next cell; by default it is a bundled
sample with two cluster nodes fighting over a shared VHDX's persistent reservation. Nothing else needs changing.
"""),
    code("""
import samples
CAPTURE = samples.path("rsvd_cluster_events")  # or "/path/to/your.pcapng"
CLUSPREP_CAPTURE = samples.path("clusprep_storage_violations")  # a ClusPrep validation run with broken rules
""", tags=["parameters"]),
    code("""
import pandas as pd
import matplotlib.pyplot as plt
import analyzer
from analyzer.output import notebook as nb

pd.set_option("display.max_colwidth", 80)
cap = analyzer.load(CAPTURE)
clus = analyzer.load(CLUSPREP_CAPTURE)
cap, clus
"""),
    md("## The tables\n\nWho opened which shared disk (initiator host, share and file), with its SCSI outcomes:"),
    code("""
cap.sessions[["initiator_host", "client", "tree", "file_name", "operations", "scsi_commands", "errors",
              "check_conditions", "reservation_conflicts", "unit_attentions", "latency_p50_ms"]]
"""),
    code("""
cap.rsvd_operations[["request_frame", "operation", "status", "latency_ms"]].head(10)
"""),
    md("""
Every failed I/O, whatever path its failure took (a SCSI status and sense in the answer, the tunnel's
STATUS_SVHDX_* code, or a stored error and the SRB_STATUS fetch that carries its sense), one row each, with the
frames of each leg; then how many of each kind per disk:
"""),
    code("""
cap.io_errors[["request_frame", "initiator_host", "command", "lba", "blocks", "kind", "status", "sense_frame"]]
"""),
    code("""
cap.io_errors.groupby(["disk", "kind"]).size().rename("failed I/Os").to_frame()
"""),
    code("""
clus.clusprep_calls[["request_frame", "interface", "method", "result", "disk", "latency_ms"]].head(10)
"""),
    md("## Response times\n\nPer SCSI opcode and per ClusPrep method, one dot per command or call (log scale):"),
    code("""
fig = nb.latency_figure(cap.scsi_commands, pd.concat([cap.clusprep_calls, clus.clusprep_calls]))
"""),
    md("## Operations over time per initiator host, errors marked"),
    code("""
fig = nb.operations_figure(cap)
"""),
    md("""
## The reservation story per disk

`cap.reservations` has one row per persistent-reservation event: PR OUT (register, reserve, preempt, release,
clear, move) with its keys, PR IN reads with the keys and holder they returned, every reservation conflict and
every unit attention that says a reservation was preempted or released, and ClusPrep's PR calls.
"""),
    code("""
cap.reservations[["frame", "host", "event", "command", "key", "sa_key", "type", "registered", "holder",
                  "result", "sense"]]
"""),
    code("""
fig = nb.reservation_figure(cap.reservations)
"""),
    md("ClusPrep's PR calls on the validated disk (the node called is the lane):"),
    code("""
fig = nb.reservation_figure(clus.reservations, title="ClusPrep PR calls")
"""),
    md("## ClusPrep calls per node and interface\n\nFailed calls in red, calls a finding names ringed (their frame):"),
    code("""
fig = nb.swimlane_figure(clus)
"""),
    md("""
## Findings, and the packet behind one

Each finding names its frames; `nb.wireshark_filter` gives the display filter that shows them in Wireshark.
"""),
    code("""
f = clus.findings[["rule", "severity", "first_frame", "frames", "message"]].copy()
f["wireshark"] = [nb.wireshark_filter(fr) for fr in nb.frames_of(f)]
f.head(10)
"""),
    md("""
`nb.open_packet(path, frame)` decodes one frame with tshark and both generated plugins loaded, as a pyshark packet.
It runs pyshark in a worker thread with its own event loop, so it works inside this running kernel without
`nest_asyncio`.
"""),
    code("""
first = clus.findings.iloc[0]
packet = nb.open_packet(CLUSPREP_CAPTURE, int(first.first_frame))
print(first.rule, "->", [l.layer_name for l in packet.layers])
print("method:", packet.clusprep.get_field_value("method"))
"""),
    code("""
conflict = cap.reservations[cap.reservations.event == "conflict"].iloc[0]
p = nb.open_packet(CAPTURE, int(conflict.response_frame))
print("frame", p.number, "msrsvd fields:", [n for n in p.msrsvd.field_names if "status" in n][:8])
"""),
]

VALIDATION = [
    md("""
# A cluster storage validation run, step by step (MS-CSVP §4.1, §3.3.4)

The "Validate a Configuration" storage tests drive ClusPrep on each node: prepare the node, then per disk
attach, check uniqueness, exercise persistent reservations, bring it online, test file I/O, and release it.
MS-CSVP §4.1 shows that order and §3.3.4 the rules a server enforces. Here we walk the calls of
a good run (`clusprep_storage`) and one that breaks the rules (`clusprep_storage_violations`), and look at
where the sequence broke them. The spec text is in the repository's specs folder (MS-CSVP.md).
"""),
    code("""
import samples
GOOD = samples.path("clusprep_storage")
BROKEN = samples.path("clusprep_storage_violations")
""", tags=["parameters"]),
    code("""
import pandas as pd
import analyzer
from analyzer.output import notebook as nb

pd.set_option("display.max_colwidth", 110)
good, broken = analyzer.load(GOOD), analyzer.load(BROKEN)
"""),
    md("""
## The expected order (§4.1)

The client first calls **CprepPrepareNode** and **CprepPrepareNodePhase2** (the server's Prepare State goes
Initial → Preparing → Online and it builds its disk list). Each disk is then **attached**
(CprepDiskAttach) before any call that names it, its **PR** commands register/reserve/preempt/release
the disk, it is brought **online** before file tests (CprepDiskOnline, IsOnline, SetOnline, file data),
then taken **offline** and its defense stopped. Below: each step of the good run with its phase.
"""),
    code("""
PHASES = [("prepare", ("CprepPrepareNode",)), ("discover", ("CprepDiskGetProps", "CprepDiskGetDsms",
          "CprepDiskGetUniqueIds", "CprepDiskVerifyUnique", "CprepDiskIsReadOnly", "CprepCheckNetFtBindings",
          "CprepIsNodeClustered")),
          ("attach", ("CprepDiskAttach",)), ("reservations", ("CprepDiskPR", "CprepDiskIsPRPresent",
          "CprepDiskFindKey", "CprepDiskGetArbSectors")), ("raw I/O", ("CprepDiskRaw",)),
          ("online", ("CprepDiskOnline", "CprepDiskIsOnline", "CprepDiskSetOnline", "CprepDiskIsReadable")),
          ("file system", ("CprepDiskDiskPartitionIsNtfs", "CprepDiskGetFSName", "CprepDiskWriteFileData",
          "CprepDiskVerifyFileData", "CprepDiskDeleteFile")),
          ("release", ("CprepDiskOffline", "CprepDiskStopDefense")), ("CSV shares", ("CprepCsv", "CprepCreate",
          "CprepConnect"))]

def phase(method):
    return next((name for name, starts in PHASES if method.startswith(starts)), "other")

def steps(c):
    s = c.clusprep_calls[["request_frame", "interface", "method", "result", "disk"]].copy()
    s["phase"] = s.method.map(phase)
    return s

steps(good)
"""),
    code("""
summary = steps(good).groupby("phase", sort=False).agg(first_frame=("request_frame", "min"),
                                                        calls=("method", "size"))
summary
"""),
    md("""
Does the good run keep that order? The rules of the order are the client's sequence of §3.3.4 (prepare first,
attach before use, online before file tests, the PR order...) and the server's enforcement of it (§3.2.4);
each finding of the good run is marked as one of them or not:
"""),
    code("""
ORDER_RULES = {"clusprep." + r for r in (
    "prepare_node_not_first", "phase2_missing", "disk_not_attached", "disk_not_online", "stop_defense_order",
    "pr_sequence", "partition_out_of_range", "fs_access_unverified", "raw_io_without_arb_sectors",
    "shares_not_created", "prepare_state_not_enforced", "disk_state_not_enforced")}

def by_order(findings):
    f = findings[["rule", "severity", "first_frame", "message"]].copy()
    f.insert(0, "order rule", f.rule.isin(ORDER_RULES))
    return f

good_findings = by_order(good.findings)
other = good_findings[~good_findings["order rule"]]
print("The good run: %d finding(s) of the order rules; %d of other rules (%s)." % (
    good_findings["order rule"].sum(), len(other),
    ", ".join("%s %s: %d" % (rule, sev, n) for (rule, sev), n in other.groupby(["rule", "severity"], sort=False).size().items())))
good_findings
"""),
    md("""
The findings of other rules are not about the order. This sample is synthetic traffic at no authentication,
so the server that served its CprepPrepareNode broke §2.1 (a real server refuses calls below packet privacy:
`low_auth_accepted`, an error, and `insufficient_auth_level`, the observation of the bind); and it calls the
opnums §3.2.4 marks as not used on the wire (`opnum_not_used_on_wire`, observations).
"""),
    md("""
## The broken run

The same walk on `clusprep_storage_violations`: each call with its phase, and the findings that name it.
"""),
    code("""
named = {}
for rule, frames in zip(broken.findings.rule, nb.frames_of(broken.findings)):
    for fr in frames:
        named.setdefault(fr, []).append(rule.split(".", 1)[1])
walk = steps(broken)
walk["broke"] = walk.request_frame.map(lambda f: ", ".join(named.get(int(f), [])))
walk
"""),
    md("""
### Where it broke the rules

Grouped by rule, with the spec section each rule checks. `prepare_state_not_enforced` and `phase2_missing`
are the §3.3.4 / §3.2.1 Prepare State rules (a call before CprepPrepareNodePhase2 completed, or
CprepPrepareNode twice); `disk_not_attached` / `disk_not_online` are §4.1's order per disk; the
`*_not_enforced` and `disk_call_refused` rules are what the server answered when it should have refused (or
refused when it should have answered).
"""),
    code("""
by_rule = broken.findings.groupby(["rule", "spec"], sort=False).agg(
    count=("message", "size"), first_frame=("first_frame", "min"), example=("message", "first"))
by_rule
"""),
    md("The same as a picture: failed calls in red, the calls a finding names ringed with their frame."),
    code("""
fig = nb.swimlane_figure(broken)
"""),
    md("The disk's persistent-reservation calls of both runs, one panel per capture and disk, one lane per node called:"),
    code("""
fig = nb.reservation_figure(pd.concat([good.reservations, broken.reservations]), title="ClusPrep PR calls")
"""),
    md("""
### The node-side rules (§3.3.4)

`clusprep_node_violations` breaks the rules of the node interfaces (IClusterSetup, IClusterLog,
IClusterNetwork2...); its findings per rule:
"""),
    code("""
node = analyzer.load(samples.path("clusprep_node_violations"))
node.findings.groupby(["rule", "spec"]).size().rename("findings").to_frame()
"""),
]

def main(argv=None) -> int:
    argparse.ArgumentParser(prog="notebooks/make_notebooks.py", description=__doc__).parse_args(argv)
    write("explore_capture.ipynb", EXPLORE)
    write("cluster_validation.ipynb", VALIDATION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
