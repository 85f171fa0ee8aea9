"""An NTLMv2 handshake (MS-NLMP) with fixed nonces, and the signing and sealing it keys.

Both ends live in one object so a sample can carry a real exchange that Wireshark
decrypts with `-o ntlmssp.nt_password:<PASSWORD>`. Nothing here is random: the
challenges, the exported session key and the timestamp are constants or arguments.
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import List, Tuple

from construct import Bytes, Const, Int8ul, Int16ul, Int32ul, Struct

# 2.2.2.5 NEGOTIATE flags
NEGOTIATE_UNICODE = 0x00000001
NEGOTIATE_OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_LM_KEY = 0x00000080
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

# What a Windows client asks for under RPC_C_AUTHN_LEVEL_PKT_PRIVACY (0xe20882b7) ...
CLIENT_FLAGS = (NEGOTIATE_UNICODE | NEGOTIATE_OEM | REQUEST_TARGET | NEGOTIATE_SIGN | NEGOTIATE_SEAL
                | NEGOTIATE_LM_KEY | NEGOTIATE_NTLM | NEGOTIATE_ALWAYS_SIGN | NEGOTIATE_EXTENDED_SESSIONSECURITY
                | NEGOTIATE_VERSION | NEGOTIATE_128 | NEGOTIATE_KEY_EXCH | NEGOTIATE_56)
# ... and what the server settles on (0xe2898235). LM_KEY must go: extended session
# security wins, and Wireshark would otherwise derive the key exchange key with DES.
SERVER_FLAGS = ((CLIENT_FLAGS & ~(NEGOTIATE_OEM | NEGOTIATE_LM_KEY))
                | TARGET_TYPE_DOMAIN | NEGOTIATE_TARGET_INFO)

# 2.2.2.1 AV_PAIR ids
MSV_AV_EOL, MSV_AV_NB_COMPUTER, MSV_AV_NB_DOMAIN, MSV_AV_DNS_COMPUTER, MSV_AV_DNS_DOMAIN = 0, 1, 2, 3, 4
MSV_AV_DNS_TREE, MSV_AV_FLAGS, MSV_AV_TIMESTAMP, MSV_AV_TARGET_NAME, MSV_AV_CHANNEL_BINDINGS = 5, 6, 7, 9, 10
AV_FLAG_MIC_PRESENT = 0x00000002

SIGNATURE = b"NTLMSSP\x00"
NTLMSSP_REVISION_W2K3 = 15
FILETIME_UNIX_EPOCH = 116444736000000000  # 100 ns ticks from 1601 to 1970

Version = Struct(  # 2.2.2.10
    "major" / Int8ul,
    "minor" / Int8ul,
    "build" / Int16ul,
    "reserved" / Const(b"\x00\x00\x00"),
    "revision" / Const(NTLMSSP_REVISION_W2K3, Int8ul),
)
WINDOWS_2022 = Version.build(dict(major=10, minor=0, build=20348))
Fields = Struct("len" / Int16ul, "max_len" / Int16ul, "offset" / Int32ul)  # a payload reference

# The fixed parts; the payload follows at the offsets the Fields give.
NegotiateHead = Struct("signature" / Const(SIGNATURE), "type" / Const(1, Int32ul), "flags" / Int32ul,
                       "domain" / Fields, "workstation" / Fields, "version" / Bytes(8))
ChallengeHead = Struct("signature" / Const(SIGNATURE), "type" / Const(2, Int32ul), "target_name" / Fields,
                       "flags" / Int32ul, "server_challenge" / Bytes(8), "reserved" / Const(bytes(8)),
                       "target_info" / Fields, "version" / Bytes(8))
AuthenticateHead = Struct("signature" / Const(SIGNATURE), "type" / Const(3, Int32ul),
                          "lm_response" / Fields, "nt_response" / Fields, "domain" / Fields,
                          "user" / Fields, "workstation" / Fields, "session_key" / Fields,
                          "flags" / Int32ul, "version" / Bytes(8), "mic" / Bytes(16))
MIC_OFFSET = 72  # where AuthenticateHead puts the MIC


def md4(data: bytes) -> bytes:
    """RFC 1320; hashlib has none when OpenSSL 3 leaves out the legacy provider."""
    def rol(v: int, s: int) -> int:
        v &= 0xFFFFFFFF
        return ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF

    rounds = (
        (lambda x, y, z: (x & y) | (~x & z), 0, range(16), (3, 7, 11, 19)),
        (lambda x, y, z: (x & y) | (x & z) | (y & z), 0x5A827999,
         (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), (3, 5, 9, 13)),
        (lambda x, y, z: x ^ y ^ z, 0x6ED9EBA1,
         (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15), (3, 9, 11, 15)),
    )
    msg = data + b"\x80" + bytes((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for block in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[block:block + 64])
        a, b, c, d = state
        for fn, k, order, shifts in rounds:
            for i, w in enumerate(order):
                # each step updates the register before b; rotating keeps the code one line
                a, b, c, d = d, rol(a + fn(b, c, d) + x[w] + k, shifts[i % 4]), b, c
        state = [(s + v) & 0xFFFFFFFF for s, v in zip(state, (a, b, c, d))]
    return struct.pack("<4I", *state)


class RC4:
    """A keyed RC4 stream; each call continues where the last one stopped."""

    def __init__(self, key: bytes):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self._s, self._i, self._j = s, 0, 0

    def __call__(self, data: bytes) -> bytes:
        s, i, j = self._s, self._i, self._j
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
        self._i, self._j = i, j
        return bytes(out)


def hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def ntowf_v2(password: str, user: str, domain: str) -> bytes:
    """3.3.2: HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) + UserDom))."""
    return hmac_md5(md4(password.encode("utf-16le")), (user.upper() + domain).encode("utf-16le"))


def av_pairs(pairs: List[Tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("<HH", k, len(v)) + v for k, v in pairs) + struct.pack("<HH", MSV_AV_EOL, 0)


def _u(s: str) -> bytes:
    return s.encode("utf-16le")


def _layout(head_size: int, items: List[bytes]) -> Tuple[List[dict], bytes]:
    """Fields for each payload item, laid out in order after the fixed part."""
    refs, offset = [], head_size
    for item in items:
        refs.append(dict(len=len(item), max_len=len(item), offset=offset))
        offset += len(item)
    return refs, b"".join(items)


@dataclass(frozen=True)
class Account:
    user: str
    domain: str
    password: str
    workstation: str


@dataclass(frozen=True)
class Server:
    nb_domain: str
    nb_computer: str
    dns_domain: str
    service: str = "RPCSS"  # DCOM's SPN class; goes into MsvAvTargetName

    @property
    def dns_computer(self) -> str:
        return "%s.%s" % (self.nb_computer.lower(), self.dns_domain)


ACCOUNT = Account(user="clusadmin", domain="CLUSTER", password="Clu5ter-Sample", workstation="NODE1")
SERVER = Server(nb_domain="CLUSTER", nb_computer="NODE2", dns_domain="cluster.example")


class Signer:
    """One direction's sealing state (3.4.4 with extended session security and key exchange).

    The RC4 handle is shared by sealing and by the checksum encryption, so calls must
    happen in wire order; Wireshark replays them in the same order to decrypt.
    """

    size = 16  # NTLMSSP_MESSAGE_SIGNATURE

    def __init__(self, signing_key: bytes, sealing_key: bytes):
        self.signing_key = signing_key
        self._rc4 = RC4(sealing_key)
        self.seq = 0

    def sign(self, message: bytes) -> bytes:
        seq = struct.pack("<I", self.seq)
        self.seq += 1
        checksum = hmac_md5(self.signing_key, seq + message)[:8]
        return struct.pack("<I", 1) + self._rc4(checksum) + seq

    def seal(self, message: bytes, payload: bytes) -> Tuple[bytes, bytes]:
        """Encrypt payload, then sign message (which holds payload in plaintext)."""
        sealed = self._rc4(payload)
        return sealed, self.sign(message)


@dataclass
class Handshake:
    """Both ends of one NTLMv2 exchange: NEGOTIATE, CHALLENGE, AUTHENTICATE, then keys."""

    account: Account = ACCOUNT
    server: Server = SERVER
    server_challenge: bytes = bytes.fromhex("6e3de1f0a5c27b19")
    client_challenge: bytes = bytes.fromhex("c1a55e7e0b5d2a44")
    exported_session_key: bytes = bytes.fromhex("5eed0f5e551011bea5e0fc0ffee0babe")  # "random" session key
    timestamp: int = FILETIME_UNIX_EPOCH + 1_763_700_000 * 10_000_000  # FILETIME in the CHALLENGE
    version: bytes = WINDOWS_2022
    messages: List[bytes] = field(default_factory=list)

    def negotiate(self) -> bytes:
        msg = NegotiateHead.build(dict(flags=CLIENT_FLAGS, domain=dict(len=0, max_len=0, offset=0),
                                       workstation=dict(len=0, max_len=0, offset=0), version=self.version))
        self.messages.append(msg)
        return msg

    def target_info(self) -> bytes:
        s = self.server
        return av_pairs([(MSV_AV_NB_DOMAIN, _u(s.nb_domain)), (MSV_AV_NB_COMPUTER, _u(s.nb_computer)),
                         (MSV_AV_DNS_DOMAIN, _u(s.dns_domain)), (MSV_AV_DNS_COMPUTER, _u(s.dns_computer)),
                         (MSV_AV_DNS_TREE, _u(s.dns_domain)),
                         (MSV_AV_TIMESTAMP, struct.pack("<Q", self.timestamp))])

    def challenge(self) -> bytes:
        (name, info), payload = _layout(ChallengeHead.sizeof(), [_u(self.server.nb_domain), self.target_info()])
        msg = ChallengeHead.build(dict(target_name=name, flags=SERVER_FLAGS, server_challenge=self.server_challenge,
                                       target_info=info, version=self.version)) + payload
        self.messages.append(msg)
        return msg

    def client_av_pairs(self) -> bytes:
        """The server's pairs plus what a Windows client adds (MIC flag, bindings, SPN)."""
        s = self.server
        return av_pairs([(MSV_AV_NB_DOMAIN, _u(s.nb_domain)), (MSV_AV_NB_COMPUTER, _u(s.nb_computer)),
                         (MSV_AV_DNS_DOMAIN, _u(s.dns_domain)), (MSV_AV_DNS_COMPUTER, _u(s.dns_computer)),
                         (MSV_AV_DNS_TREE, _u(s.dns_domain)),
                         (MSV_AV_TIMESTAMP, struct.pack("<Q", self.timestamp)),
                         (MSV_AV_FLAGS, struct.pack("<I", AV_FLAG_MIC_PRESENT)),
                         (MSV_AV_CHANNEL_BINDINGS, bytes(16)),
                         (MSV_AV_TARGET_NAME, _u("%s/%s" % (s.service, s.dns_computer)))])

    # 3.3.2 NTLM v2 authentication
    @property
    def response_key_nt(self) -> bytes:
        a = self.account
        return ntowf_v2(a.password, a.user, a.domain)

    @property
    def nt_challenge_response(self) -> bytes:
        temp = (b"\x01\x01" + bytes(6) + struct.pack("<Q", self.timestamp) + self.client_challenge + bytes(4)
                + self.client_av_pairs() + bytes(4))
        return hmac_md5(self.response_key_nt, self.server_challenge + temp) + temp

    @property
    def session_base_key(self) -> bytes:
        return hmac_md5(self.response_key_nt, self.nt_challenge_response[:16])

    def authenticate(self) -> bytes:
        a = self.account
        # 3.1.5.1.2: with MsvAvTimestamp in the challenge, the LM response is Z(24)
        items = [_u(a.domain), _u(a.user), _u(a.workstation), bytes(24), self.nt_challenge_response,
                 RC4(self.session_base_key)(self.exported_session_key)]  # KXKEY is the base key for v2
        (domain, user, ws, lm, nt, key), payload = _layout(AuthenticateHead.sizeof(), items)
        head = dict(lm_response=lm, nt_response=nt, domain=domain, user=user, workstation=ws, session_key=key,
                    flags=SERVER_FLAGS, version=self.version)
        unsigned = AuthenticateHead.build(dict(head, mic=bytes(16))) + payload
        mic = hmac_md5(self.exported_session_key, b"".join(self.messages[:2]) + unsigned)
        msg = AuthenticateHead.build(dict(head, mic=mic)) + payload
        self.messages.append(msg)
        return msg

    # 3.4.5 key derivation (128-bit, extended session security)
    def _key(self, magic: str) -> bytes:
        return hashlib.md5(self.exported_session_key + magic.encode() + b"\x00").digest()

    def client_signer(self) -> Signer:
        return Signer(self._key("session key to client-to-server signing key magic constant"),
                      self._key("session key to client-to-server sealing key magic constant"))

    def server_signer(self) -> Signer:
        return Signer(self._key("session key to server-to-client signing key magic constant"),
                      self._key("session key to server-to-client sealing key magic constant"))

