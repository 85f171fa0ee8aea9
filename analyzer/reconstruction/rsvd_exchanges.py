"""RSVD exchanges, request to answer: SMB2 READ and WRITE on a shared-disk open, the tunnel
IOCTLs (decoded with analyzer.reconstruction.decoding) and the shared-disk-support query; the
rows an answered exchange writes (rsvd_operations, scsi_commands, reservations, io_errors) and
what it tells the rules.

RsvdExchanges is the half of RsvdTracker (analyzer.reconstruction.rsvd_sessions) that handles
them: it works on the tracker's state (bus, tables, history, io_errors, the exchanges in flight:
io, io_after_close, tunnels, support, undecoded, stored, and the rules' handlers per operation
kind: on_request, on_response) and asks the tracker which open a message names (open_of,
closed_open, promote, client_of).
"""
from __future__ import annotations

from typing import Optional, Tuple

from dissectors.definitions import rsvd

from . import decoding, reservations
from .bus import MAX_KINDS
from .io_errors import SRB_OK, IoError, sense_facts, sense_parts
from .events import READ, Smb2Message
from .rsvd_records import (INFO_OPS, MAX_CANDIDATES, MAX_PENDING_ROWS, SCSI_OP, SRB_STATUS_OP, SUCCESS_NAME, Connection,
                           Operation, StoredError, SupportQuery, is_svhdx_status, named, status_name, stored_key)


class RsvdExchanges:
    """READ/WRITE and tunnel exchanges, for RsvdTracker (see the module docstring)."""

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
        if not m.is_response:
            if m.function in decoding.TUNNELS:  # an RSVD IOCTL with a transaction
                if m.raw:
                    self.tunnel_request(m, conn, m.raw[0])
            elif m.function == rsvd.FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT:
                key = (m.stream, m.msg_id)
                if len(self.support) < MAX_CANDIDATES:
                    self.support[key] = SupportQuery(m.stream, m.frame, len(m.raw[0]) if m.raw else 0,
                                                     subject=conn.label)
            return
        if m.status == 0x103:  # STATUS_PENDING: the final answer comes later
            return
        key = (m.stream, m.msg_id)
        if self.support:
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
        gone = self.closed_open(m) if self.closed else None
        o = None
        if gone is None:
            # open_of(m, conn, evidence=True); inline for an open already known (o.use, too)
            o = self.opens.get((m.session_id, m.file_id)) if m.file_id else None
            if o is None:
                o = self.open_of(m, conn, evidence=True)
            elif m.stream not in o.channels:
                o.channels.append(m.stream)
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
        key = (m.stream, m.msg_id)
        tunnels = self.tunnels
        if o is not None and key not in tunnels:
            o.in_flight += 1
        tunnels[key] = op
        kind = op.kind
        # the handlers bus.emit("rsvd_request", op, conn) calls, those that act on this kind, called here
        hs = self.on_request.get(kind)
        if hs is None:
            hs = self.bus.handlers_of_kind("rsvd_request", kind)
            if len(self.on_request) < MAX_KINDS:
                self.on_request[kind] = hs
        for h in hs:
            h(op, conn)
        if o is not None:
            o.operations += 1
            if kind in INFO_OPS:
                o.info_seen = True
            elif kind == SCSI_OP:
                o.scsi_seen = True
        if kind == SRB_STATUS_OP and o is not None and "StatusKey" in value["Payload"]:
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
        op.status_name = named(status, key) if status != 0 else SUCCESS_NAME
        o = op.open
        kind = op.kind
        ms = (time - op.time) * 1000.0 if time is not None else None  # op.latency_ms, once
        if o is not None:
            n = o.in_flight
            o.in_flight = n - 1 if n > 0 else 0  # max(0, n - 1), without the call
            if kind == "SMB2_READ":
                o.reads += 1
            elif kind == "SMB2_WRITE":
                o.writes += 1
            if ms is not None:
                o.add_latency(ms)
        latency = round(ms, 3) if ms is not None else None  # the rows' latency_ms: rounded once (slow)
        wants_rows = self.tables.wants_rows
        row = operation_row(op) if wants_rows else None  # without rows, only the latency is kept (below)
        if o is not None and o.candidate:  # not known to be RSVD yet: the row waits, the rules see nothing
            if row is None:
                row = dict(operation=kind, latency_ms=latency)
            if len(o.pending_rows) < MAX_PENDING_ROWS:
                o.pending_rows.append(("rsvd_operations", row))
            return
        if key is not None and o is not None:
            e = StoredError(o, key, frame, kind)
            self.stored[(o.id, key)] = e
            self.bus.emit("rsvd_stored_error", e, op)
        # the answer's payload, as each step below reads it: {} when there is none
        payload = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
        scsi_status = str(payload.get("ScsiStatus", "")) if payload else ""
        if o is not None and reservations.refusal(op, scsi_status, "", "") == "conflict":
            op.holder = self.history.holder("rsvd", o.path)  # rsvd.reservation_conflict names it
        # the handlers bus.emit("rsvd_response", op) calls, those that act on this kind, called here
        hs = self.on_response.get(kind)
        if hs is None:
            hs = self.bus.handlers_of_kind("rsvd_response", kind)
            if len(self.on_response) < MAX_KINDS:
                self.on_response[kind] = hs
        for h in hs:
            h(op)
        if row is not None:
            self.tables.add("rsvd_operations", row)
        else:  # what add() keeps of dict(operation=kind, latency_ms=...) without rows
            self.tables.add_latency("rsvd_operations", kind, latency)
        scsi = None
        if kind == SCSI_OP and op.request is not None:
            scsi = self.scsi_row(op, value, payload, scsi_status, latency, wants_rows)
        elif op.open is not None:
            resp = payload
            sense = resp.get("Sense") if resp else None
            reservations.operation_row(self.history, op, value, *(sense_of(sense) if sense else ("", "")))
            if kind == "RSVD_TUNNEL_GET_FILE_INFO_OPERATION" and not status and resp.get("SectorSize"):
                op.open.sector_size = int(resp["SectorSize"])
        if o is not None:
            if key is None and not status and kind != SRB_STATUS_OP and (scsi is None or scsi.good):
                return  # io_error's answer: nothing failed
            self.io_error(op, value, status, key, scsi.facts() if scsi is not None else None, payload)

    def io_error(self, op: Operation, value, status: Optional[int], key: Optional[int], scsi: Optional[dict],
                 resp) -> None:
        """The io_errors row of an answered operation that failed (analyzer.reconstruction.io_errors), or the
        retrieval that completes a stored one. resp: the answer's payload, {} when there is none."""
        o = op.open
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

    def scsi_row(self, op: Operation, value, resp, scsi_status: str, latency: Optional[float],
                 wants_rows: bool) -> "ScsiFacts":
        """The scsi_commands row (and reservations') of an answered SCSI command; its facts for io_errors.
        resp: the answer's payload ({} when there is none), scsi_status its ScsiStatus as text, latency
        the row's latency_ms (None: unknown), wants_rows the tables' (finish has them)."""
        req = op.request["Payload"]
        cdb = req.get("Cdb")
        opcode = str(cdb["OperationCode"]) if cdb is not None else ""
        fields = cdb["Fields"] if cdb is not None and isinstance(cdb.get("Fields"), dict) else {}
        sense = resp.get("Sense") if resp else None
        key, asc = sense_of(sense) if sense else ("", "")  # sense_of(None): ("", "")
        srb = resp.get("SrbStatus") if resp else None
        o = op.open
        if o is not None:
            o.scsi += 1
            o.opcodes[opcode] = o.opcodes.get(opcode, 0) + 1
        srb_status = str(srb["Status"]) if srb is not None else ""
        if not wants_rows:  # the statistics alone: add()'s of dict(opcode=..., latency_ms=...)
            self.tables.add_latency("scsi_commands", opcode, latency if latency is not None else "")
        else:
            self.tables.add("scsi_commands", dict(
                open_id=o.id if o else "", stream=op.stream, request_frame=op.request_frame,
                response_frame=op.response_frame, time=op.time, opcode=opcode,
                service_action=str(fields.get("ServiceAction", "")) if fields else "",
                lba=lba_of(fields), blocks=blocks_of(fields),
                data_in=str(req.get("DataIn", "")), transfer_length=req.get("DataTransferLength", ""),
                srb_status=srb_status,
                scsi_status=scsi_status,
                sense_key=key, additional_sense=asc,
                latency_ms=latency if latency is not None else ""))
        reservations.rsvd_row(self.history, op, value, opcode, fields, scsi_status, key, asc)
        return ScsiFacts(opcode, fields, req.get("DataTransferLength"), srb_status, scsi_status, sense)


class ScsiFacts:
    """An answered SCSI command as io_errors sees it: whether it went well (good), else its facts()
    (its LBA and blocks from the CDB's fields)."""

    __slots__ = ("command", "fields", "length", "srb_status", "scsi_status", "sense", "good")

    def __init__(self, command: str, fields, length, srb_status: str, scsi_status: str, sense):
        self.command, self.fields, self.length = command, fields, length
        self.srb_status, self.scsi_status, self.sense = srb_status, scsi_status, sense
        self.good = scsi_status in ("", "GOOD") and srb_status in SRB_OK

    def facts(self) -> dict:
        length = self.length
        return dict(command=self.command, lba=lba_of(self.fields), blocks=blocks_of(self.fields),
                    length=int(length) if length not in (None, "") else None,
                    srb_status=self.srb_status, scsi_status=self.scsi_status, **sense_facts(self.sense))


def operation_row(op: Operation) -> dict:
    """An answered operation's row in rsvd_operations."""
    o = op.open
    return dict(open_id=o.id if o else "", stream=op.stream, request_frame=op.request_frame,
                response_frame=op.response_frame, time=op.time, operation=op.kind, request_id=op.request_id,
                status=op.status_name, status_code=op.status,
                latency_ms=round(op.latency_ms, 3) if op.latency_ms is not None else None)


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
