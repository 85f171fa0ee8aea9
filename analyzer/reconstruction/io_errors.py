"""The io_errors table: every failed I/O on a shared-disk open, one row whatever path its
failure took, and the per-disk summary the report prints.

A failure reaches the client one of four ways (MS-RSVD 3.2.5.5, 3.2.5.5.3):
- "scsi": a tunnelled SCSI command answered with a SCSI status other than GOOD (or an SRB
  status other than success), its sense data in the same response;
- "tunnel": a tunnel operation whose header Status is not STATUS_SUCCESS (STATUS_SVHDX_*:
  a reservation conflict, a unit attention, ...);
- "stored": a READ, WRITE or tunnel operation answered STATUS_SVHDX_ERROR_STORED | StatusKey;
  the client then asks RSVD_TUNNEL_SRB_STATUS_OPERATION for that key and the answer carries
  the SCSI status and sense. Both legs make one row; a retrieval the capture lacks says so;
- "smb2": a READ or WRITE answered with another SMB2 error status.
An SRB_STATUS answer whose stored error is not in the capture (stored before it began) is a
row of its own ("retrieval"), its command unknown.

Counts per open (check conditions, reservation conflicts, unit attentions) come from these
rows only, so the sessions table, the report and this table agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .tables import Tables

MAX_PENDING = 4096  # stored errors waiting for their SRB_STATUS (oldest given up as not retrieved)
MAX_EXAMPLES = 5  # rows per (disk, kind) group kept for the report
MAX_GROUPS = 256  # (disk, kind) groups kept for the report; more are counted
SRB_OK = {"SRB_STATUS_SUCCESS", "SRB_STATUS_PENDING", ""}
CONFLICTS = {"RESERVATION_CONFLICT", "STATUS_SVHDX_RESERVATION_CONFLICT"}
SVHDX_UA = "STATUS_SVHDX_UNIT_ATTENTION_"
NOT_RETRIEVED = "not retrieved in the capture"


def words(name: str) -> str:
    """MEDIUM_ERROR -> MEDIUM ERROR: the spelling of SPC and of Wireshark's scsi dissector."""
    return name.replace("_", " ")


@dataclass
class IoError:
    open: object  # rsvd_records.Open
    stream: int
    time: float
    command: str  # the SCSI opcode, SMB2_READ/SMB2_WRITE, or the tunnel operation
    operation: str  # how it travelled: the tunnel operation, or SMB2_READ/SMB2_WRITE
    request_frame: Optional[int]
    response_frame: Optional[int]
    path: str  # scsi, tunnel, stored, smb2, retrieval
    status: str = ""  # the answer's NTSTATUS / STATUS_SVHDX_* name (tunnel header or SMB2)
    status_code: Optional[int] = None
    status_key: Optional[int] = None  # STATUS_SVHDX_ERROR_STORED's key
    lba: Optional[int] = None
    blocks: Optional[int] = None
    offset: Optional[int] = None  # a READ/WRITE's byte range
    length: Optional[int] = None
    srb_status: str = ""
    scsi_status: str = ""
    sense_key: str = ""
    additional_sense: str = ""
    asc: Optional[int] = None
    ascq: Optional[int] = None
    retrieval_frame: Optional[int] = None  # the SRB_STATUS request and its answer (the sense)
    sense_frame: Optional[int] = None
    retrieval: str = ""  # stored errors: "retrieved", NOT_RETRIEVED, or the retrieval's failure
    latency_ms: Optional[float] = None

    @property
    def kind(self) -> str:
        """What went wrong, as an engineer names it: the sense key and additional sense, a
        reservation conflict, a SCSI status, or the status the answer carried."""
        if self.scsi_status in CONFLICTS or self.status in CONFLICTS:
            return "RESERVATION CONFLICT"
        if self.sense_key:
            return "%s: %s" % (words(self.sense_key), self.additional_sense or "no additional sense")
        if self.status.startswith(SVHDX_UA):
            return "UNIT ATTENTION: " + words(self.status[len(SVHDX_UA):])
        if self.scsi_status and self.scsi_status != "GOOD":
            return words(self.scsi_status) + (", no sense data" if self.scsi_status == "CHECK_CONDITION" else "")
        if self.srb_status not in SRB_OK:
            return self.srb_status
        if self.path == "stored" and self.retrieval != "retrieved":
            return "error stored, %s" % (self.retrieval or NOT_RETRIEVED)
        return self.status or "failed"

    @property
    def counted_as(self) -> str:
        """check_conditions, reservation_conflicts or unit_attentions (Open's counters), or ""."""
        k = self.kind
        if k == "RESERVATION CONFLICT":
            return "reservation_conflicts"
        if k.startswith("UNIT ATTENTION"):
            return "unit_attentions"
        if self.scsi_status == "CHECK_CONDITION":
            return "check_conditions"
        return ""

    @property
    def disk(self) -> str:
        return self.open.where

    def row(self) -> dict:
        o = self.open
        return dict(
            open_id=o.id, stream=self.stream, time=self.time, initiator_host=o.initiator_host or o.client.rsplit(":", 1)[0],
            initiator_id=o.initiator_id, disk=self.disk, server=o.server.rsplit(":", 1)[0], command=self.command,
            operation=self.operation, lba=self.lba, blocks=self.blocks, offset=self.offset, length=self.length,
            kind=self.kind, path=self.path, status=self.status, status_code=self.status_code,
            status_key=self.status_key, srb_status=self.srb_status, scsi_status=self.scsi_status,
            sense_key=self.sense_key, additional_sense=self.additional_sense, asc=self.asc, ascq=self.ascq,
            request_frame=self.request_frame, response_frame=self.response_frame,
            retrieval_frame=self.retrieval_frame, sense_frame=self.sense_frame, retrieval=self.retrieval,
            latency_ms=self.latency_ms)

    @property
    def frames(self) -> List[int]:
        return [f for f in (self.request_frame, self.response_frame, self.retrieval_frame, self.sense_frame)
                if f is not None]


@dataclass
class Group:
    """One (disk, kind) of the report: how many, when, and the first rows."""

    disk: str
    server: str
    kind: str
    count: int = 0
    first_time: Optional[float] = None
    last_time: Optional[float] = None
    examples: List[dict] = field(default_factory=list)


class IoErrors:
    def __init__(self, tables: Tables):
        self.tables = tables
        self.pending: Dict[Tuple[str, int], IoError] = {}  # (open id, StatusKey) -> a stored error
        self.groups: Dict[Tuple[str, str, str], Group] = {}
        self.total = 0
        self.not_grouped = 0  # rows past MAX_GROUPS groups

    def failed(self, e: IoError) -> None:
        """A failure; a stored one waits for its retrieval."""
        if e.path == "stored":
            key = (e.open.id, e.status_key)
            old = self.pending.pop(key, None)
            if old is not None:  # the key was stored again before anyone asked for it
                self.give_up(old)
            if len(self.pending) >= MAX_PENDING:
                self.give_up(self.pending.pop(next(iter(self.pending))))
            self.pending[key] = e
            return
        self.done(e)

    def retrieval(self, open_id: str, key: int) -> Optional[IoError]:
        """The stored error an SRB_STATUS request asks for, if this capture holds it, unanswered."""
        return self.pending.get((open_id, key))

    def retrieved(self, open_id: str, key: int, frame: int, answer_frame: int, facts: dict, failure: str) -> None:
        """An SRB_STATUS answer for a stored error: its SCSI facts, or why it failed."""
        e = self.pending.pop((open_id, key), None)
        if e is None:
            return
        e.retrieval_frame, e.sense_frame = frame, answer_frame
        if failure:
            e.retrieval = "retrieval failed: %s" % failure
        else:
            e.retrieval = "retrieved"
            for k, v in facts.items():
                setattr(e, k, v)
        self.done(e)

    def give_up(self, e: IoError) -> None:
        e.retrieval = e.retrieval or NOT_RETRIEVED
        self.done(e)

    def closed(self, open_id: str) -> None:
        """An open's CLOSE: its stored errors can no longer be retrieved (3.2.5.5.3)."""
        for key in [k for k in self.pending if k[0] == open_id]:
            self.give_up(self.pending.pop(key))

    def finish(self) -> None:
        for e in sorted(self.pending.values(), key=lambda e: e.request_frame or 0):
            self.give_up(e)
        self.pending.clear()

    def done(self, e: IoError) -> None:
        counter = e.counted_as
        o = e.open
        o.io_errors += 1
        if counter:
            setattr(o, counter, getattr(o, counter) + 1)
        row = e.row()
        self.tables.add("io_errors", row)
        self.total += 1
        gkey = (row["server"], e.disk, row["kind"])
        g = self.groups.get(gkey)
        if g is None:
            if len(self.groups) >= MAX_GROUPS:
                self.not_grouped += 1
                return
            g = self.groups[gkey] = Group(e.disk, row["server"], row["kind"])
        g.count += 1
        g.first_time = e.time if g.first_time is None else min(g.first_time, e.time)
        g.last_time = e.time if g.last_time is None else max(g.last_time, e.time)
        if len(g.examples) < MAX_EXAMPLES:
            g.examples.append(dict(row, frames=e.frames))

    def summary(self) -> List[dict]:
        """The groups, per disk then by count: what the report and the JSON show."""
        out = []
        for g in sorted(self.groups.values(), key=lambda g: (g.server, g.disk, -g.count, g.first_time or 0, g.kind)):
            out.append(dict(server=g.server, disk=g.disk, kind=g.kind, count=g.count, first_time=g.first_time,
                            last_time=g.last_time,
                            examples=sorted(g.examples, key=lambda r: (r["time"], r["request_frame"] or 0))))
        return out


def sense_parts(sense):
    """(sense key, additional sense) of a decoded SENSE_DATA, fixed or descriptor, as decoded (enum
    values or None)."""
    if not sense:
        return None, None
    fmt = sense.get("Format") or {}
    key = fmt.get("SenseKey")
    if key is None and isinstance(fmt.get("KeyFlags"), dict):
        key = fmt["KeyFlags"].get("SenseKey")
    return key, fmt.get("AdditionalSense")


def sense_facts(sense) -> dict:
    """sense_key, additional_sense, asc and ascq of a decoded SENSE_DATA (fixed or descriptor)."""
    if not sense:
        return {}
    key, asc = sense_parts(sense)
    out = dict(sense_key=str(key) if key is not None else "")
    if asc is not None:
        code = int(getattr(asc, "intvalue", asc))
        out.update(asc=code >> 8, ascq=code & 0xFF)
        named = str(asc) != str(code)
        out["additional_sense"] = str(asc) if named else "ASC 0x%02X, ASCQ 0x%02X" % (code >> 8, code & 0xFF)
    return out
