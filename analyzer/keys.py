"""What Wireshark needs to decrypt, from `analyze` options (and analyzer.load's arguments) to
tshark's -o preferences.

- SMB 3.x encryption: `uat:smb2_seskey_list` takes the session id as 8 bytes of unquoted hex in
  wire order (little-endian), the session key, and optionally the two derived AES keys
  (server-to-client, client-to-server). tshark 4.4 and later derive those keys themselves;
  4.0 does not for SMB 3.0/3.0.2 sessions (measured with 4.0.17: every message stays
  encrypted), so for tshark before 4.4 the keys of MS-SMB2 3.1.4.2 for a 3.0.x session are
  derived here and passed too. An SMB 3.1.1 session's keys depend on its pre-authentication
  hash, which only Wireshark computes: give the derived keys explicitly on tshark 4.0
  (SESSION_ID:KEY:S2C:C2S), or use 4.4+.
- NTLM-sealed DCE/RPC (ClusPrep): `ntlmssp.nt_password`.
- Kerberos: `kerberos.decrypt` with `kerberos.file`, a keytab holding the service's keys.

Anything else tshark accepts goes through unchanged as `-o NAME:VALUE`.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from .source import CaptureError

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _kdf(key: bytes, label: bytes, context: bytes) -> bytes:
    """MS-SMB2 3.1.4.2: SP800-108 counter mode with HMAC-SHA256, L = 128."""
    data = struct.pack(">I", 1) + label + b"\x00" + context + struct.pack(">I", 128)
    return hmac.new(key, data, hashlib.sha256).digest()[:16]


def smb30_keys(session_key: bytes):
    """(server-to-client, client-to-server) AES-128-CCM keys of an SMB 3.0 / 3.0.2 session."""
    return (_kdf(session_key[:16], b"SMB2AESCCM\x00", b"ServerOut\x00"),
            _kdf(session_key[:16], b"SMB2AESCCM\x00", b"ServerIn \x00"))


def _hex_bytes(text: str, what: str, sizes: Sequence[int]) -> bytes:
    t = text.strip().replace("-", "").replace(" ", "")
    if not t or not _HEX.match(t) or len(t) % 2 or len(t) // 2 not in sizes:
        raise CaptureError("--smb-key: the %s must be %s bytes of hex, not %r"
                           % (what, " or ".join(str(s) for s in sizes), text))
    return bytes.fromhex(t)


def session_id_wire(text: str) -> str:
    """A session id as the UAT wants it: 16 hex digits, wire (little-endian) order.
    0x0000040000000001 (as Wireshark displays smb2.sesid) or the wire bytes 0100000000040000."""
    t = text.strip()
    if t.lower().startswith("0x"):
        try:
            return struct.pack("<Q", int(t, 16)).hex()
        except (ValueError, struct.error):
            raise CaptureError("--smb-key: %r is not a 64-bit session id" % text) from None
    return _hex_bytes(t, "session id", (8,)).hex()


@dataclass
class Keys:
    smb_keys: List[str] = field(default_factory=list)  # SESSION_ID:KEY[:S2C:C2S]
    nt_password: Optional[str] = None
    keytab: Optional[str] = None
    options: List[str] = field(default_factory=list)  # NAME:VALUE, as tshark's -o

    def args(self, tshark_version: tuple = (4, 4)) -> List[str]:
        out: List[str] = []
        for spec in self.smb_keys:
            out += ["-o", "uat:smb2_seskey_list:" + smb_key_record(spec, tshark_version)]
        if self.nt_password is not None:
            if "\n" in self.nt_password:
                raise CaptureError("--nt-password: a password is one line")
            out += ["-o", "ntlmssp.nt_password:" + self.nt_password]
        if self.keytab is not None:
            p = Path(self.keytab)
            if not p.is_file():
                raise CaptureError("--keytab: %s is not a file" % p)
            out += ["-o", "kerberos.decrypt:TRUE", "-o", "kerberos.file:" + str(p.resolve())]
        for o in self.options:
            if ":" not in o or o.startswith(":"):
                raise CaptureError("-o: %r is not NAME:VALUE (as tshark's -o)" % o)
            out += ["-o", o]
        return out

    def smb_session_ids(self) -> set:
        """The session ids --smb-key names, as numbers."""
        out = set()
        for spec in self.smb_keys:
            out.add(int.from_bytes(bytes.fromhex(session_id_wire(spec.split(":", 1)[0])), "little"))
        return out


def smb_key_record(spec: str, tshark_version: tuple) -> str:
    parts = spec.split(":")
    if len(parts) not in (2, 4):
        raise CaptureError("--smb-key: %r is not SESSION_ID:SESSION_KEY (or SESSION_ID:SESSION_KEY:S2C:C2S)" % spec)
    sid = session_id_wire(parts[0])
    key = _hex_bytes(parts[1], "session key", (16, 32))
    if len(parts) == 4:
        s2c, c2s = (_hex_bytes(p, "derived key", (16, 32)) for p in parts[2:])
    elif tshark_version < (4, 4):
        s2c, c2s = smb30_keys(key)
    else:
        s2c = c2s = b""
    return "%s,%s,%s,%s" % (sid, key.hex(), s2c.hex(), c2s.hex())
