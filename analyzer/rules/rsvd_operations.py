"""MS-RSVD rules on tunnel operations in flight: RequestId order, SCSI before the disk's info, sense
data and its keys, reservation conflicts and unit attentions.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from dissectors.definitions import rsvd

from ..reconstruction.bus import for_kinds
from ..reconstruction.request_numbers import RequestIds
from ..reconstruction.rsvd_exchanges import sense_of
from ..reconstruction.rsvd_records import SCSI_OP, SRB_STATUS_OP, STATUS_NAMES, Connection, Open, Operation
from .findings import Rule

UNIT_ATTENTIONS = {rsvd.ERROR_CODES[k] for k in rsvd.UNIT_ATTENTIONS}
RESERVATION_CONFLICT = rsvd.ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"]
MAX_PENDING = 65536  # operations in flight counted (a capture of requests never answered stays bounded)


class RequestIdNotMonotonic(Rule):
    id, severity, spec = "rsvd.request_id_not_monotonic", "error", "MS-RSVD 3.1.4.1, 2.2.5.1"
    checks = ("R04", "R05")
    title = "The client reused, skipped or reset its request counter (RequestId)"
    advice = ("Make sure the capture covers every SMB channel (NIC) of the client; if it does, a reused or skipped "
              "RequestId points at the client's request counter, e.g. one reset on reconnect.")
    # MS-RSVD 2.2.4.1: unique "for all requests sent by this client"; 3.1.4.1: the client MUST increment
    # it by 1 for every tunnel operation. The client across its channels is its SMB2 ClientGuid (a
    # channel whose NEGOTIATE is not captured borrows its session's); failing that, its address.
    # Concurrent operations, and channels, put ids in the capture out of order: R04 is only an id the
    # client already used (of its last 65536); R05 a gap no later id fills by the end of the capture,
    # or a jump of more than 1024 at once (analyzer.reconstruction.request_numbers.RequestIds). The first id is not
    # judged (3.1.3: implementation-specific; Windows starts at zero, footnote <3>).

    def __init__(self, sink):
        super().__init__(sink)
        self.clients: Dict[str, RequestIds] = {}
        self.subjects: Dict[str, Connection] = {}  # client -> the connection of its last request (its label)
        self.in_flight: Dict[str, int] = {}  # client -> its tunnel operations not yet answered
        self.pending: Dict[int, Operation] = {}  # those operations, by id()

    def on_rsvd_request(self, op: Operation, conn):
        client = op.client
        seq = self.clients.get(client)
        if seq is None:
            seq = self.clients[client] = RequestIds()
        self.subjects[client] = conn
        in_flight = self.in_flight.get(client, 0)
        if len(self.pending) < MAX_PENDING:
            self.pending[id(op)] = op
            in_flight += 1
            self.in_flight[client] = in_flight
        for v in seq.add(op.request_id, op.request_frame, in_flight):
            if v[0] == "duplicate":
                self.report([v[1], op.request_frame], "RequestId 0x%X used again (first at frame %d): it MUST be "
                            "unique across all the client's requests" % (op.request_id, v[1]), conn.label,
                            check="R04", spec="MS-RSVD 2.2.5.1")
            elif v[0] == "behind":
                self.report([v[3], op.request_frame], "RequestId 0x%X is 0x%X below the lowest the client used "
                            "before (0x%X at frame %d), more than its operations in flight explain: the client "
                            "increments RequestIdentifier by exactly 1 for each tunnel operation (a counter "
                            "reset?)" % (v[1], v[2] - v[1], v[2], v[3]), conn.label, check="R05",
                            spec="MS-RSVD 3.1.4.1")
            else:
                self.gap(v, conn.label)

    def on_rsvd_response(self, op: Operation):
        if self.pending.pop(id(op), None) is not None:
            self.in_flight[op.client] -= 1

    def on_rsvd_unanswered(self, op: Operation):
        self.on_rsvd_response(op)

    def gap(self, v, subject: str) -> None:
        _, lo, hi, before, after = v
        what = "RequestId 0x%X" % lo if lo == hi else "RequestIds 0x%X-0x%X (%d)" % (lo, hi, hi - lo + 1)
        self.report([before, after], "%s skipped between frames %d and %d and never used: the client increments "
                    "RequestIdentifier by exactly 1 for each tunnel operation, on every channel" % (what, before, after),
                    subject, check="R05", spec="MS-RSVD 3.1.4.1")

    def on_finish(self):
        for client, seq in self.clients.items():
            for v in seq.finish():
                self.gap(v, self.subjects[client].label)


class ScsiBeforeDiskInfo(Rule):
    id, severity, spec = "rsvd.scsi_before_disk_info", "observation", "MS-VSOD 3.2.2 step 2"
    level, side = None, None  # MS-VSOD describes the use case ("has to first retrieve"); no MUST
    title = "A client sent SCSI commands before asking for the disk's file or disk info"
    advice = ("No action needed unless the client misreads the disk: it sent SCSI commands before asking for file or "
              "disk info on this handle; if so, check whether it reused info cached from an earlier open.")
    needs_create = True  # the open's whole life, from its CREATE

    @for_kinds([SCSI_OP])
    def on_rsvd_request(self, op: Operation, conn):
        o = op.open
        if op.kind == SCSI_OP and o is not None and not o.pre_capture and not o.info_seen and not o.scsi_seen:
            self.report([op.request_frame], "first SCSI command on %s before any GET_FILE_INFO (initial info) or "
                        "GET_DISK_INFO query" % o.name, o.label)


class SenseNotRetrieved(Rule):
    id, severity, spec = "rsvd.sense_not_retrieved", "error", "MS-RSVD 3.1.5.3, 3.1.5.4"
    checks = ("R28", "R29")
    title = "The client closed the disk without fetching a stored I/O error's sense data"
    advice = ("Find the READ or WRITE that failed with a stored error: the client closed the handle without an "
              "SRB_STATUS request for that key, so the SCSI sense data was lost; check the client's error path.")
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
        # A key not yet fetched when the capture ends is no fault: the client may fetch it later.
        for es in self.waiting.values():
            for e in es:
                if e.retrieved_frame is None:
                    self.cannot_evaluate(e.open.label, "the capture ends before the open's CLOSE, with a stored "
                                         "error not yet retrieved")


class SenseKeyUnknown(Rule):
    id, severity, spec = "rsvd.sense_key_unknown", "error", "MS-RSVD 2.2.5.7, 3.1.5.3, 3.1.5.4"
    checks = ("R22",)
    title = "The client asked for a stored error (SRB_STATUS) under a key never stored on this open"
    advice = ("Match the SRB_STATUS StatusKey with the low byte of an earlier STATUS_SVHDX_ERROR_STORED on the same "
              "handle; a mismatch means the client took the key from another handle or a stale error.")
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
    title = "A command was refused: another initiator holds the disk's persistent reservation (PR)"
    advice = ("Expected while another initiator (node or VM) holds the disk's persistent reservation; read it with "
              "PERSISTENT RESERVE IN, and act only if this initiator should own the disk.")

    def __init__(self, sink):
        super().__init__(sink)
        self.owners: Dict[Tuple, Dict[int, str]] = {}  # disk -> reservation key -> initiator
        self.holder: Dict[Tuple, str] = {}

    @for_kinds([SCSI_OP])
    def on_rsvd_request(self, op: Operation, conn):
        if op.kind != SCSI_OP or op.open is None:
            return
        p = op.request["Payload"]
        cdb = p.get("Cdb")
        if cdb is not None and str(cdb["OperationCode"]) == "PERSISTENT_RESERVE_OUT" and p.get("Data"):
            data = p["Data"]
            for k in ("ServiceActionReservationKey", "ReservationKey"):
                key = data.get(k)
                if key:
                    self.owners.setdefault(op.open.disk, {})[int(key)] = op.open.initiator
                    break

    def on_rsvd_response(self, op: Operation):
        o = op.open
        if op.kind == SCSI_OP and op.response is not None and o is not None:
            cdb = op.request["Payload"].get("Cdb")
            if cdb is not None and cdb["OperationCode"] == "PERSISTENT_RESERVE_IN":  # what track_holder wants first
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
        if holder is None and op.holder[0]:  # no PR IN read it, but the PR OUT commands seen say who holds it
            key, host = op.holder
            holder = "%s (key 0x%016X, by the commands in the capture)" % (host, int(key, 16)) if host else (
                "key 0x%016X (by the commands in the capture)" % int(key, 16))
        text = "%s by %s refused with a reservation conflict" % (what, who)
        text += "; the reservation is held by %s" % holder if holder else "; neither a PR IN nor the PR commands in " \
            "the capture show the holder"
        self.report([op.request_frame, op.response_frame], text, op.subject)

    def track_holder(self, op: Operation):
        cdb = op.request["Payload"].get("Cdb")
        if cdb is None or str(cdb["OperationCode"]) != "PERSISTENT_RESERVE_IN":
            return
        data = op.response.get("Payload", {}).get("Data") if isinstance(op.response.get("Payload"), dict) else None
        if not data:
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
    title = "The disk told an initiator that its state changed (SCSI unit attention)"
    advice = ("Usually harmless: look for a reservation preempt or release, a resize or a failover by another "
              "initiator just before; act only if the same unit attention repeats on every command.")

    def on_rsvd_response(self, op: Operation):
        if op.status in UNIT_ATTENTIONS:
            self.report([op.request_frame, op.response_frame], "%s answered %s" % (op.kind, STATUS_NAMES[op.status]),
                        op.subject)
            return
        resp = op.response.get("Payload") if isinstance(op.response, dict) else None
        if op.kind in (SCSI_OP, SRB_STATUS_OP) and isinstance(resp, dict):
            sense = resp.get("Sense")
            if not sense:  # sense_of's ("", ""): no unit attention (and no call)
                return
            key, asc = sense_of(sense)
            if key == "UNIT_ATTENTION":
                self.report([op.request_frame, op.response_frame], "sense UNIT ATTENTION, %s" % asc, op.subject)


RULES: List[type] = [RequestIdNotMonotonic, ScsiBeforeDiskInfo, SenseNotRetrieved, SenseKeyUnknown,
                     ReservationConflict, UnitAttention]
