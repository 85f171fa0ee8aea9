"""What Wireshark needs to decrypt, from `analyze` options (and analyzer.load's arguments) to
tshark's -o preferences.

- SMB 3.x encryption: `uat:smb2_seskey_list` takes the session id as 8 bytes of unquoted hex in
  wire order (little-endian), the session key, and optionally the two derived keys
  (server-to-client, client-to-server). Wireshark derives those itself, for SMB 3.0, 3.0.2 and
  3.1.1 alike, once it has seen the session's SESSION_SETUP (3.1.1's keys need the
  pre-authentication hash of the NEGOTIATE and SESSION_SETUP exchange), so only the session key
  is passed, with the derived keys as quoted empty fields. Measured on tshark 4.0.17, 4.4.19 and
  4.6.9 with Zeek's smb3.pcap (3.0) and smb311.pcap (3.1.1) and samples/rsvd_encrypted (3.0.2):
  every message decrypted. Two traps, measured too: 4.0 reads unquoted empty fields (`sid,key,,`)
  as keys and decrypts nothing; keys derived here as for 3.0 (what analyze passed to 4.0 before)
  override 4.0's right 3.1.1 derivation. Without the SESSION_SETUP no key helps, derived or not:
  every version leaves the session encrypted.
- NTLM-sealed DCE/RPC (ClusPrep): `ntlmssp.nt_password`.
- Kerberos: `kerberos.decrypt` with `kerberos.file`, a keytab holding the service's keys.

Keys and passwords come from options, from files (--smb-key-file, --nt-password-file) or from
the environment (ANALYZE_SMB_KEYS, ANALYZE_NT_PASSWORD), so that they need not be on a command
line, which `ps` shows to every user of the machine.

Anything else tshark accepts goes through unchanged as `-o NAME:VALUE`.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from .source import CaptureError

_HEX = re.compile(r"^[0-9a-fA-F]+$")
SMB_KEYS_VARIABLE, NT_PASSWORD_VARIABLE = "ANALYZE_SMB_KEYS", "ANALYZE_NT_PASSWORD"


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

    def args(self) -> List[str]:
        out: List[str] = []
        for spec in self.smb_keys:
            out += ["-o", "uat:smb2_seskey_list:" + smb_key_record(spec)]
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


def smb_key_record(spec: str) -> str:
    """SESSION_ID:KEY[:S2C:C2S] as a uat:smb2_seskey_list record; derived keys not given are
    quoted empty fields, which Wireshark fills in itself (unquoted, 4.0 takes them as keys)."""
    parts = spec.split(":")
    if len(parts) not in (2, 4):
        raise CaptureError("--smb-key: %r is not SESSION_ID:SESSION_KEY (or SESSION_ID:SESSION_KEY:S2C:C2S)" % spec)
    sid = session_id_wire(parts[0])
    key = _hex_bytes(parts[1], "session key", (16, 32))
    derived = [_hex_bytes(p, "derived key", (16, 32)).hex() for p in parts[2:]] or ['""', '""']
    return "%s,%s,%s,%s" % (sid, key.hex(), *derived)


def smb_keys_from(path: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """SESSION_ID:KEY items from a file (one a line; blank lines and # comments skipped) and from
    ANALYZE_SMB_KEYS (separated by spaces, commas or new lines)."""
    out = []
    if path:
        for line in _read(path, "--smb-key-file").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    text = (os.environ if environ is None else environ).get(SMB_KEYS_VARIABLE, "")
    out += [x for x in re.split(r"[\s,]+", text) if x]
    return out


def nt_password_from(path: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The first line of a file (its line break dropped, nothing else), else ANALYZE_NT_PASSWORD."""
    if path:
        lines = _read(path, "--nt-password-file").splitlines()
        return lines[0] if lines else ""
    return (os.environ if environ is None else environ).get(NT_PASSWORD_VARIABLE)


def _read(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CaptureError("%s %s: cannot read it (%s)" % (option, path, getattr(e, "strerror", None) or e)) from None
