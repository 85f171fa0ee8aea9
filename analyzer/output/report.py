"""Reports: the text a person reads, the JSON a script reads, and the files --output writes."""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import List

from ..rules.findings import SEVERITIES
from ..pipeline import CaptureResult
from ..reconstruction.reservations import OK_RESULTS
from ..reconstruction.rsvd_records import NAME_NOT_CAPTURED
from ..reconstruction.tables import iso


def document(results: List[CaptureResult], tshark_version: str) -> dict:
    """The JSON document: captures, rsvd_sessions, clusprep_sequences, findings, rules_not_evaluated."""
    several = len(results) > 1
    doc = dict(captures=[], rsvd_sessions=[], io_errors=[], disks=[], clusprep_sequences=[], findings=[],
               rules_not_evaluated=[])
    for r in results:
        doc["captures"].append(dict(path=str(r.path), packets=r.packets, truncated=r.truncated,
                                    smb2_messages=r.smb2_messages, dcerpc_pdus=r.dcerpc_pdus,
                                    other_dcerpc_calls=r.other_dcerpc_calls, unknown_dcerpc_calls=r.unknown_dcerpc_calls,
                                    seconds=round(r.seconds, 3), tshark=tshark_version,
                                    tshark_messages=r.tshark_errors, wireshark_reported=r.wireshark_reported,
                                    encrypted=r.encrypted, io_errors=r.io_error_count))
        if r.converted:
            doc["captures"][-1]["converted"] = r.converted
        if r.files:
            doc["captures"][-1]["files"] = r.files
        if r.suppressed:  # a rule past its first findings: counted, not listed
            doc["captures"][-1]["findings_not_listed"] = dict(sorted(r.suppressed.items()))
        tag = (lambda d: dict(d, capture=r.path.name)) if several else (lambda d: d)
        doc["rsvd_sessions"] += [tag(s) for s in r.rsvd_sessions]
        doc["io_errors"] += [tag(dict(g, first_time=iso(g["first_time"]), last_time=iso(g["last_time"]),
                                      examples=[dict(e, time=iso(e["time"])) for e in g["examples"]]))
                             for g in r.io_errors]
        doc["disks"] += [tag(dict(d, events=[{k: (iso(v) if k in ("time", "last_time") else v) for k, v in e.items()}
                                             for e in d["events"]])) for d in r.disks]
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


# how the open's context (SVHDX_OPEN_DEVICE_CONTEXT, MS-RSVD 2.2.4.12) was laid out: which RSVD the client speaks
LAYOUTS = {"windows_v2": "RSVD version 2, as Windows sends it", "windows_v1": "RSVD version 1, as Windows sends it",
           "seed": "RSVD version 1, laid out as the 2013 specification says (Windows lays it out otherwise)",
           "current": "RSVD version 1, laid out as the current specification says"}
GROUPS = [("rsvd_operations", "RSVD operation"), ("scsi_commands", "SCSI command"), ("clusprep_calls", "ClusPrep method")]
MAX_FRAMES_SHOWN = 8
MAX_EXAMPLES = 3
MAX_WIRESHARK_LINES = 10
UNKNOWN_CALLS = ("; %d of them on contexts whose bind is not in the capture, so their interface is unknown (if the "
                 "capture began mid-validation, ClusPrep's may be among them: capture from before it starts)")


def _rule_info():
    from ..rules import RULE_CLASSES

    return {cls.id: cls for cls in RULE_CLASSES}


def _latency_lines(latency) -> List[str]:
    if not latency:
        return []
    # commands as an engineer writes them (READ(10), tunnel GET_FILE_INFO); ClusPrep methods as named
    shown = {(t, g): (g if t == "clusprep_calls" else command_text(g)) for t, g in latency}
    width = max(len(name) for name in shown.values()) + 2
    out = ["Response times in ms".ljust(width + 4) + "%7s %9s %9s %9s %9s" % ("count", "min", "p50", "p99", "max")]
    for table, title in GROUPS:
        rows = [(shown[t, g], s) for (t, g), s in latency.items() if t == table]
        if rows:
            out.append("  " + title)
            for g, s in rows:
                out.append("    %s%7d %9.3f %9.3f %9.3f %9.3f" % (g.ljust(width), s["count"], s["min"], s["p50"],
                                                                  s["p99"], s["max"]))
    return out + [""]


def command_text(name: str) -> str:
    """A command as Wireshark's SCSI dissector and a storage engineer write it: READ(10), SERVICE
    ACTION IN(16), SMB2 WRITE, the tunnel's GET_FILE_INFO."""
    if not name:
        return "(unknown command)"
    if name.startswith("RSVD_TUNNEL_"):
        op = name[len("RSVD_TUNNEL_"):]
        return "tunnel " + (op[:-len("_OPERATION")] if op.endswith("_OPERATION") else op)
    head, _, size = name.rpartition("_")
    if head and size.isdigit() and not name.startswith("SMB2"):
        return "%s(%s)" % (head.replace("_", " "), size)
    return name.replace("_", " ")


def _open_lines(s) -> List[str]:
    who = s["initiator_host"] or "unknown host"
    where = "%s\\%s" % (s["tree"] or "(share not seen)", s["file_name"] or NAME_NOT_CAPTURED)
    out = ["  %s  %s" % (who, where)]
    channels = s["channels"].split()
    out.append("    %s -> %s, frames %s to %s%s" % (
        s["client"], s["server"], s["first_frame"], s["close_frame"] or "the end of the capture",
        ", over %d connections (TCP streams %s)" % (len(channels), ", ".join(channels)) if len(channels) > 1 else ""))
    session, _, file_id = s["open_id"].partition(":")
    out.append("    SMB2 session %s, file id %s" % (session, file_id))
    facts = []
    if s["initiator_id"]:
        facts.append("initiator id %s" % s["initiator_id"])
    if s["context_layout"]:
        facts.append(LAYOUTS.get(s["context_layout"], s["context_layout"]))
    if facts:
        out.append("    " + "; ".join(facts))
    work = [_n(s["operations"], "tunnel operation"), _n(s["reads"], "READ", "READs"), _n(s["writes"], "WRITE", "WRITEs")]
    if s["scsi_commands"]:
        mix = ", ".join("%s %d" % (command_text(k), v)
                        for k, v in sorted(s["scsi_opcodes"].items(), key=lambda kv: (-kv[1], kv[0])))
        work.append("%s (%s)" % (_n(s["scsi_commands"], "SCSI command"), mix))
    out.append("    " + ", ".join(work))
    kinds = [(s["reservation_conflicts"], "reservation conflict"), (s["unit_attentions"], "unit attention"),
             (s["check_conditions"], "other check condition" if s["unit_attentions"] else "check condition")]
    other = s["errors"] - sum(n for n, _ in kinds)
    detail = [_n(n, w) for n, w in kinds + [(other, "other failure")] if n]
    out.append("    %s%s" % ("no failed I/O" if not s["errors"] else _n(s["errors"], "failed I/O"),
                             ": " + ", ".join(detail) + " (see I/O errors)" if detail else ""))
    if s["latency_p50_ms"] is not None:
        out.append("    response time p50 %.3f ms, p99 %.3f ms" % (s["latency_p50_ms"], s["latency_p99_ms"]))
    return out


def _clock(t) -> str:
    return _when(t)[11:] if t is not None else "?"


def _io_what(e: dict) -> str:
    """What the failed I/O asked for: command, LBA range and length."""
    what = command_text(e["command"])
    lba = ("LBA %d" % e["lba"] + (", %s" % _n(e["blocks"], "block") if e["blocks"] is not None else "")
           if e["lba"] is not None else "")
    if e["offset"] is not None:  # a READ/WRITE: bytes, and the LBA when the sector size is known
        return "%s of %s at offset %d%s" % (what, _n(e["length"] or 0, "byte"), e["offset"], " (%s)" % lba if lba else "")
    if e["command"] == "RSVD_TUNNEL_SRB_STATUS_OPERATION" and e["status_key"] is not None:
        return "%s asking for stored error %d" % (what, e["status_key"])
    return what + (" " + lba if lba else "") + (", %s" % _n(e["length"], "byte") if e["length"] else "")


def _io_answer(e: dict) -> str:
    """How it failed, leg by leg."""
    legs = []
    if e["status"]:
        status = e["status"].split("|")[0]
        stored = e["path"] == "stored" and e["status_key"] is not None
        legs.append("answered %s%s" % (status, " (key %d)" % e["status_key"] if stored else ""))
    scsi = []
    if e["scsi_status"] and e["scsi_status"] != "GOOD":
        scsi.append(e["scsi_status"].replace("_", " "))
    if e["srb_status"] and e["srb_status"] not in ("SRB_STATUS_SUCCESS", "SRB_STATUS_ERROR"):
        scsi.append(e["srb_status"])
    if e["sense_key"]:
        scsi.append("sense %s, %s%s" % (e["sense_key"].replace("_", " "), e["additional_sense"] or "no additional sense",
                                        " (ASC 0x%02X, ASCQ 0x%02X)" % (e["asc"], e["ascq"]) if e["asc"] is not None
                                        else ""))
    if e["path"] == "stored":
        if e["retrieval"] == "retrieved":
            legs.append("the client fetched the stored error (SRB_STATUS): %s" % (", ".join(scsi) or "no SCSI error in it"))
        else:
            legs.append("the stored error was %s" % e["retrieval"])
    elif e["path"] == "retrieval":
        legs.append("fetched with SRB_STATUS, stored before the capture began: %s" % ", ".join(scsi))
    elif scsi:
        legs.append(", ".join(scsi))
    return "; ".join(legs) or "failed"


def _io_frames(e: dict) -> str:
    named = [(e["request_frame"], "request"), (e["response_frame"], "answer"), (e["retrieval_frame"], "fetch"),
             (e["sense_frame"], "sense")]
    return ", ".join("%d %s" % (f, w) for f, w in named if f is not None)


def _io_error_lines(r: CaptureResult) -> List[str]:
    if not r.io_error_count:
        return []
    disks = sorted({(g["server"], g["disk"]) for g in r.io_errors})
    out = ["I/O errors: %s on %s (each one a row of the io_errors table)" % (
        _n(r.io_error_count, "failed I/O"), _n(len(disks), "disk"))]
    for server, disk in disks:
        out.append("  %s on %s" % (disk, server))
        for g in (g for g in r.io_errors if (g["server"], g["disk"]) == (server, disk)):
            out.append("    %s: %s, %s" % (g["kind"], _n(g["count"], "time"), _span(g["first_time"], g["last_time"])))
            for e in g["examples"][:MAX_EXAMPLES]:
                who = e["initiator_host"] + (" (initiator %s)" % e["initiator_id"] if e["initiator_id"] else "")
                out.append("      %s  %s: %s" % (_clock(e["time"]), who, _io_what(e)))
                out.append("        %s" % _io_answer(e))
                out.append("        frames %s" % _io_frames(e))
            if g["count"] > MAX_EXAMPLES:
                out.append("      ... and %d more" % (g["count"] - MAX_EXAMPLES))
    return out + [""]


PR_TYPES = {"WRITE_EXCLUSIVE_REGISTRANTS_ONLY": "write exclusive, registrants only",
            "EXCLUSIVE_ACCESS_REGISTRANTS_ONLY": "exclusive access, registrants only",
            "WRITE_EXCLUSIVE_ALL_REGISTRANTS": "write exclusive, all registrants",
            "EXCLUSIVE_ACCESS_ALL_REGISTRANTS": "exclusive access, all registrants",
            "WRITE_EXCLUSIVE": "write exclusive", "EXCLUSIVE_ACCESS": "exclusive access"}
MAX_STORY = 40  # events of a disk's story in the text (the reservations table has all)


def _key(k, host="") -> str:
    if not k:
        return "an unknown key"
    return "key %s%s" % (k, " (%s)" % host if host else "")


def _story_line(e: dict) -> str:
    """One reservation event, said as what happened to the disk."""
    ev, g = e.get("event"), e.get
    key, sa = _key(g("key"), g("key_host")), _key(g("sa_key"), g("sa_host"))
    kind = " (%s)" % PR_TYPES.get(g("type"), g("type")) if g("type") and g("type") != "0" else ""
    if ev == "register":
        text = "registered %s" % _key(g("sa_key")) + (" in place of %s" % key if g("key") and int(g("key"), 16) else "")
    elif ev == "unregister":
        text = "removed its registration (%s)" % key
    elif ev == "reserve":
        text = "reserved the disk%s with %s" % (kind, key)
    elif ev == "release":
        text = "released the reservation (%s)" % key
    elif ev == "clear":
        text = "cleared every registration and the reservation"
    elif ev == "preempt":
        text = "preempted %s with %s%s" % (sa, key, kind) if g("sa_key") else "preempted with %s" % key
    elif ev == "move":
        text = "moved the reservation to %s" % sa
    elif ev == "read_reservation":
        text = "read the reservation: %s" % ("held by %s" % _key(g("holder")) if g("holder") else "none")
    elif ev == "read_keys":
        text = "read the registered keys: %s" % (g("registered") or "none")
    elif ev == "read_full_status":
        text = "read the full status: keys %s%s" % (g("registered") or "none",
                                                    ", held by %s" % _key(g("holder")) if g("holder") else "")
    elif ev == "report_capabilities":
        text = "read the reservation capabilities"
    elif ev == "conflict":
        text = "%s refused: reservation conflict" % command_text(g("command"))
    elif ev == "unit_attention":
        text = "told %s (answering %s)" % ((g("sense") or "UNIT ATTENTION").replace("_", " "), command_text(g("command")))
    elif ev == "is_pr_present":
        text = "asked whether a reservation is present: %s" % (g("detail") or "answer unknown")
    elif ev == "find_key":
        text = "looked for %s: %s" % (key, g("detail") or "answer unknown")
    elif ev == "arbitrate":
        text = "arbitrated for the disk (registered and reserved it)"
    else:
        text = ev or "?"
    if g("source") == "clusprep":
        text = "via ClusPrep %s: %s" % (g("command"), text)
    ok = g("result") in OK_RESULTS or ev in ("conflict", "unit_attention")
    if g("result") == "sealed":
        text += " (its answer sealed)"
    elif not ok:
        text += ": FAILED, %s" % (g("result") or "no answer")
    elif ev in ("reserve", "preempt", "move", "release", "clear", "unregister", "arbitrate") and g("source") == "rsvd":
        text += "; %s" % ("now held by %s" % _key(g("holder_after"), g("holder_host")) if g("holder_after")
                          else "no reservation now")
    elif ev == "conflict":
        text += " (%s)" % ("held by %s" % _key(g("holder_after"), g("holder_host")) if g("holder_after")
                           else "the holder is not in the capture")
    return text


def _disk_lines(r: CaptureResult) -> List[str]:
    stories = [d for d in r.disks if d["events"]]
    if not stories:
        return []
    out = ["Persistent reservations (PR), per disk: who registered, who held it, who was refused (every event is "
           "a row of the reservations table)"]
    for d in stories:
        also = " = %s" % ", ".join(d["also"]) if d["also"] else ""
        now = ("held by %s" % _key(d["holder"], d["holder_host"])) if d["holder"] else "no reservation known"
        out.append("  %s%s: %s at the end" % (d["disk"], also, now))
        events = d["events"]
        width = max(len(e.get("host") or "?") for e in events[:MAX_STORY])
        for e in events[:MAX_STORY]:
            text = _story_line(e)
            frames = [f for f in (e.get("frame"), e.get("response_frame")) if f is not None]
            if e.get("repeats"):  # the same again and again (History): one line and its count
                text += "; %d times, to %s" % (e["repeats"], _clock(e.get("last_time")))
                frames += ["..."] + [f for f in (e.get("last_frame"), e.get("last_response_frame")) if f is not None]
            out.append("    %s  %s  %s  (frames %s)" % (_clock(e.get("time")), (e.get("host") or "?").ljust(width),
                                                      text, ",".join(str(f) for f in frames)))
        hidden = sum(e.get("repeats", 1) for e in events[MAX_STORY:]) + d["more"]
        if hidden > 0:
            out.append("    ... and %d more events" % hidden)
    return out + [""]


OUTCOMES = [("succeeded", "succeeded"), ("failed", "failed"),
            ("sealed", "answered but sealed (the result is unknown without the key)"),
            ("unbound", "answered on a context whose bind is not in the capture"),
            ("not decoded", "answered, the answer not decodable"), ("unanswered", "unanswered")]


def _outcomes(outcomes: dict) -> str:
    """": 3 succeeded, 1 failed, 4 answered but sealed (...)": each call counted once, by what is known."""
    parts = ["%d %s" % (outcomes[k], text) for k, text in OUTCOMES if outcomes.get(k)]
    return ": " + ", ".join(parts) if parts else ""


def _unique(frames) -> List[int]:
    seen = set()
    return [f for f in frames if not (f in seen or seen.add(f))]


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
            frames = _unique(x for f in items for x in f.frames)
            shown = ",".join(str(x) for x in frames[:MAX_FRAMES_SHOWN]) + (" ..." if len(frames) > MAX_FRAMES_SHOWN else "")
            if items[0].where:
                shown = _where(_unique(w for f in items for w in f.where)[:MAX_FRAMES_SHOWN])
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
        out += _io_error_lines(r)
        out += _disk_lines(r)
        if r.clusprep_sequences:
            out.append("ClusPrep conversations: %d" % len(r.clusprep_sequences))
            for c in r.clusprep_sequences:
                failed = [call for call in c["sequence"] if call["outcome"] in ("failed", "unanswered")]
                out.append("  %s: %s%s, %s%s" % (c["conversation"], ", ".join(c["interfaces"]) or "interface unknown",
                                                  " (sealed)" if c["sealed"] else "", _n(c["calls"], "call"),
                                                  _outcomes(c["outcomes"])))
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
