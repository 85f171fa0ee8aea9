"""How a protocol's messages reach its Lua dissector: the binding, declared as data.

A protocol module (e.g. dissectors.rsvd) builds one `Protocol`, naming its messages
and the places in another dissector's output where they sit. The generator picks
the binding's template by `Protocol.binding`; the template never names a protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .wire import Message


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
class Summary:
    """What the Info column shows for a message: a captured value and its field's names."""

    path: str  # Lua path into the decoder's values, e.g. "Header.OperationCode"
    field: str  # the field whose value names to use


@dataclass
class Protocol:
    name: str  # Wireshark protocol name, e.g. "msrsvd"
    title: str
    spec: str  # e.g. "MS-RSVD"
    module: str  # the Python module that defines it, named in the generated header
    structures: Sequence[Message]  # the spec's structures, in spec order, for the reference
    messages: Sequence[Message]  # everything the binding decodes (structures plus wrappers)
    binding: str  # template family: "smb2"
    ioctls: List[IoctlEntry] = field(default_factory=list)
    create_contexts: List[CreateContextEntry] = field(default_factory=list)
    summaries: Dict[str, Summary] = field(default_factory=dict)  # message abbrev -> Summary
    constants: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # seed vs Windows differences, for the reference
