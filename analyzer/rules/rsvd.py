"""MS-RSVD and MS-VSOD rules: each small, named, and citing the section it enforces."""
from __future__ import annotations

import uuid
from typing import Dict, List, Optional, Tuple

from dissectors.definitions import rsvd

from ..reconstruction import decoding
from .findings import Rule
from ..reconstruction.request_numbers import RequestIds, StoredKeys
from ..reconstruction.rsvd_sessions import (FILE_NO_INTERMEDIATE_BUFFERING, SCSI_OP, SRB_STATUS_OP, STATUS_NAMES, SUFFIX, Open, Operation,
                            sense_of, stored_key)

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
    title = "A shared-disk open on a connection that negotiated SMB older than 3.0.2"
    advice = ("Look at this connection's NEGOTIATE: shared VHDX needs SMB 3.02 or later, so check the file server's "
              "Windows version and any policy capping the SMB dialect; act only if the open fails.")
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
    title = "The client opened a shared disk by a name without the :SharedVirtualDisk suffix"
    advice = ("Check how the client builds the file name: a CREATE carrying the shared-disk open context must name "
              "the .vhdx with :SharedVirtualDisk appended; an app passing the bare path is the usual cause.")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if not req.name.lower().endswith(SUFFIX.lower()):
            self.report([req.frame], "CREATE of \"%s\" carries SVHDX_OPEN_DEVICE_CONTEXT but the name does not end in %s"
                        % (req.name, SUFFIX), conn.label)


class OpenContextInvalid(Rule):
    id, severity, spec = "rsvd.open_context_invalid", "error", "MS-RSVD 2.2.5.2, 3.1.4.2"
    title = "The client sent a shared-disk open with bad fields (version, initiator, flags, host name)"
    advice = ("Decode the CREATE's SVHDX_OPEN_DEVICE_CONTEXT in Wireshark and compare Version, HasInitiatorId with "
              "InitiatorId, OriginatorFlags (1) and the host name length with what the client should send.")
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
    title = "A shared-disk open did not ask for unbuffered I/O (FILE_NO_INTERMEDIATE_BUFFERING)"
    advice = ("Check the shared-disk CREATE's CreateOptions: without FILE_NO_INTERMEDIATE_BUFFERING a newer file "
              "server fails every WRITE with STATUS_NOT_SUPPORTED; act only if writes fail.")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if req.create_options is not None and not req.create_options & FILE_NO_INTERMEDIATE_BUFFERING:
            self.report([req.frame], "CREATE of %s with CreateOptions 0x%08X: FILE_NO_INTERMEDIATE_BUFFERING is not "
                        "set, so a server of the newer revision fails its writes with STATUS_NOT_SUPPORTED" % (req.name, req.create_options),
                        conn.label)


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
        self.subjects: Dict[str, str] = {}
        self.in_flight: Dict[str, int] = {}  # client -> its tunnel operations not yet answered
        self.pending: Dict[int, Operation] = {}  # those operations, by id()

    def on_rsvd_request(self, op: Operation, conn):
        seq = self.clients.get(op.client)
        if seq is None:
            seq = self.clients[op.client] = RequestIds()
        self.subjects[op.client] = conn.label
        if len(self.pending) < MAX_PENDING:
            self.pending[id(op)] = op
            self.in_flight[op.client] = self.in_flight.get(op.client, 0) + 1
        for v in seq.add(op.request_id, op.request_frame, self.in_flight.get(op.client, 0)):
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
                self.gap(v, self.subjects[client])


class ScsiBeforeDiskInfo(Rule):
    id, severity, spec = "rsvd.scsi_before_disk_info", "observation", "MS-VSOD 3.2.2 step 2"
    level, side = None, None  # MS-VSOD describes the use case ("has to first retrieve"); no MUST
    title = "A client sent SCSI commands before asking for the disk's file or disk info"
    advice = ("No action needed unless the client misreads the disk: it sent SCSI commands before asking for file or "
              "disk info on this handle; if so, check whether it reused info cached from an earlier open.")
    needs_create = True  # the open's whole life, from its CREATE

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
        data = op.response.get("Payload", {}).get("Data") if isinstance(op.response.get("Payload"), dict) else None
        if cdb is None or str(cdb["OperationCode"]) != "PERSISTENT_RESERVE_IN" or not data:
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
            key, asc = sense_of(resp.get("Sense"))
            if key == "UNIT_ATTENTION":
                self.report([op.request_frame, op.response_frame], "sense UNIT ATTENTION, %s" % asc, op.subject)


class VersionMismatch(Rule):
    id, severity, spec = "rsvd.version_mismatch", "error", "MS-RSVD 2.2.5.1"
    checks = ("R02",)
    title = "The client sent a tunnel operation code that the protocol does not define"
    advice = ("Check which tunnel OperationCode the client sent: one from a newer RSVD version than the file server "
              "supports, or a corrupt request buffer; compare the client's and server's Windows builds.")

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind.isdigit():
            self.report([op.request_frame], "OperationCode 0x%08X is not defined" % int(op.kind), op.subject)



class VersionMismatchAnswer(Rule):
    id, severity, spec = "rsvd.version_mismatch_answer", "error", "MS-RSVD 3.2.5.5"
    title = "The server answered version mismatch to a known operation, or not to an unknown one"
    advice = ("Check the file server's RSVD version and patch level: it must answer STATUS_SVHDX_VERSION_MISMATCH to "
              "an operation code it does not support, and never to one it does.")
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
    title = "The client sent a SCSI request with wrong lengths (request, command block (CDB) or sense)"
    advice = ("Inspect the SCSI tunnel request: Length must be 36, CdbLength at most 16, SenseInfoExLength at most "
              "20; a wrong Length is the client's bug, oversized CDB or sense lengths come from the guest.")

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind != SCSI_OP:
            return
        p = op.request["Payload"]
        if p["Length"] != 36:
            self.report([op.request_frame], "SCSI request: Length %d (must be 36)" % p.Length, op.subject, check="R26",
                        spec="MS-RSVD 2.2.5.11, 3.1.4.9")
        if p["CdbLength"] > rsvd.RSVD_CDB_GENERIC_LENGTH:
            self.report([op.request_frame], "SCSI request: CdbLength %d (at most 16)" % p.CdbLength, op.subject,
                        check="R24", spec="MS-RSVD 2.2.5.11")
        if p["SenseInfoExLength"] > rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE:
            self.report([op.request_frame], "SCSI request: SenseInfoExLength %d (at most 20)" % p.SenseInfoExLength,
                        op.subject, check="R25", spec="MS-RSVD 2.2.5.11")


class MessageMalformed(Rule):
    id, severity, spec = "rsvd.message_malformed", "error", "MS-RSVD 2.2.5"
    side = "both"  # a request's fault is the client's, a response's the server's
    title = "A shared-disk (RSVD) message could not be decoded"
    advice = ("Open the frame in Wireshark and compare the RSVD buffer with its declared lengths; check the capture's "
              "snaplen and lost segments first, then the build of the side that sent it.")

    def on_rsvd_malformed(self, m, why, o: Optional[Open]):
        self.report([m.frame], why or "the message does not parse", o.label if o else "stream %d" % m.stream,
                    side="server" if m.is_response else "client")

    def on_rsvd_create(self, req, conn):
        if req.context is None:
            self.report([req.frame], "SVHDX_OPEN_DEVICE_CONTEXT of %s: %s" % (req.name, req.context_error), conn.label,
                        side="client")


class ResponseMismatch(Rule):
    id, severity, spec = "rsvd.response_mismatch", "error", "MS-RSVD 3.2.5.5.1-3.2.5.5.6"
    title = "The server answered with another request's RequestId or operation code"
    advice = ("Pair request and response by SMB2 MessageId and compare their tunnel headers: another RequestId or "
              "OperationCode means the file server answered from the wrong request; report both frames.")
    side, checks = "server", ("R38", "R39")

    def on_rsvd_response(self, op: Operation):
        hdr = op.response.get("Header") if isinstance(op.response, dict) else None
        if hdr is None or op.request_id is None:
            return
        if int(hdr["RequestId"]) != op.request_id:
            self.report([op.request_frame, op.response_frame], "the server's response carries RequestId 0x%X (the "
                        "request's is 0x%X)" % (int(hdr.RequestId), op.request_id), op.subject, check="R39")
        if str(hdr["OperationCode"]) != op.kind:
            self.report([op.request_frame, op.response_frame], "the server's response carries OperationCode %s (the "
                        "request's is %s)" % (hdr.OperationCode, op.kind), op.subject, check="R38")


class UnansweredRequest(Rule):
    id, severity, spec = "rsvd.unanswered_request", "observation", "MS-RSVD 3.2.5.5.1-3.2.5.5.6"
    level, side = None, None  # the server MUST answer, but a capture may simply end first
    title = "A shared-disk request has no answer in the capture"
    advice = ("Check whether the capture ended or dropped packets first; if it kept running, look on the file server "
              "for I/O hung on that disk (storage latency, a stalled volume) at that time.")

    def on_rsvd_unanswered(self, op: Operation):
        self.report([op.request_frame], "%s (RequestId %s) has no response in the capture"
                    % (op.kind, "0x%X" % op.request_id if op.request_id is not None else "-"), op.subject)


class OperationAfterClose(Rule):
    id, severity, spec = "rsvd.operation_after_close", "observation", "MS-RSVD 3.2.5.3-3.2.5.5"
    level, side = None, None  # no MUST binds the client; the server's answer is judged by closed_open_served
    title = "A client sent a request on a shared-disk handle it had already closed"
    advice = ("The client reused a FileId after closing it; no action if the server refused it, otherwise look for a "
              "reopen or durable-handle reconnect the capture missed and check the client's handle cache.")

    def on_rsvd_after_close(self, o: Open, frame: int, what: str):
        self.report([o.close_frame, frame], "%s on %s after its CLOSE" % (what, o.name or "the open"), o.label)


RULES: List[type] = [DialectBelow302, OpenNameSuffix, OpenContextInvalid, OpenMissingNoIntermediateBuffering,
                     RequestIdNotMonotonic, ScsiBeforeDiskInfo, SenseNotRetrieved, SenseKeyUnknown,
                     ReservationConflict, UnitAttention, VersionMismatch, VersionMismatchAnswer, ScsiRequestMalformed, MessageMalformed,
                     ResponseMismatch, UnansweredRequest, OperationAfterClose]


# -- the inventory's remaining MS-RSVD rules (docs/rules.md R01-R50) ----------------------------
FILE_INFO_OP = "RSVD_TUNNEL_GET_FILE_INFO_OPERATION"
CHECK_CONNECTION_OP = "RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION"
DISK_INFO_OP = "RSVD_TUNNEL_GET_DISK_INFO_OPERATION"
VALIDATE_DISK_OP = "RSVD_TUNNEL_VALIDATE_DISK_OPERATION"
V1_OPS = set(rsvd.OPERATION_CODES_V1)
STATUS_INVALID_PARAMETER = rsvd.NT_STATUS["STATUS_INVALID_PARAMETER"]
STATUS_NOT_SUPPORTED = rsvd.NT_STATUS["STATUS_NOT_SUPPORTED"]
HEADER_SIZE = rsvd.SVHDX_TUNNEL_OPERATION_HEADER.struct.sizeof()
# Each operation's request and response sections (2.2.5.x).
SECTIONS = {FILE_INFO_OP: ("2.2.5.3", "2.2.5.4"), SCSI_OP: ("2.2.5.11", "2.2.5.12"),
            CHECK_CONNECTION_OP: ("2.2.5.5", "2.2.5.6"), SRB_STATUS_OP: ("2.2.5.7", "2.2.5.8"),
            DISK_INFO_OP: ("2.2.5.9", "2.2.5.10"), VALIDATE_DISK_OP: ("2.2.5.13", "2.2.5.14")}


def is_zero(v) -> bool:
    if v.__class__ is int:  # most are: the checks below end the same way, slower
        return v == 0
    if isinstance(v, (bytes, bytearray)):
        return not any(v)
    if isinstance(v, dict):
        return all(is_zero(x) for k, x in v.items() if not k.startswith("_"))
    if v is None:
        return True
    try:
        return decoding.int_of(v) == 0
    except (TypeError, ValueError):
        return str(v) == ZERO_GUID  # a GUID


def shown(v) -> str:
    if isinstance(v, (bytes, bytearray)):
        return v[:24].hex() + ("..." if len(v) > 24 else "")
    try:
        return "0x%X" % decoding.int_of(v)
    except (TypeError, ValueError):
        return str(v)


def nonzero(payload, names) -> List[str]:
    """'Field value' for each of `names` the payload holds and is not zero."""
    return ["%s %s" % (n, shown(payload[n])) for n in names if n in payload and not is_zero(payload[n])]


def payload_of(value) -> Optional[dict]:
    p = value.get("Payload") if isinstance(value, dict) else None
    return p if isinstance(p, dict) and "BodyNotDecoded" not in p else None


class ReservedNotZero(Rule):
    id, severity, spec = "rsvd.reserved_not_zero", "error", "MS-RSVD 2.1"
    side, checks = "both", ("R01", "R08")
    title = "A client or server sent nonzero bytes in fields reserved as zero"
    advice = ("Note which side sent the nonzero reserved bytes: most often an uninitialised buffer in that side's "
              "driver; the receiver ignores them today, so report it to that side's vendor.")
    # 2.1: "Unless otherwise noted, fields marked as Reserved MUST be set to 0 when being sent". Fields
    # whose own section says more are judged there: the SCSI request's Reserved1/Reserved3 (SHOULD,
    # reserved_should_be_zero R27), SRB_STATUS and DISK_INFO requests (request_not_zeroed R21, R23),
    # and the SRB_STATUS, DISK_INFO and SCSI answers (response_invalid R45, R46, R48). The SCSI request's
    # Reserved2 (2.2.5.11 MUST, the MUST half of R27) is judged here. The 56-byte VALIDATE_DISK request's
    # Reserved (newer revisions' 2.2.4.9) is reserved too: zero is accepted, as is its absence. Windows-only
    # alignment padding is not judged (READINGS R01): the 24-byte FILE_INFO's 4 bytes before VirtualSize,
    # and the padding after VALIDATE_DISK's IsValidDisk and the Windows SRB_STATUS answer's sense data.
    OWNED = {(False, SCSI_OP): {"Reserved1", "Reserved3"}, (False, SRB_STATUS_OP): {"Reserved"},
             (False, DISK_INFO_OP): {"Reserved1", "Reserved2"}, (True, SRB_STATUS_OP): {"Reserved"},
             (True, DISK_INFO_OP): {"Reserved"}, (True, SCSI_OP): {"Reserved"},
             # Windows' 24-byte FILE_INFO: its "Reserved" is the padding that aligns VirtualSize
             # (dissectors/definitions/rsvd.py), not a field of the spec; uninitialised padding is common
             (False, FILE_INFO_OP): {"Reserved"}, (True, FILE_INFO_OP): {"Reserved"}}

    def on_rsvd_create(self, req, conn):
        c = req.context
        if c is not None and not is_zero(c.get("Reserved")):
            self.report([req.frame], "open context of %s: Reserved %s (3 bytes that MUST be zero)"
                        % (req.name, shown(c.Reserved)), conn.label, check="R08", spec="MS-RSVD 2.2.5.2",
                        side="client")

    def __init__(self, sink):
        super().__init__(sink)
        self.judged: Dict[tuple, List[str]] = {}  # (is_response, kind, the payload's fields) -> Reserved ones judged

    def check(self, op: Operation, value, is_response: bool, frames):
        p = payload_of(value)
        if p is None:
            return
        # a layout's fields are the same every time: pick its Reserved ones once
        key = (is_response, op.kind, tuple(p))
        names = self.judged.get(key)
        if names is None:
            owned = self.OWNED.get((is_response, op.kind), ())
            names = self.judged[key] = [k for k in p if k.startswith("Reserved") and k not in owned]
        bad = nonzero(p, names)
        if bad:
            section = SECTIONS.get(op.kind, ("2.2.5", "2.2.5"))[is_response]
            self.report(frames, "%s %s: %s (Reserved fields MUST be zero)" % (
                op.kind, "response" if is_response else "request", ", ".join(bad)), op.subject, check="R01",
                spec="MS-RSVD 2.1, %s" % section, side="server" if is_response else "client")

    def on_rsvd_request(self, op: Operation, conn):
        self.check(op, op.request, False, [op.request_frame])

    def on_rsvd_response(self, op: Operation):
        if op.status == 0 and op.response is not None:
            self.check(op, op.response, True, [op.request_frame, op.response_frame])


class ReservedShouldBeZero(Rule):
    id, severity, spec = "rsvd.reserved_should_be_zero", "warning", "MS-RSVD 2.2.5.2, 2.2.5.11"
    level, checks = "SHOULD", ("R09", "R27")
    title = "The client left spare fields nonzero (the open's Flags, the SCSI request's reserved bytes)"
    advice = ("Low priority: the client left the open context's Flags or the SCSI request's spare bytes nonzero; "
              "check whether it passes application flags through, and tell the client's vendor.")
    # 2.2.5.11 notes otherwise than 2.1 for Reserved1 and Reserved3 ("SHOULD be set to zero"), so they
    # are a SHOULD here; Reserved2 is a MUST and rsvd.reserved_not_zero judges it (R01).

    def on_rsvd_create(self, req, conn):
        c = req.context
        if c is not None and not is_zero(c.get("Flags")):
            self.report([req.frame], "open context of %s: Flags %s (the client SHOULD set it to 0)"
                        % (req.name, shown(c.Flags)), conn.label, check="R09", spec="MS-RSVD 2.2.5.2")

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind == SCSI_OP:
            bad = nonzero(op.request["Payload"], ("Reserved1", "Reserved3"))
            if bad:
                self.report([op.request_frame], "SCSI request: %s (the client SHOULD set it to zero)"
                            % ", ".join(bad), op.subject, check="R27", spec="MS-RSVD 2.2.5.11")


class RequestNotZeroed(Rule):
    id, severity, spec = "rsvd.request_not_zeroed", "error", "MS-RSVD 3.1.4.6-3.1.4.10, 3.1.5.3-3.1.5.4"
    checks = ("R03", "R19", "R20", "R21", "R23")
    title = "The client filled request fields it must leave zero, or sent a payload where none belongs"
    advice = ("Check the client's request buffers: output-only fields (status, sizes, sense data) must go out as zero "
              "and header-only requests carry no payload; a reused buffer is the likely cause.")
    # The header's Status and the FILE_INFO request's fields are "SHOULD" in 2.2.5.1 and 2.2.5.3 but
    # "MUST be set to zero" in 3.1.4.6-10 and 3.1.5.3-4, which say how each request is built: MUST.
    # 3.1.4.x covers the six v1 operations; the v2 ones keep 2.2.5.1's SHOULD and are not judged here.
    FILE_INFO = ("ServerVersion", "SectorSize", "PhysicalSectorSize", "VirtualSize")
    SRB_STATUS = ("SrbStatus", "ScsiStatus", "SenseInfoExLength", "Reserved", "SenseDataEx")
    # SRB_STATUS's SenseInfoExLength: 0 as 2.2.5.7 and 3.1.5.3-4 say, or 20, the size of SenseDataEx,
    # which a server implementing 3.2.5.5.3 requires (READINGS R21, R43).
    SENSE_LENGTHS = (0, rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE)
    DISK_INFO = ("Reserved1", "BlockSize", "LinkageID", "IsMounted", "Is4kAligned", "Reserved2", "FileSize",
                 "VirtualDiskId")
    # Header only (16 bytes); VALIDATE_DISK also as Windows sends it, 56 reserved bytes after the header
    # (newer revisions' 2.2.4.9), whose zeroes rsvd.reserved_not_zero checks.
    SIZES = {CHECK_CONNECTION_OP: (HEADER_SIZE,), VALIDATE_DISK_OP: (HEADER_SIZE, HEADER_SIZE + 56)}

    def on_rsvd_request(self, op: Operation, conn):
        if op.kind not in V1_OPS:
            return
        status = decoding.int_of(op.request["Header"]["Status"])
        if status:
            self.report([op.request_frame], "%s request: header Status 0x%08X (the client MUST set it to zero)"
                        % (op.kind, status), op.subject, check="R03", spec="MS-RSVD 2.2.5.1, 3.1.4.6-3.1.4.10")
        p = payload_of(op.request) or {}
        for kind, names, check, spec in ((FILE_INFO_OP, self.FILE_INFO, "R19", "MS-RSVD 3.1.4.6"),
                                         (SRB_STATUS_OP, self.SRB_STATUS, "R21", "MS-RSVD 2.2.5.7, 3.1.5.3-3.1.5.4"),
                                         (DISK_INFO_OP, self.DISK_INFO, "R23", "MS-RSVD 2.2.5.9, 3.1.4.8")):
            if op.kind == kind:
                bad = nonzero(p, [n for n in names if n != "SenseInfoExLength"])
                if kind == SRB_STATUS_OP and decoding.int_of(p.get("SenseInfoExLength", 0)) not in self.SENSE_LENGTHS:
                    bad.insert(2, "SenseInfoExLength %d (0, or 20 as 3.2.5.5.3 wants)" % p.SenseInfoExLength)
                if bad:
                    self.report([op.request_frame], "%s request: %s (the client MUST set it to zero)"
                                % (kind, ", ".join(bad)), op.subject, check=check, spec=spec)
        sizes = self.SIZES.get(op.kind)
        if sizes and op.request_size not in sizes:
            self.report([op.request_frame], "%s request of %d bytes: it MUST hold only the %d-byte header%s" % (
                op.kind, op.request_size, HEADER_SIZE, " (or Windows' 56 reserved bytes after it)"
                if op.kind == VALIDATE_DISK_OP else ""), op.subject, check="R20",
                spec="MS-RSVD %s" % SECTIONS[op.kind][0])

    def on_rsvd_support(self, q):
        # 2.2.5.15: only the header; Windows sends an empty input buffer. Both are accepted.
        if q.request_size not in (0, HEADER_SIZE):
            self.report([q.request_frame], "FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT request of %d bytes: it MUST "
                        "hold only the %d-byte header (or nothing, as Windows sends)" % (q.request_size, HEADER_SIZE),
                        q.subject, check="R20", spec="MS-RSVD 2.2.5.15")


class OpenRequestIncomplete(Rule):
    id, severity, spec = "rsvd.open_request_incomplete", "error", "MS-RSVD 3.1.4.2"
    checks = ("R16", "R17")
    title = "A :SharedVirtualDisk open without the shared-disk context, or with bad extended attributes"
    advice = ("Check the :SharedVirtualDisk CREATE: it needs the shared-disk open context, and any "
              "ClusteredApplicationInstance or ApplicationTrafficType EA must hold the InitiatorId with Flags 0.")
    # 3.1.4.2 hands the EAs to the SMB2 client's interface (MS-SMB2 3.2.4.30), which is not the wire:
    # Windows' SMB2 client sends the app instance EA as the SMB2_CREATE_APP_INSTANCE_ID create context,
    # and the traffic-type EA need not appear at all. So an EA missing from the ExtA context proves
    # nothing and is never reported; what is judged is an ExtA entry of those names with Flags not 0
    # or a value other than the open context's InitiatorId. The SMB2_CREATE_APP_INSTANCE_ID context is
    # accepted and not judged (READINGS R16). 3.1.4.2 sets each EA's NextEntryOffset to zero, which
    # cannot chain two entries in one ExtA list (MS-FSCC 2.4.15): a chained list is accepted. R17 sees
    # a CREATE without the context only in a frame with some create context or FSCTL (the plugin's
    # export gate); one with no create context at all is not seen.
    NAMES = (rsvd.SMB_CCF_APP_INSTANCE_EA_NAME, rsvd.APP_TRAFFIC_TYPE_EA_NAME)

    def on_rsvd_create_without_context(self, m, conn):
        self.report([m.frame], "CREATE of \"%s\" ends in %s but carries no SVHDX_OPEN_DEVICE_CONTEXT"
                    % (m.bare_name, SUFFIX), conn.label, check="R17")

    def on_rsvd_create(self, req, conn):
        if req.eas is None:
            self.cannot_evaluate(conn.label, "the EAs of a CREATE: %s" % req.eas_error)
            return
        c = req.context
        want = None
        if c is not None:
            try:
                want = uuid.UUID(str(c.InitiatorId)).bytes_le
            except ValueError:
                want = None
        problems = []
        names = {n.lower(): n for n in self.NAMES}
        for _, flags, name, value in req.eas:
            name = names.get(name.lower())
            if name is None:
                continue  # another EA: not 3.1.4.2's
            if flags:
                problems.append("%s Flags 0x%02X (must be 0)" % (name, flags))
            if want is not None and value != want:
                problems.append("%s value %s (must be the InitiatorId, %s)" % (name, value[:20].hex() or "empty",
                                                                                want.hex()))
        if problems:
            self.report([req.frame], "CREATE of %s: %s" % (req.name, "; ".join(problems)), conn.label, check="R16")


class TunnelNotSync(Rule):
    id, severity, spec = "rsvd.tunnel_not_sync", "error", "MS-RSVD 3.1.4.6-3.1.4.10"
    checks = ("R18",)
    title = "The client used the asynchronous tunnel on a version 1 open (only version 2 opens may)"
    advice = ("Check the open context's Version: an open made as version 1 must use the synchronous tunnel FSCTL, so "
              "an async one means the client mixes protocol versions; check its RSVD driver build.")
    # The seed's 3.1.4.6-10 name FSCTL_SVHDX_SYNC_TUNNEL_REQUEST. FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST
    # (MS-SMB2 2.2.31) came with RSVD version 2: an open whose context says Version 2 may use it, and
    # the v2 OperationCodes always may. An open made before the capture shows no version: not evaluated.
    needs_create = True

    def on_rsvd_request(self, op: Operation, conn):
        if op.function != rsvd.FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST or op.kind not in V1_OPS:
            return
        o = op.open
        if o is None or o.context is None:  # needs_create lists an open made before the capture
            return
        if decoding.int_of(o.context.Version) < 2:
            self.report([op.request_frame], "%s sent with FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST on an open whose context "
                        "is Version %d: a version 1 client uses FSCTL_SVHDX_SYNC_TUNNEL_REQUEST"
                        % (op.kind, decoding.int_of(o.context.Version)), op.subject)


class CreateNotRefused(Rule):
    id, severity, spec = "rsvd.create_not_refused", "error", "MS-RSVD 3.2.5.1"
    side, checks = "server", ("R07", "R13", "R15")
    title = "The server accepted a shared-disk open it must refuse (bad name, version or initiator)"
    advice = ("The file server accepted a shared-disk open it must reject (bad name suffix, Version or "
              "HasInitiatorId); check its shared VHDX support and patch level, and the client that built the CREATE.")
    needs_create = True
    # 3.2.5.1 names STATUS_INVALID_PARAMETER, but MS-SMB2 and the object store may refuse the CREATE
    # first for their own reasons (e.g. STATUS_OBJECT_NAME_NOT_FOUND): any failure is accepted, success
    # is flagged. Version: RSVD_ECP_CONTEXT_VERSION_1 in the seed; a Version 2 context in the 192-byte
    # SVHDX_OPEN_DEVICE_CONTEXT_V2 layout is what a version 2 server accepts (newer revisions), so it is too.

    def on_rsvd_create_answer(self, req, status: Optional[int], frame: int, conn):
        if status != 0:
            return
        c = req.context
        problems = []
        if not req.name.lower().endswith(SUFFIX.lower()):
            problems.append(("R15", "the name \"%s\" does not end in %s" % (req.name, SUFFIX)))
        if c is not None:
            version = decoding.int_of(c.Version)
            if version != 1 and not (version == 2 and c.get("_variant") == "windows_v2"):
                problems.append(("R07", "the open context's Version is %d (not RSVD_ECP_CONTEXT_VERSION_1)" % version))
            has_id = decoding.int_of(c.HasInitiatorId)
            if has_id not in (0, 1):
                problems.append(("R13", "the open context's HasInitiatorId is %d (neither FALSE nor TRUE)" % has_id))
        for check, why in problems:
            self.report([req.frame, frame], "CREATE of %s succeeded, but %s: the server MUST fail it with "
                        "STATUS_INVALID_PARAMETER" % (req.name, why), conn.label, check=check)


class ClosedOpenServed(Rule):
    id, severity, spec = "rsvd.closed_open_served", "error", "MS-RSVD 3.2.5.3, 3.2.5.4, 3.2.5.5"
    side, checks = "server", ("R30", "R31", "R36")
    title = "The server served a READ, WRITE or tunnel operation on a handle already closed"
    advice = ("Check the server's handle bookkeeping: the client used a FileId after its CLOSE succeeded; look for a "
              "reconnect (durable handle) that should have reopened it, else report the server build.")
    # 3.2.5.3-5 fail it with STATUS_INVALID_PARAMETER when no Open is found; MS-SMB2 (3.3.5.x) fails a
    # request on a closed FileId first, with STATUS_FILE_CLOSED, so any failure is accepted and only
    # success is flagged. Opens made before the capture are not judged: only a CLOSE seen says "no Open".
    CHECK = {"SMB2_READ": ("R30", "MS-RSVD 3.2.5.3"), "SMB2_WRITE": ("R31", "MS-RSVD 3.2.5.4")}

    def flag(self, op: Operation, what: str):
        check, spec = self.CHECK.get(op.kind, ("R36", "MS-RSVD 3.2.5.5"))
        o = op.closed
        self.report([o.close_frame, op.request_frame, op.response_frame], "%s on %s after its CLOSE (frame %d) "
                    "succeeded%s: with no Open the server MUST fail it (STATUS_INVALID_PARAMETER; MS-SMB2's "
                    "STATUS_FILE_CLOSED is accepted too)" % (what, o.name or "the open", o.close_frame,
                                                             ""), o.label, check=check, spec=spec)

    def on_rsvd_after_close_answer(self, op: Operation):
        if op.status == 0:
            self.flag(op, op.kind)

    def on_rsvd_response(self, op: Operation):
        if op.closed is not None and op.status == 0:
            self.flag(op, op.kind)


class StoredKeySequence(Rule):
    id, severity, spec = "rsvd.stored_key_sequence", "error", "MS-RSVD 3.2.5.3, 3.2.5.4"
    side, checks = "server", ("R32",)
    title = "The server numbered stored I/O errors out of sequence (a key repeated or skipped)"
    advice = ("List this handle's STATUS_SVHDX_ERROR_STORED answers in order: keys count up by one per failure, so a "
              "repeat or gap means the server lost an error or a failing request is missing from the capture.")
    # Open.SenseErrorSequence starts at 0 (3.2.5.1) and each stored error increments it (0xFF wraps to
    # 0x00) before it becomes the key. Concurrent failing READs and WRITEs (and multichannel) are
    # answered out of order, so per open the highest key and a bounded set of keys skipped so far are
    # kept (analyzer.reconstruction.request_numbers.StoredKeys): a key that fills a skipped slot is fine, and a jump
    # ahead is fine while at least as many other requests of the open are in flight as keys it skips.
    # Reported: a key issued again (not a wrap after 256), a jump no request in flight explains, and at
    # the open's CLOSE the keys skipped and never filled. For an open made before the capture the first
    # key seen starts the sequence (the rule is listed as not evaluated for it: needs_create).
    needs_create = True

    def __init__(self, sink):
        super().__init__(sink)
        self.opens: Dict[str, StoredKeys] = {}
        self.closing: Dict[str, Tuple[Open, int, StoredKeys]] = {}  # closed with requests in flight: judged
        # once they are answered (a FileId reused meanwhile is another open, with its own sequence)

    def on_rsvd_open(self, o: Open, conn, frame: int):
        self.opens[o.id] = StoredKeys(known_start=not o.pre_capture, start_frame=o.create_frame or frame)

    def on_rsvd_stored_error(self, e, op: Operation):
        seq = self.opens.get(e.open.id)
        late = self.closing.get(e.open.id)
        if late is not None and late[0] is e.open:
            seq = late[2]  # answered after the CLOSE was sent
        if seq is None:
            return
        for v in seq.add(e.key, e.frame, op.request_frame, e.open.in_flight):
            if v[0] == "repeat":
                self.report([v[1], op.request_frame, e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d, a key "
                            "already issued on this open (frame %d) and not wrapped since: each stored error takes "
                            "the next Open.SenseErrorSequence" % (e.operation, e.key, v[1]), e.open.label)
            elif v[0] == "jump":
                after = "the highest so far (frame %d)" % v[2] if v[3] else "the open's CREATE (frame %d), whose " \
                    "first stored error is key 1" % v[2]
                self.report([v[2], op.request_frame, e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d, skipping "
                            "%d key%s after %s with %d other request%s of the open in flight: each stored error takes "
                            "the next Open.SenseErrorSequence"
                            % (e.operation, e.key, v[1], "s" if v[1] != 1 else "", after, e.open.in_flight,
                               "s" if e.open.in_flight != 1 else ""), e.open.label)
            else:
                self.lost(e.open, v[1], [v[2]], "before the sequence wrapped past them")

    def lost(self, o: Open, keys: List[int], frames: List[int], when: str) -> None:
        self.report(frames, "stored-error key%s %s skipped on %s and never given to any answer %s: each stored error "
                    "takes the next Open.SenseErrorSequence" % ("s" if len(keys) > 1 else "",
                                                                ", ".join(str(k) for k in keys), o.name or "the open",
                                                                when), o.label)

    def judge_close(self, o: Open, frame: int, seq: Optional[StoredKeys]) -> None:
        unfilled = seq.unfilled() if seq is not None else []
        if unfilled:
            self.lost(o, [k for k, _ in unfilled], sorted({f for _, f in unfilled}) + [frame],
                      "before the CLOSE (frame %d)" % frame)

    def on_rsvd_close(self, o: Open, frame: int):
        seq = self.opens.pop(o.id, None)
        if o.in_flight:
            self.closing[o.id] = (o, frame, seq)
        else:
            self.judge_close(o, frame, seq)

    def on_rsvd_response(self, op: Operation):
        o = op.open
        late = self.closing.get(o.id) if o is not None else None
        if late is not None and late[0] is o and o.in_flight == 0:
            del self.closing[o.id]
            self.judge_close(*late)


class WriteAnswer(Rule):
    id, severity, spec = "rsvd.write_answer", "error", "MS-RSVD 3.2.5.4"
    side, checks = "server", ("R33", "R34")
    title = "The server did not refuse a WRITE as required (disk reserved by another, or buffered open)"
    advice = ("Run PERSISTENT RESERVE IN to see who holds the disk: a WRITE served under another node's exclusive "
              "reservation risks corruption; if the finding is about buffering, check the CREATE's CreateOptions.")
    needs_create = True
    # R33 (3.2.5.4, SPC-3 5.6): the reservation as the capture shows it, per (server, disk), from
    # PERSISTENT RESERVE OUT commands the disk accepted (GOOD): RESERVE sets holder and type; PREEMPT of
    # the holder's key moves it; the holder re-registering changes its key; REGISTER by another
    # initiator leaves it; any other accepted PR OUT (RELEASE, CLEAR, the holder unregistering, ...)
    # drops it. Only WRITE EXCLUSIVE and EXCLUSIVE ACCESS are judged: there only the holder may write,
    # whatever registrations predate the capture. The state starts unknown, and becomes unknown again
    # when the holder's open closes: what another server did in between is not in the capture. The
    # initiator is its InitiatorId when HasInitiatorId is set (a live-migrated VM keeps it on another
    # host), else its host. Only a WRITE served (success) is flagged: the newer revision's earlier
    # branches (a stored error, STATUS_NOT_SUPPORTED) come before the reservation check.
    # R34 is the newer revision's 3.2.5.4; the seed's server (Windows Server 2012 R2) writes whatever
    # the CreateOptions. It is judged only on an open that shows a newer server: a FILE_INFO answered
    # with ServerVersion 2 or more, or a Version 2 (SVHDX_OPEN_DEVICE_CONTEXT_V2) context accepted;
    # a WRITE on another open is held until that evidence comes, else listed as not evaluated. On an
    # open with no InitiatorId a stored error is accepted too (the newer 3.2.5.4's first branch, for
    # an Open.IsVirtualSCSIDisk the wire does not show: NOT_CHECKED R35).
    EXCLUSIVE = ("WRITE_EXCLUSIVE", "EXCLUSIVE_ACCESS")
    MAX_HELD = 8  # per open: WRITEs waiting for evidence of a newer server

    def __init__(self, sink):
        super().__init__(sink)
        self.reservations: Dict[Tuple, dict] = {}  # disk -> holder, type, key, frame, holder's open id
        self.newer: Dict[str, bool] = {}  # open id -> a newer server shown
        self.held: Dict[str, Tuple[Open, list]] = {}  # open id -> (open, [(frames, text)]): WRITEs that break R34
        # on a newer server, held until one shows

    @staticmethod
    def who(o: Open) -> Tuple[str, str]:
        if o.initiator_id:
            return ("id", o.initiator_id.lower())
        return ("host", (o.initiator_host or o.client.rsplit(":", 1)[0]).lower())

    def on_rsvd_open(self, o: Open, conn, frame: int):
        c = o.context
        if c is not None and c.get("_variant") == "windows_v2" and decoding.int_of(c.Version) >= 2:
            self.newer[o.id] = True

    def on_rsvd_close(self, o: Open, frame: int):
        r = self.reservations.get(o.disk)
        if r is not None and r["open"] == o.id:
            del self.reservations[o.disk]
        self.give_up(o)

    def on_finish(self):
        for o, _ in list(self.held.values()):
            self.give_up(o)

    def give_up(self, o: Open) -> None:
        self.newer.pop(o.id, None)
        if self.held.pop(o.id, None):
            self.cannot_evaluate(o.label, "a WRITE on an open without FILE_NO_INTERMEDIATE_BUFFERING was served, but "
                                 "nothing shows a server of the newer revision (FILE_INFO ServerVersion 2, or a Version "
                                 "2 open context accepted), and the seed's server writes whatever the CreateOptions")

    def track(self, op: Operation):
        o, q = op.open, op.request["Payload"]
        cdb = q.get("Cdb")
        resp = payload_of(op.response)
        if cdb is None or str(cdb.get("OperationCode")) != "PERSISTENT_RESERVE_OUT" or not resp or \
                decoding.int_of(resp.get("ScsiStatus", 1)) != 0:
            return
        r = self.reservations.get(o.disk)
        if not isinstance(q.get("Data"), dict):
            self.reservations.pop(o.disk, None)  # a change the capture does not show: unknown
            return
        fields, data = cdb.get("Fields") or {}, q.Data
        action = str(fields.get("ServiceAction", ""))
        kind = str((fields.get("ScopeType") or {}).get("Type", ""))
        key, sa_key = int(data.get("ReservationKey", 0)), int(data.get("ServiceActionReservationKey", 0))
        mine = r is not None and r["holder"] == self.who(o)
        if action == "RESERVE":
            self.reservations[o.disk] = dict(holder=self.who(o), name=o.initiator, type=kind, key=key,
                                             frame=op.request_frame, open=o.id)
        elif action.startswith("PREEMPT") and r and sa_key == r["key"]:
            self.reservations[o.disk] = dict(holder=self.who(o), name=o.initiator, type=kind, key=key,
                                             frame=op.request_frame, open=o.id)
        elif action.startswith("REGISTER") and r and not mine:
            pass  # another initiator registering: the reservation stays
        elif action.startswith("REGISTER") and mine and sa_key:
            r["key"] = sa_key
        elif action.startswith("PREEMPT") and r and not mine and sa_key != r["key"]:
            pass  # another registration removed: the reservation stays
        else:
            self.reservations.pop(o.disk, None)  # RELEASE, CLEAR, the holder unregistering, ...

    def on_rsvd_response(self, op: Operation):
        o = op.open
        if o is not None and op.kind == SCSI_OP and op.response is not None:
            self.track(op)
        if o is not None and op.kind == FILE_INFO_OP and op.status == 0:
            p = payload_of(op.response) or {}
            if decoding.int_of(p.get("ServerVersion", 0)) >= 2:
                self.newer[o.id] = True
                for frames, text in self.held.pop(o.id, (o, []))[1]:
                    self.report(frames, text, o.label, check="R34", spec="MS-RSVD 3.2.5.4 (newer revision)")
        if op.kind != "SMB2_WRITE" or o is None:
            return
        r = self.reservations.get(o.disk)
        if r is not None and r["type"] in self.EXCLUSIVE and r["holder"] != self.who(o) and op.status == 0:
            self.report([r["frame"], op.request_frame, op.response_frame], "SMB2 WRITE by %s served while %s "
                        "holds a %s reservation (frame %d) and no later PR change on the disk is in the capture: the "
                        "server MUST fail it with STATUS_SVHDX_RESERVATION_CONFLICT" % (
                            o.initiator, r["name"], r["type"], r["frame"]), o.label, check="R33")
            return
        if o.pre_capture:  # needs_create lists it as not evaluated (R33 above needs no CREATE)
            return
        if o.create_options is None or o.create_options & FILE_NO_INTERMEDIATE_BUFFERING \
                or op.status == STATUS_NOT_SUPPORTED:
            return
        if not o.initiator_id and stored_key(op.status) is not None:
            return  # the newer 3.2.5.4's first branch (Open.IsVirtualSCSIDisk and no InitiatorId)
        frames = [o.create_frame, op.request_frame, op.response_frame]
        text = ("SMB2 WRITE on %s answered %s: its CREATE (CreateOptions 0x%08X) lacks FILE_NO_INTERMEDIATE_BUFFERING, "
                "so a server of the newer revision MUST fail it with STATUS_NOT_SUPPORTED"
                % (o.name, op.status_name or "-", o.create_options))
        if self.newer.get(o.id):
            self.report(frames, text, o.label, check="R34", spec="MS-RSVD 3.2.5.4 (newer revision)")
        else:
            held = self.held.setdefault(o.id, (o, []))[1]
            if len(held) < self.MAX_HELD:
                held.append((frames, text))


class SenseKeyAnswer(Rule):
    id, severity, spec = "rsvd.sense_key_answer", "error", "MS-RSVD 3.2.5.5.3"
    side, checks = "server", ("R44",)
    title = "The server answered a request for a stored error (SRB_STATUS) with the wrong status"
    advice = ("Compare the SRB_STATUS answer with the earlier stored error on this handle: a stored key must return "
              "its sense data, a never-stored one STATUS_SVHDX_ERROR_NOT_AVAILABLE; check the server's build.")
    # A key "never stored" is known only for an open whose CREATE is in the capture; for an open made
    # before it, a key may predate the capture, so only a stored key's answer is judged there (and the
    # rule is listed as not evaluated for that open: needs_create).
    # The request's SenseInfoExLength (0, as 2.2.5.7 and 3.1.5.3-4 require) is not a reason to fail:
    # see NOT_CHECKED R43.
    needs_create = True

    def on_rsvd_response(self, op: Operation):
        o = op.open
        if op.kind != SRB_STATUS_OP or o is None or "StatusKey" not in (op.request["Payload"] or {}):
            return
        key = decoding.int_of(op.request["Payload"]["StatusKey"])
        frames = [op.request_frame, op.response_frame]
        if op.stored is not None:
            if op.status != 0:
                self.report([op.stored.frame] + frames, "SRB_STATUS for StatusKey %d answered %s, but %s stored an "
                            "error under that key (frame %d): the server MUST return it with STATUS_SUCCESS"
                            % (key, op.status_name or "-", op.stored.operation, op.stored.frame), o.label)
        elif o.pre_capture:
            return  # the key may have been stored before the capture started: not judged
        elif op.status != NOT_AVAILABLE:
            self.report(frames, "SRB_STATUS for StatusKey %d, which no error on this open was stored under, answered "
                        "%s: the server MUST return STATUS_SVHDX_ERROR_NOT_AVAILABLE" % (key, op.status_name or "-"),
                        o.label)


class ResponseInvalid(Rule):
    id, severity, spec = "rsvd.response_invalid", "error", "MS-RSVD 3.2.5.5.1-3.2.5.6"
    side = "server"
    checks = ("R40", "R41", "R42", "R45", "R46", "R47", "R48", "R49", "R50")
    title = "The server's answer to a tunnel operation or support query has wrong fields or status"
    advice = ("Open the answer in Wireshark and compare the fields the finding names (sizes, flags, versions, payload "
              "after a failure) with the request; check the file server build and any filter rewriting it.")
    # Windows layouts are accepted where dissectors/definitions/rsvd.py declares them: ServerVersion 2 (an RSVD v2
    # server's ServerServiceVersion), DiskFormat VHDSET, the 1-byte StatusKey SRB_STATUS answer, the
    # 1-byte IsValidDisk VALIDATE_DISK answer, 4-byte support fields with snapshot support (3, 7).
    FAIL_HEADER_ONLY = {FILE_INFO_OP: "3.2.5.5.1", DISK_INFO_OP: "3.2.5.5.4", SCSI_OP: "3.2.5.5.5"}
    SUPPORT = {"seed": (1,), "windows": (1, 3, 7)}  # SharedVirtualDisksSupported; newer: snapshots (3), CDP (7)
    DISK_TYPES = ("VHD_TYPE_FIXED", "VHD_TYPE_DYNAMIC")  # the seed's; a VHD Set may be differencing (READINGS R46)
    # R48: the SCSI answer's Length is "the size of the SVHDX_TUNNEL_SCSI_RESPONSE structure that is
    # constructed" (3.2.5.5.5): 36 (its fixed part, as the request's Length) or 36 + DataTransferLength
    # (with its data) are accepted, and the request's Length (READINGS R48). VALIDATE_DISK's Windows
    # padding after IsValidDisk is alignment, not judged (R49).
    # R41 across answers: ServerVersion is the server's one ServerServiceVersion (3.2.3), so every
    # FILE_INFO answer of a server carries the same; SectorSize and PhysicalSectorSize are the disk's,
    # the same in every answer about one disk (VirtualSize may change: a resize).
    CONSTANTS = ("SectorSize", "PhysicalSectorSize")
    MAX_KEPT = 65536  # servers and disks remembered

    def __init__(self, sink):
        super().__init__(sink)
        self.versions: Dict[str, Tuple[int, int]] = {}  # server host -> (ServerVersion, frame first seen)
        self.sizes: Dict[Tuple[str, str, str], Tuple[Tuple[int, int], int]] = {}  # (server, tree, name) -> ...

    def constants(self, op: Operation, p, report) -> None:
        if op.open is None:
            return
        host = op.open.server.rsplit(":", 1)[0]
        version = decoding.int_of(p.get("ServerVersion", 0))
        first = self.differs(self.versions, host, version, op.response_frame)
        if first is not None:
            report("R41", "3.2.3, 3.2.5.5.1", "ServerVersion %d, but this server answered %d at frame %d: both MUST be "
                   "its one ServerServiceVersion" % (version, first[0], first[1]))
        sizes = tuple(decoding.int_of(p.get(f, 0)) for f in self.CONSTANTS)
        first = self.differs(self.sizes, (host, op.open.tree.lower(), op.open.name.lower()), sizes, op.response_frame)
        if first is not None:
            report("R41", "3.2.5.5.1", "SectorSize %d, PhysicalSectorSize %d, but the same disk was %d, %d at frame %d: "
                   "a disk's sector sizes do not change" % (sizes + first[0] + (first[1],)))

    def differs(self, kept: dict, key, value, frame: int):
        """The (value, frame) first seen under `key` when `value` is another; None when it is the same
        or the first (then remembered, up to MAX_KEPT keys)."""
        first = kept.get(key)
        if first is None:
            if len(kept) < self.MAX_KEPT:
                kept[key] = (value, frame)
            return None
        return first if first[0] != value else None

    def on_rsvd_response(self, op: Operation):
        frames = [op.request_frame, op.response_frame]
        report = lambda check, spec, text: self.report(frames, "%s response: %s" % (op.kind, text), op.subject,  # noqa: E731
                                                        check=check, spec="MS-RSVD " + spec)
        # Decoded values are dicts: the hot SCSI path reads items (construct's __getattr__ is a call each)
        if op.kind == SCSI_OP and op.request is not None:
            p = op.request["Payload"]
            if (p["Length"] != 36 or p["CdbLength"] > rsvd.RSVD_CDB_GENERIC_LENGTH) and op.status != STATUS_INVALID_PARAMETER:
                report("R47", "3.2.5.5.5", "the request's Length %d / CdbLength %d, answered %s: the server MUST fail "
                       "it with STATUS_INVALID_PARAMETER" % (p.Length, p.CdbLength, op.status_name or "-"))
        value = op.response
        if value is None:
            return  # an SMB2-level answer with no buffer: nothing of RSVD's to judge
        status = decoding.int_of(value["Header"]["Status"])
        extra = op.response_size - HEADER_SIZE
        if status:
            if op.kind in self.FAIL_HEADER_ONLY and extra > 0:
                report("R40", self.FAIL_HEADER_ONLY[op.kind], "Status %s with %d bytes after the header: a failure "
                       "MUST return the header only" % (op.status_name, extra))
            if op.kind == CHECK_CONNECTION_OP and op.closed is None and op.open is not None:  # 3.2.5.5 first
                report("R42", "3.2.5.5.2", "Status %s: the server MUST answer STATUS_SUCCESS" % op.status_name)
            return
        named = value["Header"].get("OperationCode")
        if named is not None and str(named) != op.kind:
            return  # an answer naming another operation (rsvd.response_mismatch) carries that one's payload
        p = payload_of(value) or {}
        if op.kind == FILE_INFO_OP and decoding.int_of(p.get("ServerVersion", 1)) not in (1, 2):
            report("R41", "3.2.5.5.1", "ServerVersion %d (MUST be ServerServiceVersion: 1, or 2 for an RSVD v2 "
                   "server)" % decoding.int_of(p.ServerVersion))
        elif op.kind == FILE_INFO_OP and p:
            self.constants(op, p, report)
        elif op.kind == CHECK_CONNECTION_OP and extra > 0:
            report("R42", "2.2.5.6", "%d bytes after the header (it MUST NOT contain any payload)" % extra)
        elif op.kind == SRB_STATUS_OP and p:
            self.srb_status(op, p, report)
        elif op.kind == DISK_INFO_OP and p:
            bad = []
            vhdset = str(p.DiskFormat) == "VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET"
            if str(p.DiskType) not in self.DISK_TYPES + (("VHD_TYPE_DIFFERENCING",) if vhdset else ()):
                bad.append("DiskType %s (VHD_TYPE_FIXED or VHD_TYPE_DYNAMIC; a VHD Set: or VHD_TYPE_DIFFERENCING)"
                           % shown(p.DiskType))
            if str(p.DiskFormat) not in rsvd.DISK_FORMAT:
                bad.append("DiskFormat %s (VIRTUAL_STORAGE_TYPE_DEVICE_VHDX; Windows: or VHDSET)" % shown(p.DiskFormat))
            for f in ("IsMounted", "Is4kAligned"):
                if decoding.int_of(p[f]) not in (0, 1):
                    bad.append("%s %d (FALSE or TRUE)" % (f, decoding.int_of(p[f])))
            if not is_zero(p.Reserved):
                bad.append("Reserved %s (zero)" % shown(p.Reserved))
            if bad:
                report("R46", "2.2.5.10, 3.2.5.5.4", "; ".join(bad))
        elif op.kind == SCSI_OP and p and op.request is not None:
            q, bad = op.request["Payload"], []
            if str(p["DataIn"]) != str(q["DataIn"]):
                bad.append("DataIn %s (the request's is %s)" % (p.DataIn, q.DataIn))
            sizes = {36, 36 + decoding.int_of(p["DataTransferLength"]), q["Length"]}
            if p["Length"] not in sizes:
                bad.append("Length %d (the size of SVHDX_TUNNEL_SCSI_RESPONSE: %s)"
                           % (p.Length, " or ".join(str(n) for n in sorted(sizes))))
            if not is_zero(p["Reserved"]):
                bad.append("Reserved %s (zero)" % shown(p.Reserved))
            if bad:
                report("R48", "2.2.5.12, 3.2.5.5.5", "; ".join(bad))
        elif op.kind == VALIDATE_DISK_OP and p and p.get("_variant") == "windows":
            if decoding.int_of(p.IsValidDisk) not in (0, 1):  # the padding after it is Windows' alignment
                report("R49", "2.2.5.14, 3.2.5.5.6", "%d bytes after the header that are neither nothing nor Windows' "
                       "IsValidDisk (0 or 1), here %d" % (extra, decoding.int_of(p.IsValidDisk)))

    def srb_status(self, op: Operation, p, report):
        bad = []
        want = decoding.int_of(op.request.Payload.StatusKey)
        got = decoding.int_of(p.StatusKey)
        if got != (want & 0xFF if p.get("_variant") == "windows" else want):
            bad.append("StatusKey %d (the request's is %d)" % (got, want))
        if not is_zero(p.get("Reserved")):
            bad.append("Reserved %s (zero)" % shown(p.Reserved))
        if p.SenseInfoExLength > rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE:
            bad.append("SenseInfoExLength %d (the sense data's length: at most %d)"
                       % (p.SenseInfoExLength, rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE))
        if bad:
            report("R45", "2.2.5.8, 3.2.5.5.3", "; ".join(bad))

    def on_rsvd_support(self, q):
        v = q.response
        if v is None:
            return
        bad = []
        support = decoding.int_of(v.SharedVirtualDiskSupport)
        if support not in self.SUPPORT.get(v.get("_variant"), (1,)):
            bad.append("SharedVirtualDiskSupport 0x%X (MUST be 0x0001)" % support)
        state = decoding.int_of(v.SharedVirtualDiskHandleState)
        if state not in rsvd.HANDLE_STATE.values():
            bad.append("SharedVirtualDiskHandleState 0x%X (HandleStateNone, FileShared or Shared)" % state)
        elif q.open is not None and not q.open.pre_capture and state != rsvd.HANDLE_STATE["HandleStateShared"]:
            bad.append("SharedVirtualDiskHandleState %s for a handle this capture opened as a shared virtual disk "
                       "(MUST be HandleStateShared)" % v.SharedVirtualDiskHandleState)
        if bad:
            self.report([q.request_frame, q.response_frame], "shared-disk support answer: %s" % "; ".join(bad),
                        q.subject, check="R50", spec="MS-RSVD 2.2.5.16, 3.2.5.6")


RULES += [ReservedNotZero, ReservedShouldBeZero, RequestNotZeroed, OpenRequestIncomplete, TunnelNotSync, CreateNotRefused, ClosedOpenServed,
          StoredKeySequence, WriteAnswer, SenseKeyAnswer, ResponseInvalid]
