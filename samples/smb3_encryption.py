"""SMB 3.x encryption for the samples: the keys MS-SMB2 derives from a session key, and the
TRANSFORM_HEADER that wraps each encrypted message.

- 3.1.4.2 / 3.2.5.3.1 (SMB 3.0 / 3.0.2): the keys (smb30_keys); the cipher is AES-128-CCM.
- 2.2.41 / 3.1.4.3: the TRANSFORM_HEADER (ProtocolId 0xFD 'S' 'M' 'B', Signature = the AEAD tag,
  an 11-byte CCM nonce in a 16-byte field, OriginalMessageSize, Flags = Encrypted, SessionId);
  the associated data is the header from the Nonce on (32 bytes).

Wireshark derives the same keys when given the session key (`uat:smb2_seskey_list`), so
decrypting these samples there checks this module against an implementation outside it;
tests/test_keys.py also checks the KDF against impacket's.
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from construct import Bytes, Const, Int16ul, Int32ul, Int64ul, Struct


def _kdf(key: bytes, label: bytes, context: bytes) -> bytes:
    """MS-SMB2 3.1.4.2: SP800-108 counter mode with HMAC-SHA256, L = 128."""
    data = struct.pack(">I", 1) + label + b"\x00" + context + struct.pack(">I", 128)
    return hmac.new(key, data, hashlib.sha256).digest()[:16]


def smb30_keys(session_key: bytes):
    """(server-to-client, client-to-server) AES-128-CCM keys of an SMB 3.0 / 3.0.2 session."""
    return (_kdf(session_key[:16], b"SMB2AESCCM\x00", b"ServerOut\x00"),
            _kdf(session_key[:16], b"SMB2AESCCM\x00", b"ServerIn \x00"))

TRANSFORM_HEADER = Struct(
    "ProtocolId" / Const(b"\xfdSMB"),
    "Signature" / Bytes(16),
    "Nonce" / Bytes(16),
    "OriginalMessageSize" / Int32ul,
    "Reserved" / Int16ul,
    "Flags" / Int16ul,  # EncryptionAlgorithm in SMB 3.0 / 3.0.2: 0x0001 = AES-128-CCM
    "SessionId" / Int64ul,
)
SMB2_TRANSFORM_HEADER_FLAG_ENCRYPTED = 0x0001
CCM_NONCE_SIZE = 11


@dataclass
class Sealer:
    """Encrypts each message of one SMB 3.0.2 session, with deterministic nonces."""

    session_key: bytes
    session_id: int
    counter: int = 1

    def seal(self, message: bytes, from_client: bool) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESCCM  # only to build the samples

        s2c, c2s = smb30_keys(self.session_key)
        nonce = struct.pack("<Q", self.counter).ljust(CCM_NONCE_SIZE, b"\x00")
        self.counter += 1
        header = TRANSFORM_HEADER.build(dict(Signature=bytes(16), Nonce=nonce.ljust(16, b"\x00"),
                                             OriginalMessageSize=len(message), Reserved=0,
                                             Flags=SMB2_TRANSFORM_HEADER_FLAG_ENCRYPTED, SessionId=self.session_id))
        sealed = AESCCM(c2s if from_client else s2c, tag_length=16).encrypt(nonce, message, header[20:])
        body, tag = sealed[:-16], sealed[-16:]
        return header[:4] + tag + header[20:] + body
