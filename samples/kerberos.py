"""Kerberos for the samples: a service ticket, the AP-REQ / AP-REP of a DCE-style exchange
(MS-KILE 3.4.5, RFC 4121 4.1), RFC 4121 wrap tokens as DCE/RPC seals stubs with them (no header
signing), and the MIT keytab that lets Wireshark decrypt it all (`analyze --keytab`).

No KDC takes part: the ticket is made here with the service's key, as a KDC would make it, so
the keytab holding that key is all Wireshark needs to learn the session key, both subkeys and
then every stub. Built with impacket's Kerberos types and crypto (a test dependency: only
`python -m samples` needs it); every confounder is fixed so the bytes are reproducible.
"""
from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass

REALM = "CLUSTER.EXAMPLE"
SERVICE = ("host", "node1.cluster.example")  # the SPN ClusPrep's DCOM server runs as
CLIENT = "clusadmin"
AES256 = 18
KVNO = 3
SERVICE_KEY = bytes.fromhex("5ca1ab1e" * 8)  # the machine account's AES256 key
SESSION_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210" * 2)
CLIENT_SUBKEY = bytes.fromhex("c1" * 32)
SERVER_SUBKEY = bytes.fromhex("5e" * 32)
CLIENT_SEQ, SERVER_SEQ = 0x1A2B3C4D, 0x0F0E0D0C
WHEN = datetime.datetime(2025, 11, 21, 4, 40, 0, tzinfo=datetime.timezone.utc)

# RFC 4120 7.5.1 key usages; RFC 4121 2 for the wrap tokens
KU_TICKET, KU_AP_REQ_AUTH, KU_AP_REP = 2, 11, 12
KG_USAGE_ACCEPTOR_SEAL, KG_USAGE_INITIATOR_SEAL = 22, 24
# RFC 4121 4.1.1.1 checksum flags, with MS-KILE's GSS_C_DCE_STYLE
GSS_FLAGS = 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x1000  # mutual, replay, sequence, conf, integ, DCE style


def _key(value: bytes):
    from impacket.krb5 import crypto
    return crypto.Key(AES256, value)


def _encrypt(key: bytes, usage: int, plaintext: bytes, confounder: bytes) -> bytes:
    from impacket.krb5 import crypto
    return crypto.encrypt(_key(key), usage, plaintext, confounder)


def _principal(parent, name: str, name_type: int, parts) -> None:
    parent[name]["name-type"] = name_type
    for i, part in enumerate(parts):
        parent[name]["name-string"][i] = part


def _key_field(parent, name: str, value: bytes) -> None:
    parent[name]["keytype"] = AES256
    parent[name]["keyvalue"] = value


def _sealed_field(parent, name: str, key: bytes, usage: int, value, confounder: bytes) -> None:
    """An EncryptedData component: the DER of value, encrypted under key for usage."""
    parent[name]["etype"] = AES256
    parent[name]["cipher"] = _encrypt(key, usage, _der(value), confounder)


def _time(t: datetime.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%SZ")


def _der(value) -> bytes:
    from pyasn1.codec.der import encoder
    return encoder.encode(value)


def fill_ticket(t) -> None:
    """The service ticket a KDC would issue, in place (pyasn1 wants the tagged component)."""
    from impacket.krb5.asn1 import EncTicketPart
    part = EncTicketPart()
    part["flags"] = "01000000100000000000000000000000"  # forwardable, pre-authent
    _key_field(part, "key", SESSION_KEY)
    part["crealm"] = REALM
    _principal(part, "cname", 1, [CLIENT])
    part["transited"]["tr-type"] = 0
    part["transited"]["contents"] = b""
    part["authtime"] = _time(WHEN)
    part["starttime"] = _time(WHEN)
    part["endtime"] = _time(WHEN + datetime.timedelta(hours=10))
    t["tkt-vno"] = 5
    t["realm"] = REALM
    _principal(t, "sname", 2, SERVICE)
    _sealed_field(t, "enc-part", SERVICE_KEY, KU_TICKET, part, b"\x01" * 16)
    t["enc-part"]["kvno"] = KVNO


def ap_req() -> bytes:
    """The bind's token: AP-REQ with mutual authentication and the DCE-style checksum."""
    from impacket.krb5.asn1 import AP_REQ, Authenticator
    auth = Authenticator()
    auth["authenticator-vno"] = 5
    auth["crealm"] = REALM
    _principal(auth, "cname", 1, [CLIENT])
    auth["cksum"]["cksumtype"] = 0x8003
    auth["cksum"]["checksum"] = struct.pack("<I", 16) + bytes(16) + struct.pack("<I", GSS_FLAGS)
    auth["cusec"] = 0
    auth["ctime"] = _time(WHEN)
    _key_field(auth, "subkey", CLIENT_SUBKEY)
    auth["seq-number"] = CLIENT_SEQ
    req = AP_REQ()
    req["pvno"] = 5
    req["msg-type"] = 14
    req["ap-options"] = "00100000000000000000000000000000"  # mutual-required
    fill_ticket(req["ticket"])
    _sealed_field(req, "authenticator", SESSION_KEY, KU_AP_REQ_AUTH, auth, b"\x02" * 16)
    return _der(req)  # Kerberos SSP (16) carries the AP-REQ itself, no RFC 2743 framing


def ap_rep(subkey: bytes, seq: int, confounder: bytes) -> bytes:
    """The bind_ack's AP-REP (with the acceptor's subkey), or the client's DCE-style third leg."""
    from impacket.krb5.asn1 import AP_REP, EncAPRepPart
    part = EncAPRepPart()
    part["ctime"] = _time(WHEN)
    part["cusec"] = 0
    if subkey:
        _key_field(part, "subkey", subkey)
    part["seq-number"] = seq
    rep = AP_REP()
    rep["pvno"] = 5
    rep["msg-type"] = 15
    _sealed_field(rep, "enc-part", SESSION_KEY, KU_AP_REP, part, confounder)
    return _der(rep)


def _seal_iov(key: bytes, usage: int, confounder: bytes, sign_head: bytes, data: bytes, sign_tail: bytes,
              token: bytes) -> bytes:
    """RFC 3961 simplified-profile encryption over MIT's IOV layout, as Windows' GSS_WrapEx does
    for DCE/RPC with header signing: the HMAC covers confounder, PDU header, stub, sec_trailer
    and token header in that order; only confounder, stub and token header are encrypted."""
    import hmac
    from hashlib import sha1

    from impacket.krb5 import crypto
    e = crypto._AES256CTS
    k = crypto.Key(AES256, key)
    ki = e.derive(k, struct.pack(">IB", usage, 0x55))
    ke = e.derive(k, struct.pack(">IB", usage, 0xAA))
    mac = hmac.new(ki.contents, confounder + sign_head + data + sign_tail + token, sha1).digest()[:e.macsize]
    return e.basic_encrypt(ke, confounder + data + token) + mac


@dataclass
class Sealer:
    """One direction's RFC 4121 wrap tokens with the acceptor's subkey, as Windows seals DCE/RPC
    stubs (MS-KILE 3.4.5.4.1): the stub (padded to 16) encrypted in place; the verifier holds the
    token header (EC 16, RRC 28) and the rest rotated: encrypted filler and header copy, HMAC,
    confounder: 76 octets. PDU header and sec_trailer are signed (header signing). Wireshark's
    decryption needs EC >= 16 (measured: with EC 0 nothing decrypts)."""

    acceptor: bool
    seq: int
    size = 16 + 16 + 16 + 16 + 12  # token header, filler, header copy, confounder, HMAC
    EC, RRC = 16, 28

    def seal(self, message: bytes, payload: bytes):
        flags = 0x02 | 0x04 | (0x01 if self.acceptor else 0)  # Sealed, AcceptorSubkey, SentByAcceptor
        inner = struct.pack(">HBBHHQ", 0x0504, flags, 0xFF, self.EC, 0, self.seq)  # RRC 0 inside (4.2.4)
        confounder = struct.pack(">Q", self.seq) * 2
        usage = KG_USAGE_ACCEPTOR_SEAL if self.acceptor else KG_USAGE_INITIATOR_SEAL
        head, tail = message[:len(message) - len(payload) - 8], message[-8:]
        cipher = _seal_iov(SERVER_SUBKEY, usage, confounder, head, payload, tail, b"\xff" * self.EC + inner)
        wire_header = struct.pack(">HBBHHQ", 0x0504, flags, 0xFF, self.EC, self.RRC, self.seq)
        self.seq += 1
        turn = self.RRC + self.EC
        rotated = cipher[-turn:] + cipher[:-turn]  # [E(filler, header) HMAC] [E(confounder)] [E(stub)]
        keep = turn + 16
        return rotated[keep:], wire_header + rotated[:keep]


def keytab() -> bytes:
    """An MIT keytab (version 0x502) with the service's AES256 key."""
    def counted(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    entry = (struct.pack(">H", len(SERVICE)) + counted(REALM.encode())
             + b"".join(counted(s.encode()) for s in SERVICE)
             + struct.pack(">IIB", 2, int(WHEN.timestamp()), KVNO) + struct.pack(">H", AES256)
             + counted(SERVICE_KEY) + struct.pack(">I", KVNO))
    return b"\x05\x02" + struct.pack(">i", len(entry)) + entry


@dataclass
class Handshake:
    """The three legs of a DCE-style Kerberos context (MS-RPCE 3.3.1.5.2.2 with MS-KILE 3.4.5):
    AP-REQ in the bind, the server's AP-REP in the bind_ack, the client's AP-REP in auth3.
    The interface samples.dcerpc expects of an ntlmssp.Handshake."""

    auth_type = 16  # RPC_C_AUTHN_GSS_KERBEROS
    header_signing = True  # PFC_SUPPORT_HEADER_SIGN, as Windows negotiates it

    def negotiate(self) -> bytes:
        return ap_req()

    def challenge(self) -> bytes:
        return ap_rep(SERVER_SUBKEY, SERVER_SEQ, b"\x03" * 16)

    def authenticate(self) -> bytes:
        return ap_rep(b"", CLIENT_SEQ, b"\x04" * 16)

    def client_signer(self) -> Sealer:
        return Sealer(acceptor=False, seq=CLIENT_SEQ)

    def server_signer(self) -> Sealer:
        return Sealer(acceptor=True, seq=SERVER_SEQ)
