"""Windows' own capture format: an ETL file of `pktmon` (Windows 10 and Server 2019 on), read as
pcapng so tshark can read it.

The file is Event Tracing for Windows' log; dissect.etl (an optional dependency: `pip install
-e '.[etl]'`) walks its buffers and events. Packets are the events 160 of the
Microsoft-Windows-PktMon provider, each: PktGroupId (8 bytes), PktNumber, AppearanceCount,
DirTag, PacketType, ComponentId, EdgeId, FilterId (2 bytes each), DropReason, DropLocation (4
each), OriginalPayloadSize, LoggedPayloadSize (2 each), then the logged bytes. Checked against
pktmon's own text decoding (`pktmon etl2txt`) of a public capture: the same 1,111 events, every
field alike.

pktmon logs a packet once at each component it passes (the NIC, the vSwitch, the TCP/IP stack):
AppearanceCount 1, 2, ... of one (PktGroupId, PktNumber). One appearance of each is kept, so a
request is one request, not one a component: the first whose PacketType is a link layer
converted here, Ethernet or IP. A packet seen only as 802.11 (a WiFi NIC's own view, which the
upper components see as Ethernet) or another type is counted and left out: a cluster's nodes
talk over Ethernet, and pktmon's layout of the others is not checked here.

`netsh trace` writes its packets as another provider's events (Microsoft-Windows-NDIS-
PacketCapture), which no public capture lets us check: such a file gets the hint to convert it on
Windows.
"""
from __future__ import annotations

import struct
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Dict

PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
NDIS_PACKET_CAPTURE = uuid.UUID("2ed6006e-4729-4609-b423-3ee7bcd678ef")
PACKET_EVENT = 160
HEADER = struct.Struct("<QHHHHHHHIIHH")  # the event's fields before the logged bytes
LINKTYPES = {1: 1, 3: 101}  # PacketType Ethernet -> LINKTYPE_ETHERNET, IP -> LINKTYPE_RAW
TYPE_NAMES = {0: "unknown", 1: "Ethernet", 2: "WiFi", 3: "IP", 4: "HTTP", 5: "TCP", 6: "UDP", 7: "ARP", 8: "ICMP"}
SEEN = 1 << 16  # packets remembered to drop their later appearances
INSTALL = ".venv/bin/pip install -e '.[etl]' in the checkout"  # the extra, as README says
CONVERT = "convert it on Windows: pktmon etl2pcap FILE.etl --out FILE.pcapng"


class EtlError(Exception):
    """What keeps an ETL file from being read, in one line."""


def is_etl(path: Path) -> bool:
    """An ETL file, by its name (no magic number marks one: it begins with a WMI buffer header)."""
    return path.suffix.lower() == ".etl"


@dataclass
class Converted:
    packets: int = 0
    short: int = 0  # packets logged short of their size (pktmon's --pkt-size; its default keeps 128 bytes)
    appearances: int = 0  # events dropped as later appearances of a packet kept
    skipped: Dict[str, int] = field(default_factory=dict)  # PacketType name -> packets left out
    ndis_events: int = 0  # netsh trace's packet events, not read


def available() -> bool:
    """Whether dissect.etl is installed (analyze then reads pktmon's ETL files)."""
    try:
        _dissect()
    except EtlError:
        return False
    return True


def _dissect():
    try:
        from dissect.etl import ETL
    except ImportError:
        raise EtlError("reading an ETW trace needs dissect.etl, which is not installed (%s); or %s" % (INSTALL, CONVERT)) \
            from None
    return ETL


def _block(kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def convert(source: Path, out: BinaryIO) -> Converted:
    """Write the pktmon packets of `source` to `out` as pcapng (first appearances, in file order)."""
    ETL = _dissect()
    done = Converted()
    interfaces: Dict[int, int] = {}  # linktype -> interface id
    seen: "OrderedDict[tuple, None]" = OrderedDict()  # packets written
    waiting: "OrderedDict[tuple, str]" = OrderedDict()  # packets seen only in a type not converted
    out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    try:
        with open(source, "rb") as f:
            for record in ETL(f):
                header = record.event._header
                event = getattr(header, "header", None)
                provider = _provider(header)
                if provider == NDIS_PACKET_CAPTURE:
                    done.ndis_events += 1
                    continue
                if provider != PKTMON or getattr(event, "Id", None) != PACKET_EVENT:
                    continue
                payload = bytes(header.payload)
                if len(payload) < HEADER.size:
                    continue
                group, number, _appearance, _dir, ptype, *_rest, original, logged = HEADER.unpack_from(payload)
                key = (group, number)
                linktype = LINKTYPES.get(ptype)
                if key in seen:
                    done.appearances += 1
                    continue
                if linktype is None:
                    if key in waiting:
                        done.appearances += 1
                    else:
                        waiting[key] = TYPE_NAMES.get(ptype, str(ptype))
                        if len(waiting) > SEEN:
                            _skip(done, waiting.popitem(last=False)[1])
                    continue
                if waiting.pop(key, None) is not None:
                    done.appearances += 1  # its earlier appearance, in a type not converted
                seen[key] = None
                if len(seen) > SEEN:
                    seen.popitem(last=False)
                if linktype not in interfaces:
                    interfaces[linktype] = len(interfaces)
                    out.write(_block(1, struct.pack("<HHI", linktype, 0, 0)))
                data = payload[HEADER.size:HEADER.size + logged]
                micros = int(header.timestamp.timestamp() * 1_000_000)
                out.write(_block(6, struct.pack("<IIIII", interfaces[linktype], micros >> 32, micros & 0xFFFFFFFF,
                                                len(data), max(original, len(data))) + data))
                done.packets += 1
                done.short += len(data) < original
        for name in waiting.values():
            _skip(done, name)
    except EtlError:
        raise
    except Exception as e:  # noqa: BLE001 - dissect.etl on a damaged file: one line, what it said
        said = ": ".join(x for x in (type(e).__name__, str(e)[:200]) if x)
        raise EtlError("cannot read it as an ETW trace (%s): cut short, or not an ETL file; %s" % (said, CONVERT)) \
            from None
    return done


def write_pcapng(source: Path, target: Path) -> Converted:
    """convert() into the file `target`; EtlError naming `source`, also when it has no packet to analyze."""
    try:
        with open(target, "wb") as out:
            done = convert(source, out)
    except EtlError as e:
        raise EtlError("%s: %s" % (source, e)) from None
    except OSError as e:
        raise EtlError("%s: cannot convert it (%s)" % (source, e.strerror or e)) from None
    if not done.packets:
        raise EtlError("%s holds no packet to analyze: %s" % (source, nothing_read(done)))
    return done


def nothing_read(done: Converted) -> str:
    """Why a conversion wrote no packet, for the one line the user reads."""
    if done.ndis_events:
        return ("its %d packet events are netsh trace's (Microsoft-Windows-NDIS-PacketCapture), which analyze does "
                "not read yet; convert it on Windows with etl2pcapng (github.com/microsoft/etl2pcapng)" % done.ndis_events)
    if done.skipped:
        return "its packets are all of link types analyze does not convert (%s)" % ", ".join(
            "%s %d" % kv for kv in sorted(done.skipped.items()))
    return "it holds no pktmon packet event (Microsoft-Windows-PktMon, event 160)"


def _skip(done: Converted, name: str) -> None:
    done.skipped[name] = done.skipped.get(name, 0) + 1


def _provider(header) -> uuid.UUID:
    """The event's provider GUID as Windows writes it (little-endian fields; dissect.etl gives some
    headers' GUIDs as big-endian bytes)."""
    raw = getattr(getattr(header, "header", None), "ProviderId", None)
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 16:
        return uuid.UUID(bytes_le=bytes(raw))
    value = getattr(header, "provider_id", None)
    return value if isinstance(value, uuid.UUID) else uuid.UUID(int=0)
