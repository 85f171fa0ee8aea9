"""The fields each transport binding adds beside a protocol's own messages.

Target-neutral: FieldDefs only. How a binding finds its messages in Wireshark's output
is the Lua target's business (templates/lua/<binding>_binding.lua.j2).
"""
from __future__ import annotations

from typing import List

from dissectors.model.structs import FieldDef
from dissectors.vocabulary.protocol import Protocol

RAW_CAP = 160  # bytes of an IOCTL buffer the export preference hands the analyzer: headers, CDB, sense, PR data
CONTEXTS_CAP = 1024  # bytes of a shared-disk CREATE's create contexts: the open context and the EAs beside it


def _smb2_fields(p: Protocol) -> List[FieldDef]:
    """Fields the SMB2 binding adds beside the messages' own: the exchange links."""
    if not any(e.transaction for e in p.ioctls):
        return []
    spec = next(e.transaction.spec for e in p.ioctls if e.transaction)
    fields = []
    if p.stored_errors:
        spec = p.stored_errors.spec
        fields += [
            FieldDef(abbrev="%s.sense.status_key" % p.name, label="StatusKey", ftype="uint8", base="DEC",
                     desc="The key under which the server stored this failure's sense data", spec=spec,
                     structure="(stored errors)"),
            FieldDef(abbrev="%s.sense.retrieved_in" % p.name, label="Retrieved in", ftype="framenum",
                     base="RESPONSE", desc="The request that fetched this stored error", spec=spec,
                     structure="(stored errors)"),
            FieldDef(abbrev="%s.sense.error_in" % p.name, label="Error in", ftype="framenum", base="REQUEST",
                     desc="The failed response whose stored error this request fetches", spec=spec,
                     structure="(stored errors)"),
        ]
    if p.shared_opens:
        fields.append(FieldDef(abbrev="%s.open.name" % p.name, label="Opened as", ftype="string", base="UNICODE",
                               desc="The file name of the CREATE that carried the context",
                               spec=p.shared_opens.spec, structure="(stored errors)"))
    if any(o.name == "export" for o in p.options):
        fields += [
            FieldDef(abbrev="%s.raw" % p.name, label="Message bytes", ftype="bytes",
                     desc="With the export preference: a message's bytes for the analyzer (an IOCTL buffer's first %d)" % RAW_CAP,
                     spec=spec, structure="(export)"),
            FieldDef(abbrev="%s.raw.smb2_index" % p.name, label="SMB2 message number", ftype="uint8", base="DEC",
                     desc="With the export preference, in a compound frame: which SMB2 message (1-based) carried it",
                     spec=spec, structure="(export)"),
        ]
        if p.shared_opens:
            fields.append(FieldDef(
                abbrev="%s.raw.open_name" % p.name, label="Opened as (bytes)", ftype="bytes",
                desc="With the export preference: the UTF-16LE name of each CREATE that carries the context, as bytes "
                     "(any character, the analyzer's separators included, survives tshark's text output)",
                spec=p.shared_opens.spec, structure="(export)"))
            fields.append(FieldDef(
                abbrev="%s.raw.create_contexts" % p.name, label="Create contexts (bytes)", ftype="bytes",
                desc="With the export preference: the create contexts of each CREATE that carries the context (its first "
                     "%d bytes), whatever Wireshark made of them, for the EAs beside it" % CONTEXTS_CAP,
                spec=p.shared_opens.spec, structure="(export)"))
            fields.append(FieldDef(
                abbrev="%s.raw.bare_name" % p.name, label="Opened without the context as (bytes)", ftype="bytes",
                desc="With the export preference: the UTF-16LE name of a CREATE that ends in the suffix but carries no "
                     "open context (seen in frames that carry some create context or FSCTL)",
                spec=p.shared_opens.spec, structure="(export)"))
    return fields + [
        FieldDef(abbrev="%s.response_in" % p.name, label="Response in", ftype="framenum", base="RESPONSE",
                 desc="The frame that answers this request (same TCP stream, SMB2 session and id)",
                 spec=spec, structure="(exchanges)"),
        FieldDef(abbrev="%s.request_in" % p.name, label="Request in", ftype="framenum", base="REQUEST",
                 desc="The frame of the request this answers", spec=spec, structure="(exchanges)"),
        FieldDef(abbrev="%s.time" % p.name, label="Response time", ftype="relative_time",
                 desc="Time from the request to this response", spec=spec, structure="(exchanges)"),
    ]


def _dcerpc_fields(p: Protocol) -> List[FieldDef]:
    """What the DCE/RPC binding shows of every call, sealed or not."""
    spec = "MS-RPCE 2.2.2"
    levels = {0: "default", 1: "none", 2: "connect", 3: "call", 4: "packet", 5: "packet integrity",
              6: "packet privacy"}
    return [
        FieldDef(abbrev="%s.interface" % p.name, label="Interface", ftype="string", desc="The interface of the "
                 "presentation context the call used (from the bind this dissector tracked)", spec=spec,
                 structure="(calls)"),
        FieldDef(abbrev="%s.method" % p.name, label="Method", ftype="string", desc="The method the opnum names",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.opnum" % p.name, label="Opnum", ftype="uint16", base="DEC", desc="The request's opnum",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.call_id" % p.name, label="Call ID", ftype="uint32", base="DEC",
                 desc="The call_id that pairs the request with its response", spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.direction" % p.name, label="Direction", ftype="uint8", base="DEC",
                 values={0: "request", 1: "response", 2: "fault"}, desc="Which PDU of the call this is",
                 spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.context_id" % p.name, label="Context ID", ftype="uint16", base="DEC",
                 desc="The presentation context of the call", spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.auth_level" % p.name, label="Auth level", ftype="uint8", base="DEC", values=levels,
                 desc="The call's authentication level: its own verifier's, else its connection's, else none", spec="MS-RPCE 2.2.1.1.8",
                 structure="(calls)"),
        FieldDef(abbrev="%s.encrypted" % p.name, label="Stub encrypted", ftype="bool", base="NONE",
                 desc="True when the stub is sealed and Wireshark had no key to decrypt it", spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.stub" % p.name, label="Stub", ftype="bytes", desc="The stub as decoded (reassembled, "
                 "decrypted), hidden in the tree; `analyze` reads it", spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.fault_status" % p.name, label="Fault status", ftype="uint32", base="HEX",
                 values=p.hresults, desc="The status of the fault PDU that ended the call", spec="MS-RPCE 2.2.2.11",
                 structure="(calls)"),
        FieldDef(abbrev="%s.response_in" % p.name, label="Response in", ftype="framenum", base="RESPONSE",
                 desc="The frame that answers this request (same TCP stream and call_id)", spec=spec,
                 structure="(calls)"),
        FieldDef(abbrev="%s.request_in" % p.name, label="Request in", ftype="framenum", base="REQUEST",
                 desc="The frame of the request this answers", spec=spec, structure="(calls)"),
        FieldDef(abbrev="%s.time" % p.name, label="Response time", ftype="relative_time",
                 desc="Time from the request to this response", spec=spec, structure="(calls)"),
    ]


BINDING_FIELDS = {"smb2": _smb2_fields, "dcerpc": _dcerpc_fields}


def error_field(p: Protocol) -> FieldDef:
    """Every binding's: the text of a fault the plugin caught (beside its internal_error expert
    item), so that `analyze` can report it."""
    return FieldDef(abbrev="%s.dissector_error" % p.name, label="Dissector error", ftype="string",
                    desc="A fault the plugin caught while dissecting this frame (please report it)",
                    spec=p.spec, structure="(errors)")
