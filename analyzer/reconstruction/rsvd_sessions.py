"""RSVD reconstruction: SMB2 session -> tree -> open (FileId) -> tunnel operations, SCSI
commands, READ/WRITE and stored errors, over every TCP connection (channel) of the session.

Keys follow MS-SMB2: trees and opens belong to the session, valid on all its channels
(3.3.1.10, Open.FileId "within the scope of a session"), so they are keyed by SessionId;
a request and its response travel on one channel, so exchanges are keyed by connection
and MessageId. An open whose CREATE is not in the capture (the capture started mid-session)
is recognised from the first RSVD evidence on its FileId (a tunnel IOCTL, or a status in
STATUS_SVHDX_*), and its READ/WRITE before that evidence are kept, bounded, until then.

It consumes Smb2Message events in capture order, decodes the exported RSVD bytes with the
definitions (analyzer.reconstruction.decoding), keeps what later messages need, and emits what it learns
to the rules (Bus) and the tables. Memory stays bounded by what is in flight: an operation
is forgotten once answered; per open only counters and a compact latency array are kept.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from dissectors.definitions import rsvd, windows_codes

from . import decoding, reservations
from .io_errors import SRB_OK, IoError, IoErrors, sense_facts, sense_parts
from .events import CLOSE, CREATE, IOCTL, NEGOTIATE, READ, TREE_CONNECT, WRITE, Smb2Message
from .bus import Bus
from .response_times import rank
from .tables import Tables

STORED = rsvd.PROTOCOL.stored_errors  # the stored-error rule, as the binding declares it
SRB_STATUS_OP = STORED.retrieve_name
SCSI_OP = "RSVD_TUNNEL_SCSI_OPERATION"
INFO_OPS = {"RSVD_TUNNEL_GET_FILE_INFO_OPERATION", "RSVD_TUNNEL_GET_DISK_INFO_OPERATION"}
SUFFIX = rsvd.SHARED_VIRTUAL_DISK_SUFFIX
FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
MAX_LATENCIES = 1 << 18  # per open: 1 MiB of float32
MAX_CANDIDATES = 4096  # FileIds of unknown opens waiting for RSVD evidence (oldest dropped)
MAX_PENDING_ROWS = 256  # per candidate: its table rows, written once it proves to be RSVD
SVHDX_FACILITY = 0xC05C0000  # every STATUS_SVHDX_* (MS-RSVD 2.2.2) has this high word
NAME_NOT_CAPTURED = "(opened before the capture started)"  # in place of the name its unseen CREATE carried


# the specs' names first, then every NTSTATUS Wireshark names (a real capture's READ/WRITE fail with others)
STATUS_NAMES = {**windows_codes.NTSTATUS, **{v: k for k, v in {**rsvd.NT_STATUS, **rsvd.ERROR_CODES}.items()}}


def status_name(status: Optional[int]) -> str:
    key = stored_key(status)
    if key is not None:
        return "%s|%d" % (STORED.base_name, key)
    return STATUS_NAMES.get(status, "0x%08X" % status if status is not None else "")


def stored_key(status: Optional[int]) -> Optional[int]:
    return STORED.key_of(status)


@dataclass
class Connection:
    stream: int
    client: str
    server: str
    dialect: Optional[int] = None
    client_guid: Optional[str] = None  # from its NEGOTIATE request, when captured

    @property
    def label(self) -> str:
        return "%s -> %s (stream %d)" % (self.client, self.server, self.stream)


@dataclass
class CreateRequest:
    frame: int
    time: float
    name: str
    create_options: Optional[int]
    context: object  # the decoded SVHDX_OPEN_DEVICE_CONTEXT, or None
    context_error: Optional[str]
    session_id: int
    tree_id: Optional[int]
    eas: Optional[list] = None  # the ExtA context's (NextEntryOffset, Flags, EaName, EaValue), [] without one
    eas_error: Optional[str] = None  # why the EAs are unknown (not exported, cut, malformed)
    app_instance: Optional[str] = None  # the SMB2_CREATE_APP_INSTANCE_ID context's AppInstanceId, if any


def is_svhdx_status(status: Optional[int]) -> bool:
    return status is not None and status & 0xFFFF0000 == SVHDX_FACILITY


@dataclass
class Open:
    file_id: str
    stream: int  # the connection it was first seen on
    client: str
    server: str
    session_id: int
    tree: str
    name: str
    create_frame: Optional[int]  # None: opened before the capture started
    context: object
    create_options: Optional[int]
    first_frame: int = 0
    close_frame: Optional[int] = None
    channels: List[int] = field(default_factory=list)  # TCP streams it was used on, in order
    candidate: bool = False  # no RSVD evidence yet (an unknown FileId's READ/WRITE)
    initiator_hint: str = ""  # for an open made before the capture: the host a later CREATE on its session names
    host_name: str = ""  # the initiator's name as the report writes it (RsvdTracker.host_name), if it was named
    pending_rows: List[tuple] = field(default_factory=list)
    operations: int = 0
    scsi: int = 0
    reads: int = 0
    writes: int = 0
    # failed I/Os (rows of io_errors), and of them: reservation conflicts, unit attentions (sense
    # or STATUS_SVHDX_UNIT_ATTENTION_*), other CHECK CONDITIONs; whatever path the failure took
    io_errors: int = 0
    check_conditions: int = 0
    reservation_conflicts: int = 0
    unit_attentions: int = 0
    sector_size: Optional[int] = None  # from GET_FILE_INFO: a READ/WRITE's byte offset as an LBA
    first_time: Optional[float] = None
    in_flight: int = 0  # its requests (READ, WRITE, tunnel) not answered yet
    info_seen: bool = False
    scsi_seen: bool = False
    opcodes: Dict[str, int] = field(default_factory=dict)
    latencies: array = field(default_factory=lambda: array("f"))  # milliseconds
    _seen: int = 0
    _stride: int = 1

    def add_latency(self, ms: float) -> None:
        """Exact up to MAX_LATENCIES samples per open; past that every other one is kept, so a
        long capture costs bounded memory and its percentiles stay representative."""
        self._seen += 1
        if self._seen % self._stride:
            return
        self.latencies.append(ms)
        if len(self.latencies) >= MAX_LATENCIES:
            self.latencies = self.latencies[::2]
            self._stride *= 2

    @property
    def id(self) -> str:
        return "0x%016X:%s" % (self.session_id, self.file_id)

    @property
    def pre_capture(self) -> bool:
        return self.create_frame is None

    def use(self, stream: int) -> None:
        if stream not in self.channels:
            self.channels.append(stream)

    @property
    def path(self) -> str:
        """Share and file: the disk as the reservations and the reports name it."""
        return (self.tree + "\\" if self.tree else "") + self.name

    @property
    def where(self) -> str:
        """The path, or that the open predates the capture."""
        return self.path if self.name else self.path + NAME_NOT_CAPTURED

    @property
    def label(self) -> str:
        """What a person recognises: host, share and disk, then the id."""
        return "%s %s (SMB2 session 0x%016X, file id %s)" % (self.initiator_host or self.client, self.where,
                                                              self.session_id, self.file_id)

    @property
    def layout(self) -> str:
        return self.context.get("_variant", "") if self.context is not None else ""

    @property
    def initiator_host(self) -> str:
        if self.host_name:
            return self.host_name
        if self.context is None:  # opened before the capture: another CREATE on its session may say
            return self.initiator_hint
        return str(self.context.get("InitiatorHostName", ""))

    @property
    def initiator_id(self) -> str:
        if self.context is None or not decoding.int_of(self.context.get("HasInitiatorId", 0)):
            return ""
        return str(self.context.get("InitiatorId", ""))

    @property
    def initiator(self) -> str:
        host = self.initiator_host or self.client
        return "%s (%s)" % (host, self.initiator_id) if self.initiator_id else host

    @property
    def disk(self) -> Tuple[str, str]:
        return (self.server.rsplit(":", 1)[0], self.name.lower())


@dataclass
class Operation:
    """One tunnel operation (or SMB2 READ/WRITE on a shared open), request to response."""

    kind: str  # the tunnel OperationCode name, or SMB2_READ / SMB2_WRITE
    stream: int
    open: Optional[Open]
    request_frame: int
    time: float
    request_id: Optional[int] = None
    client: str = ""  # the RSVD client it came from (RsvdTracker.client_of)
    function: Optional[int] = None  # the FSCTL of a tunnel operation
    request: object = None  # decoded request
    response: object = None
    response_frame: Optional[int] = None
    response_time: Optional[float] = None
    status: Optional[int] = None
    status_name: str = ""
    request_size: int = 0  # bytes of the exported buffer (an IOCTL's first 160): enough to see a payload
    response_size: int = 0
    closed: Optional["Open"] = None  # the open the request named, when it came after that open's CLOSE
    holder: Tuple[Optional[str], str] = (None, "")  # the disk's reservation holder (key, host) when answered
    stored: Optional["StoredError"] = None  # an SRB_STATUS: the error stored under its StatusKey at request time
    offset: Optional[int] = None  # a READ/WRITE's byte offset and length
    length: Optional[int] = None

    @property
    def latency_ms(self) -> Optional[float]:
        if self.response_time is None:
            return None
        return (self.response_time - self.time) * 1000.0

    @property
    def subject(self) -> str:
        return self.open.label if self.open else "stream %d" % self.stream


@dataclass
class SupportQuery:
    """FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT (MS-RSVD 3.1.4.11, 3.2.5.6), request to answer."""

    stream: int
    request_frame: int
    request_size: int
    open: Optional["Open"] = None  # the RSVD open its answer's FileId names, if known
    response_frame: Optional[int] = None
    status: Optional[int] = None
    response: object = None  # the decoded SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE
    subject: str = ""


@dataclass
class StoredError:
    open: Open
    key: int
    frame: int
    operation: str
    retrieved_frame: Optional[int] = None


class RsvdTracker:
    def __init__(self, bus: Bus, tables: Tables, history: Optional[reservations.History] = None):
        self.bus = bus
        self.tables = tables
        self.history = history or reservations.History(tables)  # the disks' reservations, with ClusPrep's
        self.connections: Dict[int, Connection] = {}
        self.trees: Dict[Tuple[int, int], str] = {}  # (SessionId, TreeId) -> share
        self.creates: Dict[Tuple[int, int], CreateRequest] = {}  # (stream, MessageId)
        self.opens: Dict[Tuple[int, str], Open] = {}  # (SessionId, FileId)
        self.closed: Dict[Tuple[int, str], Open] = {}
        self.candidates: Dict[Tuple[int, str], Open] = {}  # unknown FileIds, no RSVD evidence yet
        self.io: Dict[Tuple[int, int], Operation] = {}  # SMB2 READ/WRITE in flight, by (stream, msg_id)
        self.io_after_close: Dict[Tuple[int, int], Operation] = {}  # READ/WRITE naming a closed open, in flight
        self.support: Dict[Tuple[int, int], SupportQuery] = {}  # shared-disk-support queries in flight
        self.tunnels: Dict[Tuple[int, int], Operation] = {}  # tunnel IOCTLs in flight, by (stream, msg_id)
        # requests whose payload does not parse, by (stream, msg_id): the rules never see them, the
        # rsvd_operations table lists them with the header's operation, as the plugin times them
        self.undecoded: Dict[Tuple[int, int], Operation] = {}
        self.stored: Dict[Tuple[str, int], StoredError] = {}
        self.tree_requests: Dict[Tuple[int, int], str] = {}
        self.pre_capture: List[Open] = []  # opens made before the capture started, as recognised
        self.session_clients: Dict[int, str] = {}  # SessionId -> ClientGuid of a channel that negotiated it
        self.io_errors = IoErrors(tables)
        self.host_names: Dict[Tuple[str, str], str] = {}  # (initiator, short name) -> the name first seen

    def host_name(self, name: str, initiator: str) -> str:
        """One name per host: an initiator that calls itself NODE2 in one open context and
        NODE2.cluster.example in another is written the way it first named itself."""
        if not name:
            return name
        key = (initiator, name.split(".", 1)[0].lower())
        if key not in self.host_names and len(self.host_names) < MAX_CANDIDATES:
            self.host_names[key] = name
        return self.host_names.get(key, name)

    def client_of(self, conn: Connection, session_id: int) -> str:
        """The client a request comes from, the same on all its channels: its SMB2 ClientGuid (from
        this connection's NEGOTIATE, or another channel's of the same session), else its address."""
        if conn.client_guid:
            self.session_clients[session_id] = conn.client_guid
            return conn.client_guid
        return self.session_clients.get(session_id) or conn.client.rsplit(":", 1)[0]

    # -- per message -------------------------------------------------------------------
    def connection(self, m: Smb2Message, src: str, dst: str) -> Connection:
        c = self.connections.get(m.stream)
        if c is None:
            client, server = (dst, src) if m.is_response else (src, dst)
            c = Connection(m.stream, client, server)
            self.connections[m.stream] = c
        return c

    def message(self, m: Smb2Message, src: str, dst: str) -> None:
        conn = self.connection(m, src, dst)
        cmd = m.command
        if cmd == NEGOTIATE:
            if m.is_response and m.dialect is not None:
                conn.dialect = m.dialect
            elif not m.is_response and m.client_guid:
                conn.client_guid = m.client_guid
        elif cmd == TREE_CONNECT:
            key = (m.stream, m.msg_id)
            if not m.is_response and m.tree:
                self.tree_requests[key] = m.tree
            elif m.is_response and key in self.tree_requests and m.tree_id is not None and m.status == 0:
                self.trees[(m.session_id, m.tree_id)] = self.tree_requests.pop(key)
        elif cmd == CREATE:
            self.create(m, conn)
        elif cmd == CLOSE:
            if not m.is_response and m.file_id:
                okey = (m.session_id, m.file_id)
                self.candidates.pop(okey, None)
                o = self.opens.pop(okey, None)
                if o is not None:
                    o.use(m.stream)
                    o.close_frame = m.frame
                    self.closed[okey] = o
                    self.io_errors.closed(o.id)
                    self.bus.emit("rsvd_close", o, m.frame)
        elif cmd in (READ, WRITE):
            self.read_write(m, conn)
        elif cmd == IOCTL:
            self.ioctl(m, conn)

    def create(self, m: Smb2Message, conn: Connection) -> None:
        key = (m.stream, m.msg_id)
        if not m.is_response:
            if not m.raw:
                if m.bare_name:  # named as a shared disk, without the open context
                    self.bus.emit("rsvd_create_without_context", m, conn)
                return  # not a shared-disk open
            ctx, err = decoding.open_context(m.raw[0])
            req = CreateRequest(m.frame, m.time, m.filename or "", m.create_options, ctx, err, m.session_id,
                                m.tree_id)
            if m.create_contexts is None:
                req.eas_error = "its create contexts were not exported"
            else:
                req.eas, req.eas_error = decoding.create_eas(m.create_contexts)
                req.app_instance = decoding.app_instance_id(m.create_contexts)[0]
            self.creates[key] = req
            host = str(ctx.get("InitiatorHostName", "")) if ctx is not None else ""
            if host:
                for o in self.pre_capture:
                    if o.session_id == m.session_id and not o.initiator_hint:
                        o.initiator_hint = self.host_name(host, initiator_key(ctx, conn))
            self.bus.emit("rsvd_create", req, conn)
            return
        req = self.creates.pop(key, None)
        if req is None or m.status == 0x103:  # STATUS_PENDING: the final answer comes later
            if req is not None:
                self.creates[key] = req
            return
        self.bus.emit("rsvd_create_answer", req, m.status, m.frame, conn)
        if m.status != 0 or not m.file_id:
            return
        tree = self.trees.get((req.session_id, req.tree_id), "") if req.tree_id is not None else ""
        okey = (req.session_id, m.file_id)
        self.candidates.pop(okey, None)
        self.closed.pop(okey, None)  # a FileId reused after its CLOSE is a new open
        o = Open(file_id=m.file_id, stream=m.stream, client=conn.client, server=conn.server,
                 session_id=req.session_id, tree=tree, name=req.name, create_frame=req.frame, context=req.context,
                 create_options=req.create_options, first_frame=req.frame, channels=[m.stream],
                 first_time=req.time)
        o.host_name = self.host_name(str(req.context.get("InitiatorHostName", "")) if req.context is not None else "",
                                     initiator_key(req.context, conn))
        self.opens[okey] = o
        self.bus.emit("rsvd_open", o, conn, m.frame)

    def open_of(self, m: Smb2Message, conn: Connection, evidence: bool) -> Optional[Open]:
        """The open a request's FileId names. An unknown FileId becomes a candidate, and the
        candidate an open made before the capture started once RSVD evidence arrives."""
        if not m.file_id:
            return None
        okey = (m.session_id, m.file_id)
        o = self.opens.get(okey)
        if o is None and okey not in self.closed:
            o = self.candidates.get(okey)
            if o is None:
                if len(self.candidates) >= MAX_CANDIDATES:
                    self.candidates.pop(next(iter(self.candidates)))
                tree = self.trees.get((m.session_id, m.tree_id), "") if m.tree_id is not None else ""
                o = Open(file_id=m.file_id, stream=m.stream, client=conn.client, server=conn.server,
                         session_id=m.session_id, tree=tree, name="", create_frame=None, context=None,
                         create_options=None, first_frame=m.frame, candidate=True, first_time=m.time)
                self.candidates[okey] = o
            if evidence:
                self.promote(o, conn)
        if o is not None:
            o.use(m.stream)
        return o

    def promote(self, o: Open, conn: Connection) -> None:
        """A candidate proved to be a shared-disk open: an open made before the capture started."""
        if not o.candidate:
            return
        o.candidate = False
        okey = (o.session_id, o.file_id)
        self.candidates.pop(okey, None)
        self.opens[okey] = o
        self.pre_capture.append(o)
        self.bus.emit("rsvd_open", o, conn, o.first_frame)
        for table, row in o.pending_rows:
            self.tables.add(table, dict(row, open_id=o.id))
        o.pending_rows = []

    def closed_open(self, m: Smb2Message) -> Optional[Open]:
        return self.closed.get((m.session_id, m.file_id)) if m.file_id else None

    def read_write(self, m: Smb2Message, conn: Connection) -> None:
        key = (m.stream, m.msg_id)
        kind = "SMB2_READ" if m.command == READ else "SMB2_WRITE"
        if not m.is_response:
            gone = self.closed_open(m)
            if gone is not None:
                self.bus.emit("rsvd_after_close", gone, m.frame, kind)
                if len(self.io_after_close) < MAX_CANDIDATES:  # its answer is judged (closed_open_served)
                    self.io_after_close[key] = Operation(kind, m.stream, None, m.frame, m.time, closed=gone)
                return
            o = self.open_of(m, conn, evidence=False)
            if o is not None:
                if key not in self.io:
                    o.in_flight += 1
                self.io[key] = Operation(kind, m.stream, o, m.frame, m.time, offset=m.offset, length=m.length)
            return
        if m.status == 0x103:  # STATUS_PENDING: the final answer comes later
            return
        op = self.io.pop(key, None)
        if op is None:
            late = self.io_after_close.pop(key, None)
            if late is not None:
                late.response_frame, late.response_time, late.status = m.frame, m.time, m.status
                late.status_name = status_name(m.status)
                self.bus.emit("rsvd_after_close_answer", late)
            return
        if op.open is not None and op.open.candidate and is_svhdx_status(m.status):
            self.promote(op.open, conn)
        self.finish(op, m.frame, m.time, m.status, None)

    def ioctl(self, m: Smb2Message, conn: Connection) -> None:
        key = (m.stream, m.msg_id)
        if not m.is_response:
            if decoding.is_rsvd_ioctl(m.function) and decoding.has_transaction(m.function):
                for raw in m.raw[:1]:
                    self.tunnel_request(m, conn, raw)
            elif m.function == rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT:
                if len(self.support) < MAX_CANDIDATES:
                    self.support[key] = SupportQuery(m.stream, m.frame, len(m.raw[0]) if m.raw else 0,
                                                     subject=conn.label)
            return
        if m.status == 0x103:  # STATUS_PENDING: the final answer comes later
            return
        q = self.support.pop(key, None)
        if q is not None:
            self.support_answer(q, m, conn)
            return
        # SMB2 pairs by MessageId (RequestId is RSVD's own); an error response carries no CtlCode
        op = self.tunnels.pop(key, None)
        if op is None:
            u = self.undecoded.pop(key, None)
            if u is not None:
                header = decoding.rsvd_header(m.raw[0]) if m.raw else None
                self.row_only(u, m.frame, m.time, decoding.int_of(header.Status) if header is not None else m.status)
            return
        if not m.raw:
            # an SMB2-level error with no output buffer (STATUS_SVHDX_ERROR_STORED | key among them)
            self.finish(op, m.frame, m.time, m.status, None)
            return
        if m.function is not None and m.function != op.function:
            # MS-SMB2 2.2.32: the response's CtlCode is its request's. Decode it as the request's.
            self.bus.emit("rsvd_malformed", m, "the IOCTL response's CtlCode 0x%08X is not its request's 0x%08X "
                          "(frame %d) [MS-SMB2 2.2.32]; decoded as the request's"
                          % (m.function, op.function, op.request_frame), op.open)
        value, err = decoding.rsvd_message(op.function, True, m.raw[0], request=op.request)
        if value is None:
            self.bus.emit("rsvd_malformed", m, err, op.open)
            header = decoding.rsvd_header(m.raw[0])
            self.row_only(op, m.frame, m.time, decoding.int_of(header.Status) if header is not None else m.status)
            return
        op.response = value
        op.response_size = len(m.raw[0])
        self.finish(op, m.frame, m.time, decoding.int_of(value["Header"]["Status"]), value)

    def tunnel_request(self, m: Smb2Message, conn: Connection, raw: bytes) -> None:
        value, err = decoding.rsvd_message(m.function, False, raw)
        gone = self.closed_open(m)
        o = None if gone is not None else self.open_of(m, conn, evidence=True)
        if value is None:
            self.bus.emit("rsvd_malformed", m, err, o)
            header = decoding.rsvd_header(raw)
            if header is not None and len(self.undecoded) < MAX_CANDIDATES:
                self.undecoded[(m.stream, m.msg_id)] = Operation(
                    str(header.OperationCode), m.stream, o, m.frame, m.time, request_id=int(header.RequestId),
                    function=m.function)
            return
        hdr = value["Header"]
        op = Operation(str(hdr["OperationCode"]), m.stream, o, m.frame, m.time,
                       request_id=int(hdr["RequestId"]), request=value, function=m.function,
                       client=self.client_of(conn, m.session_id), request_size=len(raw), closed=gone)
        if gone is not None:
            self.bus.emit("rsvd_after_close", gone, m.frame, op.kind)
        if o is not None and (m.stream, m.msg_id) not in self.tunnels:
            o.in_flight += 1
        self.tunnels[(m.stream, m.msg_id)] = op
        self.bus.emit("rsvd_request", op, conn)
        if o is not None:
            o.operations += 1
            if op.kind in INFO_OPS:
                o.info_seen = True
            if op.kind == SCSI_OP:
                o.scsi_seen = True
        if op.kind == SRB_STATUS_OP and o is not None and "StatusKey" in value["Payload"]:
            key = decoding.int_of(value["Payload"]["StatusKey"])
            e = self.stored.get((o.id, key))
            op.stored = e
            if e is not None and e.retrieved_frame is None:
                e.retrieved_frame = m.frame
            self.bus.emit("rsvd_retrieval", op, key, e)

    def support_answer(self, q: SupportQuery, m: Smb2Message, conn: Connection) -> None:
        """The answer to a shared-disk-support query; its FileId (the request's may be the related
        one of a compound) names the open."""
        q.response_frame, q.status = m.frame, m.status
        o = self.opens.get((m.session_id, m.file_id)) if m.file_id else None
        q.open = o
        if o is not None:
            q.subject = o.label
        if m.raw and m.status == 0:
            value, err = decoding.rsvd_message(rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, True, m.raw[0])
            if value is None:
                self.bus.emit("rsvd_malformed", m, err, o)
                return
            q.response = value
        self.bus.emit("rsvd_support", q)

    def row_only(self, op: Operation, frame: int, time: float, status: Optional[int]) -> None:
        """An exchange whose request or answer does not parse: its row in rsvd_operations (the
        operation its header names, the status, the time), no event for the rules."""
        op.response_frame, op.response_time, op.status = frame, time, status
        o = op.open
        if o is not None and o.candidate:
            return
        op.status_name = status_name(status)
        self.tables.add("rsvd_operations", self.operation_row(op))

    def finish(self, op: Operation, frame: int, time: float, status: Optional[int], value) -> None:
        op.response_frame, op.response_time, op.status = frame, time, status
        key = stored_key(status)
        op.status_name = status_name(status)
        o = op.open
        if o is not None:
            o.in_flight = max(0, o.in_flight - 1)
            if op.kind == "SMB2_READ":
                o.reads += 1
            elif op.kind == "SMB2_WRITE":
                o.writes += 1
            if op.latency_ms is not None:
                o.add_latency(op.latency_ms)
        row = self.operation_row(op)
        if o is not None and o.candidate:  # not known to be RSVD yet: the row waits, the rules see nothing
            if len(o.pending_rows) < MAX_PENDING_ROWS:
                o.pending_rows.append(("rsvd_operations", row))
            return
        if key is not None and o is not None:
            e = StoredError(o, key, frame, op.kind)
            self.stored[(o.id, key)] = e
            self.bus.emit("rsvd_stored_error", e, op)
        payload = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
        if o is not None and reservations.refusal(op, str(payload.get("ScsiStatus", "")), "", "") == "conflict":
            op.holder = self.history.holder("rsvd", o.path)  # rsvd.reservation_conflict names it
        self.bus.emit("rsvd_response", op)
        self.tables.add("rsvd_operations", row)
        scsi = None
        if op.kind == SCSI_OP and op.request is not None:
            scsi = self.scsi_row(op, value)
        elif op.open is not None:
            resp = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
            reservations.operation_row(self.history, op, value, *sense_of(resp.get("Sense") if resp else None))
            if op.kind == "RSVD_TUNNEL_GET_FILE_INFO_OPERATION" and not status and resp.get("SectorSize"):
                op.open.sector_size = int(resp["SectorSize"])
        if o is not None:
            self.io_error(op, value, status, key, scsi)

    def io_error(self, op: Operation, value, status: Optional[int], key: Optional[int], scsi: Optional[dict]) -> None:
        """The io_errors row of an answered operation that failed (analyzer.reconstruction.io_errors), or the
        retrieval that completes a stored one."""
        o = op.open
        resp = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
        failure = op.status_name if status else ""
        if op.kind == SRB_STATUS_OP:
            facts = dict(scsi_status=str(resp.get("ScsiStatus", "")) if resp else "",
                         srb_status=str(resp["SrbStatus"]["Status"]) if isinstance(resp.get("SrbStatus"), dict) else "",
                         **sense_facts(resp.get("Sense") if resp else None))
            asked = decoding.int_of(op.request["Payload"]["StatusKey"]) if op.request is not None and (
                "StatusKey" in op.request["Payload"]) else None
            if asked is not None and self.io_errors.retrieval(o.id, asked) is not None:
                self.io_errors.retrieved(o.id, asked, op.request_frame, op.response_frame, facts, failure)
                return
            if op.stored is not None:  # a second retrieval of an error already reported
                return
            if failure:
                self.io_errors.failed(IoError(o, op.stream, op.time, op.kind, op.kind, op.request_frame,
                                              op.response_frame, "tunnel", failure, status, status_key=asked))
            elif facts["scsi_status"] not in ("", "GOOD") or facts.get("sense_key"):
                # the error was stored before the capture began: what failed is unknown, its sense is here
                e = IoError(o, op.stream, op.time, "(stored before the capture)", "", None, None, "retrieval",
                            status_key=asked, retrieval_frame=op.request_frame, sense_frame=op.response_frame,
                            retrieval="retrieved")
                for k, v in facts.items():
                    setattr(e, k, v)
                self.io_errors.failed(e)
            return
        bad_scsi = scsi is not None and (scsi["scsi_status"] not in ("", "GOOD") or scsi["srb_status"] not in SRB_OK)
        if key is not None:
            path = "stored"
        elif status:
            path = "tunnel" if value is not None else "smb2"
        elif bad_scsi:
            path = "scsi"
        else:
            return
        e = IoError(o, op.stream, op.time, op.kind, op.kind, op.request_frame, op.response_frame, path,
                    failure, status if status else None, status_key=key,
                    latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else None)
        if scsi is not None:
            for k, v in scsi.items():
                setattr(e, k, v)
        elif op.kind in ("SMB2_READ", "SMB2_WRITE"):
            e.offset, e.length = op.offset, op.length
            if o.sector_size and op.offset is not None:
                e.lba = op.offset // o.sector_size
                e.blocks = -(-op.length // o.sector_size) if op.length is not None else None
        self.io_errors.failed(e)

    def operation_row(self, op: Operation) -> dict:
        """An answered operation's rsvd_operations row, or its statistics alone when no table is kept."""
        if self.tables.wants_rows:
            return operation_row(op)
        return dict(operation=op.kind, latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else None)

    def scsi_row(self, op: Operation, value) -> dict:
        """The scsi_commands row (and reservations') of an answered SCSI command; its facts for io_errors."""
        req = op.request["Payload"]
        cdb = req.get("Cdb")
        opcode = str(cdb["OperationCode"]) if cdb is not None else ""
        fields = cdb["Fields"] if cdb is not None and isinstance(cdb.get("Fields"), dict) else {}
        resp = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
        sense = resp.get("Sense") if resp else None
        key, asc = sense_of(sense)
        srb = resp.get("SrbStatus") if resp else None
        o = op.open
        scsi_status = str(resp.get("ScsiStatus", "")) if resp else ""
        if o is not None:
            o.scsi += 1
            o.opcodes[opcode] = o.opcodes.get(opcode, 0) + 1
        lba, blocks = lba_of(fields), blocks_of(fields)
        if not self.tables.wants_rows:  # the statistics alone
            self.tables.add("scsi_commands", dict(
                opcode=opcode, latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else ""))
        else:
            self.tables.add("scsi_commands", dict(
                open_id=o.id if o else "", stream=op.stream, request_frame=op.request_frame,
                response_frame=op.response_frame, time=op.time, opcode=opcode,
                service_action=str(fields.get("ServiceAction", "")) if fields else "",
                lba=lba, blocks=blocks,
                data_in=str(req.get("DataIn", "")), transfer_length=req.get("DataTransferLength", ""),
                srb_status=str(srb["Status"]) if srb is not None else "",
                scsi_status=scsi_status,
                sense_key=key, additional_sense=asc,
                latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else ""))
        reservations.rsvd_row(self.history, op, value, opcode, fields, scsi_status, key, asc)
        length = req.get("DataTransferLength")
        return dict(command=opcode, lba=lba, blocks=blocks,
                    length=int(length) if length not in (None, "") else None,
                    srb_status=str(srb["Status"]) if srb is not None else "", scsi_status=scsi_status,
                    **sense_facts(sense))

    # -- the end -----------------------------------------------------------------------
    def finish_capture(self) -> List[dict]:
        """Report what never got an answer; one summary per open (also the sessions table)."""
        for op in list(self.tunnels.values()) + list(self.io.values()):
            if op.open is None or not op.open.candidate:
                self.bus.emit("rsvd_unanswered", op)
        self.io_errors.finish()
        out = []
        for o in sorted(list(self.opens.values()) + list(self.closed.values()), key=lambda o: o.first_frame):
            lat = sorted(o.latencies)
            s = dict(
                open_id=o.id, stream=o.stream, channels=" ".join(str(c) for c in o.channels), client=o.client,
                server=o.server, session_id="0x%016X" % o.session_id, tree=o.tree, file_name=o.name,
                opened_before_capture=o.pre_capture, create_frame=o.create_frame, first_frame=o.first_frame,
                close_frame=o.close_frame,
                context_layout=o.layout, context_version=o.context.get("Version") if o.context is not None else None,
                initiator_host=o.initiator_host, initiator_id=o.initiator_id, operations=o.operations,
                scsi_commands=o.scsi, reads=o.reads, writes=o.writes, errors=o.io_errors,
                check_conditions=o.check_conditions, reservation_conflicts=o.reservation_conflicts,
                unit_attentions=o.unit_attentions, time=o.first_time,
                latency_p50_ms=round(percentile(lat, 50), 3) if lat else None,
                latency_p99_ms=round(percentile(lat, 99), 3) if lat else None)
            self.tables.add("sessions", s)
            out.append(dict(s, scsi_opcodes=dict(sorted(o.opcodes.items()))))
        return out


def initiator_key(ctx, conn: Connection) -> str:
    """Who an open context comes from: its InitiatorId, else the client's address."""
    if ctx is not None and decoding.int_of(ctx.get("HasInitiatorId", 0)):
        return str(ctx.get("InitiatorId", "")).lower()
    return conn.client.rsplit(":", 1)[0]


def operation_row(op: Operation) -> dict:
    """An answered operation's row in rsvd_operations."""
    o = op.open
    return dict(open_id=o.id if o else "", stream=op.stream, request_frame=op.request_frame,
                response_frame=op.response_frame, time=op.time, operation=op.kind, request_id=op.request_id,
                status=op.status_name, status_code=op.status,
                latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else None)


def percentile(sorted_values, p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (a list or a numpy array)."""
    if len(sorted_values) == 0:
        return 0.0
    return float(sorted_values[rank(len(sorted_values), p)])


def lba_of(fields) -> Optional[int]:
    """A block command's LBA, whatever the CDB size (READ(6)/WRITE(6) keep it in Address)."""
    if not fields:
        return None
    if isinstance(fields.get("Address"), dict):
        return fields["Address"].get("LogicalBlockAddress")
    return fields.get("LogicalBlockAddress")


def blocks_of(fields) -> Optional[int]:
    """The blocks a block command transfers or touches (READ/WRITE: TransferLength, 0 in a 6-byte
    CDB meaning 256; SYNCHRONIZE CACHE, WRITE SAME: NumberOfLogicalBlocks)."""
    if not fields:
        return None
    n = fields.get("TransferLength", fields.get("NumberOfLogicalBlocks"))
    if n is not None and "Address" in fields and n == 0:
        return 256
    return n


def sense_of(sense) -> Tuple[str, str]:
    """(sense key, additional sense) names from a decoded SENSE_DATA, fixed or descriptor."""
    key, asc = sense_parts(sense)
    return (str(key) if key is not None else "", str(asc) if asc is not None else "")
