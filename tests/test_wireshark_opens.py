"""The per-open statistics (`tshark -z msrsvd,opens`) against an independent computation.

For each RSVD sample, real tshark with the plugin prints one row per shared-disk open; the same
capture, dissected to PDML, gives per SMB2 PDU Wireshark's own smb2 fields (smb2.cmd, smb2.sesid,
smb2.fid, smb2.msg_id, smb2.nt_status) and the plugin's decoded ones (msrsvd.header.status,
msrsvd.scsi_response.scsi_status, msrsvd.scsi.sense.key), from which this module counts each
open's frames and messages itself. The two must agree on tshark 4.0, 4.4 and 4.6, in one pass
and in two; READs, WRITEs, reservation conflicts and unit attentions also agree with the
analyzer's sessions table.
"""
from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

import pytest

import analyzer
import decoded
import samples
from dissectors import generate
from dissectors.definitions import rsvd, scsi

pytestmark = pytest.mark.tshark_matrix

NAMES = ["rsvd_shared_disk", "rsvd_cluster_events", "rsvd_multichannel"]
RSVD = next(p for p in generate.protocols() if p.name == "msrsvd")
COLUMNS = [c.column for c in RSVD.open_statistics.counters]
CREATE, CLOSE, READ, WRITE, IOCTL = 5, 6, 8, 9, 11
PENDING, RELATED = 0x103, "ffffffff-ffff-ffff-ffff-ffffffffffff"
STORED = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"]
CONFLICT = rsvd.ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"]
UAS = {rsvd.ERROR_CODES[k] for k in rsvd.UNIT_ATTENTIONS}
SCSI_OP = rsvd.OPERATION_CODES["RSVD_TUNNEL_SCSI_OPERATION"]


def opens_report(name: str, *args: str, filter: str = "") -> Tuple[str, Dict[str, dict]]:
    res = decoded.run(samples.path(name), *args, "-q", "-z", "msrsvd,opens" + ("," + filter if filter else ""))
    assert res.returncode == 0, res.stderr
    return res.stdout, parse(res.stdout)


def parse(text: str) -> Dict[str, dict]:
    lines = text.splitlines()
    assert re.fullmatch(r"=+", lines[0]) and lines[-1] == lines[0], text
    assert lines[1] == "MSRSVD Open Statistics:" and lines[2].startswith("Filter: "), text
    header = lines[3].split()
    assert header[:4] == ["Open", "(SMB2", "session:FileId)", "Client"] and header[-2:] == ["Opened", "as"], header
    assert header[7:-2] == COLUMNS, header
    rows = {}
    for line in lines[4:-1]:
        cells = line.split(None, 5 + len(COLUMNS))
        assert len(cells) == 6 + len(COLUMNS), line
        key = cells[0]
        assert key not in rows, line
        rows[key] = dict(client=cells[1], server=cells[2], first=int(cells[3]), last=int(cells[4]),
                         name=cells[-1], **{c: int(v) for c, v in zip(COLUMNS, cells[5:-1])})
    return rows


def _fields(el, name: str) -> List[str]:
    return [f.get("show") for f in el.iter("field") if f.get("name") == name]


@functools.lru_cache(maxsize=None)
def pdus(name: str) -> List[dict]:
    """Every SMB2 PDU of the capture, in order, with Wireshark's smb2 fields and the plugin's
    messages that lie inside it."""
    res = decoded.run(samples.path(name), "-T", "pdml")
    assert res.returncode == 0, res.stderr
    out = []
    for packet in ET.fromstring(res.stdout).iter("packet"):
        protos = packet.findall("proto")
        frame = int(_fields(packet, "frame.number")[0])
        ips = [p for p in protos if p.get("name") in ("ip", "ipv6")]
        src = _fields(ips[0], ips[0].get("name") + ".src")[0] if ips else ""
        dst = _fields(ips[0], ips[0].get("name") + ".dst")[0] if ips else ""
        stream = (_fields(packet, "tcp.stream") or ["-1"])[0]
        ours = [p for p in protos if p.get("name") == "msrsvd"]
        here = []
        for p in protos:
            if p.get("name") != "smb2":
                continue
            first = lambda f: (_fields(p, f) or [None])[0]  # noqa: E731
            status = first("smb2.nt_status")
            pos, size = int(p.get("pos")), int(p.get("size"))
            msgs = [m for m in ours if pos <= int(m.get("pos")) < pos + size]
            here.append(dict(
                frame=frame, cmd=int(first("smb2.cmd")), resp=first("smb2.flags.response") in ("1", "True"),
                sid=int(first("smb2.sesid"), 16), fid=first("smb2.fid"), msg=(stream, first("smb2.msg_id")),
                status=int(status, 16) if status else None, src=src, dst=dst,
                context=any("OPEN_DEVICE_CONTEXT" in m.get("showname", "") for m in msgs),
                tunnel=[dict(op=_fields(m, "msrsvd.header.operation_code"), status=_fields(m, "msrsvd.header.status"),
                             scsi=_fields(m, "msrsvd.scsi_response.scsi_status"),
                             sense=_fields(m, "msrsvd.scsi.sense.key"))
                        for m in msgs if _fields(m, "msrsvd.header.operation_code")]))
        out += here
    return out


def _int(x: str) -> int:
    return int(x, 0)


@functools.lru_cache(maxsize=None)
def expected(name: str) -> Dict[str, dict]:
    """The table, counted from the PDML: an open is session and FileId; a response belongs to its
    request's open (same TCP stream and MessageId), a request related to a CREATE in a compound
    (FileId all FF) to that CREATE's open. Rows: opens made with the SVHDX context, or that carried
    a tunnel operation."""
    rows: Dict[str, dict] = {}
    of_request: Dict[tuple, str] = {}
    ours = set()
    aliases: Dict[str, str] = {}
    prev_key = None
    for i, p in enumerate(pdus(name)):
        key = "0x%016X:%s" % (p["sid"], p["fid"]) if p["fid"] else None
        if not p["resp"]:
            if p["cmd"] == CREATE:
                if not p["context"]:
                    continue
                key = "create:%s:%s" % p["msg"]
            elif p["cmd"] not in (CLOSE, READ, WRITE, IOCTL):
                continue
            elif p["fid"] == RELATED:
                key = prev_key
            of_request[p["msg"]] = key
        else:
            if p["cmd"] not in (CREATE, CLOSE, READ, WRITE, IOCTL):
                continue
            req = of_request.get(p["msg"])
            if p["status"] != PENDING:
                of_request.pop(p["msg"], None)
            if p["cmd"] == CREATE:
                if req and key:
                    aliases[req] = key
                    if p["status"] == 0:
                        ours.add(key)
            elif req:
                key = req
        prev_key = key
        if key is None:
            continue
        r = rows.setdefault(key, dict(first=p["frame"], last=p["frame"], client=p["dst"] if p["resp"] else p["src"],
                                      server=p["src"] if p["resp"] else p["dst"], **{c: 0 for c in COLUMNS}))
        r["last"] = p["frame"]
        t = p["tunnel"]
        if t:
            ours.add(key)
        statuses = [_int(s) for m in t for s in m["status"]]
        smb2_error = p["resp"] and p["cmd"] in (READ, WRITE, IOCTL) and (p["status"] or 0) >= 0xC0000000
        smb2_status = p["status"] if p["resp"] and p["cmd"] in (READ, WRITE, IOCTL) else None
        scsi_statuses = [_int(s) for m in t if m["op"] and _int(m["op"][0]) == SCSI_OP for s in m["scsi"]]
        senses = [_int(s) for m in t for s in m["sense"]]
        if not p["resp"]:
            r["Tunnel"] += bool(t)
            r["Reads"] += p["cmd"] == READ
            r["Writes"] += p["cmd"] == WRITE
        else:
            r["Failed"] += bool(smb2_error or any(s != 0 for s in statuses) or any(s != 0 for s in scsi_statuses))
            r["Conflicts"] += bool(scsi.SCSI_STATUS["RESERVATION_CONFLICT"] in scsi_statuses
                                   or CONFLICT in statuses + [smb2_status])
            r["UnitAttn"] += bool(scsi.SENSE_KEYS["UNIT_ATTENTION"] in senses or UAS & set(statuses + [smb2_status]))
            r["Stored"] += any(s is not None and STORED <= s < STORED + 256 for s in statuses + [smb2_status])
    # fold the CREATEs' keys into the opens they made
    out: Dict[str, dict] = {}
    for key, r in sorted(rows.items(), key=lambda kv: kv[1]["first"]):
        to = aliases.get(key, key)
        if to not in ours:
            continue
        if to not in out:
            out[to] = dict(r)
            continue
        o = out[to]
        if r["first"] < o["first"]:
            o.update(first=r["first"], client=r["client"], server=r["server"])
        o["last"] = max(o["last"], r["last"])
        for c in COLUMNS:
            o[c] += r[c]
    return out


@functools.lru_cache(maxsize=None)
def _load(name: str):
    return analyzer.load(samples.path(name), **samples.KEYS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_opens_agree_with_the_smb2_fields(name):
    _, got = opens_report(name)
    want = expected(name)
    assert got and {k: {c: v for c, v in r.items() if c != "name"} for k, r in got.items()} == want


@pytest.mark.parametrize("name", NAMES)
def test_opens_agree_with_the_analyzer(name):
    """The open ids, names, clients, servers, first frames, READs, WRITEs, reservation conflicts and
    unit attentions of the analyzer's sessions table."""
    _, got = opens_report(name)
    s = _load(name).sessions
    want = {r.open_id: r for r in s.itertuples()}
    assert sorted(got) == sorted(want)
    for k, r in got.items():
        w = want[k]
        assert (r["name"], r["client"], r["server"], r["first"]) == (
            w.file_name, w.client.rsplit(":", 1)[0], w.server.rsplit(":", 1)[0], w.first_frame), k
        assert (r["Reads"], r["Writes"], r["Conflicts"], r["UnitAttn"]) == (
            w.reads, w.writes, w.reservation_conflicts, w.unit_attentions), k


@pytest.mark.parametrize("two_pass", [("-2",), ("-2", "-Y", "msrsvd || smb2")], ids=["2", "2-revisit"])
@pytest.mark.parametrize("name", NAMES)
def test_two_pass_gives_the_same_table(name, two_pass):
    assert opens_report(name, *two_pass)[1] == opens_report(name)[1]


def test_filter_argument():
    text, got = opens_report("rsvd_shared_disk", filter="frame.number <= 120")
    assert "Filter: frame.number <= 120" in text
    assert list(got) == ["0x0000040000000001:00000001-0000-0000-0a00-000000000000"]
    assert got[list(got)[0]]["last"] <= 120


def test_a_bad_filter_is_reported():
    res = decoded.run(samples.path("rsvd_shared_disk"), "-q", "-z", "msrsvd,opens,smb2 >>> 1")
    assert "msrsvd,opens: " in res.stderr and "Open Statistics" not in res.stdout, res.stderr


def test_names_are_listed_by_tshark():
    res = decoded.run(samples.path("rsvd_shared_disk"), "-z", "help")
    assert "msrsvd,opens" in (res.stdout + res.stderr).split()
