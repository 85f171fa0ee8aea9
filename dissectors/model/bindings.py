"""What each transport binding adds beside a protocol's own messages: its fields, its expert
items, and its BindingDef (the Wireshark fields it reads, its typed features, its transaction
ids, the fields the analyzer reads of it).

Target-neutral. How a binding finds its messages in Wireshark's output is each target's
business (templates/lua/<binding>_binding.lua.j2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from dissectors.model.introspect import static_offset
from dissectors.model.structs import FieldDef, ident
from dissectors.vocabulary.ndr import MAX_ELEMENTS
from dissectors.vocabulary.protocol import ExportForAnalyzer, Option, Protocol, TrackExchanges

RAW_CAP = 160  # bytes of an IOCTL buffer the export preference hands the analyzer: headers, CDB, sense, PR data
CONTEXTS_CAP = 1024  # bytes of a shared-disk CREATE's create contexts: the open context and the EAs beside it


class Names:
    """The names of the fields a binding adds, by role: the binding registers them, and `analyze`
    reads them by these attributes, never by literals. Every binding's fields are here; a
    protocol has those of its own binding."""

    def __init__(self, p: Protocol):
        n = p.name
        self.proto = n
        # every binding
        self.response_in, self.request_in, self.time = n + ".response_in", n + ".request_in", n + ".time"
        self.dissector_error = n + ".dissector_error"
        # smb2: stored errors, shared opens, and the export for the analyzer
        self.status_key, self.retrieved_in, self.error_in = n + ".sense.status_key", n + ".sense.retrieved_in", n + ".sense.error_in"
        self.retrieval_request_in = n + ".sense.retrieval_request_in"
        self.open_name = n + ".open.name"
        self.raw, self.raw_smb2_index = n + ".raw", n + ".raw.smb2_index"
        self.raw_open_name, self.raw_create_contexts, self.raw_bare_name = (
            n + ".raw.open_name", n + ".raw.create_contexts", n + ".raw.bare_name")
        # dcerpc: what every call shows, sealed or not
        for role in ("interface", "method", "opnum", "call_id", "direction", "context_id", "auth_level", "encrypted",
                     "stub", "fault_status"):
            setattr(self, role, "%s.%s" % (n, role))

    def keys(self) -> dict:
        """Each role's field as the generated code names it (role -> identifier, e.g.
        status_key -> sense__status_key): templates name a binding's fields by role, never by name."""
        return {role: ident(abbrev) for role, abbrev in vars(self).items()
                if isinstance(abbrev, str) and abbrev.startswith(self.proto + ".")}

    def preference(self, option: str, value: bool) -> List[str]:
        """tshark's arguments that set one of the plugin's preferences."""
        return ["-o", "%s.%s:%s" % (self.proto, option, "TRUE" if value else "FALSE")]


def _smb2_fields(p: Protocol) -> List[FieldDef]:
    """Fields the SMB2 binding adds beside the messages' own: the exchange links."""
    n = Names(p)
    if not any(e.transaction for e in p.ioctls):
        return []
    spec = next(e.transaction.spec for e in p.ioctls if e.transaction)
    fields = []
    if p.stored_errors:
        spec = p.stored_errors.spec
        fields += [
            FieldDef(abbrev=n.status_key, label="StatusKey", ftype="uint8", display="DEC",
                     desc="The key under which the server stored this failure's sense data", spec=spec,
                     structure="(stored errors)"),
            FieldDef(abbrev=n.retrieved_in, label="Retrieved in", ftype="framenum",
                     frametype="RESPONSE", desc="The response that returned this stored error's sense data (the "
                     "request that fetched it, when its response is not in the capture)", spec=spec,
                     structure="(stored errors)"),
            FieldDef(abbrev=n.retrieval_request_in, label="Retrieval request in", ftype="framenum",
                     frametype="REQUEST", desc="The request that fetched this stored error", spec=spec,
                     structure="(stored errors)"),
            FieldDef(abbrev=n.error_in, label="Error in", ftype="framenum", frametype="REQUEST",
                     desc="The failed response whose stored error this request fetches (or, on the "
                     "request's response, returns)", spec=spec, structure="(stored errors)"),
        ]
    if p.shared_opens:
        fields.append(FieldDef(abbrev=n.open_name, label="Opened as", ftype="string", encoding="utf-16le",
                               desc="The file name of the CREATE that carried the context",
                               spec=p.shared_opens.spec, structure="(stored errors)"))
    if any(isinstance(o, ExportForAnalyzer) for o in p.options):
        fields += [
            FieldDef(abbrev=n.raw, label="Message bytes", ftype="bytes",
                     desc="With the export preference: a message's bytes for the analyzer (an IOCTL buffer's first %d)" % RAW_CAP,
                     spec=spec, structure="(export)"),
            FieldDef(abbrev=n.raw_smb2_index, label="SMB2 message number", ftype="uint8", display="DEC",
                     desc="With the export preference, in a compound frame: which SMB2 message (1-based) carried it",
                     spec=spec, structure="(export)"),
        ]
        if p.shared_opens:
            fields.append(FieldDef(
                abbrev=n.raw_open_name, label="Opened as (bytes)", ftype="bytes",
                desc="With the export preference: the UTF-16LE name of each CREATE that carries the context, as bytes "
                     "(any character, the analyzer's separators included, survives tshark's text output)",
                spec=p.shared_opens.spec, structure="(export)"))
            fields.append(FieldDef(
                abbrev=n.raw_create_contexts, label="Create contexts (bytes)", ftype="bytes",
                desc="With the export preference: the create contexts of each CREATE that carries the context (its first "
                     "%d bytes), whatever Wireshark made of them, for the EAs beside it" % CONTEXTS_CAP,
                spec=p.shared_opens.spec, structure="(export)"))
            fields.append(FieldDef(
                abbrev=n.raw_bare_name, label="Opened without the context as (bytes)", ftype="bytes",
                desc="With the export preference: the UTF-16LE name of a CREATE that ends in the suffix but carries no "
                     "open context (seen in frames that carry some create context or FSCTL)",
                spec=p.shared_opens.spec, structure="(export)"))
    return fields + [
        FieldDef(abbrev=n.response_in, label="Response in", ftype="framenum", frametype="RESPONSE",
                 desc="The frame that answers this request (same TCP stream, SMB2 session and id)",
                 spec=spec, structure="(exchanges)"),
        FieldDef(abbrev=n.request_in, label="Request in", ftype="framenum", frametype="REQUEST",
                 desc="The frame of the request this answers", spec=spec, structure="(exchanges)"),
        FieldDef(abbrev=n.time, label="Response time", ftype="relative_time",
                 desc="Time from the request to this response", spec=spec, structure="(exchanges)"),
    ]


def _dcerpc_fields(p: Protocol) -> List[FieldDef]:
    """What the DCE/RPC binding shows of every call, sealed or not."""
    n = Names(p)
    spec = "MS-RPCE 2.2.2"
    levels = {0: "default", 1: "none", 2: "connect", 3: "call", 4: "packet", 5: "packet integrity",
              6: "packet privacy"}
    return [
        FieldDef(abbrev=n.interface, label="Interface", ftype="string", desc="The interface of the "
                 "presentation context the call used (from the bind this dissector tracked)", spec=spec,
                 structure="(calls)"),
        FieldDef(abbrev=n.method, label="Method", ftype="string", desc="The method the opnum names",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.opnum, label="Opnum", ftype="uint16", display="DEC", desc="The request's opnum",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.call_id, label="Call ID", ftype="uint32", display="DEC",
                 desc="The call_id that pairs the request with its response", spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.direction, label="Direction", ftype="uint8", display="DEC",
                 values={0: "request", 1: "response", 2: "fault"}, desc="Which PDU of the call this is",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.context_id, label="Context ID", ftype="uint16", display="DEC",
                 desc="The presentation context of the call", spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.auth_level, label="Auth level", ftype="uint8", display="DEC", values=levels,
                 desc="The call's authentication level: its own verifier's, else its connection's, else none", spec="MS-RPCE 2.2.1.1.8",
                 structure="(calls)"),
        FieldDef(abbrev=n.encrypted, label="Stub encrypted", ftype="bool",
                 desc="True when the stub is sealed and Wireshark had no key to decrypt it", spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.stub, label="Stub", ftype="bytes", desc="The stub as decoded (reassembled, "
                 "decrypted), hidden in the tree; `analyze` reads it", spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.fault_status, label="Fault status", ftype="uint32", display="HEX",
                 values=p.hresults, desc="The status of the fault PDU that ended the call", spec="MS-RPCE 2.2.2.11",
                 structure="(calls)"),
        FieldDef(abbrev=n.response_in, label="Response in", ftype="framenum", frametype="RESPONSE",
                 desc="The frame that answers this request (same TCP stream and call_id)", spec=spec,
                 structure="(calls)"),
        FieldDef(abbrev=n.request_in, label="Request in", ftype="framenum", frametype="REQUEST",
                 desc="The frame of the request this answers", spec=spec, structure="(calls)"),
        FieldDef(abbrev=n.time, label="Response time", ftype="relative_time",
                 desc="Time from the request to this response", spec=spec, structure="(calls)"),
    ]


def _port_fields(p: Protocol) -> List[FieldDef]:
    """A message on a port needs nothing beside its own fields."""
    return []


BINDING_FIELDS = {"smb2": _smb2_fields, "dcerpc": _dcerpc_fields, "port": _port_fields}


def error_field(p: Protocol) -> FieldDef:
    """Every binding's: the text of a fault the plugin caught (beside its internal_error expert
    item), so that `analyze` can report it."""
    return FieldDef(abbrev=Names(p).dissector_error, label="Dissector error", ftype="string",
                    desc="A fault the plugin caught while dissecting this frame (please report it)",
                    spec=p.spec, structure="(errors)")


@dataclass(frozen=True)
class ExpertDef:
    """One expert item a plugin registers: `<proto>.<name>`, in Wireshark's group and severity
    (epan/expert.h: PI_MALFORMED, PI_WARN...), with its summary text; `key` names it in the
    generated code (Lua `E.<key>`, C `ei_<proto>_<key>`), `doc` says when it fires (docs/fields.md)."""

    key: str
    name: str
    text: str
    group: str  # MALFORMED, RESPONSE_CODE, SEQUENCE, PROTOCOL, SECURITY
    severity: str  # ERROR, WARN, NOTE, CHAT
    doc: str


GROUPS = ("MALFORMED", "RESPONSE_CODE", "SEQUENCE", "PROTOCOL", "SECURITY")
SEVERITIES = ("ERROR", "WARN", "NOTE", "CHAT")


def _common_experts(p: Protocol, short: str, length: str, short_doc: str, length_doc: str) -> List[ExpertDef]:
    """What every binding registers (the decoders and the plugin's own fault handler raise them)."""
    return [
        ExpertDef("short", "malformed.short", short, "MALFORMED", "ERROR", short_doc),
        ExpertDef("length", "malformed.length", length, "MALFORMED", "ERROR", length_doc),
        ExpertDef("internal", "internal_error", "Dissector error (please report)", "MALFORMED", "ERROR",
                  "a fault the plugin caught while dissecting (never expected; its text is also in `%s`)"
                  % Names(p).dissector_error),
        ExpertDef("bad_value", "malformed.value", "A field breaks a MUST of the specification", "MALFORMED", "ERROR",
                  "a value a rule declared beside the fields forbids (the rules below)"),
        ExpertDef("status", "status", "A status worth attention", "RESPONSE_CODE", "WARN",
                  "a value a rule declared beside the fields flags as worth attention (the rules below)"),
    ]


def _smb2_experts(p: Protocol) -> List[ExpertDef]:
    return _common_experts(p, "Buffer shorter than the structure", "Length field exceeds the buffer",
                           "a buffer shorter than its structure", "a length past the buffer's end") + [
        ExpertDef("unanswered", "unanswered", "Request never answered in this capture", "SEQUENCE", "WARN",
                  "a request whose response the capture lacks (two-pass)"),
        ExpertDef("duplicate", "duplicate_id", "Request id reused while in flight", "SEQUENCE", "WARN",
                  "a request id reused while an earlier request with it is unanswered"),
        ExpertDef("not_retrieved", "sense.not_retrieved", "Stored error never retrieved", "SEQUENCE", "WARN",
                  "a stored error whose sense data no later request fetched (two-pass)"),
        ExpertDef("unknown_key", "sense.unknown_key", "Retrieval of a key never stored", "SEQUENCE", "WARN",
                  "a retrieval naming a status key no earlier response stored"),
        ExpertDef("open_name", "malformed.open_name", "Open context on a name without the suffix", "MALFORMED", "ERROR",
                  "a shared-disk open context on a file name without the required suffix"),
    ]


def _dcerpc_experts(p: Protocol) -> List[ExpertDef]:
    return _common_experts(
        p, "Stub shorter than its parameters", "A count or length exceeds the stub",
        "a stub shorter than its parameters",
        "a count or length past the stub's end, or above %d elements" % MAX_ELEMENTS) + [
        ExpertDef("ndr", "malformed.ndr", "The stub breaks NDR or the IDL", "MALFORMED", "ERROR",
                  "a stub that breaks NDR or the IDL: no union arm, a discriminant that disagrees with its switch, "
                  "an actual_count past max_count, a NULL [ref] pointer, the wrong SAFEARRAY type"),
        ExpertDef("trailing", "trailing", "Bytes after the last parameter", "MALFORMED", "WARN",
                  "bytes after the last parameter"),
        ExpertDef("sealed", "sealed", "Stub encrypted (PKT_PRIVACY); parameters not shown", "SECURITY", "NOTE",
                  "a PKT_PRIVACY stub Wireshark could not decrypt"),
        ExpertDef("fault", "fault", "The server answered with a fault PDU", "RESPONSE_CODE", "WARN",
                  "a fault PDU answering a call"),
        ExpertDef("failed", "failed", "The method returned a failure HRESULT", "RESPONSE_CODE", "NOTE",
                  "a response whose HRESULT is a failure"),
        ExpertDef("not_on_wire", "not_used_on_wire", "A method slot the specification reserves", "PROTOCOL", "WARN",
                  "a call to a method the specification says is not used on the wire"),
        ExpertDef("unknown_opnum", "unknown_opnum", "An opnum the interface does not define", "PROTOCOL", "WARN",
                  "a call to an opnum the interface does not define"),
    ]


def _port_experts(p: Protocol) -> List[ExpertDef]:
    return _common_experts(p, "Buffer shorter than the structure", "Length field exceeds the buffer",
                           "a message shorter than its structure", "a length past the message's end")


BINDING_EXPERTS = {"smb2": _smb2_experts, "dcerpc": _dcerpc_experts, "port": _port_experts}


def experts(p: Protocol) -> List[ExpertDef]:
    """Every expert item the protocol's plugin registers, in registration order."""
    out = BINDING_EXPERTS[p.binding](p)
    for e in out:
        if e.group not in GROUPS or e.severity not in SEVERITIES:
            raise ValueError("%s.%s: expert group %s / severity %s unknown" % (p.name, e.name, e.group, e.severity))
    keys = [e.key for e in out]
    if len(set(keys)) != len(keys) or len({e.name for e in out}) != len(out):
        raise ValueError("%s: two expert items share a key or a name" % p.name)
    return out


# -- what a binding needs of Wireshark, and what it owes the analyzer ------------------------
# The fields each binding reads of the dissectors below it (Lua Field.new, C postdissector
# wanted fields), by the key the generated code names them with. Each costs a little on every
# frame that carries it (issue 26's probe): only what the binding reads.
SMB2_READS = dict(function="smb2.ioctl.function", ioctl_in="smb2.ioctl.in", ioctl_out="smb2.ioctl.out",
                  tag="smb2.tag", context_data="smb2.create.chain_data", response="smb2.flags.response",
                  stream="tcp.stream", session="smb2.sesid", msgid="smb2.msg_id", ntstatus="smb2.nt_status",
                  cmd="smb2.cmd")
STORED_ERRORS_READS = dict(fid="smb2.fid")  # the open a stored error's retrieval names
DCERPC_READS = dict(
    stream="tcp.stream", ptype="dcerpc.pkt_type", call="dcerpc.cn_call_id", ctx="dcerpc.cn_ctx_id",
    opnum="dcerpc.opnum", last="dcerpc.cn_flags.last_frag", abstract="dcerpc.cn_bind_to_uuid",
    nitems="dcerpc.cn_num_ctx_items", ntrans="dcerpc.cn_num_trans_items", trans="dcerpc.cn_bind_trans_id",
    result="dcerpc.cn_ack_result", ack_trans="dcerpc.cn_ack_trans_id", level="dcerpc.auth_level",
    stub="dcerpc.stub_data", sealed="dcerpc.encrypted_stub_data", decrypted="dcerpc.decrypted_stub_data",
    status="dcerpc.cn_status", object="dcerpc.obj_id", time="frame.time", pad="dcerpc.auth_pad_len",
    reassembled="dcerpc.reassembled_in")


@dataclass
class BindingDef:
    """What a protocol's transport binding is, target-neutral: the Wireshark fields it reads,
    the features its preferences switch (typed: TrackExchanges, ExportForAnalyzer), where each
    tunnelled request carries its transaction id, and the fields `analyze` reads of the plugin,
    which every target must register and fill alike."""

    kind: str  # smb2, dcerpc or port
    reads: Dict[str, str]  # key -> Wireshark field
    exchanges: Optional[Option] = None  # the preference that switches request/response tracking
    export: Optional[Option] = None  # the preference that adds the analyzer's raw fields
    transactions: Dict[str, Tuple[int, int, str]] = field(default_factory=dict)  # IOCTL entry -> offset, size, spec
    exported: Tuple[str, ...] = ()  # the analyzer's contract: these fields, in every target


def binding(p: Protocol) -> BindingDef:
    n = Names(p)
    typed = {cls: [o for o in p.options if isinstance(o, cls)] for cls in (TrackExchanges, ExportForAnalyzer)}
    if any(len(v) > 1 for v in typed.values()):
        raise ValueError("%s: one preference a feature" % p.name)
    b = BindingDef(p.binding, {}, exchanges=(typed[TrackExchanges] or [None])[0],
                   export=(typed[ExportForAnalyzer] or [None])[0])
    if p.binding == "smb2":
        b.reads = dict(SMB2_READS, **(STORED_ERRORS_READS if p.stored_errors else {}))
        for e in p.ioctls:
            if e.transaction is not None:
                offset, size = static_offset(e.request, e.transaction.id_path)
                if static_offset(e.response, e.transaction.id_path) != (offset, size):
                    raise ValueError("%s: %s sits at different offsets in request and response"
                                     % (e.name, e.transaction.id_path))
                b.transactions[e.name] = (offset, size, e.transaction.spec)
        if b.export is not None:
            b.exported = (n.raw, n.raw_smb2_index) + ((n.raw_open_name, n.raw_create_contexts, n.raw_bare_name)
                                                      if p.shared_opens else ())
    elif p.binding == "dcerpc":
        b.reads = dict(DCERPC_READS)
        b.exported = (n.interface, n.method, n.opnum, n.context_id, n.auth_level, n.encrypted, n.call_id,
                      n.direction, n.fault_status, n.stub)
    b.exported += (n.dissector_error,)
    return b
