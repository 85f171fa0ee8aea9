"""What the generated clusprep dissector showed for each call, read with real tshark."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import decoded
from decoded import _collect, normalize, run
from dissectors.model import build_model
from dissectors.definitions import csvp
from dissectors import generate
from samples import ntlmssp

MODEL = build_model(csvp.PROTOCOL)
NDR = MODEL.ndr
PASSWORD = ("-o", "ntlmssp.nt_password:" + ntlmssp.ACCOUNT.password)
PLUMBING = ("clusprep.ndr.", "clusprep.safearray", "clusprep.bstr.", "clusprep.brecord")


@dataclass
class Call:
    """One stub the dissector decoded (or could not, when sealed)."""

    frame: int
    interface: str
    method: str
    direction: str  # request, response or fault
    raw: Optional[bytes]  # the stub, when it was decoded
    fields: Dict[str, List]  # field -> values as tshark printed them, under the stub's item
    top: Dict  # the clusprep layer's own fields (interface, links, experts ...)


def stub_def(call: Call):
    return next(s for s in NDR.stubs if s.interface.name == call.interface and s.method.name == call.method
                and s.direction == call.direction)


def calls(pcap: Path, decrypt: bool = False) -> List[Call]:
    return _calls(decoded.CURRENT, pcap, decrypt)


@functools.lru_cache(maxsize=None)
def _calls(tshark, pcap: Path, decrypt: bool) -> List[Call]:
    res = run(pcap, *(PASSWORD if decrypt else ()), "-T", "json", "-x", "--no-duplicate-keys", "-J", "frame clusprep")
    assert res.returncode == 0, res.stderr
    out = []
    for pkt in json.loads(res.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        items = layers.get("clusprep")
        if items is None:
            continue
        for item in items if isinstance(items, list) else [items]:
            method = item["clusprep.method"]
            if "clusprep.fault_status" in item:
                direction = "fault"
            else:
                direction = "response" if "clusprep.request_in" in item else "request"
            stub_key = next((k for k in item if not k.endswith("_raw") and isinstance(item[k], dict)
                             and not k.startswith("_ws.")), None)
            fields: Dict[str, List] = {}
            raw = None
            if stub_key is not None:
                _collect({stub_key: item[stub_key]}, fields)
                raw = bytes.fromhex(item[stub_key + "_raw"][0])
            out.append(Call(int(layers["frame"]["frame.number"]), item["clusprep.interface"], method, direction,
                            raw, fields, item))
    return out


def lua_view(call: Call) -> Dict[str, List]:
    return {name: [normalize(MODEL.fields[name].ftype, v) for v in values]
            for name, values in call.fields.items() if not name.startswith(PLUMBING)}
