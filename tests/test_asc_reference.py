"""The ASC/ASCQ names (dissectors/definitions/scsi.py ASC_ASCQ, most of them generated from
Wireshark's scsi_asc_val into scsi_asc.py) against Wireshark's own SCSI dissector, on real bytes.

Sense data with many ASC/ASCQ values goes through MS-RSVD's tunnel (our plugin decodes it) and
over iSCSI (the built-in scsi dissector decodes it, no Lua); the name each gives the same code
must be the same words, upper case aside, but for SPC3_WORDING: the codes scsi.py names itself
in SPC-3's words where Wireshark abbreviates or words them otherwise, and the 0x5D1x-0x5D6x
groups, which T10 names by group and Wireshark does not.
"""
from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from typing import Dict, List

import pytest

import decoded
from dissectors.definitions import scsi, scsi_asc
from iscsi_capture import ScsiExchange, iscsi_capture, rsvd_capture

pytestmark = pytest.mark.tshark_matrix  # 4.0, 4.4 and 4.6 (tests/tsharks.py)

# Codes whose name here is not Wireshark's, and why.
SPC3_WORDING = {
    0x0402: "SPC-3: INITIALIZING COMMAND REQUIRED (Wireshark abbreviates 'Cmd.')",
}
GROUPED = {c for c in scsi_asc.WIRESHARK if c >> 8 == 0x5D and 0x10 <= (c & 0xFF) < 0x70}

# Every 7th code Wireshark names, every code scsi.py names in its own words that Wireshark names
# too, and both ends: about 90 sense blocks.
CODES = sorted(set(sorted(scsi_asc.WIRESHARK)[::7]) | (set(scsi.SPC3_ASC_ASCQ.values()) & set(scsi_asc.WIRESHARK))
               | {min(scsi_asc.WIRESHARK), max(scsi_asc.WIRESHARK), 0x5D13, 0x5D6C})
READ10 = bytes.fromhex("28000000080000000800")


def _exchange(code: int) -> ScsiExchange:
    sense = struct.pack("!BBBIBIBBB3s", 0x70, 0, 0x03, 0, 10, 0, code >> 8, code & 0xFF, 0, bytes(3))
    return ScsiExchange(cdb=READ10, expected_length=4096, read=True, status=0x02, sense=sense)


def _names(pdml: str, field: str) -> List[str]:
    out = []
    for f in ET.fromstring(pdml).iter("field"):
        if f.get("name") == field:
            m = re.match(r"^[^:]+: (.*\S) \(0x[0-9a-fA-F]+\)\s*$", f.get("showname") or "")
            out.append(m.group(1) if m else f.get("showname"))
    return out


def _words(name: str) -> List[str]:
    return re.sub(r"\s+", " ", name.upper()).strip().split(" ")


@pytest.fixture(scope="module")
def pcaps(tmp_path_factory) -> Dict[str, object]:
    folder = tmp_path_factory.mktemp("asc_reference")
    exchanges = [_exchange(c) for c in CODES]
    ours, theirs = folder / "asc_rsvd.pcapng", folder / "asc_iscsi.pcapng"
    ours.write_bytes(rsvd_capture(exchanges))
    theirs.write_bytes(iscsi_capture(exchanges)[0])
    return {"ours": ours, "theirs": theirs}


def test_the_table_is_wiresharks_and_more():
    named = {c: n for n, c in scsi.ASC_ASCQ.items()}
    assert set(scsi_asc.WIRESHARK) <= set(named), "a code Wireshark names and we do not"
    assert len(named) >= 320
    for code, ws in scsi_asc.WIRESHARK.items():
        if code in scsi.SPC3_ASC_ASCQ.values() or code in GROUPED:
            continue
        assert named[code] == " ".join(_words(ws)), hex(code)


def test_asc_names_match_wiresharks_scsi_dissector(tshark, pcaps):
    res = decoded.run(pcaps["ours"], "-T", "pdml", "-Y", "msrsvd.scsi.sense.asc_ascq")
    assert res.returncode == 0, res.stderr
    ours = _names(res.stdout, "msrsvd.scsi.sense.asc_ascq")
    res = decoded.run(pcaps["theirs"], "-T", "pdml", "-Y", "scsi.sns.ascascq", lua=False)
    assert res.returncode == 0, res.stderr
    theirs = _names(res.stdout, "scsi.sns.ascascq")
    assert len(ours) == len(theirs) == len(CODES), (len(ours), len(theirs), len(CODES))
    problems = []
    for code, o, t in zip(CODES, ours, theirs):
        if code in GROUPED:  # T10's group, then Wireshark's words
            same = " ".join(_words(o)).endswith(" ".join(_words(t)).replace("IMPENDING FAILURE ", "", 1)
                                               .replace("FAILURE ", "", 1))
        else:
            same = _words(o) == _words(t)
        if same == (code in SPC3_WORDING):
            problems.append("0x%04X: ours %r, Wireshark's %r%s" % (code, o, t,
                                                                  " (listed as differing)" if same else ""))
    assert not problems, "\n".join(problems)
