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

The tracker is in three modules: this one (connections, trees, CREATEs and opens, each message
dispatched, and the end-of-capture summary), analyzer.reconstruction.rsvd_exchanges (READ/WRITE
and tunnel exchanges, request to answer, and their rows) and analyzer.reconstruction.rsvd_records
(what they record, and how a status is named).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from . import decoding, reservations
from .io_errors import IoErrors
from .events import CLOSE, CREATE, IOCTL, NEGOTIATE, READ, TREE_CONNECT, WRITE, Smb2Message
from .bus import Bus
from .response_times import rank
from .rsvd_exchanges import RsvdExchanges
from .rsvd_records import MAX_CANDIDATES, Connection, CreateRequest, Open, Operation, StoredError, SupportQuery
from .tables import Tables


class RsvdTracker(RsvdExchanges):
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
        # operation kind -> the bus's handlers of rsvd_request, of rsvd_response, for it (Bus.handlers_of_kind)
        self.on_request: Dict[str, list] = {}
        self.on_response: Dict[str, list] = {}
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
        conn = self.connections.get(m.stream)
        if conn is None:
            conn = self.connection(m, src, dst)
        cmd = m.command
        if cmd == IOCTL:  # the commonest first: the commands below are each another
            self.ioctl(m, conn)
        elif cmd == NEGOTIATE:
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


def percentile(sorted_values, p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (a list or a numpy array)."""
    if len(sorted_values) == 0:
        return 0.0
    return float(sorted_values[rank(len(sorted_values), p)])
