"""One pass over a capture: source -> events -> reconstruction -> rules -> a Result for the
reports. The CLI and analyzer.load() both run this."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from . import rules_clusprep, rules_rsvd
from .clusprep_sequences import ClusPrepTracker
from .events import frame_of
from .findings import Bus, Finding, Findings, NotEvaluated, Rule
from .rsvd_sessions import RsvdTracker
from .source import CaptureError, Run, Tshark, check_capture
from .tables import Tables

ALL_RULES: List[type] = rules_rsvd.RULES + rules_clusprep.RULES


class CaptureTruncated(Rule):
    id, severity, spec = "capture.truncated", "warning", "pcapng (IETF draft) 4.3"
    title = "The capture file ends in the middle of a packet"


RULE_CLASSES: List[type] = ALL_RULES + [CaptureTruncated]


@dataclass
class CaptureResult:
    path: Path
    packets: int = 0
    truncated: bool = False
    seconds: float = 0.0
    tshark_errors: List[str] = field(default_factory=list)
    rsvd_sessions: List[dict] = field(default_factory=list)
    clusprep_sequences: List[dict] = field(default_factory=list)
    findings: List[Finding] = field(default_factory=list)
    not_evaluated: List[NotEvaluated] = field(default_factory=list)


def analyze_capture(path: Path, tshark: Tshark, tables: Tables,
                    progress: Optional[Callable[[int], None]] = None) -> CaptureResult:
    check_capture(path)
    started = time.monotonic()
    sink = Findings()
    rules = [cls(sink) for cls in ALL_RULES]
    bus = Bus(rules)
    rsvd_tracker = RsvdTracker(bus, tables)
    clusprep_tracker = ClusPrepTracker(bus, tables)
    run = Run(tshark, path)
    n = 0
    for cols in run.rows():
        n += 1
        if progress is not None and n % 4096 == 0:
            progress(n)
        f = frame_of(cols)
        if f is None:
            continue
        for m in f.smb2:
            rsvd_tracker.message(m, f.src, f.dst)
        for p in f.rpc:
            clusprep_tracker.pdu(p, f.src, f.dst)
        for c in f.calls:
            clusprep_tracker.call(c, f.src, f.dst)
    if progress is not None:
        progress(n)
    sessions = rsvd_tracker.finish_capture()
    clusprep_tracker.finish_capture()
    bus.emit("finish")
    result = CaptureResult(path=path, packets=run.frames, truncated=run.truncated, tshark_errors=run.errors)
    if run.truncated:
        CaptureTruncated(sink).report([run.frames] if run.frames else [], "%s ends in the middle of a packet; it was "
                                      "analyzed as far as it goes (%d packets)" % (path.name, run.frames), path.name)
    result.findings = sink.sorted()
    for rule_id, extra in sorted(sink.suppressed.items()):
        result.findings.append(Finding(rule_id, next(r.severity for r in rules if r.id == rule_id),
                                       next(r.spec for r in rules if r.id == rule_id), [],
                                       "%d more findings of this rule not listed" % extra, path.name))
    result.rsvd_sessions = sessions
    result.clusprep_sequences = [dict(conversation=c.id, stream=c.stream, client=c.client, server=c.server,
                                      interfaces=c.interfaces, sealed=c.sealed, calls=c.calls,
                                      sequence=[dict(frame=s[0], interface=s[1], method=s[2], result=s[3],
                                                     latency_ms=s[4]) for s in c.sequence])
                                 for c in clusprep_tracker.conversations.values() if c.calls or c.bind_levels]
    needs = sorted(r.id for r in rules if r.needs_stub)
    result.not_evaluated = [NotEvaluated(c.id, needs) for c in clusprep_tracker.conversations.values() if c.sealed]
    result.seconds = time.monotonic() - started
    return result


__all__ = ["analyze_capture", "CaptureResult", "CaptureError", "RULE_CLASSES"]
