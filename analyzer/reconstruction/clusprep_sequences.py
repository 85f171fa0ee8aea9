"""ClusPrep reconstruction: TCP connection -> bind contexts -> interface and DCOM object -> calls.

The clusprep plugin names every call on a context it saw accepted and hands over the stub;
this module pairs requests with responses by call_id, decodes both stubs with the NDR
definitions, and tracks binds itself for what the plugin cannot name (calls on contexts
whose bind the capture missed). A conversation is one TCP connection.

State belongs to the DCOM object, not the connection, and disks are keyed by identity: how the
IPIDs of the requests are joined into objects, and the CPREP_DISKID forms into disks, is in
analyzer.reconstruction.clusprep_identities; what is recorded (conversations, calls, disk states),
in analyzer.reconstruction.clusprep_records.

What the capture shows of an object's start (MS-CSVP 3.2.1, 3.2.3): a bind proves a new
connection, not a new object (DCOM reconnects an idle connection, opens a second one for a
concurrent call, and activates over port 135, which a ClusPrep capture lacks). So a storage
object's Prepare State is known only when its first captured call is CprepPrepareNode (Initial
then), and once an answer establishes one (a CprepPrepareNode served: Preparing; a
CprepPrepareNodePhase2 served: Online, its ClusPrepDiskList built anew, 3.2.4.4); otherwise it is
UNKNOWN, and so are its disks' states (`Call.disks_known`). A CprepPrepareNode refused with
ERROR_INVALID_SERVER_STATE makes an assumed Initial UNKNOWN again: 3.2.1 gives the server one
Prepare State, which another object may have moved. A disk's Owned and Online states are lost
to local events (3.2.6; arbitration lost to another node): after a call on it fails with
ERROR_INVALID_STATE or ERROR_NOT_READY they are unknown until an answer sets them again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from . import decoding, reservations
from .events import RpcCall, RpcPdu
from .bus import Bus
from .clusprep_identities import MAX_DISKS, MAX_OBJECTS, DcomObjects, DiskAliases
from .clusprep_records import (ERROR_INVALID_SERVER_STATE, STORAGE, UNKNOWN, Call, Conversation, DiskState,
                               base_method, disk_form, host_of)
from .tables import Tables

BIND, ALTER, REQUEST, RESPONSE, FAULT = 11, 14, 0, 2, 3
MAX_SEQUENCE = 10_000  # calls kept per conversation for the report; the table has them all

# Which DCE/RPC is ClusPrep's: a context whose bind or alter_context names one of its interfaces,
# or (the bind not captured) a call whose object UUID is an IPID that ClusPrep calls in the capture
# use. A real cluster capture is mostly other DCE/RPC (cluster API, witness, WMI, the endpoint
# mapper, SMB pipes): none of it becomes a conversation, a row or a finding, only a count.
CLUSPREP_UUIDS = {i.uuid.lower(): i.name for i in decoding.INTERFACES.values()}
MAX_CONTEXTS = 1 << 18  # (stream, context) -> interface, remembered
MAX_HELD = 65536  # calls on contexts whose bind is missing, held until an IPID says whose they are


@dataclass
class _Held:
    """A request on a context whose bind the capture lacks, until a ClusPrep call uses its IPID."""

    first: RpcPdu  # its first fragment
    src: str
    dst: str
    ctx: int
    last_frame: int
    last_time: float
    answer: Optional[RpcPdu] = None  # its response or fault (last fragment)


class ClusPrepTracker:
    def __init__(self, bus: Bus, tables: Tables, history: Optional[reservations.History] = None):
        self.bus = bus
        self.tables = tables
        self.history = history or reservations.History(tables)  # the disks' reservations, with RSVD's
        self.conversations: Dict[int, Conversation] = {}
        self.pending: Dict[Tuple[int, int], Call] = {}
        # (stream, ctx) offered in a bind or alter_context the capture holds -> the ClusPrep interface
        # it names, or None for another interface
        self.contexts: Dict[Tuple[int, int], Optional[str]] = {}
        self.ipids: set = set()  # (server host, IPID) that ClusPrep calls use
        self.held: Dict[Tuple[int, int], "_Held"] = {}  # (stream, call_id) -> a call of no known context
        self.held_by_ipid: Dict[Tuple[str, str], List[Tuple[int, int]]] = {}
        self.other_calls = 0  # DCE/RPC calls of other interfaces (or of none the capture shows) ...
        self.unknown_calls = 0  # ... of them, on contexts whose bind the capture lacks: interface unknown
        self.objects = DcomObjects()
        self.aliases = DiskAliases()
        self.disks: Dict[Tuple, Dict[Tuple[str, str], DiskState]] = {}  # object -> disk identity -> state
        # disk identity -> the object whose Reserve or Preempt holds the disk's reservation now: a
        # reservation is the disk's, whichever node made it (SPC-3; MS-CSVP 3.3.4.6 "for a particular disk")
        self.holders: Dict[Tuple[str, str], Tuple] = {}
        self.prepare: Dict[Tuple, str] = {}  # object -> Prepare State (§3.2.1), from the answers seen, or UNKNOWN
        self.disks_known: Dict[Tuple, bool] = {}  # object -> its disk states are from the capture
        self.share_paths: set = set()  # paths CprepCreateNewSmbShares3 answers returned, on any connection

    def conversation(self, stream: int, src: str, dst: str, from_client: bool, bind: bool = False) -> Conversation:
        c = self.conversations.get(stream)
        if c is None:
            client, server = (src, dst) if from_client else (dst, src)
            c = Conversation(stream, client, server, started=bind)
            self.conversations[stream] = c
        return c

    def emit(self, event: str, conv: Conversation, *args) -> None:
        """Rules that need the conversation's start hear nothing from one begun before the capture."""
        self.bus.emit_partial(event, not conv.started, *args)

    def emit_call(self, event: str, c: "Call", *args) -> None:
        """Nor from a call on an object first seen on such a conversation, on whatever connection."""
        conv = c.conversation
        partial = not conv.started or not self.objects.from_start.get(c.dcom_object, True)
        if partial and conv.started:
            conv.inherited = True
        self.bus.emit_partial(event, partial, c, *args)

    def pdu(self, p: RpcPdu, src: str, dst: str) -> None:
        if p.ptype in (BIND, ALTER):
            named = [CLUSPREP_UUIDS.get(u) for u in p.interfaces] if p.interfaces else [None] * len(p.ctx_ids)
            for ctx, itf in zip(p.ctx_ids, named):
                if len(self.contexts) < MAX_CONTEXTS or (p.stream, ctx) in self.contexts:
                    self.contexts[(p.stream, ctx)] = itf
            if not any(named):
                return  # another interface's: not ClusPrep's business
            conv = self.conversation(p.stream, src, dst, True, bind=p.ptype == BIND)
            conv.bind_levels.append((p.frame, p.auth_level))
            if p.auth_type:
                conv.auth_type = p.auth_type
            self.emit("rpc_bind", conv, conv, p)
        elif p.ptype == REQUEST:
            key = (p.stream, p.call_id)
            c = self.pending.get(key)
            if c is not None:
                if c.unbound:  # a later fragment: the call is complete at its last one
                    c.request_frame, c.time = p.frame, p.time
                return
            h = self.held.get(key)
            if h is not None:
                h.last_frame, h.last_time = p.frame, p.time
                return
            for ctx in p.ctx_ids:
                if (p.stream, ctx) in self.contexts:
                    if self.contexts[(p.stream, ctx)] is None and p.last_fragment:
                        self.other_calls += 1  # a ClusPrep context's calls are the plugin's (call())
                    continue
                ipid = (host_of(dst), p.object_id.lower()) if p.object_id else None
                if ipid in self.ipids:
                    self.unbound(p, src, dst, ctx)
                elif ipid is not None and len(self.held) < MAX_HELD:
                    self.held[key] = _Held(p, src, dst, ctx, p.frame, p.time)
                    self.held_by_ipid.setdefault(ipid, []).append(key)
                else:
                    self.other_calls += 1
                    self.unknown_calls += 1
        elif p.ptype in (RESPONSE, FAULT):
            key = (p.stream, p.call_id)
            h = self.held.get(key)
            if h is not None and p.last_fragment:
                h.answer = p
                return
            c = self.pending.get(key)
            if c is not None and c.unbound and p.last_fragment:
                self.answered(c, p)

    def unbound(self, p: RpcPdu, src: str, dst: str, ctx: int) -> Call:
        """A ClusPrep call on a context whose bind the capture lacks: listed with what the headers say;
        no rule can read it."""
        conv = self.conversation(p.stream, src, dst, True)
        self.emit("rpc_unknown_context", conv, conv, p, ctx)
        conv.unbound_calls += 1
        if p.object_id and len(self.objects.pre_capture) < MAX_OBJECTS:
            # its object was in use before the capture, whatever interface this is
            self.objects.pre_capture.add((host_of(conv.server), p.object_id.lower()))
        c = self.pending[(p.stream, p.call_id)] = Call(
            conv, "?", "opnum %s" % (p.opnum if p.opnum is not None else "?"),
            p.opnum if p.opnum is not None else -1, p.call_id, p.frame, p.time, p.auth_level or 0, False,
            used_on_wire=False, unbound=True)
        return c

    def answered(self, c: Call, p: RpcPdu) -> None:
        del self.pending[(p.stream, p.call_id)]
        c.response_frame, c.response_time = p.frame, p.time
        if p.ptype == FAULT:
            c.fault_status = p.status if p.status is not None else 0
        self.done(c)

    def learn_ipid(self, host: str, ipid: Optional[str]) -> None:
        """An IPID a ClusPrep call uses: the calls held for it were ClusPrep's (their binds not captured)."""
        if not ipid:
            return
        key = (host, ipid.lower())
        if key in self.ipids:
            return
        if len(self.ipids) < MAX_OBJECTS:
            self.ipids.add(key)
        for k in self.held_by_ipid.pop(key, ()):
            h = self.held.pop(k, None)
            if h is None:
                continue
            c = self.unbound(h.first, h.src, h.dst, h.ctx)
            c.request_frame, c.time = h.last_frame, h.last_time
            if h.answer is not None:
                self.answered(c, h.answer)

    def call(self, e: RpcCall, src: str, dst: str) -> None:
        if e.direction == "request":
            self.learn_ipid(host_of(dst), e.object_id)
        conv = self.conversation(e.stream, src, dst, e.direction == "request")
        key = (e.stream, e.call_id)
        if e.direction == "request":
            itf = decoding.INTERFACES.get(e.interface)
            m = itf.method(e.opnum) if itf else None
            c = Call(conv, e.interface, e.method, e.opnum, e.call_id, e.frame, e.time, e.auth_level, e.encrypted,
                     used_on_wire=bool(m and m.used_on_wire), object_id=e.object_id)
            c.obj = self.objects.key(conv, e.interface, e.object_id)
            if e.interface in STORAGE and c.obj not in self.prepare and len(self.prepare) < MAX_OBJECTS:
                # its first call in the capture: only a CprepPrepareNode shows the object new (Initial)
                first = e.method == "CprepPrepareNode"
                self.prepare[c.obj], self.disks_known[c.obj] = ("Initial" if first else UNKNOWN), first
            if e.interface not in conv.interfaces:
                conv.interfaces.append(e.interface)
            conv.sealed |= e.encrypted
            if e.stub is not None and c.used_on_wire:
                c.request, err = decoding.clusprep_stub(e.interface, e.method, "request", e.stub)
                if err:
                    self.emit_call("call_malformed", c, e.frame, err)
            self.pending[key] = c
            self.emit_call("call_request", c)
            return
        c = self.pending.pop(key, None)
        if c is None:
            return
        c.response_frame, c.response_time = e.frame, e.time
        c.encrypted |= e.encrypted
        conv.sealed |= e.encrypted
        if e.direction == "fault":
            c.fault_status = e.fault_status
        elif e.stub is not None and c.used_on_wire:
            c.response, err = decoding.clusprep_stub(c.interface, c.method, "response", e.stub)
            if err:
                self.emit_call("call_malformed", c, e.frame, err)
        self.done(c)

    def disk_state(self, c: Call) -> Tuple[Optional[Tuple[str, str]], Optional[DiskState]]:
        """(identity, state in the call's object) of the disk the call names; (None, None) without one.
        The state's `reserved` is the disk's: held by any node."""
        form = c.disk
        if form is None:
            return None, None
        disks = self.disks.setdefault(c.dcom_object, {})
        ident = self.aliases.find(host_of(c.conversation.server), form)
        state = disks.get(ident)
        if state is None and len(disks) < MAX_DISKS:
            state = disks[ident] = DiskState()
        if state is not None:
            state.reserved = ident in self.holders
        return ident, state

    def reservation_after(self, c: Call, ident: Tuple[str, str]) -> None:
        """What a successful PR call did to the disk's reservation, and a Clear to every node's
        registration (SPC-3 5.7.7: it removes them all)."""
        m = base_method(c.method)
        holder = self.holders.get(ident)
        if m in ("CprepDiskPRReserve", "CprepDiskPRPreempt"):
            if holder is not None or len(self.holders) < MAX_DISKS:
                self.holders[ident] = c.dcom_object
        elif m in ("CprepDiskPRRelease", "CprepDiskPRUnRegister") and holder == c.dcom_object:
            del self.holders[ident]  # a release by another node changes nothing (SPC-3 5.7.11.2)
        elif m == "CprepDiskPRClear":
            self.holders.pop(ident, None)
            for disks in self.disks.values():
                other = disks.get(ident)
                if other is not None:
                    other.registered, other.reserved, other.cleared = False, False, True

    def link_disk_forms(self, c: Call) -> None:
        """A DISK_PROPS answer names the disk asked for by its id and device number: one disk."""
        props = c.param("DiskProps") if c.method == "CprepDiskGetProps" else c.param("pDiskProps")
        if props is None or c.disk is None:
            return
        forms = [c.disk, disk_form(props.get("DiskId"))]
        if isinstance(props.get("DiskNumber"), int):
            forms.append("device %d" % props.get("DiskNumber"))
        forms = [f for f in forms if f and f != "unknown id"]
        host = host_of(c.conversation.server)
        for old, new in self.aliases.join(host, forms):
            if old in self.holders:
                self.holders.setdefault(new, self.holders.pop(old))
            for disks in self.disks.values():  # the states of both forms become one: keep what was done
                a = disks.pop(old, None)
                if a is not None:
                    b = disks.get(new)
                    disks[new] = a if b is None or (a.attached, len(a.seen)) > (b.attached, len(b.seen)) else b

    def done(self, c: Call) -> None:
        conv = c.conversation
        obj = c.dcom_object
        c.prepare_state = self.prepare.get(obj, UNKNOWN)
        c.disks_known = self.disks_known.get(obj, False)
        if c.method == "CprepConnectToNewSmbShares3" and c.request is not None:
            c.shares_created = any(str(x).lower() in self.share_paths for x in list(c.param("ppwszSharePaths") or [])[:256])
        elif c.method == "CprepCreateNewSmbShares3" and c.succeeded:
            for x in list(c.param("ppwszSharePaths") or [])[:256]:
                if len(self.share_paths) < MAX_OBJECTS:
                    self.share_paths.add(str(x).lower())
        ident, state = self.disk_state(c)
        if state is not None:
            c.disk_state = state.copy()
        conv.calls += 1
        conv.outcomes[c.outcome] = conv.outcomes.get(c.outcome, 0) + 1
        if len(conv.sequence) < MAX_SEQUENCE:
            conv.sequence.append((c.request_frame, c.interface, c.method, c.result_text,
                                  round(c.latency_ms, 3) if c.latency_ms is not None else None, c.outcome))
        self.emit_call("call", c)
        if c.interface in STORAGE and c.answered_ok:
            if c.method == "CprepPrepareNode":
                self.prepare[obj] = "Preparing"
            elif c.method == "CprepPrepareNodePhase2":
                self.prepare[obj], self.disks_known[obj] = "Online", True
                self.disks[obj] = {}  # 3.2.4.4: the ClusPrepDiskList is built anew, every disk Not Attached
        elif (c.interface in STORAGE and c.method == "CprepPrepareNode" and c.hresult == ERROR_INVALID_SERVER_STATE
              and self.prepare.get(obj) == "Initial"):
            # the server is not Initial: its one Prepare State (3.2.1) was moved by another object
            self.prepare[obj], self.disks_known[obj] = UNKNOWN, False
        if state is not None:
            if c.succeeded:
                state.after(c)
                self.reservation_after(c, ident)
                if c.method in ("CprepDiskGetProps", "CprepDiskGetProps3"):
                    self.link_disk_forms(c)
            elif c.hresult is not None:
                state.failed(c)
        self.tables.add("clusprep_calls", dict(
            conversation=conv.id, stream=conv.stream, request_frame=c.request_frame,
            response_frame=c.response_frame or "", time=c.time, interface=c.interface, method=c.method,
            opnum=c.opnum, call_id=c.call_id, auth_level=c.auth_level, encrypted=c.encrypted, result=c.result_text,
            hresult="0x%08X" % c.hresult if c.hresult is not None else "",
            fault_status="0x%08X" % c.fault_status if c.fault_status is not None else "", disk=c.disk or "",
            latency_ms=round(c.latency_ms, 3) if c.latency_ms is not None else ""))
        reservations.clusprep_row(self.history, c, host_of(conv.server))

    def finish_capture(self) -> None:
        self.other_calls += len(self.held)  # no ClusPrep call used their IPIDs
        self.unknown_calls += len(self.held)
        self.held.clear()
        self.held_by_ipid.clear()
        for c in self.pending.values():
            self.emit_call("unanswered_call", c)
            self.done(c)
        self.pending.clear()
