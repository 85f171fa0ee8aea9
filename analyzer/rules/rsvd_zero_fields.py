"""MS-RSVD rules on fields that must be zero: reserved fields, spare ones, and what a request leaves
for the answer (the inventory's R01-R50 from here on: docs/rules.md). The operation names and
the payload helpers here serve the later MS-RSVD rule modules too.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from dissectors.definitions import rsvd

from ..reconstruction import decoding
from ..reconstruction.bus import for_kinds
from ..reconstruction.rsvd_records import SCSI_OP, SRB_STATUS_OP, Operation
from .findings import Rule
from .rsvd_opens import ZERO_GUID


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
    for n in names:  # all absent or the int 0, the commonest: nothing to list, without is_zero's calls
        v = payload.get(n)
        if v is not None and (v.__class__ is not int or v != 0):
            break
    else:
        return []
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
        p = value.get("Payload") if isinstance(value, dict) else None  # payload_of(value), inline
        if not isinstance(p, dict) or "BodyNotDecoded" in p:
            return
        # a layout's fields are the same every time: pick its Reserved ones once
        key = (is_response, op.kind, tuple(p))
        names = self.judged.get(key)
        if names is None:
            owned = self.OWNED.get((is_response, op.kind), ())
            names = self.judged[key] = [k for k in p if k.startswith("Reserved") and k not in owned]
        for n in names:  # all zero (an int 0), the commonest: nonzero() finds nothing
            v = p[n]  # names are p's keys (judged's key is its fields)
            if v is not None and (v.__class__ is not int or v != 0):
                break
        else:
            return
        bad = nonzero(p, names)
        if bad:
            section = SECTIONS.get(op.kind, ("2.2.5", "2.2.5"))[is_response]
            self.report(list(frames), "%s %s: %s (Reserved fields MUST be zero)" % (
                op.kind, "response" if is_response else "request", ", ".join(bad)), op.subject, check="R01",
                spec="MS-RSVD 2.1, %s" % section, side="server" if is_response else "client")

    def on_rsvd_request(self, op: Operation, conn):
        self.check(op, op.request, False, (op.request_frame,))

    def on_rsvd_response(self, op: Operation):
        if op.status == 0 and op.response is not None:
            self.check(op, op.response, True, (op.request_frame, op.response_frame))


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

    @for_kinds([SCSI_OP])
    def on_rsvd_request(self, op: Operation, conn):
        if op.kind == SCSI_OP:
            p = op.request["Payload"]
            r1, r3 = p.get("Reserved1"), p.get("Reserved3")
            if (r1 is None or r1.__class__ is int and r1 == 0) and (r3 is None or r3.__class__ is int and r3 == 0):
                return  # both zero or absent: nonzero() finds nothing
            bad = nonzero(p, ("Reserved1", "Reserved3"))
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
    # the kinds whose fields are judged: kind -> (the fields that must be zero, check, spec)
    FIELDS = {kind: ([n for n in names if n != "SenseInfoExLength"], check, spec) for kind, names, check, spec in (
        (FILE_INFO_OP, FILE_INFO, "R19", "MS-RSVD 3.1.4.6"),
        (SRB_STATUS_OP, SRB_STATUS, "R21", "MS-RSVD 2.2.5.7, 3.1.5.3-3.1.5.4"),
        (DISK_INFO_OP, DISK_INFO, "R23", "MS-RSVD 2.2.5.9, 3.1.4.8"))}

    @for_kinds(V1_OPS)
    def on_rsvd_request(self, op: Operation, conn):
        if op.kind not in V1_OPS:
            return
        status = decoding.int_of(op.request["Header"]["Status"])
        if status:
            self.report([op.request_frame], "%s request: header Status 0x%08X (the client MUST set it to zero)"
                        % (op.kind, status), op.subject, check="R03", spec="MS-RSVD 2.2.5.1, 3.1.4.6-3.1.4.10")
        judged = self.FIELDS.get(op.kind)
        if judged is not None:
            p = payload_of(op.request) or {}
            kind, (names, check, spec) = op.kind, judged
            bad = nonzero(p, names)
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


RULES: List[type] = [ReservedNotZero, ReservedShouldBeZero, RequestNotZeroed]
