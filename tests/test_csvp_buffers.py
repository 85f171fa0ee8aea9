"""MS-CSVP packed buffers (dissectors/definitions/csvp_buffers.py): realistic instances round-trip,
fields sit where the spec's diagrams put them, and the generator accepts every one."""
import struct
import uuid

import pytest
from construct import FlagsEnum, Int32ul

from dissectors.definitions import csvp_buffers as cb
from dissectors.model.introspect import rules_of, unwrap
from dissectors.model.oracle import flatten
from dissectors.model.structs import Model
from samples import csvp_payloads as P


def u16(b: bytes, at: int) -> int:
    return struct.unpack_from("<H", b, at)[0]


def u32(b: bytes, at: int) -> int:
    return struct.unpack_from("<I", b, at)[0]


def same(parsed, given) -> bool:
    """A parse result matches the value it was built from (names or numbers for enums;
    keys given as None, such as absent padding, are not compared)."""
    if isinstance(given, dict):
        return all(same(parsed[k], v) for k, v in given.items() if v is not None)
    if isinstance(given, list):
        return len(parsed) == len(given) and all(same(p, g) for p, g in zip(parsed, given))
    if hasattr(parsed, "intvalue"):  # EnumIntegerString
        return (str(parsed) == given) if isinstance(given, str) else (parsed.intvalue == given)
    if isinstance(parsed, uuid.UUID):
        return parsed == uuid.UUID(str(given))
    return parsed == given


CASES = [
    (cb.REGISTERED_DSMS, P.registered_dsms_value()),
    (cb.REGISTERED_DSM, P.registered_dsms_value()["Dms"][0]),
    (cb.STORAGE_DEVICE_ID_DESCRIPTOR, P.device_id_descriptor_value()),
    (cb.STORAGE_IDENTIFIER, P.device_id_descriptor_value()["Identifiers"][1]),
    (cb.STORAGE_DEVICE_DESCRIPTOR, P.device_descriptor_value()),
    (cb.ADAPTERLIST, P.adapterlist_value()),
    (cb.ADAPTER, P.adapter_value(0)),
    (cb.ADAPTERLIST2, P.adapterlist2_value()),
    (cb.ADAPTER2, P.adapter2_value(1)),
    (cb.SERIALIZEDGUID, P.serialized_guid(P.GUIDS[0])),
    (cb.IPPREFIX, P.ipprefix("10.0.10.11", 24)),
    (cb.IPPREFIX, P.ipprefix("fe80::8d4c:2a1f:93b6:7e01", 64, scope_id=6)),
    (cb.SOCKADDR, P.sockaddr("fd00:20:11::11", port=3343)),
]
MODEL = Model("clusprep", "MS-CSVP", cb.MESSAGES)


@pytest.mark.parametrize("msg,value", CASES, ids=["%s-%d" % (m.abbrev, i) for i, (m, _) in enumerate(CASES)])
def test_round_trip(msg, value):
    raw = msg.build(value)
    parsed = msg.parse(raw)
    assert same(parsed, value)
    assert msg.build(parsed) == raw
    assert flatten(MODEL, msg, parsed)  # the Python view the differential tests compare with Lua


def test_the_generator_accepts_every_structure():
    model = Model("clusprep", "MS-CSVP", cb.MESSAGES)
    for m in cb.MESSAGES:
        assert "d_" + m.abbrev in model.decoders
    names = set(model.fields)
    for f in ("clusprep.registered_dsms.num_dsms", "clusprep.storage_identifier.next_offset",
              "clusprep.adapterlist.adapter_list_name", "clusprep.adapter2.link_speed",
              "clusprep.sockaddr.sin6_addr", "clusprep.serialized_guid.guid_length"):
        assert f in names
    abbrevs = [m.abbrev for m in cb.MESSAGES]
    assert len(abbrevs) == len(set(abbrevs))


# -- layouts against the diagrams ---------------------------------------------------------
def test_registered_dsms_layout():
    raw = P.registered_dsms()
    assert cb.REGISTERED_DSM.sizeof() == 128 + 4 * 4  # 2.2.7
    assert u32(raw, 0) == 3 and len(raw) == 4 + 3 * 144  # 2.2.8: NumDsms, then the array
    second = 4 + 144
    assert raw[second:second + 26].decode("utf-16-le") == "NetApp ONTAP DSM for Windows MPIO"[:13]
    assert u32(raw, second + 128) == 4 and u32(raw, second + 132) == 2  # MajorVersion, MinorVersion
    assert u32(raw, second + 136) == 1808 and u32(raw, second + 140) == 0  # ProductBuild, QfeNumber


def test_storage_device_id_descriptor_layout():
    raw = P.device_id_descriptor()
    assert u32(raw, 4) == len(raw)  # Size
    assert u32(raw, 8) == 3  # NumberOfIdentifiers
    at = 12  # Identifiers start right after NumberOfIdentifiers
    seen = []
    for _ in range(3):
        code_set, id_type = u32(raw, at), u32(raw, at + 4)
        size, next_offset = u16(raw, at + 8), u16(raw, at + 10)  # IdentifierSize, NextOffset share a row
        assert u32(raw, at + 12) == 0  # Association: the addressed logical unit
        seen.append((id_type, code_set, raw[at + 16:at + 16 + size]))
        assert next_offset >= 16 + size and next_offset % 8 == 0
        at += next_offset  # NextOffset: from the start of this identifier to the next
    assert at == len(raw)
    assert seen[0] == (3, 1, P.NAA_ID)  # NAA, binary
    assert seen[1][:2] == (8, 3) and seen[1][2].rstrip(b"\x00") == P.SCSI_NAME  # SCSI name string, UTF-8
    assert seen[2][:2] == (1, 2) and seen[2][2].startswith(b"MSFT    ")  # T10 vendor ID, ASCII


def test_storage_identifier_padding_follows_next_offset():
    ident = P.device_id_descriptor_value()["Identifiers"][1]
    raw = cb.STORAGE_IDENTIFIER.build(ident)
    assert len(raw) == ident["NextOffset"] == 80
    last = dict(ident, NextOffset=0, Padding=None)  # the last identifier may say 0
    assert len(cb.STORAGE_IDENTIFIER.build(last)) == 16 + ident["IdentifierSize"]


def test_sockaddr_layouts():
    v4 = cb.SOCKADDR.build(P.sockaddr("10.0.10.11", port=3343))
    v6 = cb.SOCKADDR.build(P.sockaddr("fe80::8d4c:2a1f:93b6:7e01", scope_id=6))
    assert len(v4) == len(v6) == 128
    assert u16(v4, 0) == 2 and v4[2:4] == b"\x0d\x0f" and v4[4:8] == bytes([10, 0, 10, 11])
    assert v4[16:] == bytes(112)
    assert u16(v6, 0) == 23 and v6[8:24] == bytes.fromhex("fe800000000000008d4c2a1f93b67e01") and u32(v6, 24) == 6
    assert v6[28:] == bytes(100)
    other = bytes([99, 0]) + bytes(126)
    assert cb.SOCKADDR.parse(other).Sockaddr.Data == bytes(126)


def test_ipprefix_and_serializedguid_layouts():
    raw = cb.IPPREFIX.build(P.ipprefix("172.16.20.11", 24))
    assert len(raw) == 132 and u32(raw, 128) == 24  # 2.2.14: 128-byte Endpoint, PrefixLength
    g = cb.SERIALIZEDGUID.build(P.serialized_guid(P.GUIDS[2]))
    assert len(g) == 2 + 72 and u16(g, 0) == 0x0048  # 2.2.12
    assert g[2:].decode("utf-16-le") == P.GUIDS[2]


def test_adapterlist_layout():
    raw = P.adapterlist()
    assert u16(raw, 0) == 0x002E  # AdapterListNameLength
    assert raw[2:48].decode("utf-16-le") == "class mscs::AdapterList"  # 46 bytes, no NUL
    n = u16(raw, 48)  # ServerNameLength
    assert raw[50:50 + n].decode("utf-16-le") == P.SERVER_FQDN
    at = 50 + n
    assert u16(raw, at) == 2  # NumberOfAdapters
    assert u16(raw, at + 2) == 0x0026  # the first ADAPTER's AdapterNameLength
    assert raw[at + 4:at + 42].decode("utf-16-le") == "class mscs::Adapter"  # 38 bytes
    parsed = cb.ADAPTERLIST.parse(raw)
    assert parsed.NumberOfGuids >= 2 * parsed.NumberOfAdapters
    guids = 2 + 4 * 74  # NumberOfGuids and four SERIALIZEDGUIDs end the list
    assert u16(raw, len(raw) - guids) == 4


def test_adapter_tail_layout():
    raw = cb.ADAPTER.build(P.adapter_value(0))
    tail = raw[-15:]  # AdapterType, TunnelType, OperStatus, then three one-byte flags
    assert u32(tail, 0) == 6 and u32(tail, 4) == 0 and u32(tail, 8) == 1
    assert tail[12:] == bytes([0, 0, 0])


def test_adapterlist2_layout():
    raw = P.adapterlist2()
    assert raw[:4] == bytes.fromhex("02007a22")  # AdapterList2IdentifierLength 2, AdapterList2Identifier 0x227A
    n = u16(raw, 4)
    assert raw[6:6 + n].decode("utf-16-le") == P.SERVER_FQDN
    at = 6 + n
    assert u16(raw, at) == 3  # NumberOfAdapter2s
    assert raw[at + 2:at + 6] == bytes.fromhex("02007b22")  # Adapter2IdentifierLength 2, Adapter2Identifier 0x227B
    assert u16(raw, len(raw) - (2 + 6 * 74)) == 6  # NumberOfGuids


def test_adapter2_tail_layout():
    value = P.adapter2_value(1)
    raw = cb.ADAPTER2.build(value)
    tail = raw[-30:]  # InterfaceIndex .. RssCapable: 4+4+4+4 + 4 flags + 8 + 2 flags
    assert u32(tail, 0) == 9  # InterfaceIndex
    assert u32(tail, 4) == 6  # AdapterType IF_TYPE_ETHERNET_CSMACD
    assert u32(tail, 8) == 0 and u32(tail, 12) == 1  # TunnelType none, OperStatus up
    assert tail[16:20] == bytes([0, 1, 0, 1])  # DhcpEnabled, InternalNetwork, ClusterAdapter, ConnectedToiSCSI
    assert struct.unpack_from("<Q", tail, 20)[0] == 3_125_000_000  # LinkSpeed
    assert tail[28:] == bytes([1, 1])  # RdmaCapable, RssCapable


def test_ip_config_data_picks_the_list_by_its_first_bytes():
    assert "Adapter2" in cb.IP_CONFIG_DATA.parse(P.adapterlist2()).AdapterList
    assert "Adapter" in cb.IP_CONFIG_DATA.parse(P.adapterlist()).AdapterList


def test_device_descriptor_offsets_point_at_the_strings():
    raw = P.device_descriptor()
    d = cb.STORAGE_DEVICE_DESCRIPTOR.parse(raw)
    assert d.Size == len(raw)

    def string(off):
        return raw[off:raw.index(b"\x00", off)].decode("ascii")

    assert string(d.VendorIdOffset) == "MSFT" and string(d.ProductIdOffset) == "Virtual HD"
    assert string(d.SerialNumberOffset) == "4A7C4E009B3F0E2C8D4A61B7"


# -- rules and value tables ------------------------------------------------------------------
def _rules(msg, name):
    for sub in msg.struct.subcons:
        if unwrap(sub)[0] == name:
            return rules_of(sub)
    raise KeyError(name)


@pytest.mark.parametrize("msg,name,good", [
    (cb.ADAPTERLIST, "AdapterListNameLength", 0x002E),
    (cb.ADAPTER, "AdapterNameLength", 0x0026),
    (cb.SERIALIZEDGUID, "GuidLength", 0x0048),
    (cb.ADAPTERLIST2, "AdapterList2IdentifierLength", 0x0002),
    (cb.ADAPTERLIST2, "AdapterList2Identifier", 0x227A),
    (cb.ADAPTER2, "Adapter2IdentifierLength", 0x0002),
    (cb.ADAPTER2, "Adapter2Identifier", 0x227B),
])
def test_must_constants(msg, name, good):
    (rule,) = _rules(msg, name)
    assert rule.kind == "malformed" and rule.spec.startswith("MS-CSVP 2.2.")
    assert not rule.violated(good) and rule.violated(good + 1)


def test_value_tables():
    assert list(cb.DISK_BUS_TYPE.values()) == list(range(0x11))
    assert cb.DISK_BUS_TYPE["BusTypeSpaces"] == 0x10
    assert cb.CPREP_DISKID_ENUM["CprepIdNumber"] == 4000 and cb.CPREP_DISKID_ENUM["CprepIdUnknown"] == 5000
    bits = list(cb.DISK_FLAGS.values())
    assert len(set(bits)) == len(bits) == 29 and all(b & (b - 1) == 0 for b in bits)
    assert "DISK_SYTLE_MBR" in cb.DISK_FLAGS  # the spec's spelling
    flags = FlagsEnum(Int32ul, **cb.DISK_FLAGS).parse((0x00002000 | 0x00008000 | 0x00020000 | 0x20000000).to_bytes(4, "little"))
    assert flags.DISK_STYLE_GPT and flags.DISK_PART_BASIC and flags.DISK_CLUSTERED_ONLINE and flags.DISK_POOL_DRIVE
    assert not flags.DISK_BOOT
    assert cb.DISK_EXTENDED_FLAGS == dict(DISK_EX_SPLITPOOLCONFIG=1, DISK_EX_POOL_NOT_CLUSTERABLE=2)
    assert cb.ROUTE_STATUS == dict(DOWN=0, UP=1, UP_DOWN=2)
    assert cb.CLUSTER_NETWORK_PROFILE["ClusterNetworkProfileDomainAuthenticated"] == 2
    assert cb.DISK_STACK_TYPE["DiskStackFullPort"] == 2
    assert cb.IF_TYPE["IF_TYPE_ETHERNET_CSMACD"] == 6 and cb.TUNNEL_TYPE["TUNNEL_TYPE_NONE"] == 0
    assert cb.IDENTIFIER_TYPE["ID_TYPE_NAA"] == 3 and cb.IDENTIFIER_TYPE["ID_TYPE_SCSI_NAME_STRING"] == 8
    for table in cb.VALUE_TABLES.values():
        assert len(set(table.values())) == len(table)


def test_errata_are_listed():
    assert any("mscls" in n for n in cb.NOTES) and any("SYTLE" in n for n in cb.NOTES)
