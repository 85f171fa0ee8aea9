"""Realistic MS-CSVP byte buffers, built from dissectors.definitions.csvp_buffers.

Each `*_value()` gives the dict a structure is built from (the tests compare parses
against it); the function without the suffix gives the built bytes, for captures.
The values look like a two-node Windows Server 2022 cluster, CLUSTER1 in
corp.contoso.com: node NODE1 (10.0.10.11 on the management network, 172.16.20.11 on
the cluster network, IPv6 link-local and a ULA), disks on a Microsoft iSCSI target.
"""
from __future__ import annotations

import ipaddress
from typing import List

from dissectors.definitions import csvp_buffers as cb

SERVER_FQDN = "NODE1.corp.contoso.com"


# -- REGISTERED_DSMS (CprepDiskGetDsms) --------------------------------------------------
def _dsm(name: str, major: int, minor: int, build: int, qfe: int) -> dict:
    return dict(DsmName=name, MajorVersion=major, MinorVersion=minor, ProductBuild=build, QfeNumber=qfe)


def registered_dsms_value() -> dict:
    dsms = [
        _dsm("Microsoft DSM", 10, 0, 20348, 1),
        _dsm("NetApp ONTAP DSM for Windows MPIO", 4, 2, 1808, 0),
        _dsm("Dell EMC PowerPath", 7, 2, 0, 3),
    ]
    return dict(NumDsms=len(dsms), Dms=dsms)


def registered_dsms() -> bytes:
    return cb.REGISTERED_DSMS.build(registered_dsms_value())


# -- STORAGE_DEVICE_ID_DESCRIPTOR (CprepDiskGetUniqueIds, ...3 ppbDeviceIdHeader) ---------
def _align(n: int, to: int = 8) -> int:
    return (n + to - 1) // to * to


def _identifier(code_set: str, id_type: str, association: str, ident: bytes, last: bool = False) -> dict:
    size = cb.STORAGE_IDENTIFIER_HEADER_SIZE + len(ident)
    next_offset = _align(size)
    return dict(CodeSet=code_set, Type=id_type, IdentifierSize=len(ident), NextOffset=next_offset,
                Association=association, Identifier=ident,
                Padding=b"\x00" * (next_offset - size) if next_offset > size else None)


# NAA 6 (IEEE Registered Extended) with Microsoft's OUI 00-15-5D, as the Microsoft
# iSCSI Target reports its virtual disks.
NAA_ID = bytes.fromhex("600155d04a7c4e009b3f0e2c8d4a61b7")
# SCSI name string: UTF-8, NUL-terminated, padded to a multiple of four (SPC-3 7.6.3.11).
SCSI_NAME = b"iqn.1991-05.com.microsoft:stor01-cluster1-target,L,0x0001"
SCSI_NAME_PADDED = SCSI_NAME + b"\x00" * (4 - len(SCSI_NAME) % 4)
# T10 vendor ID based: 8-byte vendor, then a vendor-specific identifier.
T10_ID = b"MSFT    " + b"4A7C4E009B3F0E2C8D4A61B7"


def device_id_descriptor_value() -> dict:
    ids = [
        _identifier("CODE_SET_BINARY", "ID_TYPE_NAA", "ASSOC_LOGICAL_UNIT", NAA_ID),
        _identifier("CODE_SET_UTF8", "ID_TYPE_SCSI_NAME_STRING", "ASSOC_LOGICAL_UNIT", SCSI_NAME_PADDED),
        _identifier("CODE_SET_ASCII", "ID_TYPE_T10_VENDOR_ID", "ASSOC_LOGICAL_UNIT", T10_ID),
    ]
    size = 12 + sum(i["NextOffset"] for i in ids)
    return dict(Version=0x10, Size=size, NumberOfIdentifiers=len(ids), Identifiers=ids)


def device_id_descriptor() -> bytes:
    return cb.STORAGE_DEVICE_ID_DESCRIPTOR.build(device_id_descriptor_value())


# -- STORAGE_DEVICE_DESCRIPTOR (CprepDiskGetUniqueIds3 ppDeviceDescriptor) ---------------
def device_descriptor_value() -> dict:
    header = 36
    strings = [b"MSFT\x00", b"Virtual HD\x00", b"6.3 \x00", b"4A7C4E009B3F0E2C8D4A61B7\x00"]
    offsets, at = [], header
    for s in strings:
        offsets.append(at)
        at += len(s)
    data = b"".join(strings)
    return dict(Version=40, Size=header + len(data), DeviceType=0, DeviceTypeModifier=0, RemovableMedia="FALSE",
                CommandQueueing="TRUE", VendorIdOffset=offsets[0], ProductIdOffset=offsets[1],
                ProductRevisionOffset=offsets[2], SerialNumberOffset=offsets[3], BusType="BusTypeiScsi",
                RawPropertiesLength=0, RawDeviceProperties=b"", StringData=data)


def device_descriptor() -> bytes:
    return cb.STORAGE_DEVICE_DESCRIPTOR.build(device_descriptor_value())


# -- addresses ----------------------------------------------------------------------------
# Numbers, not names: SOCKADDR picks its layout with IfEquals, which compares numbers
# (a parsed Enum value has one; a name given to build has not).
AF_INET, AF_INET6 = cb.ADDRESS_FAMILY["AF_INET"], cb.ADDRESS_FAMILY["AF_INET6"]

def sockaddr(address: str, port: int = 0, scope_id: int = 0) -> dict:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return dict(ss_family=AF_INET, Sockaddr=dict(sin_port=port, sin_addr=ip.packed, sin_zero=b"\x00" * 8,
                                                       Padding=b"\x00" * (cb.SOCKADDR_SIZE - 16)))
    return dict(ss_family=AF_INET6, Sockaddr=dict(sin6_port=port, sin6_flowinfo=0, sin6_addr=ip.packed,
                                                    sin6_scope_id=scope_id,
                                                    Padding=b"\x00" * (cb.SOCKADDR_SIZE - 28)))


def ipprefix(address: str, prefix_length: int, scope_id: int = 0) -> dict:
    return dict(Endpoint=sockaddr(address, scope_id=scope_id), PrefixLength=prefix_length)


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le"))


def _strings(description: str, friendly: str, name: str, mac: str) -> dict:
    return dict(DescriptionLength=_u16(description), Description=description,
                FriendlyNameLength=_u16(friendly), FriendlyName=friendly,
                NameLength=_u16(name), Name=name,
                PhysicalAddressLength=_u16(mac), PhysicalAddress=mac)


def _addresses(prefixes: List[dict], gateways: List[str]) -> dict:
    return dict(NumberOfPrefixes=len(prefixes), Prefix=prefixes,
                NumberOfAddresses=len(prefixes), Address=[p["Endpoint"] for p in prefixes],
                NumberOfGatewayAddresses=len(gateways), GatewayAddress=[sockaddr(g) for g in gateways])


def serialized_guid(guid: str) -> dict:
    return dict(GuidLength=cb.GUID_LENGTH, Guid=guid)


# (description, friendly name, adapter name, MAC, prefixes, gateways, if index, type,
# DHCP, internal, cluster adapter, iSCSI, link speed (bytes/s), RDMA, RSS)
ADAPTERS = [
    ("Microsoft Hyper-V Network Adapter", "Management", "{6F3A1C52-0B7E-4D8E-9A41-2C5D7E8F9A01}",
     "00-15-5D-0A-1B-2C",
     [ipprefix("10.0.10.11", 24), ipprefix("fe80::8d4c:2a1f:93b6:7e01", 64, scope_id=6)],
     ["10.0.10.1"], 6, "IF_TYPE_ETHERNET_CSMACD", "FALSE", "FALSE", "FALSE", "FALSE", 1_250_000_000, "FALSE",
     "TRUE"),
    ("Mellanox ConnectX-4 Lx Ethernet Adapter #2", "Cluster", "{A2B94E17-5C30-4F6B-8D2E-71E0C4B9D3F2}",
     "24-8A-07-5E-91-C4",
     [ipprefix("172.16.20.11", 24), ipprefix("fd00:20:11::11", 64)],
     [], 9, "IF_TYPE_ETHERNET_CSMACD", "FALSE", "TRUE", "FALSE", "TRUE", 3_125_000_000, "TRUE", "TRUE"),
    ("Microsoft Failover Cluster Virtual Adapter", "Local Area Connection* 11",
     "{1D6E8F0A-3B2C-4A5D-9E7F-806142C3B5A4}", "02-F1-7C-3D-5A-9E",
     [ipprefix("169.254.1.58", 16), ipprefix("fe80::5d0c:7a3e:c1b4:f02d", 64, scope_id=11)],
     [], 11, "IF_TYPE_ETHERNET_CSMACD", "FALSE", "FALSE", "TRUE", "FALSE", 12_500_000_000, "FALSE", "FALSE"),
]
GUIDS = [
    "6f3a1c52-0b7e-4d8e-9a41-2c5d7e8f9a01", "9c04d2e7-41b8-4f35-a6d1-3e7b52c8f904",
    "a2b94e17-5c30-4f6b-8d2e-71e0c4b9d3f2", "5e81f3a0-2d67-4c19-b8f4-0a9d6e2c7b15",
    "1d6e8f0a-3b2c-4a5d-9e7f-806142c3b5a4", "c7d2a95b-8e14-4b06-93af-5f1e0d7c6a28",
]


def adapter2_value(i: int) -> dict:
    (desc, friendly, name, mac, prefixes, gateways, ifindex, iftype, dhcp, internal, cluster, iscsi, speed,
     rdma, rss) = ADAPTERS[i]
    return dict(Adapter2IdentifierLength=cb.ADAPTER2_IDENTIFIER_LENGTH, Adapter2Identifier=cb.ADAPTER2_IDENTIFIER,
                **_strings(desc, friendly, name, mac), **_addresses(prefixes, gateways),
                InterfaceIndex=ifindex, AdapterType=iftype, TunnelType="TUNNEL_TYPE_NONE",
                OperStatus="IfOperStatusUp", DhcpEnabled=dhcp, InternalNetwork=internal, ClusterAdapter=cluster,
                ConnectedToiSCSI=iscsi, LinkSpeed=speed, RdmaCapable=rdma, RssCapable=rss)


def adapter_value(i: int) -> dict:
    desc, friendly, name, mac, prefixes, gateways, _, iftype, dhcp, internal, cluster = ADAPTERS[i][:11]
    return dict(AdapterNameLength=cb.ADAPTER_NAME_LENGTH, AdapterName=cb.ADAPTER_NAME,
                **_strings(desc, friendly, name, mac), **_addresses(prefixes, gateways),
                AdapterType=iftype, TunnelType="TUNNEL_TYPE_NONE", OperStatus="IfOperStatusUp",
                DhcpEnabled=dhcp, InternalNetwork=internal, ClusterAdapter=cluster)


def adapterlist2_value() -> dict:
    return dict(AdapterList2IdentifierLength=cb.ADAPTERLIST2_IDENTIFIER_LENGTH,
                AdapterList2Identifier=cb.ADAPTERLIST2_IDENTIFIER,
                ServerNameLength=_u16(SERVER_FQDN), ServerName=SERVER_FQDN,
                NumberOfAdapter2s=len(ADAPTERS), Adapter2=[adapter2_value(i) for i in range(len(ADAPTERS))],
                NumberOfGuids=len(GUIDS), Guid=[serialized_guid(g) for g in GUIDS])


def adapterlist_value() -> dict:
    """As Windows Server 2008 R2 sends it (ADAPTERLIST, <35>): the first two adapters."""
    n = 2
    return dict(AdapterListNameLength=cb.ADAPTERLIST_NAME_LENGTH, AdapterListName=cb.ADAPTERLIST_NAME,
                ServerNameLength=_u16(SERVER_FQDN), ServerName=SERVER_FQDN,
                NumberOfAdapters=n, Adapter=[adapter_value(i) for i in range(n)],
                NumberOfGuids=2 * n, Guid=[serialized_guid(g) for g in GUIDS[: 2 * n]])


def adapterlist2() -> bytes:
    return cb.ADAPTERLIST2.build(adapterlist2_value())


def adapterlist() -> bytes:
    return cb.ADAPTERLIST.build(adapterlist_value())


# -- GetUpdates (3.16.4.1) ------------------------------------------------------------------
# (id, title, KB articles, bulletins, superseded update ids), as Windows Update reports them
UPDATES = [
    ("8a3b1c2d-4e5f-4a6b-9c7d-0e1f2a3b4c5d", "2023-11 Cumulative Update for Microsoft server operating system "
     "version 21H2 for x64-based Systems (KB5032198)", ["5032198"], [], ["5031364"]),
    ("1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "2023-10 Servicing Stack Update for Microsoft server operating "
     "system version 21H2 for x64-based Systems (KB5031364)", ["5031364"], [], []),
]


def updates_xml(updates=None) -> str:
    """GetUpdates' updates: <updates version="1.0"> and one <update> per update, each with the seven
    child elements 3.16.4.1 requires (an empty list is an empty element)."""
    from xml.sax.saxutils import escape

    def items(tag, child, values):
        return "<%s/>" % tag if not values else "<%s>%s</%s>" % (
            tag, "".join("<%s>%s</%s>" % (child, escape(v), child) for v in values), tag)

    body = "".join(
        "<update><id>%s</id><title>%s</title><description>%s</description><supportUrl>%s</supportUrl>%s%s%s</update>"
        % (uid, escape(title), escape("Install this update to resolve issues in Windows."),
           "https://support.microsoft.com/help/%s" % (kbs[0] if kbs else ""), items("knowledgebase", "articleId", kbs),
           items("securityBulletin", "bulletinId", bulletins), items("superseded", "updateId", superseded))
        for uid, title, kbs, bulletins, superseded in (UPDATES if updates is None else updates))
    return '<updates version="1.0">%s</updates>' % body
