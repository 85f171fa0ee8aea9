"""What the RSVD reconstruction (analyzer.reconstruction.rsvd_sessions) records: the SMB2
connections, CREATE requests, shared-disk opens, tunnel operations and READ/WRITEs,
shared-disk-support queries and stored errors it rebuilds, the bounds it keeps them in, and how
an NTSTATUS is named (a stored error by its key, then the specs' names, then Wireshark's). The
rules read these records; the tracker fills them.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from dissectors.definitions import rsvd, windows_codes

from . import decoding


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
    return named(status, stored_key(status))


def named(status: Optional[int], key: Optional[int]) -> str:
    """status_name(status), its stored key (stored_key(status)) known."""
    if key is not None:
        return "%s|%d" % (STORED.base_name, key)
    name = STATUS_NAMES.get(status)
    if name is not None:
        return name
    return "0x%08X" % status if status is not None else ""


def stored_key(status: Optional[int]) -> Optional[int]:
    return STORED.key_of(status) if status else None  # success (most answers) stores nothing: no call


assert STORED.key_of(0) is None  # what stored_key's shortcut takes for granted
SUCCESS_NAME = status_name(0)  # the commonest status's name, once


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
