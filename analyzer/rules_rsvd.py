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
ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def dialect_text(d: int) -> str:
    return "%d.%d.%d" % (d >> 8, (d >> 4) & 0xF, d & 0xF) if d != 0x02FF else "2.??"


class DialectBelow302(Rule):
    id, severity, spec = "rsvd.dialect_below_302", "observation", "MS-RSVD 2.1; MS-VSOD 3.2.1.1"
    level, side = None, None  # 2.1 describes the transport ("uses the SMB 3.02 dialect"); no MUST
    title = "An RSVD open on a connection below SMB 3.0.2, the dialect RSVD uses"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if conn.dialect is None:
            self.cannot_evaluate(conn.label, "the connection's NEGOTIATE is not in the capture (it started mid-connection)")
        elif conn.dialect < 0x0302:
            self.report([req.frame], "CREATE of %s with the RSVD open context on a connection that negotiated SMB %s"
                        % (req.name, dialect_text(conn.dialect)), conn.label)


class OpenNameSuffix(Rule):
    id, severity, spec = "rsvd.open_name_suffix", "error", "MS-RSVD 3.1.4.2"
    checks = ("R14",)
    title = "The open context goes with a name ending in :SharedVirtualDisk"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if not req.name.lower().endswith(SUFFIX.lower()):
            self.report([req.frame], "CREATE of \"%s\" carries SVHDX_OPEN_DEVICE_CONTEXT but the name does not end in %s"
                        % (req.name, SUFFIX), conn.label)


class OpenContextInvalid(Rule):
    id, severity, spec = "rsvd.open_context_invalid", "error", "MS-RSVD 2.2.5.2, 3.1.4.2"
    title = "SVHDX_OPEN_DEVICE_CONTEXT as the client must fill it"
    checks = ("R06", "R10", "R11", "R12")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        subject = conn.label
        c = req.context
        if c is None:
            return  # does not parse: rsvd.message_malformed says why
        problems = {}  # check -> what is wrong
        want = 2 if c.get("_variant") == "windows_v2" else 1
        if c.Version != want:
            problems.setdefault("R06", []).append("Version %d (a %s context must say %d)" % (
                c.Version, c.get("_variant"), want))
        has_id = decoding.int_of(c.HasInitiatorId)
        if has_id not in (0, 1):
            problems.setdefault("R12", []).append("HasInitiatorId %d (not 0 or 1)" % has_id)
        elif not has_id and str(c.InitiatorId) != ZERO_GUID:
            problems.setdefault("R12", []).append("HasInitiatorId FALSE with InitiatorId %s (must then be zero)"
                                                  % c.InitiatorId)
        if decoding.int_of(c.OriginatorFlags) != 1:
            problems.setdefault("R10", []).append("OriginatorFlags 0x%X (must be 1)" % decoding.int_of(c.OriginatorFlags))
        length = c.InitiatorHostNameLength
        if length > 126:
            problems.setdefault("R11", []).append("InitiatorHostNameLength %d (at most 126)" % length)
        elif 2 * len(c.InitiatorHostName) + 2 > length:
            problems.setdefault("R11", []).append("InitiatorHostName \"%s\" is not NUL-terminated within its %d bytes"
                                                  % (c.InitiatorHostName, length))
        for check, what in sorted(problems.items()):
            self.report([req.frame], "open context of %s: %s" % (req.name, "; ".join(what)), subject, check=check)


class OpenMissingNoIntermediateBuffering(Rule):
    id, severity = "rsvd.open_missing_no_intermediate_buffering", "observation"
    level, side = None, None  # the MUST binds the server's answer to its writes (R34)
    spec = "MS-VSOD 3.2.1.1 step 9; MS-RSVD 3.2.5.4 (newer revision)"
    title = "A shared-disk open asks for FILE_NO_INTERMEDIATE_BUFFERING"
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if req.create_options is not None and not req.create_options & FILE_NO_INTERMEDIATE_BUFFERING:
            self.report([req.frame], "CREATE of %s with CreateOptions 0x%08X: FILE_NO_INTERMEDIATE_BUFFERING is not "
                        "set, so the server fails its writes with STATUS_NOT_SUPPORTED" % (req.name, req.create_options),
                        conn.label)


class RequestIdNotMonotonic(Rule):
    id, severity, spec = "rsvd.request_id_not_monotonic", "error", "MS-RSVD 3.1.4.1, 2.2.5.1"
    checks = ("R04", "R05")
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
                        "for each tunnel operation, on every channel" % (op.request_id, how, prev[0]), conn.label,
                        check="R04" if op.request_id <= prev[0] else "R05",
                        spec="MS-RSVD 2.2.5.1" if op.request_id <= prev[0] else "MS-RSVD 3.1.4.1")


class ScsiBeforeDiskInfo(Rule):
    id, severity, spec = "rsvd.scsi_before_disk_info", "observation", "MS-VSOD 3.2.2 step 2"
    level, side = None, None  # MS-VSOD describes the use case ("has to first retrieve"); no MUST
    title = "Disk information is queried before the first SCSI command"
    needs_create = True  # the open's whole life, from its CREATE

    def on_rsvd_request(self, op: Operation, conn):
        o = op.open
        if op.kind == SCSI_OP and o is not None and not o.pre_capture and not o.info_seen and not o.scsi_seen:
            self.report([op.request_frame], "first SCSI command on %s before any GET_FILE_INFO (initial info) or "
                        "GET_DISK_INFO query" % o.name, o.label)


class SenseNotRetrieved(Rule):
    id, severity, spec = "rsvd.sense_not_retrieved", "error", "MS-RSVD 3.1.5.3, 3.1.5.4"
    checks = ("R28", "R29")
    title = "A stored error is fetched with SRB_STATUS"
    CHECK = {"SMB2_READ": ("R28", "MS-RSVD 3.1.5.3"), "SMB2_WRITE": ("R29", "MS-RSVD 3.1.5.4")}

    def __init__(self, sink):
        super().__init__(sink)
        self.waiting: Dict[str, list] = {}

    def on_rsvd_stored_error(self, e, op):
        # 3.1.5.3 and 3.1.5.4 bind READ and WRITE; a tunnel operation's errors come back in its answer
        if e.operation in self.CHECK:
            self.waiting.setdefault(e.open.id, []).append(e)

    def on_rsvd_close(self, o: Open, frame: int):
        for e in self.waiting.pop(o.id, []):
            if e.retrieved_frame is None:
                check, spec = self.CHECK[e.operation]
                self.report([e.frame, frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d; no SRB_STATUS retrieved key %d "
                            "before the CLOSE" % (e.operation, e.key, e.key), o.label, check=check, spec=spec)

    def on_finish(self):
        for es in self.waiting.values():
            for e in es:
                if e.retrieved_frame is None:
                    check, spec = self.CHECK[e.operation]
                    self.report([e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d; key %d is never retrieved in the "
                                "capture" % (e.operation, e.key, e.key), e.open.label, check=check, spec=spec)


class SenseKeyUnknown(Rule):
    id, severity, spec = "rsvd.sense_key_unknown", "error", "MS-RSVD 2.2.5.7, 3.1.5.3, 3.1.5.4"
    checks = ("R22",)
    title = "SRB_STATUS asks for a key an error of the open was stored under"
    needs_create = True  # a key may have been stored before the capture started

    def on_rsvd_retrieval(self, op: Operation, key: int, stored):
        # 2.2.5.7: StatusKey is the low byte of a failed READ or WRITE's status on the same handle.
        # Whether the server then finds it is its side of the rule (R44, rsvd.sense_key_answer).
        if stored is None and op.open is not None and not op.open.pre_capture:
            self.report([op.request_frame], "SRB_STATUS for StatusKey %d: no error was stored under it on this open"
                        % key, op.subject)


class ReservationConflict(Rule):
    id, severity, spec = "rsvd.reservation_conflict", "observation", "MS-RSVD 3.2.5.4"
    level, side = None, None  # the server doing what the reservation asks
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
    id, severity, spec = "rsvd.unit_attention", "observation", "MS-RSVD 2.2.3"
    level, side = None, None
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
    id, severity, spec = "rsvd.version_mismatch", "error", "MS-RSVD 2.2.5.1"
    checks = ("R02",)
    title = "An OperationCode the server does not know"

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind.isdigit():
            self.report([op.request_frame], "OperationCode 0x%08X is not defined" % int(op.kind), op.subject)



class VersionMismatchAnswer(Rule):
    id, severity, spec = "rsvd.version_mismatch_answer", "error", "MS-RSVD 3.2.5.5"
    title = "STATUS_SVHDX_VERSION_MISMATCH answers an unknown OperationCode, and only that"
    side, checks = "server", ("R37",)

    def on_rsvd_response(self, op: Operation):
        unknown = op.kind.isdigit()
        if unknown and op.status != VERSION_MISMATCH:
            self.report([op.request_frame, op.response_frame], "OperationCode 0x%08X answered %s, not "
                        "STATUS_SVHDX_VERSION_MISMATCH" % (int(op.kind), op.status_name or "-"), op.subject)
        elif not unknown and op.status == VERSION_MISMATCH and op.kind not in ("SMB2_READ", "SMB2_WRITE"):
            self.report([op.request_frame, op.response_frame], "%s, an OperationCode the server knows, answered "
                        "STATUS_SVHDX_VERSION_MISMATCH" % op.kind, op.subject)


class ScsiRequestMalformed(Rule):
    id, severity, spec = "rsvd.scsi_request_malformed", "error", "MS-RSVD 2.2.5.11, 3.1.4.9"
    checks = ("R24", "R25", "R26")
    title = "SVHDX_TUNNEL_SCSI_REQUEST lengths"

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind != SCSI_OP:
            return
        p = op.request.Payload
        if p.Length != 36:
            self.report([op.request_frame], "SCSI request: Length %d (must be 36)" % p.Length, op.subject, check="R26",
                        spec="MS-RSVD 2.2.5.11, 3.1.4.9")
        if p.CdbLength > rsvd.RSVD_CDB_GENERIC_LENGTH:
            self.report([op.request_frame], "SCSI request: CdbLength %d (at most 16)" % p.CdbLength, op.subject,
                        check="R24", spec="MS-RSVD 2.2.5.11")
        if p.SenseInfoExLength > rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE:
            self.report([op.request_frame], "SCSI request: SenseInfoExLength %d (at most 20)" % p.SenseInfoExLength,
                        op.subject, check="R25", spec="MS-RSVD 2.2.5.11")


class MessageMalformed(Rule):
    id, severity, spec = "rsvd.message_malformed", "error", "MS-RSVD 2.2.5"
    side = "both"  # a request's fault is the client's, a response's the server's
    title = "An RSVD message that does not parse"

    def on_rsvd_malformed(self, m, why, o: Optional[Open]):
        self.report([m.frame], why or "the message does not parse", o.label if o else "stream %d" % m.stream,
                    side="server" if m.is_response else "client")

    def on_rsvd_create(self, req, conn):
        if req.context is None:
            self.report([req.frame], "SVHDX_OPEN_DEVICE_CONTEXT of %s: %s" % (req.name, req.context_error), conn.label,
                        side="client")


class ResponseMismatch(Rule):
    id, severity, spec = "rsvd.response_mismatch", "error", "MS-RSVD 3.2.5.5.1-3.2.5.5.6"
    title = "The server answers with its request's OperationCode and RequestId"
    side, checks = "server", ("R38", "R39")

    def on_rsvd_response(self, op: Operation):
        hdr = op.response.get("Header") if isinstance(op.response, dict) else None
        if hdr is None or op.request_id is None:
            return
        if int(hdr.RequestId) != op.request_id:
            self.report([op.request_frame, op.response_frame], "the server's response carries RequestId 0x%X (the "
                        "request's is 0x%X)" % (int(hdr.RequestId), op.request_id), op.subject, check="R39")
        if str(hdr.OperationCode) != op.kind:
            self.report([op.request_frame, op.response_frame], "the server's response carries OperationCode %s (the "
                        "request's is %s)" % (hdr.OperationCode, op.kind), op.subject, check="R38")


class UnansweredRequest(Rule):
    id, severity, spec = "rsvd.unanswered_request", "observation", "MS-RSVD 3.2.5.5.1-3.2.5.5.6"
    level, side = None, None  # the server MUST answer, but a capture may simply end first
    title = "A request the capture never answers"

    def on_rsvd_unanswered(self, op: Operation):
        self.report([op.request_frame], "%s (RequestId %s) has no response in the capture"
                    % (op.kind, "0x%X" % op.request_id if op.request_id is not None else "-"), op.subject)


class OperationAfterClose(Rule):
    id, severity, spec = "rsvd.operation_after_close", "observation", "MS-RSVD 3.2.5.3-3.2.5.5"
    level, side = None, None  # no MUST binds the client; the server's answer is judged by closed_open_served
    title = "An operation on an open after its CLOSE"

    def on_rsvd_after_close(self, o: Open, frame: int, what: str):
        self.report([o.close_frame, frame], "%s on %s after its CLOSE" % (what, o.name or "the open"), o.label)


RULES: List[type] = [DialectBelow302, OpenNameSuffix, OpenContextInvalid, OpenMissingNoIntermediateBuffering,
                     RequestIdNotMonotonic, ScsiBeforeDiskInfo, SenseNotRetrieved, SenseKeyUnknown,
                     ReservationConflict, UnitAttention, VersionMismatch, VersionMismatchAnswer, ScsiRequestMalformed, MessageMalformed,
                     ResponseMismatch, UnansweredRequest, OperationAfterClose]
