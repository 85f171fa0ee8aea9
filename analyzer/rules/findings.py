"""Findings and the rule base class. Rules receive reconstruction's events through its Bus
(analyzer.reconstruction.bus; the Zeek shape: events flow one way, into small rules, into reports)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

# One convention (issue 16): a MUST or MUST NOT broken is an error, a SHOULD or SHOULD NOT a
# warning; a correct but noteworthy event (a reservation conflict, a server rightly refusing a
# call, a capture that ends early) is an observation and never counts as a violation.
SEVERITIES = ("error", "warning", "observation")
LEVEL_SEVERITY = {"MUST": "error", "SHOULD": "warning", None: "observation"}
SIDES = ("client", "server", None)  # whose violation it is; None for observations
MAX_FINDINGS_PER_RULE = 1000  # a flood is reported, then counted, not hoarded
MAX_LISTED = 4  # problems named per finding; the rest counted


@dataclass
class Finding:
    rule: str
    severity: str
    spec: str
    frames: List[int]
    message: str
    subject: str
    side: Optional[str] = None  # "client" or "server": whose violation; None for an observation
    check: str = ""  # the wire-observable rule of docs/rules.md it demonstrates (R01..R50, C01..C67)
    where: List[tuple] = field(default_factory=list)  # (file, frame) of each frame, for merged captures
    first_time: Optional[float] = None  # when its frames were seen (epoch seconds), if known
    last_time: Optional[float] = None
    stream: Optional[int] = None  # the TCP stream of its first frame with one

    def as_dict(self) -> dict:
        d = dict(rule=self.rule, severity=self.severity, side=self.side, check=self.check, spec=self.spec,
                 frames=self.frames, message=self.message, subject=self.subject)
        if self.where:
            d["where"] = [dict(file=f, frame=n) for f, n in self.where]
        return d


def listed(problems: List[str]) -> str:
    """Problems for a finding's message: the first MAX_LISTED of them, and how many more."""
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + ("; and %d more" % more if more > 0 else "")


class Rule:
    """One spec rule: an id, the level of the rule it enforces (MUST, SHOULD, or None for an
    observation; the severity follows from it), the side it judges, the sections it cites,
    the wire-observable rules of the inventory it checks (`checks`, docs/rules.md), and
    handlers named after the events it needs (on_<event>). What it needs beyond that, so that a capture lacking it
    lists the rule as not evaluated rather than guessing: `needs_stub`, parameters or return
    values (a sealed conversation has none); `needs_create`, the open's CREATE (an open made
    before the capture started has none); `needs_start`, a ClusPrep conversation from its bind
    (a capture started mid-conversation has not seen the calls that set the state)."""

    id = ""
    severity = "error"
    level: Optional[str] = "MUST"
    side: Optional[str] = "client"  # "server", or None for an observation; "both": each finding says
    spec = ""
    title = ""
    advice = ""  # what to check next, in plain words (docs/rules.md); every rule class sets its own
    checks: Tuple[str, ...] = ()  # inventory ids (docs/rules.md); a finding names the one it shows
    needs_stub = False
    needs_create = False
    needs_start = False  # the conversation from its bind: what came before decides
    needs_bind = False  # the call's interface, known only from its context's bind

    def __init__(self, sink: "Findings"):
        self.sink = sink

    def report(self, frames: Iterable[int], message: str, subject: str, check: str = "", spec: str = "",
               side: Optional[str] = None) -> None:
        """`check`: which of the rule's inventory ids this finding shows (needed when it has several);
        `spec`: the section of that one, when narrower than the rule's; `side`: for a rule that
        judges both sides."""
        if not check and len(self.checks) == 1:
            check = self.checks[0]
        assert not self.checks or check in self.checks, (self.id, check)
        who = side or self.side
        assert who in SIDES, (self.id, who)
        self.sink.add(Finding(self.id, self.severity, spec or self.spec, sorted(set(int(f) for f in frames)), message,
                              subject, who, check))

    def cannot_evaluate(self, subject: str, reason: str, unlock: str = "") -> None:
        """This rule could not be judged for `subject`: what was missing, and what would give it."""
        self.sink.skip(subject, reason, self.id, unlock)


class Findings:
    def __init__(self):
        self.items: List[Finding] = []
        self.per_rule: Dict[str, int] = {}
        self.suppressed: Dict[str, int] = {}
        self.skipped: Dict[tuple, List[str]] = {}  # (subject, reason, unlock) -> rule ids

    def skip(self, subject: str, reason: str, rule: str, unlock: str = "") -> None:
        rules = self.skipped.setdefault((subject, reason, unlock), [])
        if rule not in rules:
            rules.append(rule)

    def not_evaluated(self) -> List["NotEvaluated"]:
        return [NotEvaluated(subject, sorted(rules), reason, unlock)
                for (subject, reason, unlock), rules in self.skipped.items()]

    def add(self, f: Finding) -> None:
        n = self.per_rule.get(f.rule, 0)
        self.per_rule[f.rule] = n + 1
        if n >= MAX_FINDINGS_PER_RULE:
            self.suppressed[f.rule] = self.suppressed.get(f.rule, 0) + 1
            return
        self.items.append(f)

    def sorted(self) -> List[Finding]:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(self.items, key=lambda f: (order[f.severity], f.frames[:1] or [0], f.rule, f.subject))


@dataclass
class NotEvaluated:
    """Rules that could not be judged for a subject (a conversation, an open, a connection):
    why, and which option would unlock them when one would."""

    subject: str
    rules: List[str] = field(default_factory=list)
    reason: str = ""
    unlock: str = ""

    def as_dict(self) -> dict:
        return dict(subject=self.subject, rules=self.rules, reason=self.reason, unlock=self.unlock)
