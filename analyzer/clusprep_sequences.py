"""ClusPrep reconstruction: TCP connection -> bind contexts -> interface and DCOM object -> calls.

The clusprep plugin names every call on a context it saw accepted and hands over the stub;
this module pairs requests with responses by call_id, decodes both stubs with the NDR
definitions, and tracks binds itself for what the plugin cannot name (calls on contexts
whose bind the capture missed). A conversation is one TCP connection. IClusterStorage2 and
IClusterStorage3 are one object (one CLSID), so their state is kept per (connection,
coclass), not per IPID.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import decoding
from .events import RpcCall, RpcPdu
from .findings import Bus
from .tables import Tables

PKT_PRIVACY = 6
BIND, ALTER, REQUEST, RESPONSE, FAULT = 11, 14, 0, 2, 3
COCLASS = {"IClusterStorage2": "ClusterStorage2", "IClusterStorage3": "ClusterStorage2",
           "IClusterNetwork2": "ClusterNetwork2", "IClusterCleanup": "ClusterCleanup",
           "IClusterSetup": "ClusterSetup", "IClusterLog": "ClusterLog", "IClusterFirewall": "ClusterFirewall",
           "IClusterUpdate": "ClusterUpdate"}
MAX_SEQUENCE = 10_000  # calls kept per conversation for the report; the table has them all


@dataclass
class Conversation:
    stream: int
    client: str
    server: str
    interfaces: List[str] = field(default_factory=list)
    sequence: List[tuple] = field(default_factory=list)  # (frame, interface, method, result, latency ms)
    calls: int = 0
    sealed: bool = False
    bind_levels: List[Tuple[int, Optional[int]]] = field(default_factory=list)  # (frame, auth level)
    started: Optional[bool] = None  # its first PDU in the capture is a bind: the capture holds its start
    unbound_calls: int = 0  # calls on contexts whose bind the capture lacks
    auth_type: Optional[int] = None  # the security provider its bind named (10 NTLM, 16 Kerberos, 9 SPNEGO)

    @property
    def id(self) -> str:
        return "%s -> %s (stream %d)" % (self.client, self.server, self.stream)


@dataclass
class DiskState:
    """What the calls so far did to one ClusPrepDisk of one object (§3.2.1), as the client sees it."""

    attached: bool = False
    owned: bool = False
    online: bool = False
    partitions: Optional[int] = None  # MaxPartitionNumber from the last CprepDiskOnline
    verified: set = field(default_factory=set)  # partitions found NTFS by IsNtfs or GetFSName
    seen: set = field(default_factory=set)  # methods that succeeded on it (PR*3 as PR*)
    offline_since_arbitrate: bool = False  # a CprepDiskOffline after the last CprepDiskPRArbitrate
    registered: bool = False  # persistent reservations now (§3.3.4.6): a key registered ...
    reserved: bool = False  # ... and the reservation held

    def after(self, c: "Call") -> None:
        m = base_method(c.method)
        self.seen.add(m)
        if m == "CprepDiskAttach":
            self.attached = True
        elif m == "CprepDiskPRArbitrate":
            self.owned, self.offline_since_arbitrate = True, False
        elif m == "CprepDiskStopDefense":
            self.owned = False
        elif m in ("CprepDiskOnline", "CprepDiskSetOnline"):
            self.online = True
            if m == "CprepDiskOnline":
                self.partitions = c.param("MaxPartitionNumber")
        elif m == "CprepDiskOffline":
            self.online, self.offline_since_arbitrate = False, True
        elif m == "CprepDiskDiskPartitionIsNtfs":  # S_OK means NTFS; another file system is ERROR_WRONG_DISK
            self.verified.add(c.param("ulPartition"))
        elif m == "CprepDiskGetFSName":
            if str(c.param("FsName", "")).rstrip("\x00").upper() == "NTFS":
                self.verified.add(c.param("Partition"))
        elif m == "CprepDiskPRRegister":
            self.registered = True
        elif m == "CprepDiskPRUnRegister":
            self.registered = self.reserved = False
        elif m in ("CprepDiskPRReserve", "CprepDiskPRPreempt"):
            self.reserved = True
        elif m == "CprepDiskPRRelease":
            self.reserved = False
        elif m == "CprepDiskPRClear":
            self.registered = self.reserved = False


def base_method(method: str) -> str:
    """CprepDiskPRRegister3 -> CprepDiskPRRegister: the PR calls of both interfaces go together."""
    return method[:-1] if method.endswith("3") and method.startswith("CprepDiskPR") else method


@dataclass
class Call:
    conversation: Conversation
    interface: str
    method: str
    opnum: int
    call_id: int
    request_frame: int
    time: float
    auth_level: int
    encrypted: bool
    request: object = None  # decoded [in] parameters, or None (sealed, or not decodable)
    response: object = None  # decoded [out] parameters and ReturnValue
    response_frame: Optional[int] = None
    response_time: Optional[float] = None
    fault_status: Optional[int] = None
    used_on_wire: bool = True
    disk_state: Optional[DiskState] = None  # the state of its disk before it, when its stub names one
    unbound: bool = False  # on a context whose bind the capture lacks: interface and method unknown

    @property
    def coclass(self) -> Tuple[int, str]:
        return (self.conversation.stream, COCLASS.get(self.interface, self.interface))

    @property
    def hresult(self) -> Optional[int]:
        return int(self.response.ReturnValue) if self.response is not None else None

    @property
    def succeeded(self) -> Optional[bool]:
        """True or False when the result is known; for a sealed answer, None."""
        if self.fault_status is not None:
            return False
        if self.hresult is not None:
            return self.hresult < 0x80000000
        return None

    @property
    def answered_ok(self) -> bool:
        """What sequence rules assume: known success, or an answer they cannot read that is no fault."""
        return self.succeeded is True or (self.succeeded is None and self.response_frame is not None)

    @property
    def readable(self) -> bool:
        return self.request is not None

    @property
    def disk(self) -> Optional[str]:
        if self.request is None or "DiskId" not in self.request:
            return None
        d = self.request.DiskId
        kind = int(d.DiskIdType)
        if kind == 0:
            return "signature 0x%08X" % d.DiskSignature
        if kind == 1:
            return "GUID %s" % d.DiskGuid
        if kind == 0xFA0:
            return "device %d" % d.DeviceNumber
        return "unknown id"

    def param(self, name: str, default=None):
        for v in (self.request, self.response):
            if v is not None and name in v:
                return v[name]
        return default

    @property
    def result_text(self) -> str:
        if self.fault_status is not None:
            return "fault %s" % decoding.HRESULTS.get(self.fault_status, "0x%08X" % self.fault_status)
        if self.hresult is not None:
            return decoding.HRESULTS.get(self.hresult, "0x%08X" % self.hresult)
        if self.response_frame is None:
            return "unanswered"
        return "answered (bind not captured)" if self.unbound else "sealed"

    @property
    def latency_ms(self) -> Optional[float]:
        return None if self.response_time is None else (self.response_time - self.time) * 1000.0

    @property
    def subject(self) -> str:
        return self.conversation.id


class ClusPrepTracker:
    def __init__(self, bus: Bus, tables: Tables):
        self.bus = bus
        self.tables = tables
        self.conversations: Dict[int, Conversation] = {}
        self.pending: Dict[Tuple[int, int], Call] = {}
        self.bound: set = set()  # (stream, ctx) offered in a bind or alter_context the capture holds
        self.disks: Dict[Tuple, DiskState] = {}  # (stream, coclass, disk)

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

    def pdu(self, p: RpcPdu, src: str, dst: str) -> None:
        if p.ptype in (BIND, ALTER):
            conv = self.conversation(p.stream, src, dst, True, bind=p.ptype == BIND)
            for ctx in p.ctx_ids:
                self.bound.add((p.stream, ctx))
            conv.bind_levels.append((p.frame, p.auth_level))
            if p.auth_type:
                conv.auth_type = p.auth_type
            self.emit("rpc_bind", conv, conv, p)
        elif p.ptype == REQUEST:
            c = self.pending.get((p.stream, p.call_id))
            if c is not None:
                if c.unbound:  # a later fragment: the call is complete at its last one
                    c.request_frame, c.time = p.frame, p.time
                return
            for ctx in p.ctx_ids:
                if (p.stream, ctx) not in self.bound:
                    conv = self.conversation(p.stream, src, dst, True)
                    self.emit("rpc_unknown_context", conv, conv, p, ctx)
                    conv.unbound_calls += 1
                    # listed with what the headers say; no rule can read it
                    self.pending[(p.stream, p.call_id)] = Call(
                        conv, "?", "opnum %s" % (p.opnum if p.opnum is not None else "?"),
                        p.opnum if p.opnum is not None else -1, p.call_id, p.frame, p.time, p.auth_level or 0, False,
                        used_on_wire=False, unbound=True)
        elif p.ptype in (RESPONSE, FAULT):
            c = self.pending.get((p.stream, p.call_id))
            if c is not None and c.unbound and p.last_fragment:
                del self.pending[(p.stream, p.call_id)]
                c.response_frame, c.response_time = p.frame, p.time
                if p.ptype == FAULT:
                    c.fault_status = p.status if p.status is not None else 0
                self.done(c)

    def call(self, e: RpcCall, src: str, dst: str) -> None:
        conv = self.conversation(e.stream, src, dst, e.direction == "request")
        key = (e.stream, e.call_id)
        if e.direction == "request":
            itf = decoding.INTERFACES.get(e.interface)
            m = itf.method(e.opnum) if itf else None
            c = Call(conv, e.interface, e.method, e.opnum, e.call_id, e.frame, e.time, e.auth_level, e.encrypted,
                     used_on_wire=bool(m and m.used_on_wire))
            if e.interface not in conv.interfaces:
                conv.interfaces.append(e.interface)
            conv.sealed |= e.encrypted
            if e.stub is not None and c.used_on_wire:
                c.request, err = decoding.clusprep_stub(e.interface, e.method, "request", e.stub)
                if err:
                    self.emit("call_malformed", conv, c, e.frame, err)
            self.pending[key] = c
            self.emit("call_request", conv, c)
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
                self.emit("call_malformed", conv, c, e.frame, err)
        self.done(c)

    def done(self, c: Call) -> None:
        conv = c.conversation
        state = self.disks.setdefault(c.coclass + (c.disk,), DiskState()) if c.disk is not None else None
        if state is not None:
            c.disk_state = dataclasses.replace(state, verified=set(state.verified), seen=set(state.seen))
        conv.calls += 1
        if len(conv.sequence) < MAX_SEQUENCE:
            conv.sequence.append((c.request_frame, c.interface, c.method, c.result_text,
                                  round(c.latency_ms, 3) if c.latency_ms is not None else None))
        self.emit("call", conv, c)
        if state is not None and c.succeeded:
            state.after(c)
        self.tables.add("clusprep_calls", dict(
            conversation=conv.id, stream=conv.stream, request_frame=c.request_frame,
            response_frame=c.response_frame or "", time=c.time, interface=c.interface, method=c.method,
            opnum=c.opnum, call_id=c.call_id, auth_level=c.auth_level, encrypted=c.encrypted, result=c.result_text,
            hresult="0x%08X" % c.hresult if c.hresult is not None else "",
            fault_status="0x%08X" % c.fault_status if c.fault_status is not None else "", disk=c.disk or "",
            latency_ms=round(c.latency_ms, 3) if c.latency_ms is not None else ""))

    def finish_capture(self) -> None:
        for c in self.pending.values():
            self.emit("unanswered_call", c.conversation, c)
            self.done(c)
        self.pending.clear()
