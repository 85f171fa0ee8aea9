"""How a protocol's messages reach its dissector: the transport binding, declared as data.

A protocol module (e.g. dissectors.definitions.rsvd) builds one `Protocol`, naming its messages
and the places in another dissector's output where they sit. The generator picks
the binding's template by `Protocol.binding`; the template never names a protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from dissectors.vocabulary.wire import Message


@dataclass
class Transaction:
    """Requests and responses that pair up by an id the client assigns.

    id_path is the field (a path from the message's top, fixed offset) that carries
    the id; the binding keys exchanges by transport, session and that id, links the
    two frames, and hands the request's values to the response's decoder as
    `this._params.request`.
    """

    id_path: str  # e.g. "Header.RequestId"
    spec: str  # the section that makes the id unique, cited in expert items


@dataclass
class SharedOpens:
    """Opens that count as ours: a CREATE carrying `context_tag`; the name must end in `name_suffix`."""

    context_tag: bytes
    name_suffix: str
    spec: str


@dataclass
class StoredErrors:
    """Errors the server keeps under a small key for the client to fetch later.

    A response whose status is `base | key` (key = status & ~mask) on one of the
    SharedOpens stores an error: an SMB2 READ or WRITE response, or a message whose
    `status_path` says so. A request whose `retrieve_op` at `op_path` names it fetches
    it back by `key_path`. The binding links the two and flags errors never fetched
    (before CLOSE or the end of the capture) and fetches of keys never stored.
    """

    base: int
    mask: int
    status_path: str  # in the response message, e.g. "Header.Status"
    op_path: str  # in the request message, e.g. "Header.OperationCode"
    retrieve_op: int
    key_path: str  # e.g. "Payload.StatusKey"
    spec: str
    base_name: str = "error stored"  # the spec's names, for the texts the binding writes
    retrieve_name: str = "the retrieving operation"

    @property
    def keys(self) -> int:
        """How many keys there are: statuses base .. base + keys - 1 store an error."""
        return 2 ** 32 - self.mask

    def key_of(self, status: Optional[int]) -> Optional[int]:
        """The key a status stores its error under, or None: the one rule, which each target
        renders from base and keys and the analyzer calls."""
        if status is None:
            return None
        key = status - self.base
        return key if 0 <= key < self.keys else None


@dataclass
class IoctlEntry:
    """An SMB2 IOCTL/FSCTL whose input and output buffers hold our messages."""

    function: int
    name: str
    request: Optional[Message]
    response: Optional[Message]
    transaction: Optional[Transaction] = None


@dataclass
class CreateContextEntry:
    """An SMB2 CREATE context, by its 16-byte tag, in requests and responses."""

    tag: bytes
    name: str
    message: Message


@dataclass
class PortEntry:
    """A UDP or TCP port whose payload is one of our messages (the whole datagram, or each
    segment: no reassembly)."""

    transport: str  # "udp" or "tcp"
    port: int
    message: Message


@dataclass
class Show:
    """One piece of a message's Info column text: a decoded value, shown when the message has one.

    paths are tried in order (the first the message has wins), e.g. a CDB's LBA wherever the CDB
    size puts it. With request=True the value is the matched request's (a response's Info naming
    the command it answers). The text is `label value`, the value by `names`, else by `ranges`
    ((first, last, format of value - first), e.g. a status ORed with a key), else by `fmt`; it
    follows what comes before it after `sep`. Values in `hide` say nothing worth a word.
    """

    paths: Sequence[str]
    label: str = ""
    names: Optional[Dict[int, str]] = None
    fmt: str = "%d"
    sep: str = " "
    hide: Sequence[int] = ()
    request: bool = False
    ranges: Sequence[Tuple[int, int, str]] = ()
    # shown only when the value at this path (the request's too, with request) is one of these
    when: Optional[Tuple[str, Sequence[int]]] = None


@dataclass
class Summary:
    """What the Info column shows for a message: a captured value and its field's names, then the
    details that the message (or its request) has, in order."""

    path: str  # a path into the decoded values, e.g. "Header.OperationCode"
    field: str  # the field whose value names to use
    details: List[Show] = field(default_factory=list)


@dataclass
class Option:
    """A Wireshark preference of the generated plugin (`-o <proto>.<name>:FALSE`)."""

    name: str
    title: str
    description: str
    default: bool = True


@dataclass
class TrackExchanges(Option):
    """The preference that switches the binding's request/response links (and stored errors'
    retrieval): off, faster and no links."""


@dataclass
class ExportForAnalyzer(Option):
    """The preference that adds the fields `analyze` reads (each message's first bytes and its
    SMB2 message number) instead of decoding."""


@dataclass
class TimeGroup:
    """One table of the response-time statistics: the answered requests grouped by a value.

    path is where the binding finds the value in the request's decoded values (binding
    "smb2", e.g. "Payload.Cdb.OperationCode"; requests without it are not in the table). Empty
    for binding "dcerpc": the call's method, one table per interface. field is the field
    whose value names label the rows (and whose type formats the Index column).
    """

    title: str  # the table's heading, e.g. "RSVD tunnel operations"
    column: str  # the heading of the names' column, e.g. "Operation"
    field: str  # e.g. "msrsvd.header.operation_code"
    path: str = ""


@dataclass
class ResponseTimes:
    """Service response time statistics, from the `<proto>.time` the binding shows on each
    answered request's response: `tshark -z <proto>,<name>[,<filter>]`, and
    Statistics > Service Response Time > <menu> in Wireshark."""

    groups: List[TimeGroup]
    menu: str  # the item under Statistics > Service Response Time, e.g. "MS-RSVD"
    name: str = "srt"


@dataclass
class Test:
    """A condition on one message of an open, for a `Counter`.

    on: which messages. A message's abbrev (e.g. "tunnel_response"): ours, decoded (paths into
    their values, as a `Show`'s); "smb2 request" or "smb2 response": the transport's own on the open
    (binding "smb2": paths "Command" and "Status", the SMB2 command and NTSTATUS). The test
    holds when the value at the first of `paths` the message has is one of `values` or inside
    one of `ranges` (first, last), or, with negate, when it is neither; with no values and no
    ranges, when the message has a value there (no paths: every such message). `when` (path,
    values) narrows it to messages whose value at path is one of values.
    """

    on: str
    paths: Sequence[str] = ()
    values: Sequence[int] = ()
    ranges: Sequence[Tuple[int, int]] = ()
    negate: bool = False
    when: Optional[Tuple[str, Sequence[int]]] = None


@dataclass
class Counter:
    """One column of the open statistics: the messages of an open for which any test holds
    (a message counts once, however many tests hold)."""

    column: str  # the heading, e.g. "Reads"
    tests: List[Test]


@dataclass
class OpenStatistics:
    """Per-open statistics, Wireshark's "conversations" for a protocol's opens: one row per open
    the binding tracks (binding "smb2": SMB2 session and FileId, with the name it was opened as and
    the client and server addresses), with its first and last frame and the counters:
    `tshark -z <proto>,<name>[,<filter>]`, and Statistics > Conversation List > <menu>."""

    counters: List[Counter]
    menu: str  # e.g. "MS-RSVD Opens"
    name: str = "opens"
    title: str = "Open Statistics"


@dataclass
class ColorRule:
    """A packet colouring rule `install` puts first in the profile's colorfilters (Wireshark's
    View > Coloring Rules): frames matching `filter` drawn in `foreground` on `background`
    (16-bit RGB, as colorfilters writes them)."""

    name: str
    filter: str
    background: Tuple[int, int, int] = (65535, 49344, 49344)  # a light red
    foreground: Tuple[int, int, int] = (0, 0, 0)


@dataclass
class Protocol:
    name: str  # Wireshark protocol name, e.g. "msrsvd"
    title: str
    spec: str  # e.g. "MS-RSVD"
    module: str  # the Python module that defines it, named in the generated header
    structures: Sequence[Message]  # the spec's structures, in spec order, for the reference
    messages: Sequence[Message]  # everything the binding decodes (structures plus wrappers)
    binding: str  # template family: "smb2", "dcerpc" or "port"
    ioctls: List[IoctlEntry] = field(default_factory=list)
    create_contexts: List[CreateContextEntry] = field(default_factory=list)
    ports: List[PortEntry] = field(default_factory=list)  # binding "port"
    summaries: Dict[str, Summary] = field(default_factory=dict)  # message abbrev -> Summary
    options: List[Option] = field(default_factory=list)  # "exchanges" switches the binding's tracking
    shared_opens: Optional[SharedOpens] = None
    stored_errors: Optional[StoredErrors] = None
    constants: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # seed vs Windows differences, for the reference
    # binding "dcerpc": RPC interfaces (dissectors.vocabulary.idl.Interface), DCOM's ORPCTHIS/ORPCTHAT,
    # the HRESULT names the spec lists, and the Protocol column text
    interfaces: Sequence = ()
    orpc: Optional[tuple] = None
    hresults: Dict[int, str] = field(default_factory=dict)
    # binding "smb2": the status codes (NTSTATUS) its transport may answer with, by name, for the
    # Info column and the refusals it shows
    status_names: Dict[int, str] = field(default_factory=dict)
    # binding "dcerpc": fields whose value a request's Info column names, field -> format
    # (e.g. "clusprep.disk_id.device_number": "disk %d"); the first one a request has
    info_fields: Dict[str, str] = field(default_factory=dict)
    # conformance: names for ranges of a field's values beside its Enum's, e.g. a status ORed with
    # a key (field -> [(first, last, name)]); the tree shows them (Wireshark's range strings)
    value_ranges: Dict[str, List[Tuple[int, int, str]]] = field(default_factory=dict)
    # colouring rules `python -m dissectors install` adds to the profile (dissectors/install.py)
    color_rules: List[ColorRule] = field(default_factory=list)
    short_title: str = ""
    # conformance (beside the definitions, as pidl's .cnf files): IDL type -> field namespace
    # where snake_case of the type name is not what a user would guess
    type_names: Dict[str, str] = field(default_factory=dict)
    # the field reference's example of a structure member named once whatever method carries it:
    # (its filter name, where it shows)
    reference_example: Optional[Tuple[str, str]] = None
    # statistics the plugin registers (needs a binding that pairs requests with responses)
    response_times: Optional[ResponseTimes] = None
    open_statistics: Optional[OpenStatistics] = None

    def captures(self) -> List[str]:
        """Names whose values the binding reads from decoders' results."""
        paths = [s.path for s in self.summaries.values()]  # what the Info column names
        paths += [p for s in self.summaries.values() for d in s.details for p in d.paths]
        paths += [d.when[0] for s in self.summaries.values() for d in s.details if d.when]
        if self.stored_errors:
            e = self.stored_errors
            paths += [e.status_path, e.op_path, e.key_path]
        if self.open_statistics:
            tests = [t for c in self.open_statistics.counters for t in c.tests if not t.on.startswith("smb2")]
            paths += [p for t in tests for p in t.paths] + [t.when[0] for t in tests if t.when]
        return sorted({part for p in paths for part in p.split(".")})
