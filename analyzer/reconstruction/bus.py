"""The bus that carries reconstruction's events to the rules (the Zeek shape: events flow one
way, into small rules, into reports). It knows rules only by their handlers (on_<event>) and
needs_start, so reconstruction needs nothing of the rules stage."""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Union

MAX_KINDS = 256  # operation kinds whose handlers_of_kind a caller keeps


def for_kinds(kinds: Union[Iterable[str], Callable[[str], bool]]):
    """Marks a handler of an operation event (rsvd_request, rsvd_response) that does nothing for an
    operation of another kind, so the tracker does not call it for one (Bus.handlers_of_kind):
    kinds, the Operation.kind values it acts on, or a test of one."""
    test = kinds if callable(kinds) else frozenset(kinds).__contains__

    def mark(handler):
        handler.for_kind = test
        return handler
    return mark


class Bus:
    """Delivers each reconstruction event to the rules that handle it, in registration order."""

    def __init__(self, rules: list):
        self.rules = rules
        self._handlers: Dict[str, list] = {}

    def emit(self, event: str, *args) -> None:
        hs = self._handlers.get((event, False))  # emit_partial's, inline: one call per event fewer
        if hs is None:
            return self.emit_partial(event, False, *args)
        for h in hs:
            h(*args)

    def emit_partial(self, event: str, partial: bool, *args) -> None:
        """An event from a conversation whose start the capture lacks (partial) reaches only the
        rules that do not need it."""
        for h in self.handlers(event, partial):
            h(*args)

    def handlers(self, event: str, partial: bool = False) -> list:
        """The handlers emit(event, ...) calls, in order: for the hottest events the tracker calls
        them itself (`for h in bus.handlers(event): h(...)`), without emit's frame."""
        hs = self._handlers.get((event, partial))
        if hs is None:
            hs = [getattr(r, "on_" + event) for r in self.rules if hasattr(r, "on_" + event)
                  and not (partial and r.needs_start)]
            self._handlers[(event, partial)] = hs
        return hs

    def handlers_of_kind(self, event: str, kind: str) -> list:
        """handlers(event) without those marked (for_kinds) as doing nothing for an operation of
        `kind`; callers keep the list (at most MAX_KINDS kinds: a capture's unknown OperationCodes are many)."""
        return [h for h in self.handlers(event) if getattr(h, "for_kind", None) is None or h.for_kind(kind)]
