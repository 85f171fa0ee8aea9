"""ClusPrep reconstruction: TCP connection -> bind contexts -> interface and DCOM object -> calls.

The clusprep plugin names every call on a context it saw accepted and hands over the stub;
this module pairs requests with responses by call_id, decodes both stubs with the NDR
definitions, and tracks binds itself for what the plugin cannot name (calls on contexts
whose bind the capture missed). A conversation is one TCP connection.

State belongs to the DCOM object, not the connection (MS-CSVP 3.2.1: the server object holds
the Prepare State and the ClusPrepDiskList). MS-DCOM names an object by OXID and OID, but those
travel only in the activation (ISystemActivator on port 135) and IRemUnknown answers, which
the capture of a ClusPrep port does not hold; what every request carries is the IPID of the
interface it calls (the object UUID of the request header, `dcerpc.obj_id`), and each
interface of an object has its own IPID. So an object is the set of IPIDs joined thus
(DcomObjects): an IPID seen before is its object again, on whatever connection (a reconnect
keeps the state); a new IPID on a connection joins the object of its coclass last called
there when that object has no IPID for this interface yet (IClusterStorage3 after
IClusterStorage2: one CLSID, one object), else it starts a new object (a second
ClusterStorage2 on the same connection). Keys include the server host, so equal IPIDs of
two servers stay apart. A request with no object UUID falls back to its connection's
object of that coclass.

Disks are keyed by identity, whatever CPREP_DISKID form names them: a DISK_PROPS answer
(CprepDiskGetProps, CprepDiskGetProps3) joins the id asked with the id and device number it
reports (DiskAliases, per server host), so a disk attached by GUID is the same disk when
named by device number.

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

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import decoding, reservations
from .events import RpcCall, RpcPdu
from .bus import Bus
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
    sequence: List[tuple] = field(default_factory=list)  # (frame, interface, method, result, latency ms, outcome)
    calls: int = 0
    sealed: bool = False
    bind_levels: List[Tuple[int, Optional[int]]] = field(default_factory=list)  # (frame, auth level)
    started: Optional[bool] = None  # its first PDU in the capture is a bind: the capture holds its start
    unbound_calls: int = 0  # calls on contexts whose bind the capture lacks
    auth_type: Optional[int] = None  # the security provider its bind named (10 NTLM, 16 Kerberos, 9 SPNEGO)
    inherited: bool = False  # carries calls of an object first seen on a conversation begun before the capture
    outcomes: Dict[str, int] = field(default_factory=dict)  # Call.outcome -> calls

    @property
    def id(self) -> str:
        return "%s -> %s (stream %d)" % (self.client, self.server, self.stream)


# Which DCE/RPC is ClusPrep's: a context whose bind or alter_context names one of its interfaces,
# or (the bind not captured) a call whose object UUID is an IPID that ClusPrep calls in the capture
# use. A real cluster capture is mostly other DCE/RPC (cluster API, witness, WMI, the endpoint
# mapper, SMB pipes): none of it becomes a conversation, a row or a finding, only a count.
CLUSPREP_UUIDS = {i.uuid.lower(): i.name for i in decoding.INTERFACES.values()}
MAX_CONTEXTS = 1 << 18  # (stream, context) -> interface, remembered
MAX_HELD = 65536  # calls on contexts whose bind is missing, held until an IPID says whose they are
MAX_PARTITIONS = 128  # partitions remembered per disk (file system names, IsNtfs answers)
MAX_DISKS = 4096  # disk identities per object and aliases per server: a hostile capture stays bounded
MAX_OBJECTS = 65536  # IPIDs remembered
_H = decoding.HRESULT_CODE  # codes by the names of MS-CSVP's tables (dissectors/definitions/csvp.py)
ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND = _H["ERROR_FILE_NOT_FOUND"], _H["ERROR_NOT_FOUND"]
ERROR_WRONG_DISK, ERROR_NOT_READY = _H["ERROR_WRONG_DISK"], _H["ERROR_NOT_READY"]
ERROR_INVALID_STATE, ERROR_INVALID_SERVER_STATE = _H["ERROR_INVALID_STATE"], _H["ERROR_INVALID_SERVER_STATE"]
# a call refused for its authentication: ERROR_ACCESS_DENIED as a fault status, or E_ACCESSDENIED
ACCESS_DENIED = {_H["ERROR_ACCESS_DENIED"], _H["E_ACCESSDENIED"]}
UNKNOWN = "unknown"  # a Prepare State the capture does not show
STORAGE = ("IClusterStorage2", "IClusterStorage3")


@dataclass
class DiskState:
    """What the calls so far did to one ClusPrepDisk of one object (§3.2.1). The client rules
    read it as the client sees it (SetOnline counts as online); the server rules read the
    server's side: `online_pending` after a SetOnline whose transition no answer confirmed yet."""

    attached: bool = False
    owned: bool = False
    online: bool = False
    online_pending: bool = False  # a CprepDiskSetOnline started it; no IsOnline or Online confirmed it
    online_called: bool = False  # a CprepDiskOnline since the last CprepDiskOffline (3.3.4.4)
    partitions: Optional[int] = None  # MaxPartitionNumber from the last CprepDiskOnline
    verified: set = field(default_factory=set)  # partitions found NTFS by IsNtfs or GetFSName
    seen: set = field(default_factory=set)  # methods that succeeded on it (PR*3 as PR*)
    offline_since_arbitrate: bool = False  # a CprepDiskOffline after the last CprepDiskPRArbitrate
    registered: bool = False  # persistent reservations now (§3.3.4.6): a key registered ...
    reserved: bool = False  # ... and the reservation held
    cleared: bool = False  # a PRClear since the last PRRegister: the next Register starts a sequence (C37/C40)
    register_cleared: bool = False  # the registration in effect followed a PRClear
    missing: Optional[int] = None  # frame of the answer that said no such disk (ERROR_FILE_NOT_FOUND / NOT_FOUND)
    fs: Dict[int, Tuple[str, int]] = field(default_factory=dict)  # partition -> (GetFSName answer, frame)
    ntfs: Dict[int, Tuple[bool, int]] = field(default_factory=dict)  # partition -> (IsNtfs said NTFS, frame)
    arb_sectors: Optional[Tuple[int, int, int]] = None  # (SectorX, SectorY, frame) of the last GetArbSectors
    # whether the server's Owned and Online states are what the calls above made them: a failure
    # with ERROR_INVALID_STATE or ERROR_NOT_READY says a local event (3.2.6) may have changed them
    owned_known: bool = True
    online_known: bool = True

    def copy(self) -> "DiskState":
        return dataclasses.replace(self, verified=set(self.verified), seen=set(self.seen), fs=dict(self.fs),
                                   ntfs=dict(self.ntfs))

    def after(self, c: "Call") -> None:
        m = base_method(c.method)
        self.seen.add(m)
        self.missing = None
        if m == "CprepDiskAttach":
            self.attached = True
        elif m == "CprepDiskPRArbitrate":
            self.owned, self.offline_since_arbitrate, self.owned_known = True, False, True
        elif m == "CprepDiskStopDefense":
            self.owned, self.owned_known = False, True
        elif m in ("CprepDiskOnline", "CprepDiskSetOnline"):
            self.online = True
            if m == "CprepDiskOnline":
                self.partitions, self.online_pending, self.online_called = c.param("MaxPartitionNumber"), False, True
            elif not self.online_pending and c.disk_state is not None and not (
                    c.disk_state.online and c.disk_state.online_known):
                self.online_pending = True  # started, not finished (3.2.4.26)
            self.online_known = True
        elif m == "CprepDiskIsOnline":
            self.online_pending, self.online_known = False, True  # S_OK: the transition is over, it is Online
        elif m == "CprepDiskOffline":
            self.online, self.online_pending, self.online_called, self.offline_since_arbitrate = False, False, False, True
            self.online_known = True
        elif m == "CprepDiskDiskPartitionIsNtfs":  # S_OK means NTFS; another file system is ERROR_WRONG_DISK
            self.verified.add(c.param("ulPartition"))
            self._remember(self.ntfs, c.param("ulPartition"), (True, c.request_frame))
        elif m == "CprepDiskGetFSName":
            name = str(c.param("FsName", "")).rstrip("\x00")
            if name.upper() == "NTFS":
                self.verified.add(c.param("Partition"))
            self._remember(self.fs, c.param("Partition"), (name, c.request_frame))
        elif m == "CprepDiskGetArbSectors":
            self.arb_sectors = (c.param("SectorX"), c.param("SectorY"), c.request_frame)
        elif m == "CprepDiskPRRegister":
            self.registered, self.register_cleared, self.cleared = True, self.cleared, False
        elif m == "CprepDiskPRUnRegister":
            self.registered = self.reserved = False
        elif m in ("CprepDiskPRReserve", "CprepDiskPRPreempt"):
            self.reserved = True
        elif m == "CprepDiskPRRelease":
            self.reserved = False
        elif m == "CprepDiskPRClear":
            self.registered = self.reserved = False
            self.cleared = True

    def failed(self, c: "Call") -> None:
        """What a refusal tells: the server has no such disk; IsNtfs found another file system; the
        disk's Owned and Online states may have changed through local events (3.2.6)."""
        if c.hresult in (ERROR_INVALID_STATE, ERROR_NOT_READY):
            self.owned_known = self.online_known = False
        if c.hresult == ERROR_FILE_NOT_FOUND and c.method in ("CprepDiskGetProps", "CprepDiskGetProps3") or (
                c.hresult == ERROR_NOT_FOUND and c.method == "CprepDiskAttach"):
            self.missing = c.response_frame
        elif c.hresult == ERROR_WRONG_DISK and c.method == "CprepDiskDiskPartitionIsNtfs":
            self._remember(self.ntfs, c.param("ulPartition"), (False, c.request_frame))

    @staticmethod
    def _remember(d: dict, key, value) -> None:
        if key in d or len(d) < MAX_PARTITIONS:
            d[key] = value


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
    object_id: Optional[str] = None  # the request's object UUID: the IPID of the interface it calls
    obj: Optional[Tuple] = None  # its DCOM object (DcomObjects), set by the tracker
    prepare_state: str = UNKNOWN  # the object's Prepare State before the call (§3.2.1), storage calls
    disks_known: bool = False  # its disks' states come from the capture (a Phase2 or the object's start in it)
    shares_created: Optional[bool] = None  # ConnectToNewSmbShares3: a CreateNewSmbShares3 answer, anywhere
    # in the capture before it, returned one of its paths (3.5.4.7: Create on one node, Connect on another)

    @property
    def dcom_object(self) -> Tuple:
        """The key of the DCOM object called (see the module docstring); a call the tracker did not
        place (a test's) is its connection's object of that coclass."""
        if self.obj is not None:
            return self.obj
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
        return disk_form(self.request.DiskId)

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
        if self.unbound:
            return "answered (bind not captured)"
        return "sealed" if self.encrypted else "answer not decoded (malformed stub)"

    @property
    def outcome(self) -> str:
        """succeeded, failed, sealed (answered, the result unreadable without the key), unanswered,
        unbound (answered, on a context whose bind the capture lacks) or not decoded."""
        if self.succeeded is not None:
            return "succeeded" if self.succeeded else "failed"
        if self.response_frame is None:
            return "unanswered"
        if self.unbound:
            return "unbound"
        return "sealed" if self.encrypted else "not decoded"

    @property
    def latency_ms(self) -> Optional[float]:
        return None if self.response_time is None else (self.response_time - self.time) * 1000.0

    @property
    def subject(self) -> str:
        return self.conversation.id


def host_of(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


class DcomObjects:
    """IPIDs joined into objects (the rule is in the module docstring)."""

    def __init__(self):
        self.by_ipid: Dict[Tuple[str, str, str], Tuple] = {}  # (server host, coclass, IPID) -> object key
        self.last: Dict[Tuple[int, str], Tuple] = {}  # (stream, coclass) -> the object last called there
        self.interfaces: Dict[Tuple, set] = {}  # object key -> interfaces it has IPIDs for
        self.from_start: Dict[Tuple, bool] = {}  # object key -> first seen on a connection the capture has from its bind
        self.pre_capture: set = set()  # (server host, IPID) called on a context whose bind the capture lacks

    def key(self, conv: Conversation, interface: str, ipid: Optional[str]) -> Tuple:
        coclass = COCLASS.get(interface, interface)
        host = host_of(conv.server)
        here = self.last.get((conv.stream, coclass))
        if not ipid:
            k = here or (host, coclass, "stream %d" % conv.stream)
        else:
            k = self.by_ipid.get((host, coclass, ipid.lower()))
            if k is None:
                if here is not None and interface not in self.interfaces.get(here, ()):
                    k = here  # another interface of the object this connection is using
                else:
                    k = (host, coclass, ipid.lower())
                if len(self.by_ipid) < MAX_OBJECTS:
                    self.by_ipid[(host, coclass, ipid.lower())] = k
        if k not in self.from_start:
            self.from_start[k] = bool(conv.started) and (host, (ipid or "").lower()) not in self.pre_capture
        self.interfaces.setdefault(k, set()).add(interface)
        self.last[(conv.stream, coclass)] = k
        return k


class DiskAliases:
    """The CPREP_DISKID forms of the disks joined into identities (union-find). A device number
    is one server's name for a disk; a GUID or an MBR signature is written on the disk itself, so
    every node that sees the LUN names it alike: those forms are keyed by no host, and one
    shared disk is one identity across the nodes (its persistent reservations are the disk's)."""

    def __init__(self):
        self.parent: Dict[Tuple[str, str], Tuple[str, str]] = {}

    def find(self, host: str, form: str) -> Tuple[str, str]:
        x = (host if form.startswith("device ") else "", form)
        for _ in range(64):  # paths are halved as they are walked: short, but never trusted to end
            p = self.parent.get(x)
            if p is None or p == x:
                return x
            gp = self.parent.get(p, p)
            self.parent[x] = gp
            x = gp
        return x

    def join(self, host: str, forms: List[str]) -> List[Tuple[Tuple[str, str], Tuple[str, str]]]:
        """Join the forms; returns the (old root, new root) pairs merged."""
        roots = [self.find(host, f) for f in forms]
        merged = []
        for r in roots[1:]:
            r0 = self.find(*roots[0])
            if r != r0 and len(self.parent) < MAX_DISKS * 4:
                self.parent[r] = r0
                merged.append((r, r0))
        return merged


def disk_form(d) -> Optional[str]:
    """A CPREP_DISKID as text, the way findings name it."""
    if d is None:
        return None
    try:
        kind = int(d.DiskIdType)
        if kind == 0:
            return "signature 0x%08X" % d.DiskSignature
        if kind == 1:
            return "GUID %s" % str(d.DiskGuid).lower()
        if kind == 0xFA0:
            return "device %d" % d.DeviceNumber
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return "unknown id"


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
