"""MS-CSVP rules at the RPC level, for every ClusPrep interface: opnums, authentication level,
state refusals, faults, unanswered calls, unknown contexts, and stubs that do not decode.
"""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

from ..reconstruction.clusprep_records import ACCESS_DENIED, PKT_PRIVACY, Call, Conversation
from .clusprep_network import E_ACCESSDENIED
from .clusprep_preparation import REJECTED_STATE
from .findings import Rule


class OpnumNotUsedOnWire(Rule):
    id, severity, spec = "clusprep.opnum_not_used_on_wire", "observation", "MS-CSVP 3.2.4, 3.6.4"
    level, side, checks = None, None, ("C04",)  # the method tables say "not used on the wire", no MUST
    title = "A client called a method number (opnum) that the interface does not use"
    advice = ("Harmless if the node refused it; otherwise compare the client's and node's Windows builds: a newer "
              "validation tool may call a method the node does not have.")
    needs_bind = True  # the interface comes from the bind

    def on_call_request(self, c: Call):
        if c.used_on_wire:
            return
        if c.method.startswith("opnum "):
            text = "opnum %d is not in %s's method table" % (c.opnum, c.interface)
        else:
            text = "%s.%s (opnum %d) is not used on the wire" % (c.interface, c.method, c.opnum)
        self.report([c.request_frame], text, c.subject)


class InsufficientAuthLevel(Rule):
    id, severity, spec = "clusprep.insufficient_auth_level", "observation", "MS-CSVP 2.1"
    level, side = None, None  # the MUST binds the server, which must refuse (clusprep.low_auth_accepted)
    title = "A client bound or called below packet privacy (RPC encryption, PKT_PRIVACY)"
    advice = ("No action if the node refused the calls; otherwise check the client's DCOM authentication level and "
              "whether the caller is a tool other than the cluster validation wizard.")

    def __init__(self, sink):
        super().__init__(sink)
        self.flagged: Set[int] = set()

    def on_rpc_bind(self, conv: Conversation, pdu):
        if pdu.auth_level is None or pdu.auth_level < PKT_PRIVACY:
            self._flag(conv, pdu.frame, "bind" if pdu.ptype == 11 else "alter_context", pdu.auth_level)

    def on_call_request(self, c: Call):
        if c.auth_level < PKT_PRIVACY:
            self._flag(c.conversation, c.request_frame, c.method, c.auth_level)

    def _flag(self, conv, frame, what, level):
        if conv.stream in self.flagged:
            return
        self.flagged.add(conv.stream)
        self.report([frame], "%s at %s; the server requires packet privacy (6) and every later call here is the "
                    "same" % (what, "no authentication" if level in (None, 1) else "auth level %d" % level), conv.id)


class ServerRejectedState(Rule):
    id, severity, spec = "clusprep.server_rejected_state", "observation", "MS-CSVP 3.2.4, 3.4.4"
    level, side = None, None  # the server doing what its state requires
    title = "The node refused a call because it or the disk was not ready for it"
    advice = ("Normal when a disk or node is not ready; read the calls just before it on the same object or disk to "
              "see which step (prepare, attach, arbitrate, online) failed or was skipped.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.hresult in REJECTED_STATE:
            self.report([c.request_frame, c.response_frame], "%s returned %s%s" % (
                c.method, REJECTED_STATE[c.hresult], " for disk %s" % c.disk if c.disk else ""), c.subject)


class Fault(Rule):
    id, severity, spec = "clusprep.fault", "error", "MS-CSVP 3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4"
    title = "A node's method failed with an RPC fault instead of returning an error code"
    advice = ("Read the fault status in the response: the node's method crashed or threw instead of returning an "
              "error; collect the node's Application event log and the cluster validation report.")
    side, checks = "server", ("C02",)
    # Not a fault for an opnum the tables say is not used on the wire (the RPC runtime's
    # nca_s_op_rng_error, clusprep.opnum_not_used_on_wire observes those), nor one that
    # rejects a request stub that does not parse (C03 asks for that), nor access denied to a
    # call below packet privacy (2.1 asks for that; clusprep.low_auth_accepted).

    def __init__(self, sink):
        super().__init__(sink)
        self.malformed: Set[int] = set()  # request frames whose stub did not parse

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if frame == c.request_frame:
            self.malformed.add(frame)

    def on_call(self, c: Call):
        if c.fault_status is None or not c.used_on_wire or c.request_frame in self.malformed:
            return
        if c.auth_level < PKT_PRIVACY and c.fault_status in ACCESS_DENIED:
            return
        from ..reconstruction.decoding import HRESULTS

        self.report([c.request_frame, c.response_frame], "%s ended in fault %s" % (
            c.method, HRESULTS.get(c.fault_status, "0x%08X" % c.fault_status)), c.subject)


class UnansweredCall(Rule):
    id, severity, spec = "clusprep.unanswered_call", "observation", "MS-RPCE 3.3.1.5"
    level, side = None, None  # a capture may end before the answer
    title = "A ClusPrep call has no answer in the capture"
    advice = ("Check whether the capture ended first; if not, the node is stuck in that method (often a disk online "
              "or arbitration), so check its System log and storage latency at that time.")

    def on_unanswered_call(self, c: Call):
        self.report([c.request_frame], "%s (call_id %d) has no response in the capture" % (c.method, c.call_id),
                    c.subject)


class UnknownContext(Rule):
    id, severity, spec = "clusprep.unknown_context", "observation", "MS-RPCE 3.3.1.5.6"
    level, side = None, None  # the capture's gap, not a violation
    title = "A call whose bind is not in the capture: its interface and method are unknown"
    advice = ("Start the capture before validation begins, or merge the earlier capture file, so the bind is "
              "included; until then these calls cannot be decoded or judged.")

    def __init__(self, sink):
        super().__init__(sink)
        self.seen: Set[Tuple[int, int]] = set()

    def on_rpc_unknown_context(self, conv: Conversation, pdu, ctx: int):
        if (conv.stream, ctx) in self.seen:
            return
        self.seen.add((conv.stream, ctx))
        self.report([pdu.frame], "request (call_id %d) on context %d, whose bind or alter_context is not in the "
                    "capture: its interface and method are unknown" % (pdu.call_id, ctx), conv.id)


class StubMalformed(Rule):
    id, severity, spec = "clusprep.stub_malformed", "error", "MS-CSVP 6; MS-RPCE 2.2.5"
    side = "both"  # a request's stub is the client's, a response's the server's
    title = "A call's parameters (its stub) could not be decoded as its method's"
    advice = ("Check the snaplen and lost TCP segments first; if the frame is whole, the sender marshalled parameters "
              "that do not match the method's definition, so compare client and node builds.")
    needs_stub = True

    def on_call_malformed(self, c: Call, frame: int, why: str):
        self.report([frame], why, c.subject, side="client" if frame == c.request_frame else "server")


# -- RPC level ----------------------------------------------------------------------------------
class LowAuthAccepted(Rule):
    id, severity, spec = "clusprep.low_auth_accepted", "error", "MS-CSVP 2.1"
    side, checks = "server", ("C01",)
    title = "The node served a call below packet privacy (not encrypted), which it must refuse"
    advice = ("Security issue: the node served a call below packet privacy; check its DCOM and RPC hardening settings "
              "and patch level, and the authentication level the client asked for.")
    # The server MUST require packet privacy. A bind_ack alone does not break that (Windows acks the
    # bind and refuses the call); answering the call does, unless the answer is the refusal itself
    # (a fault, or E_ACCESSDENIED). Once per conversation: every later call there is the same.

    def __init__(self, sink):
        super().__init__(sink)
        self.flagged: Set[int] = set()

    def on_call(self, c: Call):
        if (c.unbound or c.response_frame is None or c.fault_status is not None or c.auth_level >= PKT_PRIVACY
                or c.hresult == E_ACCESSDENIED or c.conversation.stream in self.flagged):
            return
        self.flagged.add(c.conversation.stream)
        level = "no authentication" if c.auth_level <= 1 else "authentication level %d" % c.auth_level
        self.report([c.request_frame, c.response_frame], "%s at %s answered %s: the server must refuse calls below "
                    "packet privacy (6) with a fault or E_ACCESSDENIED (later calls of this conversation not listed)"
                    % (c.method, level, c.result_text), c.subject)


class MalformedStubAccepted(Rule):
    id, severity = "clusprep.malformed_stub_accepted", "error"
    spec = "MS-CSVP 3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4; MS-RPCE 3"
    side, checks = "server", ("C03",)
    title = "The node served a request whose parameters do not decode"
    advice = ("The node served a request whose parameters do not parse; confirm the frame is complete in the capture, "
              "then report the node's build: its RPC runtime should have rejected it.")
    needs_stub = True
    # Every ClusPrep interface asks the RPC runtime for a strict NDR consistency check: an
    # inconsistent request stub never reaches the method. A success answer shows it did.

    def __init__(self, sink):
        super().__init__(sink)
        self.malformed: Dict[int, str] = {}  # request frame -> why its stub does not parse

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if frame == c.request_frame:
            self.malformed[frame] = why

    def on_call(self, c: Call):
        why = self.malformed.pop(c.request_frame, None)
        if why is not None and c.succeeded:
            self.report([c.request_frame, c.response_frame], "%s answered %s to a request stub that does not parse "
                        "(%s); strict NDR checking must reject it" % (c.method, c.result_text, why), c.subject)


# -- IClusterNetwork2 (3.6, 3.7) -----------------------------------------------------------------


RULES: List[type] = [OpnumNotUsedOnWire, InsufficientAuthLevel, ServerRejectedState, Fault, UnansweredCall,
                     UnknownContext, StubMalformed, LowAuthAccepted, MalformedStubAccepted]
