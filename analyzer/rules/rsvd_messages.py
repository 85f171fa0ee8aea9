"""MS-RSVD rules on messages' form and pairing: version mismatches, malformed requests and messages,
an answer naming another operation, requests never answered, operations after a close.
"""
from __future__ import annotations

from typing import List, Optional

from dissectors.definitions import rsvd

from ..reconstruction.bus import for_kinds
from ..reconstruction.rsvd_records import SCSI_OP, Open, Operation
from .findings import Rule

VERSION_MISMATCH = rsvd.ERROR_CODES["STATUS_SVHDX_VERSION_MISMATCH"]


class VersionMismatch(Rule):
    id, severity, spec = "rsvd.version_mismatch", "error", "MS-RSVD 2.2.5.1"
    checks = ("R02",)
    title = "The client sent a tunnel operation code that the protocol does not define"
    advice = ("Check which tunnel OperationCode the client sent: one from a newer RSVD version than the file server "
              "supports, or a corrupt request buffer; compare the client's and server's Windows builds.")

    @for_kinds(str.isdigit)  # an OperationCode without a name
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

    @for_kinds([SCSI_OP])
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
        rid, code = hdr["RequestId"], hdr["OperationCode"]  # an int and a name (a str), but for odd bytes
        if rid != op.request_id and int(rid) != op.request_id:
            self.report([op.request_frame, op.response_frame], "the server's response carries RequestId 0x%X (the "
                        "request's is 0x%X)" % (int(hdr.RequestId), op.request_id), op.subject, check="R39")
        if code != op.kind and str(code) != op.kind:
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


RULES: List[type] = [VersionMismatch, VersionMismatchAnswer, ScsiRequestMalformed, MessageMalformed, ResponseMismatch,
                     UnansweredRequest, OperationAfterClose]
