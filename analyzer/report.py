"""Reports: the text a person reads, the JSON a script reads, and the files --output writes."""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import List

from .findings import SEVERITIES
from .pipeline import CaptureResult
from .rsvd_sessions import PRE_CAPTURE
from .tables import iso


def document(results: List[CaptureResult], tshark_version: str) -> dict:
    """The JSON document: captures, rsvd_sessions, clusprep_sequences, findings, rules_not_evaluated."""
    several = len(results) > 1
    doc = dict(captures=[], rsvd_sessions=[], clusprep_sequences=[], findings=[], rules_not_evaluated=[])
    for r in results:
        doc["captures"].append(dict(path=str(r.path), packets=r.packets, truncated=r.truncated,
                                    smb2_messages=r.smb2_messages, dcerpc_pdus=r.dcerpc_pdus,
                                    other_dcerpc_calls=r.other_dcerpc_calls, unknown_dcerpc_calls=r.unknown_dcerpc_calls,
                                    seconds=round(r.seconds, 3), tshark=tshark_version,
                                    tshark_messages=r.tshark_errors, wireshark_reported=r.wireshark_reported,
                                    encrypted=r.encrypted))
        if r.converted:
            doc["captures"][-1]["converted"] = r.converted
        if r.files:
            doc["captures"][-1]["files"] = r.files
        if r.suppressed:  # a rule past its first findings: counted, not listed
            doc["captures"][-1]["findings_not_listed"] = dict(sorted(r.suppressed.items()))
        tag = (lambda d: dict(d, capture=r.path.name)) if several else (lambda d: d)
        doc["rsvd_sessions"] += [tag(s) for s in r.rsvd_sessions]
        doc["clusprep_sequences"] += [tag(s) for s in r.clusprep_sequences]
        doc["findings"] += [tag(dict(f.as_dict(), time=iso(f.first_time))) for f in r.findings]
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


def _n(count: int, word: str, plural: str = "") -> str:
    """1 error, 2 errors; 1 check condition, 0 check conditions."""
    return "%d %s" % (count, word if count == 1 else (plural or word + "s"))


def _when(t) -> str:
    if t is None:
        return "?"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _span(first, last) -> str:
    if first is None:
        return "no timestamps"
    if last is None or last == first:
        return "at %s UTC" % _when(first)
    same_day = _when(first)[:10] == _when(last)[:10]
    return "%s to %s UTC (%.3f s)" % (_when(first), _when(last)[11:] if same_day else _when(last), last - first)


LAYOUTS = {"windows_v2": "Windows layout, version 2", "windows_v1": "Windows layout, version 1",
           "seed": "the 2013 specification's layout", "current": "the current specification's layout"}
GROUPS = [("rsvd_operations", "RSVD operation"), ("scsi_commands", "SCSI command"), ("clusprep_calls", "ClusPrep method")]
MAX_FRAMES_SHOWN = 8
MAX_EXAMPLES = 3
MAX_WIRESHARK_LINES = 10
UNKNOWN_CALLS = ("; %d of them on contexts whose bind is not in the capture, so their interface is unknown (if the "
                 "capture began mid-validation, ClusPrep's may be among them: capture from before it starts)")


def _rule_info():
    from .pipeline import RULE_CLASSES

    return {cls.id: cls for cls in RULE_CLASSES}


def _latency_lines(latency) -> List[str]:
    if not latency:
        return []
    width = max(len(group) for _, group in latency) + 2
    out = ["Response times in ms".ljust(width + 4) + "%7s %9s %9s %9s %9s" % ("count", "min", "p50", "p99", "max")]
    for table, title in GROUPS:
        rows = [(g, s) for (t, g), s in latency.items() if t == table]
        if rows:
            out.append("  " + title)
            for g, s in rows:
                out.append("    %s%7d %9.3f %9.3f %9.3f %9.3f" % (g.ljust(width), s["count"], s["min"], s["p50"],
                                                                  s["p99"], s["max"]))
    return out + [""]


def _open_lines(s) -> List[str]:
    who = s["initiator_host"] or "unknown host"
    where = "%s\\%s" % (s["tree"] or "(share not seen)", s["file_name"] or PRE_CAPTURE)
    out = ["  %s  %s" % (who, where)]
    channels = s["channels"].split()
    out.append("    open %s, %s -> %s, frames %s to %s%s" % (
        s["open_id"], s["client"], s["server"], s["first_frame"], s["close_frame"] or "the end",
        ", over %d connections (TCP streams %s)" % (len(channels), ", ".join(channels)) if len(channels) > 1 else ""))
    facts = []
    if s["initiator_id"]:
        facts.append("initiator id %s" % s["initiator_id"])
    if s["context_layout"]:
        facts.append("open context in %s" % LAYOUTS.get(s["context_layout"], s["context_layout"]))
    if facts:
        out.append("    " + ", ".join(facts))
    out.append("    %s (%s), %s, %s" % (_n(s["operations"], "operation"), "%d failed" % s["errors"],
                                        _n(s["reads"], "READ", "READs"), _n(s["writes"], "WRITE", "WRITEs")))
    if s["scsi_commands"]:
        mix = ", ".join("%s %d" % kv for kv in sorted(s["scsi_opcodes"].items(), key=lambda kv: (-kv[1], kv[0])))
        out.append("    %s: %s" % (_n(s["scsi_commands"], "SCSI command"), mix))
        out.append("      answered with %s, %s; %s" % (
            _n(s["check_conditions"], "check condition"), _n(s["reservation_conflicts"], "reservation conflict"),
            _n(s["unit_attentions"], "unit attention")))
    if s["latency_p50_ms"] is not None:
        out.append("    response time p50 %.3f ms, p99 %.3f ms" % (s["latency_p50_ms"], s["latency_p99_ms"]))
    return out


def _finding_lines(r: CaptureResult, rules) -> List[str]:
    counts = {s: sum(1 for f in r.findings if f.severity == s) for s in SEVERITIES}
    for rule_id, extra in r.suppressed.items():
        cls = rules.get(rule_id)
        if cls is not None:
            counts[cls.severity] += extra
    # one call or command that breaks several rules: each finding says which others it shares
    by_frame = {}
    for f in r.findings:
        if f.frames:
            by_frame.setdefault(f.frames[0], set()).add(f.rule)
    out = ["Findings: %s, %s (rule violations); %s" % (
        _n(counts["error"], "error"), _n(counts["warning"], "warning"), _n(counts["observation"], "observation"))]
    for sev in SEVERITIES:
        groups = {}
        for f in r.findings:
            if f.severity == sev:
                groups.setdefault(f.rule, []).append(f)
        if not groups:
            continue
        out.append("  %s" % {"error": "ERRORS", "warning": "WARNINGS", "observation": "OBSERVATIONS"}[sev])
        for rule_id, items in groups.items():
            cls = rules.get(rule_id)
            total = len(items) + r.suppressed.get(rule_id, 0)
            times = [t for f in items for t in (f.first_time, f.last_time) if t is not None]
            frames = [x for f in items for x in f.frames]
            shown = ",".join(str(x) for x in frames[:MAX_FRAMES_SHOWN]) + (" ..." if len(frames) > MAX_FRAMES_SHOWN else "")
            if items[0].where:
                shown = _where([w for f in items for w in f.where][:MAX_FRAMES_SHOWN])
            title = cls.title if cls is not None and cls.title else rule_id
            out.append("    %s  (%s, %s; %s)" % (title, rule_id, _n(total, "finding"),
                                                 _span(min(times), max(times)) if times else "no timestamps"))
            out.append("      frames %s" % (shown or "-"))
            for f in items[:MAX_EXAMPLES]:
                who = "%s: " % f.side if f.side else ""
                out.append("      - %s%s (%s)" % (who, f.message, f.subject))
                also = sorted(by_frame.get(f.frames[0], set()) - {f.rule}) if f.frames else []
                if also:
                    out.append("        frame %d is also in: %s" % (f.frames[0], ", ".join(also)))
            if total > MAX_EXAMPLES:
                out.append("      ... and %d more" % (total - MAX_EXAMPLES))
            advice = getattr(cls, "advice", "") if cls is not None else ""
            if advice:
                out.append("      Next: %s" % advice)
            out.append("      Spec: %s" % items[0].spec)
    return out


def to_text(results: List[CaptureResult], tshark_version: str) -> str:
    rules = _rule_info()
    out: List[str] = []
    for r in results:
        out.append("Capture %s: %s%s, %s" % (r.path, _n(r.packets, "packet"), ", TRUNCATED" if r.truncated else "",
                                            _span(r.first_time, r.last_time)))
        out.append("  read with tshark %s" % tshark_version)  # the time it took: in the JSON (seconds)
        if r.converted:
            c = r.converted
            left = ", ".join("%s %d" % kv for kv in c["left_out"].items())
            out.append("  read from a %s: %s, each once (%d later appearances at other components dropped)%s%s" % (
                c["format"], _n(c["packets"], "packet"), c["later_appearances"],
                "; left out, link types not converted: %s" % left if left else "",
                "; %d logged short of their size, so RSVD and ClusPrep inside them are cut: capture with pktmon "
                "start --pkt-size 0" % c["logged_short"] if c["logged_short"] else ""))
        for fi in r.files:
            out.append("  merged: %s (%s)" % (fi["path"], _n(fi["packets"], "packet")))
        out.append("")
        e = r.encrypted
        if not r.smb2_messages and not r.dcerpc_pdus and not e.get("smb3_messages"):
            out.append("Nothing to analyze: this capture has no SMB2 and no DCE/RPC traffic, so none of the RSVD or "
                       "ClusPrep rules applies. Check the capture filter (SMB2 is TCP 445; ClusPrep is DCE/RPC on "
                       "TCP 135 and a dynamic port).")
            out.append("")
        if not r.rsvd_sessions and not r.clusprep_sequences and (r.smb2_messages or r.dcerpc_pdus):
            out.append("No shared-VHDX (RSVD) opens and no ClusPrep calls in what tshark could read (%s, %s): "
                       "nothing here for the rules to judge." % (_n(r.smb2_messages, "SMB2 message"),
                                                                 _n(r.dcerpc_pdus, "DCE/RPC PDU")))
            out.append("")
        if r.rsvd_sessions:
            out.append("RSVD shared-disk opens: %d" % len(r.rsvd_sessions))
            for s in r.rsvd_sessions:
                out += _open_lines(s)
            out.append("")
        if r.clusprep_sequences:
            out.append("ClusPrep conversations: %d" % len(r.clusprep_sequences))
            for c in r.clusprep_sequences:
                failed = [call for call in c["sequence"] if call["result"] not in ("S_OK", "ERROR_SUCCESS", "")]
                out.append("  %s: %s%s, %s%s" % (c["conversation"], ", ".join(c["interfaces"]) or "interface unknown",
                                                  " (sealed)" if c["sealed"] else "", _n(c["calls"], "call"),
                                                  ", %d not successful" % len(failed) if failed else ""))
                for call in failed[:10]:
                    out.append("    frame %d  %s %s: %s" % (call["frame"], call["interface"], call["method"],
                                                            call["result"]))
                if len(failed) > 10:
                    out.append("    ... and %s more" % _n(len(failed) - 10, "call"))
            out.append("")
        if r.other_dcerpc_calls:
            out.append("%s of other interfaces, not analyzed (only ClusPrep's are)%s" % (
                _n(r.other_dcerpc_calls, "DCE/RPC call"), UNKNOWN_CALLS % r.unknown_dcerpc_calls
                if r.unknown_dcerpc_calls else ""))
            out.append("")
        out += _latency_lines(r.latency)
        if e.get("smb3_messages") or e.get("sealed_dcerpc_pdus"):
            parts = []
            if e.get("smb3_messages"):
                parts.append("%s of session%s %s" % (
                    _n(e["smb3_messages"], "SMB 3 message"), "s" if len(e["smb3_sessions"]) > 1 else "",
                    ", ".join(e["smb3_sessions"])))
            if e.get("sealed_dcerpc_pdus"):
                parts.append(_n(e["sealed_dcerpc_pdus"], "sealed ClusPrep PDU"))
            out.append("Encrypted and not decrypted: %s (see Rules not evaluated for the keys that unlock them)"
                       % "; ".join(parts))
            out.append("")
        if r.not_evaluated:
            out.append("Rules not evaluated, for %s" % _n(len(r.not_evaluated), "subject"))
            for n in r.not_evaluated:
                out.append("  %s: %s" % (n.subject, n.reason))
                out.append("    %s" % ", ".join(n.rules))
                if n.unlock:
                    out.append("    to evaluate them: %s" % n.unlock)
            out.append("")
        out += _wireshark_lines(r)
        out += _finding_lines(r, rules)
        out.append("")
    return "\n".join(out)


def _wireshark_lines(r: CaptureResult) -> List[str]:
    """What Wireshark's tools said: its dissectors' bugs and tshark's other messages (not rule violations)."""
    if not r.wireshark_reported and not r.tshark_errors:
        return []
    out = ["Wireshark reported (its own dissectors and tools; not rule violations, not counted in the findings)"]
    for w in r.wireshark_reported[:MAX_WIRESHARK_LINES]:
        out.append("  %s%s" % ("frame %d: " % w["frame"] if w["frame"] else "", w["message"]))
    if len(r.wireshark_reported) > MAX_WIRESHARK_LINES:
        out.append("  ... and %s more (all in the JSON: wireshark_reported)"
                   % _n(len(r.wireshark_reported) - MAX_WIRESHARK_LINES, "dissector bug"))
    out += ["  tshark: %s" % line for line in r.tshark_errors[:MAX_WIRESHARK_LINES]]
    if len(r.tshark_errors) > MAX_WIRESHARK_LINES:
        out.append("  ... and %s more (all in the JSON: tshark_messages)"
                   % _n(len(r.tshark_errors) - MAX_WIRESHARK_LINES, "line"))
    return out + [""]


def write_output(directory: Path, results: List[CaptureResult], tshark_version: str) -> None:
    """report.json (the --format json document) beside the tables that Tables wrote (each as CSV,
    JSON Lines and Parquet, findings among them): the same files however many captures."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "report.json", "w", encoding="utf-8") as f:
        f.write(to_json(results, tshark_version) + "\n")
