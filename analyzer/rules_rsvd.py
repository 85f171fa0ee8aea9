"""MS-RSVD and MS-VSOD rules: each small, named, and citing the section it enforces."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from dissectors import rsvd

from . import decoding
from .findings import Rule
from .rsvd_sessions import (FILE_NO_INTERMEDIATE_BUFFERING, SCSI_OP, SRB_STATUS_OP, STATUS_NAMES, SUFFIX, Open, Operation,
                            sense_of)

UNIT_ATTENTIONS = {rsvd.ERROR_CODES[k] for k in rsvd.UNIT_ATTENTIONS}
RESERVATION_CONFLICT = rsvd.ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"]
VERSION_MISMATCH = rsvd.ERROR_CODES["STATUS_SVHDX_VERSION_MISMATCH"]
NOT_AVAILABLE = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_NOT_AVAILABLE"]


def dialect_text(d: int) -> str:
    return "%d.%d.%d" % (d >> 8, (d >> 4) & 0xF, d & 0xF) if d != 0x02FF else "2.??"


class DialectBelow302(Rule):
    id, severity, spec = "rsvd.dialect_below_302", "error", "MS-RSVD 2.1; MS-VSOD 3.2.1.1"
    title = "RSVD needs SMB 3.0.2 or later"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if conn.dialect is None:
            self.cannot_evaluate(conn.label, "the connection's NEGOTIATE is not in the capture (it started mid-connection)")
        elif conn.dialect < 0x0302:
            self.report([req.frame], "CREATE of %s with the RSVD open context on a connection that negotiated SMB %s"
                        % (req.name, dialect_text(conn.dialect)), conn.label)


class OpenNameSuffix(Rule):
    id, severity, spec = "rsvd.open_name_suffix", "error", "MS-RSVD 3.1.4.2, 3.2.5.1"
    title = "The open context goes with a name ending in :SharedVirtualDisk"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if not req.name.lower().endswith(SUFFIX.lower()):
            self.report([req.frame], "CREATE of \"%s\" carries SVHDX_OPEN_DEVICE_CONTEXT but the name does not end in %s"
                        % (req.name, SUFFIX), conn.label)


class OpenContextInvalid(Rule):
    id, severity, spec = "rsvd.open_context_invalid", "error", "MS-RSVD 2.2.5.2, 3.2.5.1"
    title = "SVHDX_OPEN_DEVICE_CONTEXT fields the server checks"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        subject = conn.label
        c = req.context
        if c is None:
            self.report([req.frame], req.context_error, subject)
            return
        problems = []
        want = 2 if c.get("_variant") == "windows_v2" else 1
        if c.Version != want:
            problems.append("Version %d (a %s context must say %d)" % (c.Version, c.get("_variant"), want))
        has_id = decoding.int_of(c.HasInitiatorId)
        if has_id not in (0, 1):
            problems.append("HasInitiatorId %d (not 0 or 1)" % has_id)
        if decoding.int_of(c.OriginatorFlags) != 1:
            problems.append("OriginatorFlags 0x%X (must be 1)" % decoding.int_of(c.OriginatorFlags))
        length = c.InitiatorHostNameLength
        if length > 126:
            problems.append("InitiatorHostNameLength %d (at most 126)" % length)
        elif 2 * len(c.InitiatorHostName) + 2 > length:
            problems.append("InitiatorHostName \"%s\" is not NUL-terminated within its %d bytes"
                            % (c.InitiatorHostName, length))
        if problems:
            self.report([req.frame], "open context of %s: %s" % (req.name, "; ".join(problems)), subject)


class OpenMissingNoIntermediateBuffering(Rule):
    id, severity = "rsvd.open_missing_no_intermediate_buffering", "error"
    spec = "MS-VSOD 3.2.1.1 step 9; MS-RSVD 3.2.5.4 (newer revision)"
    title = "A shared-disk open asks for FILE_NO_INTERMEDIATE_BUFFERING"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if req.create_options is not None and not req.create_options & FILE_NO_INTERMEDIATE_BUFFERING:
            self.report([req.frame], "CREATE of %s with CreateOptions 0x%08X: FILE_NO_INTERMEDIATE_BUFFERING is not "
                        "set, so the server fails its writes with STATUS_NOT_SUPPORTED" % (req.name, req.create_options),
                        conn.label)


class RequestIdNotMonotonic(Rule):
    id, severity, spec = "rsvd.request_id_not_monotonic", "error", "MS-RSVD 3.1.4.1, 2.2.4.1"
    title = "RequestId: the client's previous one plus 1"
    # MS-RSVD 2.2.4.1: unique "for all requests sent by this client"; 3.1.4.1: the client MUST increment
    # it by 1 for every tunnel operation. The client across its channels is its SMB2 ClientGuid (a
    # channel whose NEGOTIATE is not captured borrows its session's); failing that, its address.

    def __init__(self, sink):
        super().__init__(sink)
        self.last: Dict[str, Tuple[int, int]] = {}  # client -> (RequestId, frame)

    def on_rsvd_request(self, op: Operation, conn):
        prev = self.last.get(op.client)
        self.last[op.client] = (op.request_id, op.request_frame)
        if prev is not None and op.request_id != (prev[0] + 1) & 0xFFFFFFFFFFFFFFFF:
            how = "repeats or goes back from" if op.request_id <= prev[0] else "skips %d after" % (
                op.request_id - prev[0] - 1)
            self.report([prev[1], op.request_frame], "RequestId 0x%X %s 0x%X: the client increments it by exactly 1 "
                        "for each tunnel operation, on every channel" % (op.request_id, how, prev[0]), conn.label)


class ScsiBeforeDiskInfo(Rule):
    id, severity, spec = "rsvd.scsi_before_disk_info", "warning", "MS-VSOD 3.2.2 step 2"
    title = "Disk information is queried before the first SCSI command"
    needs_create = True  # the open's whole life, from its CREATE

    def on_rsvd_request(self, op: Operation, conn):
        o = op.open
        if op.kind == SCSI_OP and o is not None and not o.pre_capture and not o.info_seen and not o.scsi_seen:
            self.report([op.request_frame], "first SCSI command on %s before any GET_FILE_INFO (initial info) or "
                        "GET_DISK_INFO query" % o.name, o.label)


class SenseNotRetrieved(Rule):
    id, severity, spec = "rsvd.sense_not_retrieved", "warning", "MS-RSVD 3.1.5.3, 3.1.5.4"
    title = "A stored error is fetched with SRB_STATUS"

    def __init__(self, sink):
        super().__init__(sink)
        self.waiting: Dict[str, list] = {}

    def on_rsvd_stored_error(self, e, op):
        self.waiting.setdefault(e.open.id, []).append(e)

    def on_rsvd_close(self, o: Open, frame: int):
        for e in self.waiting.pop(o.id, []):
            if e.retrieved_frame is None:
                self.report([e.frame, frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d; no SRB_STATUS retrieved key %d "
                            "before the CLOSE" % (e.operation, e.key, e.key), o.label)

    def on_finish(self):
        for es in self.waiting.values():
            for e in es:
                if e.retrieved_frame is None:
                    self.report([e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d; key %d is never retrieved in the "
                                "capture" % (e.operation, e.key, e.key), e.open.label)


class SenseKeyUnknown(Rule):
    id, severity, spec = "rsvd.sense_key_unknown", "warning", "MS-RSVD 3.2.5.5.3"
    title = "SRB_STATUS asks for a key that was stored"
    needs_create = True  # a key may have been stored before the capture started

    def __init__(self, sink):
        super().__init__(sink)
        self.asked: Dict[int, int] = {}  # request frame -> key, for keys never stored

    def on_rsvd_retrieval(self, op: Operation, key: int, stored):
        if stored is None and not op.open.pre_capture:
            self.asked[op.request_frame] = key

    def on_rsvd_response(self, op: Operation):
        if op.kind != SRB_STATUS_OP:
            return
        key = self.asked.pop(op.request_frame, None)
        if op.status == NOT_AVAILABLE or key is not None:
            k = key if key is not None else decoding.int_of(op.request.Payload.StatusKey)
            if op.open is not None and op.open.pre_capture and key is None:
                return  # NOT_AVAILABLE for a key that may predate the capture: it may have been fetched already
            why = "the server answered STATUS_SVHDX_ERROR_NOT_AVAILABLE" if op.status == NOT_AVAILABLE else \
                "no error was stored under it on this open"
            self.report([op.request_frame, op.response_frame], "SRB_STATUS for StatusKey %d: %s" % (k, why), op.subject)

    def on_rsvd_unanswered(self, op: Operation):
        key = self.asked.pop(op.request_frame, None)
        if key is not None:
            self.report([op.request_frame], "SRB_STATUS for StatusKey %d: no error was stored under it on this open"
                        % key, op.subject)


class ReservationConflict(Rule):
    id, severity, spec = "rsvd.reservation_conflict", "warning", "MS-RSVD 3.2.5.4"
    title = "An operation refused by another initiator's persistent reservation"

    def __init__(self, sink):
        super().__init__(sink)
        self.owners: Dict[Tuple, Dict[int, str]] = {}  # disk -> reservation key -> initiator
        self.holder: Dict[Tuple, str] = {}

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind != SCSI_OP or op.open is None:
            return
        p = op.request.Payload
        cdb = p.get("Cdb")
        if cdb is not None and str(cdb.OperationCode) == "PERSISTENT_RESERVE_OUT" and p.get("Data"):
            data = p.Data
            for k in ("ServiceActionReservationKey", "ReservationKey"):
                key = data.get(k)
                if key:
                    self.owners.setdefault(op.open.disk, {})[int(key)] = op.open.initiator
                    break

    def on_rsvd_response(self, op: Operation):
        o = op.open
        if op.kind == SCSI_OP and op.response is not None and o is not None:
            self.track_holder(op)
        conflict = op.status == RESERVATION_CONFLICT
        if not conflict and op.kind == SCSI_OP and isinstance(op.response, dict):
            resp = op.response.get("Payload")
            conflict = isinstance(resp, dict) and str(resp.get("ScsiStatus")) == "RESERVATION_CONFLICT"
        if not conflict:
            return
        what = op.kind
        if op.kind == SCSI_OP and op.request.Payload.get("Cdb") is not None:
            what = str(op.request.Payload.Cdb.OperationCode)
        who = o.initiator if o else "stream %d" % op.stream
        holder = self.holder.get(o.disk) if o else None
        text = "%s by %s refused with a reservation conflict" % (what, who)
        text += "; the reservation is held by %s" % holder if holder else "; no PR IN in the capture shows the holder"
        self.report([op.request_frame, op.response_frame], text, op.subject)

    def track_holder(self, op: Operation):
        cdb = op.request.Payload.get("Cdb")
        data = op.response.get("Payload", {}).get("Data") if isinstance(op.response.get("Payload"), dict) else None
        if cdb is None or str(cdb.OperationCode) != "PERSISTENT_RESERVE_IN" or not data:
            return
        key = None
        if data.get("Reservation"):
            key = int(data.Reservation.ReservationKey)
        for d in data.get("Descriptors") or []:
            if d.Holder.R_HOLDER:
                key = int(d.ReservationKey)
        if key is not None:
            owner = self.owners.get(op.open.disk, {}).get(key)
            self.holder[op.open.disk] = ("%s (key 0x%016X)" % (owner, key)) if owner else "key 0x%016X" % key


class UnitAttention(Rule):
    id, severity, spec = "rsvd.unit_attention", "info", "MS-RSVD 2.2.3"
    title = "The disk reports a unit attention"

    def on_rsvd_response(self, op: Operation):
        if op.status in UNIT_ATTENTIONS:
            self.report([op.request_frame, op.response_frame], "%s answered %s" % (op.kind, STATUS_NAMES[op.status]),
                        op.subject)
            return
        resp = op.response.get("Payload") if isinstance(op.response, dict) else None
        if op.kind in (SCSI_OP, SRB_STATUS_OP) and isinstance(resp, dict):
            key, asc = sense_of(resp.get("Sense"))
            if key == "UNIT_ATTENTION":
                self.report([op.request_frame, op.response_frame], "sense UNIT ATTENTION, %s" % asc, op.subject)


class VersionMismatch(Rule):
    id, severity, spec = "rsvd.version_mismatch", "error", "MS-RSVD 3.2.5.5"
    title = "An OperationCode the server does not know"

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind.isdigit():
            self.report([op.request_frame], "OperationCode 0x%08X is not defined" % int(op.kind), op.subject)

    def on_rsvd_response(self, op: Operation):
        if op.status == VERSION_MISMATCH and not op.kind.isdigit():  # an unknown code is reported once, above
            what = "OperationCode 0x%08X" % int(op.kind) if op.kind.isdigit() else op.kind
            self.report([op.request_frame, op.response_frame], "%s answered STATUS_SVHDX_VERSION_MISMATCH" % what,
                        op.subject)


class ScsiRequestMalformed(Rule):
    id, severity, spec = "rsvd.scsi_request_malformed", "error", "MS-RSVD 2.2.5.11, 3.2.5.5.5"
    title = "SVHDX_TUNNEL_SCSI_REQUEST lengths"

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind != SCSI_OP:
            return
        p = op.request.Payload
        problems = []
        if p.Length != 36:
            problems.append("Length %d (must be 36)" % p.Length)
        if p.CdbLength > rsvd.RSVD_CDB_GENERIC_LENGTH:
            problems.append("CdbLength %d (at most 16)" % p.CdbLength)
        if p.SenseInfoExLength > rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE:
            problems.append("SenseInfoExLength %d (at most 20)" % p.SenseInfoExLength)
        if problems:
            self.report([op.request_frame], "SCSI request: " + "; ".join(problems), op.subject)


class MessageMalformed(Rule):
    id, severity, spec = "rsvd.message_malformed", "error", "MS-RSVD 2.2.5"
    title = "An RSVD message that does not parse"

    def on_rsvd_malformed(self, m, why, o: Optional[Open]):
        self.report([m.frame], why or "the message does not parse", o.label if o else "stream %d" % m.stream)


class ResponseMismatch(Rule):
    id, severity, spec = "rsvd.response_mismatch", "error", "MS-RSVD 3.2.5.5.1-3.2.5.5.6"
    title = "The server answers with its request's OperationCode and RequestId"
    side = "server"  # the first rule that judges the server's answer against its request

    def on_rsvd_response(self, op: Operation):
        hdr = op.response.get("Header") if isinstance(op.response, dict) else None
        if hdr is None or op.request_id is None:
            return
        problems = []
        if int(hdr.RequestId) != op.request_id:
            problems.append("RequestId 0x%X (the request's is 0x%X)" % (int(hdr.RequestId), op.request_id))
        if str(hdr.OperationCode) != op.kind:
            problems.append("OperationCode %s (the request's is %s)" % (hdr.OperationCode, op.kind))
        if problems:
            self.report([op.request_frame, op.response_frame], "the server's response carries " + " and ".join(problems),
                        op.subject)


class UnansweredRequest(Rule):
    id, severity, spec = "rsvd.unanswered_request", "warning", "MS-RSVD 3.1.4.1"
    title = "A request the capture never answers"

    def on_rsvd_unanswered(self, op: Operation):
        self.report([op.request_frame], "%s (RequestId %s) has no response in the capture"
                    % (op.kind, "0x%X" % op.request_id if op.request_id is not None else "-"), op.subject)


class OperationAfterClose(Rule):
    id, severity, spec = "rsvd.operation_after_close", "error", "MS-RSVD 3.2.5.5; MS-SMB2 3.3.5.10"
    title = "An operation on an open after its CLOSE"

    def on_rsvd_after_close(self, o: Open, frame: int, what: str):
        self.report([o.close_frame, frame], "%s on %s after its CLOSE" % (what, o.name or "the open"), o.label)


RULES: List[type] = [DialectBelow302, OpenNameSuffix, OpenContextInvalid, OpenMissingNoIntermediateBuffering,
                     RequestIdNotMonotonic, ScsiBeforeDiskInfo, SenseNotRetrieved, SenseKeyUnknown,
                     ReservationConflict, UnitAttention, VersionMismatch, ScsiRequestMalformed, MessageMalformed,
                     ResponseMismatch, UnansweredRequest, OperationAfterClose]
