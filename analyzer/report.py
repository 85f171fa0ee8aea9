"""Reports: the text a person reads, the JSON a script reads, and the files --output writes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

from .findings import SEVERITIES
from .pipeline import CaptureResult
from .rsvd_sessions import PRE_CAPTURE


def document(results: List[CaptureResult], tshark_version: str) -> dict:
    """The JSON document: captures, rsvd_sessions, clusprep_sequences, findings, rules_not_evaluated."""
    several = len(results) > 1
    doc = dict(captures=[], rsvd_sessions=[], clusprep_sequences=[], findings=[], rules_not_evaluated=[])
    for r in results:
        doc["captures"].append(dict(path=str(r.path), packets=r.packets, truncated=r.truncated,
                                    smb2_messages=r.smb2_messages, dcerpc_pdus=r.dcerpc_pdus,
                                    seconds=round(r.seconds, 3), tshark=tshark_version,
                                    tshark_messages=r.tshark_errors, encrypted=r.encrypted))
        if r.files:
            doc["captures"][-1]["files"] = r.files
        tag = (lambda d: dict(d, capture=r.path.name)) if several else (lambda d: d)
        doc["rsvd_sessions"] += [tag(s) for s in r.rsvd_sessions]
        doc["clusprep_sequences"] += [tag(s) for s in r.clusprep_sequences]
        doc["findings"] += [tag(f.as_dict()) for f in r.findings]
        doc["rules_not_evaluated"] += [tag(n.as_dict()) for n in r.not_evaluated]
    return doc


def to_json(results: List[CaptureResult], tshark_version: str, failed=()) -> str:
    """The document; with `failed` ((capture, why) of each capture that could not be read, as the CLI
    said on stderr), also `failed`: [{path, error}]."""
    doc = document(results, tshark_version)
    if failed:
        doc["failed"] = [dict(path=str(path), error=why) for path, why in failed]
    return json.dumps(doc, indent=2, sort_keys=False, default=str)


def _ms(x) -> str:
    return "-" if x is None else ("%.3f ms" % x)


def _where(where) -> str:
    """file#81,82 other#3: frames grouped by the file they are in."""
    parts = []
    for name, frame in where:
        if parts and parts[-1][0] == name:
            parts[-1][1].append(str(frame))
        else:
            parts.append((name, [str(frame)]))
    return " ".join("%s#%s" % (name, ",".join(frames)) for name, frames in parts)


def to_text(results: List[CaptureResult], tshark_version: str) -> str:
    out: List[str] = []
    for r in results:
        out.append("Capture %s: %d packets%s (tshark %s, %.1f s)" % (
            r.path, r.packets, ", TRUNCATED" if r.truncated else "", tshark_version, r.seconds))
        for fi in r.files:
            out.append("  merged: %s (%d packets)" % (fi["path"], fi["packets"]))
        out.append("")
        if r.rsvd_sessions:
            out.append("RSVD opens (%d)" % len(r.rsvd_sessions))
            for s in r.rsvd_sessions:
                who = s["initiator_host"] or "-"
                if s["initiator_id"]:
                    who += " (initiator %s)" % s["initiator_id"]
                where = "%s\\%s" % (s["tree"] or "?", s["file_name"] or PRE_CAPTURE)
                out.append("  %s  %s -> %s  %s" % (s["open_id"], s["client"], s["server"], where))
                channels = s["channels"].split()
                out.append("    initiator %s, context %s v%s, frames %s-%s%s" % (
                    who, s["context_layout"] or "-", s["context_version"] if s["context_version"] is not None else "-",
                    s["first_frame"], s["close_frame"] or "end",
                    ", over %d connections (streams %s)" % (len(channels), ", ".join(channels))
                    if len(channels) > 1 else ""))
                mix = ", ".join("%s %d" % kv for kv in sorted(s["scsi_opcodes"].items(), key=lambda kv: -kv[1]))
                out.append("    %d tunnel operations, %d SCSI (%s), %d READ, %d WRITE, %d errors; latency p50 %s, "
                           "p99 %s" % (s["operations"], s["scsi_commands"], mix or "none", s["reads"], s["writes"],
                                       s["errors"], _ms(s["latency_p50_ms"]), _ms(s["latency_p99_ms"])))
            out.append("")
        if r.clusprep_sequences:
            out.append("ClusPrep conversations (%d)" % len(r.clusprep_sequences))
            for c in r.clusprep_sequences:
                out.append("  %s: %s%s, %d calls" % (c["conversation"], ", ".join(c["interfaces"]) or "-",
                                                    " (sealed)" if c["sealed"] else "", c["calls"]))
                for call in c["sequence"]:
                    out.append("    %6d  %-18s %-38s %-28s %s" % (call["frame"], call["interface"], call["method"],
                                                                  call["result"], _ms(call["latency_ms"])))
            out.append("")
        e = r.encrypted
        if e.get("smb3_messages") or e.get("sealed_dcerpc_pdus"):
            parts = []
            if e.get("smb3_messages"):
                parts.append("%d SMB 3 messages of session%s %s" % (
                    e["smb3_messages"], "s" if len(e["smb3_sessions"]) > 1 else "", ", ".join(e["smb3_sessions"])))
            if e.get("sealed_dcerpc_pdus"):
                parts.append("%d sealed ClusPrep PDUs" % e["sealed_dcerpc_pdus"])
            out.append("Encrypted and not decrypted: %s (see Rules not evaluated for the keys that unlock them)"
                       % "; ".join(parts))
            out.append("")
        if r.not_evaluated:
            out.append("Rules not evaluated (%d subjects)" % len(r.not_evaluated))
            for n in r.not_evaluated:
                out.append("  %s: %s" % (n.subject, n.reason))
                out.append("    %s" % ", ".join(n.rules))
                if n.unlock:
                    out.append("    to evaluate them: %s" % n.unlock)
            out.append("")
        if not r.smb2_messages and not r.dcerpc_pdus and not e.get("smb3_messages"):
            out.append("No SMB2 or DCE/RPC traffic in this capture: nothing here for the RSVD or ClusPrep rules.")
            out.append("")
        counts = {s: sum(1 for f in r.findings if f.severity == s) for s in SEVERITIES}
        out.append("Findings: %d errors, %d warnings (violations); %d observations" % (
            counts["error"], counts["warning"], counts["observation"]))
        for sev in SEVERITIES:
            items = [f for f in r.findings if f.severity == sev]
            if not items:
                continue
            out.append("  %s" % sev.upper())
            for f in items:
                frames = _where(f.where) if f.where else ",".join(str(x) for x in f.frames) or "-"
                who = "%s: " % f.side if f.side else ""
                out.append("    [%s] frames %s: %s%s (%s) [%s]" % (f.rule, frames, who, f.message, f.subject, f.spec))
        out.append("")
    return "\n".join(out)


def write_output(directory: Path, results: List[CaptureResult], tshark_version: str) -> None:
    """findings.jsonl beside the tables (CSV and Parquet) that Tables already wrote."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = document(results, tshark_version)
    with open(directory / "findings.jsonl", "w", encoding="utf-8") as f:
        for item in doc["findings"]:
            f.write(json.dumps(item, default=str) + "\n")
