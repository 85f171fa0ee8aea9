"""Run real tshark with the generated plugins and collect what it decoded."""
from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import samples
import tsharks
from analyzer.capture.keys import Keys
from analyzer.capture.source import tshark_env
from dissectors import generate, plugin_paths

TSHARK = tsharks.system()
# The tshark that run() uses: the system one, or the version of the matrix that the
# running test was parametrized with (conftest sets it).
CURRENT: Optional[tsharks.Tshark] = TSHARK


def tshark_argv(tshark: Optional[tsharks.Tshark] = None) -> List[str]:
    t = tshark or CURRENT
    if t is None:
        raise RuntimeError("tshark is not installed: apt-get install -y tshark")
    return list(t.argv)


def tshark_cmd(pcap: Path, *args: str, lua: bool = True) -> List[str]:
    cmd = tshark_argv() + ["-n", "-r", str(pcap)]
    keys = samples.KEYS.get(Path(pcap).stem)
    if keys:  # an encrypted sample is decoded decrypted, as analyze --smb-key would
        cmd += Keys(**keys).args()
    if lua:
        for p in plugin_paths.lua_paths():
            cmd += ["-X", "lua_script:%s" % p]
    return cmd + list(args)


def run(pcap: Path, *args: str, lua: bool = True) -> subprocess.CompletedProcess:
    # the checkout's plugins, no installed copy, no profile
    return subprocess.run(tshark_cmd(pcap, *args, lua=lua), capture_output=True, text=True, timeout=300,
                          env=tshark_env(config=False))


@dataclass
class Decoded:
    """One message our dissector decoded: its top field, its bytes, and its fields."""

    frame: int
    abbrev: str  # e.g. "tunnel_request"
    raw: bytes
    fields: Dict[str, List]  # field name -> values, as tshark printed them
    request_in: Optional[int] = None  # for a response: the frame of its request


def _collect(node, out: Dict[str, List]) -> None:
    for key, value in node.items():
        if key.endswith("_raw") or key.startswith("_ws."):  # bytes, and expert items (tested apart)
            continue
        if key.endswith("_tree"):  # the children of a field that has a value (flag bits)
            _collect(value, out)
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                out.setdefault(key, []).append("")
                _collect(item, out)
            else:
                out.setdefault(key, []).append(item)


@functools.lru_cache(maxsize=None)
def _message_fields(proto: str) -> set:
    p = next(p for p in generate.protocols() if p.name == proto)
    return {"%s.%s" % (proto, m.abbrev) for m in p.messages}


def messages(pcap: Path, proto: str = "msrsvd") -> List[Decoded]:
    return _messages(CURRENT, pcap, proto)


@functools.lru_cache(maxsize=None)
def _messages(tshark, pcap: Path, proto: str) -> List[Decoded]:
    res = run(pcap, "-T", "json", "-x", "--no-duplicate-keys", "-J", "frame " + proto)
    assert res.returncode == 0, res.stderr
    out = []
    for pkt in json.loads(res.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        items = layers.get(proto)
        raws = layers.get(proto + "_raw")
        if items is None:
            continue
        if isinstance(items, dict):
            items = [items]
        for item in items:
            tops = [k for k in item if k in _message_fields(proto)]
            for top in tops:
                raw_hex = item[top + "_raw"][0]
                fields: Dict[str, List] = {}
                _collect({top: item[top]}, fields)
                link = item.get("%s.request_in" % proto)
                out.append(Decoded(frame=frame, abbrev=top.split(".", 1)[1], raw=bytes.fromhex(raw_hex),
                                   fields=fields, request_in=int(link) if link else None))
    return out


def request_of(pcap: Path, d: Decoded, proto: str = "msrsvd") -> Optional[Decoded]:
    """The request message a response answers: in the linked frame, with the same id."""
    if d.request_in is None:
        return None
    rid = d.fields.get("%s.header.request_id" % proto)
    for m in messages(pcap, proto):
        if m.frame == d.request_in and m.fields.get("%s.header.request_id" % proto) == rid:
            return m
    return None


# -T fields prints a boolean as 1/0 up to 4.2 and as True/False from 4.4 on.
BOOL = {"True": "1", "False": "0"}


def field_values(pcap: Path, fields: Sequence[str], *extra: str, lua: bool = True,
                 check: bool = True) -> List[Dict[str, List[str]]]:
    """Per frame, every occurrence of each field (tshark -T fields). check=False: a capture tshark
    exits non-zero on (a truncated one) still gives the frames it printed."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"]
    for f in fields:
        args += ["-e", f]
    res = run(pcap, *extra, *args, lua=lua)
    assert res.returncode == 0 or not check and res.stdout, res.stderr
    rows = []
    for line in res.stdout.splitlines():
        cols = line.split("\t")
        row = {"frame.number": cols[0]}
        for f, c in zip(fields, cols[1:]):
            row[f] = [BOOL.get(v, v) for v in c.split("|")] if c else []
        rows.append(row)
    return rows


def normalize(ftype: str, text: str):
    """A tshark-printed value as the Python value construct parses."""
    if ftype.startswith(("uint", "int")):
        return int(text, 0)
    if ftype == "bool":
        return text in ("1", "True", "true")
    if ftype == "bytes":
        return bytes.fromhex(text.replace(":", ""))
    if ftype == "none":
        return None
    return text
