"""Findings, rules and the bus that carries reconstruction events to them (the Zeek shape:
events flow one way, into small rules, into reports)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List

SEVERITIES = ("error", "warning", "info")  # MUST, SHOULD or suspicious, for information
MAX_FINDINGS_PER_RULE = 1000  # a flood is reported, then counted, not hoarded


@dataclass
class Finding:
    rule: str
    severity: str
    spec: str
    frames: List[int]
    message: str
    subject: str
    where: List[tuple] = field(default_factory=list)  # (file, frame) of each frame, for merged captures

    def as_dict(self) -> dict:
        d = dict(rule=self.rule, severity=self.severity, spec=self.spec, frames=self.frames,
                 message=self.message, subject=self.subject)
        if self.where:
            d["where"] = [dict(file=f, frame=n) for f, n in self.where]
        return d


class Rule:
    """One spec rule: an id, a severity, the section it enforces, and handlers named after the
    events it needs (on_<event>). What it needs beyond that, so that a capture lacking it
    lists the rule as not evaluated rather than guessing: `needs_stub`, parameters or return
    values (a sealed conversation has none); `needs_create`, the open's CREATE (an open made
    before the capture started has none); `needs_start`, a ClusPrep conversation from its bind
    (a capture started mid-conversation has not seen the calls that set the state)."""

    id = ""
    severity = "error"
    spec = ""
    title = ""
    needs_stub = False
    needs_create = False
    needs_start = False  # the conversation from its bind: what came before decides
    needs_bind = False  # the call's interface, known only from its context's bind

    def __init__(self, sink: "Findings"):
        self.sink = sink

    def report(self, frames: Iterable[int], message: str, subject: str) -> None:
        self.sink.add(Finding(self.id, self.severity, self.spec, sorted(set(int(f) for f in frames)), message, subject))

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


class Bus:
    """Delivers each reconstruction event to the rules that handle it, in registration order."""

    def __init__(self, rules: List[Rule]):
        self.rules = rules
        self._handlers: Dict[str, list] = {}

    def emit(self, event: str, *args) -> None:
        self.emit_partial(event, False, *args)

    def emit_partial(self, event: str, partial: bool, *args) -> None:
        """An event from a conversation whose start the capture lacks (partial) reaches only the
        rules that do not need it."""
        hs = self._handlers.get((event, partial))
        if hs is None:
            hs = [getattr(r, "on_" + event) for r in self.rules if hasattr(r, "on_" + event)
                  and not (partial and r.needs_start)]
            self._handlers[(event, partial)] = hs
        for h in hs:
            h(*args)


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
