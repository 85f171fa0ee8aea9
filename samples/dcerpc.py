"""Connection-oriented DCE/RPC (C706 chapter 12, MS-RPCE 2.2.2) for DCOM samples.

PDU builders in little-endian NDR representation, fragmentation, the sec_trailer, and
an RpcConnection that runs binds and calls over a samples.network.TcpFlow, with an
NTLMv2 security context (samples.ntlmssp) that signs or seals both directions.
Stubs are opaque bytes built by the caller.

Wireshark finds DCE/RPC on any TCP port by its `dcerpc_tcp` heuristic (on by default),
so a DCOM dynamic endpoint such as 49668 needs no decode-as.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from construct import Bytes, Const, Int8ul, Int16ul, Int32ul, Struct

from . import ntlmssp
from .network import Capture, Host, TcpFlow

# 12.6.4.x packet types
REQUEST, RESPONSE, FAULT = 0, 2, 3
BIND, BIND_ACK, BIND_NAK, ALTER_CONTEXT, ALTER_CONTEXT_RESP, AUTH3 = 11, 12, 13, 14, 15, 16

# 12.6.3.1 pfc_flags
PFC_FIRST_FRAG = 0x01
PFC_LAST_FRAG = 0x02
PFC_SUPPORT_HEADER_SIGN = 0x04  # bind and alter_context only (MS-RPCE 2.2.2.3); PENDING_CANCEL elsewhere
PFC_CONC_MPX = 0x10
PFC_DID_NOT_EXECUTE = 0x20
PFC_MAYBE = 0x40
PFC_OBJECT_UUID = 0x80
WHOLE = PFC_FIRST_FRAG | PFC_LAST_FRAG

# p_cont_def_result_t, and negotiate_ack for bind-time feature negotiation (MS-RPCE 2.2.2.4)
ACCEPTANCE, USER_REJECTION, PROVIDER_REJECTION, NEGOTIATE_ACK = 0, 1, 2, 3
# p_provider_reason_t
REASON_NOT_SPECIFIED, ABSTRACT_SYNTAX_NOT_SUPPORTED = 0, 1
PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED, LOCAL_LIMIT_EXCEEDED = 2, 3
# p_reject_reason_t for bind_nak
REJECT_REASON_NOT_SPECIFIED, PROTOCOL_VERSION_NOT_SUPPORTED = 0, 4

# MS-RPCE 2.2.1.1.7 / 2.2.1.1.8
RPC_C_AUTHN_WINNT = 10  # NTLMSSP
RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_AUTHN_LEVEL_PKT = 2, 4
RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, RPC_C_AUTHN_LEVEL_PKT_PRIVACY = 5, 6

# Fault statuses (C706 appendix E, MS-RPCE 2.2.2.x)
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_UNK_IF = 0x1C010003
NCA_S_FAULT_ACCESS_DENIED = 0x00000005
NCA_S_FAULT_CONTEXT_MISMATCH = 0x1C00001A

MAX_FRAG = 5840  # what Windows offers on TCP
AUTH_PAD_ALIGNMENT = 16  # Windows and Samba pad the stub to 16 before a signed or sealed trailer
DREP_LE = b"\x10\x00\x00\x00"  # little-endian integers, ASCII, IEEE floats

CommonHeader = Struct(  # 12.6.3.1
    "rpc_vers" / Const(5, Int8ul),
    "rpc_vers_minor" / Const(0, Int8ul),
    "ptype" / Int8ul,
    "pfc_flags" / Int8ul,
    "drep" / Const(DREP_LE),
    "frag_length" / Int16ul,
    "auth_length" / Int16ul,
    "call_id" / Int32ul,
)
SyntaxIdStruct = Struct("if_uuid" / Bytes(16), "if_version" / Int32ul)  # major in the low 16 bits
BindHead = Struct(  # 12.6.4.3 (alter_context: 12.6.4.1)
    "max_xmit_frag" / Int16ul,
    "max_recv_frag" / Int16ul,
    "assoc_group_id" / Int32ul,
    "n_context_elem" / Int8ul,
    "reserved" / Const(0, Int8ul),
    "reserved2" / Const(0, Int16ul),
)
ContextElemHead = Struct("p_cont_id" / Int16ul, "n_transfer_syn" / Int8ul, "reserved" / Const(0, Int8ul))
AckHead = Struct("max_xmit_frag" / Int16ul, "max_recv_frag" / Int16ul, "assoc_group_id" / Int32ul)
ResultListHead = Struct("n_results" / Int8ul, "reserved" / Const(0, Int8ul), "reserved2" / Const(0, Int16ul))
ResultStruct = Struct("result" / Int16ul, "reason" / Int16ul, "transfer_syntax" / SyntaxIdStruct)
RequestHead = Struct("alloc_hint" / Int32ul, "p_cont_id" / Int16ul, "opnum" / Int16ul)  # 12.6.4.9
ResponseHead = Struct("alloc_hint" / Int32ul, "p_cont_id" / Int16ul, "cancel_count" / Int8ul,
                      "reserved" / Const(0, Int8ul))  # 12.6.4.10
FaultHead = Struct(  # 12.6.4.7; MS-RPCE 2.2.2.5 names the reserved octet fault_flags
    "alloc_hint" / Int32ul,
    "p_cont_id" / Int16ul,
    "cancel_count" / Int8ul,
    "fault_flags" / Int8ul,
    "status" / Int32ul,
    "reserved" / Const(0, Int32ul),
)
SecTrailer = Struct(  # MS-RPCE 2.2.2.11
    "auth_type" / Int8ul,
    "auth_level" / Int8ul,
    "auth_pad_length" / Int8ul,
    "auth_reserved" / Const(0, Int8ul),
    "auth_context_id" / Int32ul,
)


@dataclass(frozen=True)
class SyntaxId:
    uuid: uuid.UUID
    major: int
    minor: int = 0

    def fields(self) -> dict:
        return dict(if_uuid=self.uuid.bytes_le, if_version=self.major | (self.minor << 16))

    def build(self) -> bytes:
        return SyntaxIdStruct.build(self.fields())


def syntax(text: str, major: int, minor: int = 0) -> SyntaxId:
    return SyntaxId(uuid.UUID(text), major, minor)


NDR32 = syntax("8a885d04-1ceb-11c9-9fe8-08002b104860", 2)
NDR64 = syntax("71710533-beba-4937-8319-b5dbef9ccc36", 1)
NULL_SYNTAX = SyntaxId(uuid.UUID(int=0), 0)

# MS-RPCE 3.3.1.5.3: the bitmask fills the last 8 bytes of 6cb71c2c-9812-4540-..., little-endian
SECURITY_CONTEXT_MULTIPLEXING = 0x01
KEEP_CONNECTION_ON_ORPHAN = 0x02


_BTFN_PREFIX = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes_le[:8]


def bind_time_features(features: int = SECURITY_CONTEXT_MULTIPLEXING | KEEP_CONNECTION_ON_ORPHAN) -> SyntaxId:
    """The transfer syntax of a bind-time feature negotiation item (its abstract syntax is the interface's)."""
    return SyntaxId(uuid.UUID(bytes_le=_BTFN_PREFIX + features.to_bytes(8, "little")), 1)


@dataclass(frozen=True)
class ContextItem:
    """One p_cont_elem_t: a presentation context id, the interface, the syntaxes offered."""

    ctx_id: int
    abstract: SyntaxId
    transfer: Sequence[SyntaxId] = (NDR32,)

    def build(self) -> bytes:
        return (ContextElemHead.build(dict(p_cont_id=self.ctx_id, n_transfer_syn=len(self.transfer)))
                + self.abstract.build() + b"".join(t.build() for t in self.transfer))


@dataclass(frozen=True)
class AckResult:
    """One p_result_t of a bind_ack or alter_context_resp."""

    result: int
    reason: int = 0
    transfer: SyntaxId = NULL_SYNTAX

    def build(self) -> bytes:
        return ResultStruct.build(dict(result=self.result, reason=self.reason, transfer_syntax=self.transfer.fields()))


def accept(transfer: SyntaxId = NDR32) -> AckResult:
    return AckResult(ACCEPTANCE, 0, transfer)


def reject(reason: int = PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED, user: bool = False) -> AckResult:
    return AckResult(USER_REJECTION if user else PROVIDER_REJECTION, reason)


def negotiate_ack(features: int = SECURITY_CONTEXT_MULTIPLEXING | KEEP_CONNECTION_ON_ORPHAN) -> AckResult:
    """The answer to a bind-time feature item: the reason field carries the features kept."""
    return AckResult(NEGOTIATE_ACK, features)


def default_results(items: Sequence[ContextItem]) -> List[AckResult]:
    """An NDR32-only server, as DCOM is: NDR32 accepted, other syntaxes rejected, features acked."""
    out = []
    for item in items:
        btfn = [t for t in item.transfer if t.uuid.bytes_le[:8] == _BTFN_PREFIX]
        if btfn:
            out.append(negotiate_ack(int.from_bytes(btfn[0].uuid.bytes_le[8:], "little")))
        elif NDR32 in item.transfer:
            out.append(accept(NDR32))
        else:
            out.append(reject(PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED))
    return out


@dataclass(frozen=True)
class Auth:
    """The sec_trailer fields that stay fixed for one security context."""

    auth_type: int = RPC_C_AUTHN_WINNT
    auth_level: int = RPC_C_AUTHN_LEVEL_PKT_PRIVACY
    context_id: int = 0


# Given the PDU as signed (plain stub, padding, sec_trailer) and the stub plus padding,
# return what goes on the wire in the stub's place and the auth_value.
Protect = Callable[[bytes, bytes], Tuple[bytes, bytes]]


def _header(ptype: int, flags: int, call_id: int, frag_length: int, auth_length: int = 0) -> bytes:
    return CommonHeader.build(dict(ptype=ptype, pfc_flags=flags, frag_length=frag_length,
                                   auth_length=auth_length, call_id=call_id))


def pdu(ptype: int, flags: int, call_id: int, body: bytes, auth: Optional[Auth] = None,
        auth_value: bytes = b"") -> bytes:
    """A PDU whose verifier is a given token (binds, auth3): the trailer 4-byte aligned (C706 12.6.3.2)."""
    if auth is None:
        return _header(ptype, flags, call_id, 16 + len(body)) + body
    pad = bytes(-(16 + len(body)) % 4)
    trailer = SecTrailer.build(dict(auth_type=auth.auth_type, auth_level=auth.auth_level,
                                    auth_pad_length=len(pad), auth_context_id=auth.context_id))
    tail = body + pad + trailer + auth_value
    return _header(ptype, flags, call_id, 16 + len(tail), len(auth_value)) + tail


def stub_pdu(ptype: int, flags: int, call_id: int, head: bytes, stub: bytes, auth: Optional[Auth] = None,
             protect: Optional[Protect] = None, auth_length: int = ntlmssp.Signer.size) -> bytes:
    """A request or response fragment; with auth (and then protect), the stub is padded to 16, then
    signed or sealed, and the trailer follows."""
    if auth is None:
        return _header(ptype, flags, call_id, 16 + len(head) + len(stub)) + head + stub
    pad = bytes(-len(stub) % AUTH_PAD_ALIGNMENT)
    trailer = SecTrailer.build(dict(auth_type=auth.auth_type, auth_level=auth.auth_level,
                                    auth_pad_length=len(pad), auth_context_id=auth.context_id))
    hdr = _header(ptype, flags, call_id, 16 + len(head) + len(stub) + len(pad) + len(trailer) + auth_length,
                  auth_length)
    payload, auth_value = protect(hdr + head + stub + pad + trailer, stub + pad)
    assert len(auth_value) == auth_length
    return hdr + head + payload + trailer + auth_value


# -- bind, alter_context and their answers -------------------------------------------
def _bind_body(items: Sequence[ContextItem], max_xmit: int, max_recv: int, assoc_group: int) -> bytes:
    return (BindHead.build(dict(max_xmit_frag=max_xmit, max_recv_frag=max_recv, assoc_group_id=assoc_group,
                                n_context_elem=len(items)))
            + b"".join(i.build() for i in items))


def bind(call_id: int, items: Sequence[ContextItem], *, max_xmit: int = MAX_FRAG, max_recv: int = MAX_FRAG,
         assoc_group: int = 0, flags: int = WHOLE, auth: Optional[Auth] = None, auth_value: bytes = b"",
         ptype: int = BIND) -> bytes:
    return pdu(ptype, flags, call_id, _bind_body(items, max_xmit, max_recv, assoc_group), auth, auth_value)


def alter_context(call_id: int, items: Sequence[ContextItem], **kw) -> bytes:
    return bind(call_id, items, ptype=ALTER_CONTEXT, **kw)


def _ack_body(results: Sequence[AckResult], sec_addr: str, max_xmit: int, max_recv: int,
              assoc_group: int) -> bytes:
    addr = (sec_addr.encode("ascii") + b"\x00") if sec_addr else b""  # port_any_t: length counts the NUL
    head = AckHead.build(dict(max_xmit_frag=max_xmit, max_recv_frag=max_recv, assoc_group_id=assoc_group))
    head += Int16ul.build(len(addr)) + addr
    head += bytes(-(16 + len(head)) % 4)  # the result list is 4-aligned in the PDU
    return head + ResultListHead.build(dict(n_results=len(results))) + b"".join(r.build() for r in results)


def bind_ack(call_id: int, results: Sequence[AckResult], *, sec_addr: str = "", max_xmit: int = MAX_FRAG,
             max_recv: int = MAX_FRAG, assoc_group: int = 0, flags: int = WHOLE, auth: Optional[Auth] = None,
             auth_value: bytes = b"", ptype: int = BIND_ACK) -> bytes:
    return pdu(ptype, flags, call_id, _ack_body(results, sec_addr, max_xmit, max_recv, assoc_group),
               auth, auth_value)


def alter_context_resp(call_id: int, results: Sequence[AckResult], **kw) -> bytes:
    """Windows leaves the secondary address empty here."""
    return bind_ack(call_id, results, ptype=ALTER_CONTEXT_RESP, **kw)


def bind_nak(call_id: int, reason: int = REJECT_REASON_NOT_SPECIFIED, versions=((5, 0),)) -> bytes:
    body = Int16ul.build(reason) + Int8ul.build(len(versions)) + b"".join(bytes(v) for v in versions)
    return pdu(BIND_NAK, WHOLE, call_id, body + bytes(-(16 + len(body)) % 4))


def auth3(call_id: int, auth: Auth, auth_value: bytes) -> bytes:
    """MS-RPCE 2.2.2.10: four pad octets, then the sec_trailer."""
    return pdu(AUTH3, WHOLE, call_id, b"\x00" * 4, auth, auth_value)


# -- calls ----------------------------------------------------------------------------
def request(call_id: int, ctx_id: int, opnum: int, stub: bytes, *, object_uuid: Optional[uuid.UUID] = None,
            flags: int = WHOLE, alloc_hint: Optional[int] = None, auth: Optional[Auth] = None,
            protect: Optional[Protect] = None, auth_length: int = ntlmssp.Signer.size) -> bytes:
    if object_uuid is not None:
        flags |= PFC_OBJECT_UUID
    head = RequestHead.build(dict(alloc_hint=len(stub) if alloc_hint is None else alloc_hint, p_cont_id=ctx_id,
                                  opnum=opnum))
    head += object_uuid.bytes_le if object_uuid is not None else b""
    return stub_pdu(REQUEST, flags, call_id, head, stub, auth, protect, auth_length)


def response(call_id: int, ctx_id: int, stub: bytes, *, flags: int = WHOLE, alloc_hint: Optional[int] = None,
             auth: Optional[Auth] = None, protect: Optional[Protect] = None,
             auth_length: int = ntlmssp.Signer.size) -> bytes:
    head = ResponseHead.build(dict(alloc_hint=len(stub) if alloc_hint is None else alloc_hint, p_cont_id=ctx_id,
                                   cancel_count=0))
    return stub_pdu(RESPONSE, flags, call_id, head, stub, auth, protect, auth_length)


def fault(call_id: int, ctx_id: int, status: int, *, flags: int = WHOLE | PFC_DID_NOT_EXECUTE,
          stub: bytes = b"") -> bytes:
    head = FaultHead.build(dict(alloc_hint=len(stub), p_cont_id=ctx_id, cancel_count=0, fault_flags=0,
                                status=status))
    return pdu(FAULT, flags, call_id, head + stub)


def fragment_sizes(stub_len: int, max_frag: int, head_len: int, protected: bool,
                   auth_length: int = ntlmssp.Signer.size) -> List[int]:
    """Stub bytes per fragment; signed or sealed fragments carry multiples of 16 but the last."""
    room = max_frag - 16 - head_len
    if protected:
        room -= SecTrailer.sizeof() + auth_length
        room -= room % AUTH_PAD_ALIGNMENT
    if room <= 0:
        raise ValueError("max_frag %d leaves no room for stub" % max_frag)
    return [min(room, stub_len - o) for o in range(0, stub_len, room)] or [0]


def fragmented(build: Callable[..., bytes], stub: bytes, max_frag: int, head_len: int, protected: bool,
               **kw) -> List[bytes]:
    """Split one request or response: first/last flags per fragment, alloc_hint = stub bytes left."""
    sizes = fragment_sizes(len(stub), max_frag, head_len, protected, kw.get("auth_length", ntlmssp.Signer.size))
    out, offset = [], 0
    for n, size in enumerate(sizes):
        flags = (PFC_FIRST_FRAG if n == 0 else 0) | (PFC_LAST_FRAG if n == len(sizes) - 1 else 0)
        out.append(build(stub=stub[offset:offset + size], flags=flags, alloc_hint=len(stub) - offset, **kw))
        offset += size
    return out


# -- a conversation -------------------------------------------------------------------
@dataclass
class Call:
    """Where one call went: its call_id and the frames that completed each PDU."""

    call_id: int
    request_frames: List[int]
    response_frames: List[int]


@dataclass
class RpcConnection:
    """A client and server on one TCP flow: binds, alter_contexts and calls, numbered like Windows.

    Each bind, alter_context and request takes the next call_id; auth3 reuses its bind's.
    Once an NTLM context at PKT_INTEGRITY or above is up, every request and response is
    signed or sealed (PKT_PRIVACY) with the next sequence number of its direction.
    """

    flow: TcpFlow
    max_xmit_frag: int = MAX_FRAG
    assoc_group_id: int = 0x0000B7D2
    next_call_id: int = 1
    think_us: int = 300
    auth: Optional[Auth] = None
    client_signer: Optional[ntlmssp.Signer] = None
    server_signer: Optional[ntlmssp.Signer] = None
    handshakes: List[ntlmssp.Handshake] = field(default_factory=list)

    def _send(self, from_client: bool, pdus: Sequence[bytes], together: bool = False) -> List[int]:
        if together:  # one TCP send: small fragments share segments, as a real stack coalesces them
            if not from_client:
                self.flow.cap.tick(self.think_us)
            self.flow.send(from_client, b"".join(pdus), gap_us=200)
            return [len(self.flow.cap.frames)] * len(pdus)
        frames = []
        for n, p in enumerate(pdus):
            if n == 0 and not from_client:
                self.flow.cap.tick(self.think_us)
            self.flow.send(from_client, p, gap_us=200 if n == 0 else 20)
            frames.append(len(self.flow.cap.frames))  # 1-based number of the PDU's last segment
        return frames

    def _take_call_id(self) -> int:
        self.next_call_id += 1
        return self.next_call_id - 1

    def _negotiate(self, ptype: int, items: Sequence[ContextItem], results: Optional[Sequence[AckResult]],
                   sec_addr: str, ntlm: Optional[ntlmssp.Handshake], level: int, context_id: int) -> Call:
        call_id = self._take_call_id()
        results = default_results(items) if results is None else results
        # ntlm: an ntlmssp.Handshake, or any handshake with its interface (samples.kerberos)
        auth = Auth(getattr(ntlm, "auth_type", RPC_C_AUTHN_WINNT), level, context_id) if ntlm else None
        flags = WHOLE | (PFC_SUPPORT_HEADER_SIGN if ntlm and getattr(ntlm, "header_signing", True) else 0)
        # without ntlm, no verifier: an alter_context on an established context adds none here
        req = bind(call_id, items, max_xmit=self.max_xmit_frag, max_recv=self.max_xmit_frag,
                   assoc_group=0 if ptype == BIND else self.assoc_group_id, flags=flags, auth=auth,
                   auth_value=ntlm.negotiate() if ntlm else b"", ptype=ptype)
        ack = bind_ack(call_id, results, sec_addr=sec_addr, max_xmit=self.max_xmit_frag,
                       max_recv=self.max_xmit_frag, assoc_group=self.assoc_group_id, flags=flags, auth=auth,
                       auth_value=ntlm.challenge() if ntlm else b"",
                       ptype=BIND_ACK if ptype == BIND else ALTER_CONTEXT_RESP)
        call = Call(call_id, self._send(True, [req]), self._send(False, [ack]))
        if ntlm:
            call.request_frames += self._send(True, [auth3(call_id, auth, ntlm.authenticate())])
            self.handshakes.append(ntlm)
            self.auth = auth
            self.client_signer, self.server_signer = ntlm.client_signer(), ntlm.server_signer()
        return call

    def bind(self, items: Sequence[ContextItem], results: Optional[Sequence[AckResult]] = None, *,
             ntlm: Optional[ntlmssp.Handshake] = None, level: int = RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
             context_id: int = 0, sec_addr: Optional[str] = None) -> Call:
        """bind/bind_ack; with ntlm, NEGOTIATE and CHALLENGE ride in them and auth3 carries AUTHENTICATE."""
        addr = str(self.flow.sport) if sec_addr is None else sec_addr
        return self._negotiate(BIND, items, results, addr, ntlm, level, context_id)

    def alter_context(self, items: Sequence[ContextItem], results: Optional[Sequence[AckResult]] = None, *,
                      ntlm: Optional[ntlmssp.Handshake] = None, level: int = RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                      context_id: int = 0) -> Call:
        """alter_context/alter_context_resp; with ntlm, a new security context is set up the same way."""
        return self._negotiate(ALTER_CONTEXT, items, results, "", ntlm, level, context_id)

    def bind_nak(self, items: Sequence[ContextItem], reason: int = REJECT_REASON_NOT_SPECIFIED) -> Call:
        call_id = self._take_call_id()
        req = bind(call_id, items, max_xmit=self.max_xmit_frag, max_recv=self.max_xmit_frag)
        return Call(call_id, self._send(True, [req]), self._send(False, [bind_nak(call_id, reason)]))

    def _protection(self, signer: Optional[ntlmssp.Signer]) -> dict:
        if self.auth is None or self.auth.auth_level < RPC_C_AUTHN_LEVEL_PKT:
            return {}  # CONNECT: the context authenticates the connection, PDUs carry no verifier
        if self.auth.auth_level == RPC_C_AUTHN_LEVEL_PKT_PRIVACY:
            return dict(auth=self.auth, protect=signer.seal, auth_length=signer.size)
        return dict(auth=self.auth, protect=lambda signed, payload: (payload, signer.sign(signed)),
                    auth_length=signer.size)

    def call(self, ctx_id: int, opnum: int, request_stub: bytes, response_stub: bytes = b"", *,
             object_uuid: Optional[uuid.UUID] = None, fault_status: Optional[int] = None,
             max_frag: Optional[int] = None, together: bool = False, answered: bool = True) -> Call:
        """One request and its response (or fault), each fragmented to max_frag (default max_xmit_frag);
        `together` sends the response's fragments in one TCP send; `answered=False` sends no response."""
        call_id = self._take_call_id()
        frag = max_frag or self.max_xmit_frag
        prot = self._protection(self.client_signer)
        reqs = fragmented(request, request_stub, frag, RequestHead.sizeof() + (16 if object_uuid else 0),
                          bool(prot), call_id=call_id, ctx_id=ctx_id, opnum=opnum, object_uuid=object_uuid, **prot)
        call = Call(call_id, self._send(True, reqs), [])
        if not answered:  # the capture ends before the server answers
            return call
        if fault_status is not None:
            call.response_frames = self._send(False, [fault(call_id, ctx_id, fault_status)])
        else:
            prot = self._protection(self.server_signer)
            resps = fragmented(response, response_stub, frag, ResponseHead.sizeof(), bool(prot),
                               call_id=call_id, ctx_id=ctx_id, **prot)
            call.response_frames = self._send(False, resps, together)
        return call

    def close(self) -> None:
        self.flow.close()


DCOM_PORT = 49668  # a dynamic RPC endpoint, as the OXID resolver hands out


def start(cap: Capture, client: Host, server: Host, cport: int, sport: int = DCOM_PORT, **kw) -> RpcConnection:
    """A TCP connection (handshake done) ready for bind."""
    flow = TcpFlow(cap, client, server, cport, sport)
    flow.handshake()
    return RpcConnection(flow, **kw)
