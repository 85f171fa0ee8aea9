"""An SMB2 client and server talking over one TCP flow, for building scenarios."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from . import smb2
from .network import Capture, Host, TcpFlow, netbios

RELATED_FILE_ID = b"\xff" * 16  # 3.2.4.1.4: related compound uses the previous FileId


@dataclass
class Pdu:
    """One SMB2 request or response: header fields plus a body from samples.smb2."""

    command: int
    body: bytes
    status: int = 0
    flags: int = 0
    async_id: Optional[int] = None
    message_id: Optional[int] = None


@dataclass
class Smb2Session:
    flow: TcpFlow
    session_id: int = 0
    tree_id: int = 0
    next_message_id: int = 0
    dialect: int = smb2.SMB2_DIALECT_302
    sealer: Optional[object] = None  # a samples.smb3_encryption.Sealer once the session encrypts

    def _send(self, from_client: bool, message: bytes) -> None:
        if self.sealer is not None:
            message = self.sealer.seal(message, from_client)
        self.flow.send(from_client, netbios(message))

    def _build(self, pdu: Pdu, response: bool, message_id: int) -> bytes:
        flags = pdu.flags | (smb2.FLAGS_SERVER_TO_REDIR if response else 0)
        hdr = smb2.header(pdu.command, message_id, status=pdu.status, flags=flags, tree_id=self.tree_id,
                          session_id=self.session_id, async_id=pdu.async_id, credit=32 if response else 1)
        return hdr + pdu.body

    def exchange(self, requests: Sequence[Pdu], responses: Sequence[Pdu], think_us: int = 400) -> List[int]:
        """Send requests as one compound (or a single PDU) and the responses likewise."""
        ids = []
        for r in requests:
            ids.append(self.next_message_id)
            self.next_message_id += 1
        self._send(True, smb2.compound([self._build(r, False, i) for r, i in zip(requests, ids)]))
        if responses:
            self.flow.cap.tick(think_us)
            self._send(False, smb2.compound(
                [self._build(r, True, r.message_id if r.message_id is not None else i)
                 for r, i in zip(responses, ids)]))
        return ids

    def respond(self, responses: Sequence[Pdu], think_us: int = 400) -> None:
        """Responses sent later on their own, e.g. the final answer after STATUS_PENDING."""
        self.flow.cap.tick(think_us)
        self._send(False, smb2.compound([self._build(r, True, r.message_id) for r in responses]))

    # -- the usual set-up and tear-down ------------------------------------
    def negotiate(self, dialects=(0x0202, 0x0210, 0x0300, 0x0302), server_guid=b"\x5a" * 16,
                  capabilities: int = smb2.SERVER_CAPABILITIES, client_guid: Optional[bytes] = None) -> None:
        """client_guid: one per client machine, the same on all its channels (MS-SMB2 3.2.4.2.2.2);
        by default made from the client's address."""
        guid = client_guid or (b"\x11" * 12 + self.flow.client.ip_bytes)
        self.exchange([Pdu(smb2.NEGOTIATE, smb2.negotiate_request(dialects, guid))],
                      [Pdu(smb2.NEGOTIATE, smb2.negotiate_response(self.dialect, server_guid, 0x01DC5A0000000000,
                                                                   capabilities))])

    def session_setup(self, session_id: int, session_flags: int = 0) -> None:
        self.exchange([Pdu(smb2.SESSION_SETUP, smb2.session_setup_request())], [])
        self.session_id = session_id
        self.flow.cap.tick(300)
        self._send(False, self._build(Pdu(smb2.SESSION_SETUP, smb2.session_setup_response(session_flags)),
                                      True, self.next_message_id - 1))

    def bind_session(self, session_id: int) -> None:
        """SESSION_SETUP with SMB2_SESSION_FLAG_BINDING (MS-SMB2 3.2.4.2.3): this connection becomes
        another channel of an existing session; trees and opens carry over."""
        self.session_id = session_id
        self.exchange([Pdu(smb2.SESSION_SETUP, smb2.session_setup_request(flags=smb2.SESSION_FLAG_BINDING))],
                      [Pdu(smb2.SESSION_SETUP, smb2.session_setup_response())], think_us=300)

    def tree_connect(self, path: str, tree_id: int) -> None:
        self.exchange([Pdu(smb2.TREE_CONNECT, smb2.tree_connect_request(path))], [])
        self.tree_id = tree_id
        self.flow.cap.tick(300)
        self._send(False, self._build(Pdu(smb2.TREE_CONNECT, smb2.tree_connect_response()),
                                      True, self.next_message_id - 1))

    def close(self, file_id: bytes) -> None:
        self.exchange([Pdu(smb2.CLOSE, smb2.close_request(file_id))], [Pdu(smb2.CLOSE, smb2.close_response())])

    def tree_disconnect(self) -> None:
        self.exchange([Pdu(smb2.TREE_DISCONNECT, smb2.empty4())], [Pdu(smb2.TREE_DISCONNECT, smb2.empty4())])

    def logoff(self) -> None:
        self.exchange([Pdu(smb2.LOGOFF, smb2.empty4())], [Pdu(smb2.LOGOFF, smb2.empty4())])


def start(cap: Capture, client: Host, server: Host, cport: int, **kw) -> Smb2Session:
    flow = TcpFlow(cap, client, server, cport)
    flow.handshake()
    return Smb2Session(flow, **kw)
