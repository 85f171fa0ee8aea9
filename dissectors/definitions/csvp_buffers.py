"""MS-CSVP (Failover Cluster: Setup and Validation Protocol, ClusPrep) byte buffers.

MS-CSVP passes some data not as NDR but as packed byte layouts inside a byte array
or a SAFEARRAY of bytes. This module declares those layouts (§2.2.7-2.2.17) and
every value table §2.2 enumerates; the NDR structures (CPREP_DISKID, DISK_PROPS,
DISK_PROPS_EX, ...) are in dissectors/definitions/csvp.py and reuse the tables from here.

Which buffer holds what:

- CprepDiskGetDsms (3.2.4.29) RegisteredDsms: REGISTERED_DSMS (2.2.8).
- CprepDiskGetUniqueIds (3.2.4.13) pbData, and CprepDiskGetUniqueIds3 (3.4.4.1)
  ppbDeviceIdHeader: STORAGE_DEVICE_ID_DESCRIPTOR (2.2.9) with page 83h data.
- CprepDiskGetUniqueIds3 ppDeviceDescriptor: a Windows STORAGE_DEVICE_DESCRIPTOR,
  which MS-CSVP names but never lays out; it is declared after ntddstor.h.
- GetIpConfigSerialized (3.6.4.3) Data: ADAPTERLIST2 (2.2.16); Windows Server 2008
  and 2008 R2 send ADAPTERLIST (2.2.11) instead (<35>).

Value tables are name -> number dicts, as construct's Enum(Int32ul, **T) and
FlagsEnum(Int32ul, **T) take them (the style of dissectors/definitions/rsvd.py).

Errata in the spec, and what is done about them:

- ADAPTER AdapterName (2.2.13): the spec gives the text "class mscls::Adapter" (20
  characters, 40 bytes) but a fixed AdapterNameLength of 0x0026 and a 38-byte field.
  38 bytes is "class mscs::Adapter", matching ADAPTERLIST's "class mscs::AdapterList";
  the string is read by its length field, and the samples send "class mscs::Adapter".
- ADAPTERLIST2 (2.2.16) says the Guid count MUST be at least twice
  "NumberOfAdapters", and that NumberOfAdapter2s counts "Adapter" items; the fields
  are NumberOfAdapter2s and Adapter2. Read as NumberOfAdapter2s / Adapter2.
- REGISTERED_DSMS (2.2.8) calls its array "Dms" (for Dsms); the spec's name is kept.
- DISK_PROPS Flags (2.2.5, 2.2.6): DISK_SYTLE_MBR is misspelled (for DISK_STYLE_MBR);
  the spec's spelling is kept, since it is the name. 2.2.5 writes DISK_SYSTEMBUS and
  DISK_ALREADY_CLUSTERED with seven hex digits (0x0000200, 0x0000400); 2.2.6 has the
  same values as 0x00000200, 0x00000400. Bits 0x80 and 0x01000000 are unassigned.
- CPREP_DISKID_ENUM (2.2.1): CprepIdNumber is written 0x0000fa0 (seven digits); the
  IDL appendix has 0x00000fa0. Same value, 4000.
- ROUTE_STATUS (2.2.20): "UP_DOWN = // route changed status..." gives no value (and is
  not valid IDL); the IDL appendix lists DOWN, UP, UP_DOWN with implicit values 0-2.
- ADD_ROUTES_REQUEST (2.2.19) names its first field localVirtualIP, the IDL appendix
  remoteVirtualIP (NDR, so only noted here).
- Footnote <3> (2.2.5) lists BusTypeMmc twice and no BusTypeVirtual.
- CprepDiskGetUniqueIds3 (3.4.4.1) says the server returns "a
  STORAGE_DEVICE_ID_DESCRIPTOR with SCSI page 80h serial number"; its processing
  rules fill that buffer with page 83h data, and page 80h goes to the
  STORAGE_DEVICE_DESCRIPTOR. Read as 83h.
- Packet diagrams: the row counts of 128-byte fields (DsmName, Address,
  GatewayAddress, Endpoint: "cont'd for 24 rows", 32 needed), of SERIALIZEDGUID's
  72-byte Guid ("10 rows") and of AdapterListName don't match the byte sizes; the
  REGISTERED_DSM diagram draws QfeNumber outside its table. The byte sizes in the
  field descriptions are used.
- TunnelType (2.2.13, 2.2.17): the table says IANA values 1-15; IANA tunnelType now
  also has 16 and 17. All are named; none is flagged.
- LinkSpeed (2.2.17) is said to be bytes per second; Windows' IP Helper reports link
  speeds in bits per second. Shown as the number it is.
- Address, GatewayAddress, Endpoint (2.2.13, 2.2.14): "a sockaddr_in or sockaddr_in6
  structure" in 128 bytes, i.e. a SOCKADDR_STORAGE (RFC 2553 3.10). The spec does not
  give the family numbers; Windows uses AF_INET 2 and AF_INET6 23 (0x17), with the
  family in host (little-endian) order and port and address in network order.
- PhysicalAddress (2.2.13, 2.2.17): "fewer than 8 bytes ... characters beyond ... 0x00"
  lets the string hold NULs; it is shown up to the first NUL.
"""
from __future__ import annotations

from construct import (
    Array,
    Bytes,
    Enum,
    GreedyBytes,
    Hex,
    Int8ul,
    Int16ub,
    Int16ul,
    Int32ub,
    Int32ul,
    Int64ul,
    Struct,
    this,
)

from dissectors.vocabulary.wire import (
    BOOLEAN8,
    Checked,
    IfEquals,
    Overlay,
    When,
    Utf16String,
    message,
    must_be_known,
    must_be_one_of,
    must_equal,
)

SPEC = "MS-CSVP"

# -- value tables (§2.2) ---------------------------------------------------------------

# 2.2.1 CPREP_DISKID_ENUM
CPREP_DISKID_ENUM = dict(
    CprepIdSignature=0x00000000,
    CprepIdGuid=0x00000001,
    CprepIdNumber=0x00000FA0,
    CprepIdUnknown=0x00001388,
)

# 2.2.3 DiskStackType
DISK_STACK_TYPE = dict(
    DiskStackScsiPort=0x00000000,
    DiskStackStorPort=0x00000001,
    DiskStackFullPort=0x00000002,
)

# 2.2.5, 2.2.6 DiskBusType (the values of Windows' STORAGE_BUS_TYPE)
DISK_BUS_TYPE = dict(
    BusTypeUnknown=0x00000000,
    BusTypeScsi=0x00000001,
    BusTypeAtapi=0x00000002,
    BusTypeAta=0x00000003,
    BusType1394=0x00000004,
    BusTypeSsa=0x00000005,
    BusTypeFibre=0x00000006,
    BusTypeUsb=0x00000007,
    BusTypeRAID=0x00000008,
    BusTypeiScsi=0x00000009,
    BusTypeSas=0x0000000A,
    BusTypeSata=0x0000000B,
    BusTypeSd=0x0000000C,
    BusTypeMmc=0x0000000D,
    BusTypeVirtual=0x0000000E,
    BusTypeFileBackedVirtual=0x0000000F,
    BusTypeSpaces=0x00000010,
)

# 2.2.5, 2.2.6 DISK_PROPS / DISK_PROPS_EX Flags. DISK_SYTLE_MBR is the spec's spelling.
DISK_FLAGS = dict(
    DISK_BOOT=0x00000001,
    DISK_SYSTEM=0x00000002,
    DISK_PAGEFILE=0x00000004,
    DISK_HIBERNATE=0x00000008,
    DISK_CRASHDUMP=0x00000010,
    DISK_REMOVABLE=0x00000020,
    DISK_CLUSTERNOSUPP=0x00000040,
    DISK_BUSNOSUPP=0x00000100,
    DISK_SYSTEMBUS=0x00000200,
    DISK_ALREADY_CLUSTERED=0x00000400,
    DISK_SYTLE_MBR=0x00001000,
    DISK_STYLE_GPT=0x00002000,
    DISK_STYLE_RAW=0x00004000,
    DISK_PART_BASIC=0x00008000,
    DISK_PART_DYNAMIC=0x00010000,
    DISK_CLUSTERED_ONLINE=0x00020000,
    DISK_UNREADABLE=0x00040000,
    DISK_MPIO=0x00080000,
    DISK_CLUSTERED_OTHER=0x00100000,
    DISK_MISSING=0x00200000,
    DISK_REDUNDANT=0x00400000,
    DISK_SNAPSHOT=0x00800000,
    DISK_FAILING_IO=0x02000000,
    DISK_NO_PAGE83=0x04000000,
    DISK_COLLISION=0x08000000,
    DISK_OUTOFSPACE=0x10000000,
    DISK_POOL_DRIVE=0x20000000,
    DISK_POOL_DRIVE_NOT_TESTABLE=0x40000000,
    DISK_POOL_CLUSTERED=0x80000000,
)

# 2.2.6 DISK_PROPS_EX ExtendedFlags
DISK_EXTENDED_FLAGS = dict(
    DISK_EX_SPLITPOOLCONFIG=0x00000001,
    DISK_EX_POOL_NOT_CLUSTERABLE=0x00000002,
)

# 2.2.15 CLUSTER_NETWORK_PROFILE
CLUSTER_NETWORK_PROFILE = dict(
    ClusterNetworkProfilePublic=0x00,
    ClusterNetworkProfilePrivate=0x01,
    ClusterNetworkProfileDomainAuthenticated=0x02,
)

# 2.2.20 ROUTE_STATUS (values from the IDL appendix: implicit 0, 1, 2)
ROUTE_STATUS = dict(DOWN=0, UP=1, UP_DOWN=2)

# 2.2.13, 2.2.17 AdapterType: IANAifType. The spec names only IF_TYPE_ETHERNET_CSMACD
# (6); the rest are the ifTypes Windows adapters report, with ipifcons.h's names.
# Others show as numbers.
IF_TYPE = dict(
    IF_TYPE_OTHER=1,
    IF_TYPE_ETHERNET_CSMACD=6,
    IF_TYPE_ISO88025_TOKENRING=9,
    IF_TYPE_FDDI=15,
    IF_TYPE_PPP=23,
    IF_TYPE_SOFTWARE_LOOPBACK=24,
    IF_TYPE_SLIP=28,
    IF_TYPE_ATM=37,
    IF_TYPE_PROP_VIRTUAL=53,
    IF_TYPE_FASTETHER=62,
    IF_TYPE_IEEE80211=71,
    IF_TYPE_GIGABITETHERNET=117,
    IF_TYPE_TUNNEL=131,
    IF_TYPE_L2_VLAN=135,
    IF_TYPE_IEEE1394=144,
    IF_TYPE_IEEE80216_WMAN=237,
    IF_TYPE_WWANPP=243,
    IF_TYPE_WWANPP2=244,
)

# 2.2.13, 2.2.17 TunnelType: 0, or an IANA tunnelType (IANAifType-MIB), named in the
# style of Windows' ifdef.h TUNNEL_TYPE (6TO4, ISATAP, TEREDO, IPHTTPS are its names).
TUNNEL_TYPE = dict(
    TUNNEL_TYPE_NONE=0,
    TUNNEL_TYPE_OTHER=1,
    TUNNEL_TYPE_DIRECT=2,
    TUNNEL_TYPE_GRE=3,
    TUNNEL_TYPE_MINIMAL=4,
    TUNNEL_TYPE_L2TP=5,
    TUNNEL_TYPE_PPTP=6,
    TUNNEL_TYPE_L2F=7,
    TUNNEL_TYPE_UDP=8,
    TUNNEL_TYPE_ATMP=9,
    TUNNEL_TYPE_MSDP=10,
    TUNNEL_TYPE_6TO4=11,
    TUNNEL_TYPE_6OVER4=12,
    TUNNEL_TYPE_ISATAP=13,
    TUNNEL_TYPE_TEREDO=14,
    TUNNEL_TYPE_IPHTTPS=15,
    TUNNEL_TYPE_SOFTWIRE_MESH=16,
    TUNNEL_TYPE_DS_LITE=17,
)

# 2.2.13, 2.2.17 OperStatus: RFC 2863 ifOperStatus, with Windows' IF_OPER_STATUS names.
IF_OPER_STATUS = dict(
    IfOperStatusUp=1,
    IfOperStatusDown=2,
    IfOperStatusTesting=3,
    IfOperStatusUnknown=4,
    IfOperStatusDormant=5,
    IfOperStatusNotPresent=6,
    IfOperStatusLowerLayerDown=7,
)

# 2.2.13, 2.2.14, 2.2.17 sockaddr families (Windows winsock values).
ADDRESS_FAMILY = dict(AF_UNSPEC=0, AF_INET=2, AF_INET6=23)

# 2.2.10 STORAGE_IDENTIFIER: CodeSet, Type, Association have the values of SPC-3
# 7.6.3.1 (tables 296-298); named after SPC-3.
CODE_SET = dict(CODE_SET_RESERVED=0, CODE_SET_BINARY=1, CODE_SET_ASCII=2, CODE_SET_UTF8=3)
IDENTIFIER_TYPE = dict(
    ID_TYPE_VENDOR_SPECIFIC=0,
    ID_TYPE_T10_VENDOR_ID=1,
    ID_TYPE_EUI64=2,
    ID_TYPE_NAA=3,
    ID_TYPE_RELATIVE_TARGET_PORT=4,
    ID_TYPE_TARGET_PORT_GROUP=5,
    ID_TYPE_LOGICAL_UNIT_GROUP=6,
    ID_TYPE_MD5_LOGICAL_UNIT=7,
    ID_TYPE_SCSI_NAME_STRING=8,
)
ASSOCIATION = dict(ASSOC_LOGICAL_UNIT=0, ASSOC_TARGET_PORT=1, ASSOC_TARGET_DEVICE=2)

# Values a field "MUST" hold.
ADAPTERLIST_NAME = "class mscs::AdapterList"  # 2.2.11
ADAPTER_NAME = "class mscs::Adapter"  # 2.2.13 (the spec's "mscls" is a typo; see above)
ADAPTERLIST_NAME_LENGTH = 0x002E
ADAPTER_NAME_LENGTH = 0x0026
GUID_LENGTH = 0x0048  # 2.2.12
ADAPTERLIST2_IDENTIFIER_LENGTH, ADAPTERLIST2_IDENTIFIER = 0x0002, 0x227A  # 2.2.16
ADAPTER2_IDENTIFIER_LENGTH, ADAPTER2_IDENTIFIER = 0x0002, 0x227B  # 2.2.17
SOCKADDR_SIZE = 128

VALUE_TABLES = {
    "CPREP_DISKID_ENUM": CPREP_DISKID_ENUM,
    "DiskStackType": DISK_STACK_TYPE,
    "DiskBusType": DISK_BUS_TYPE,
    "DISK_PROPS Flags": DISK_FLAGS,
    "DISK_PROPS_EX ExtendedFlags": DISK_EXTENDED_FLAGS,
    "CLUSTER_NETWORK_PROFILE": CLUSTER_NETWORK_PROFILE,
    "ROUTE_STATUS": ROUTE_STATUS,
    "AdapterType": IF_TYPE,
    "TunnelType": TUNNEL_TYPE,
    "OperStatus": IF_OPER_STATUS,
    "sockaddr family": ADDRESS_FAMILY,
    "STORAGE_IDENTIFIER CodeSet": CODE_SET,
    "STORAGE_IDENTIFIER Type": IDENTIFIER_TYPE,
    "STORAGE_IDENTIFIER Association": ASSOCIATION,
}

# -- structures ------------------------------------------------------------------------

# 2.2.7. DsmName is 128 bytes: a NUL-padded UTF-16 name of at most 64 characters.
REGISTERED_DSM = message(
    "REGISTERED_DSM", "registered_dsm", "2.2.7",
    "DsmName" / Utf16String(128) * "The name of the DSM (UTF-16, NUL-padded to 128 bytes).",
    "MajorVersion" / Int32ul * "The major version of the driver.",
    "MinorVersion" / Int32ul * "The minor version of the driver.",
    "ProductBuild" / Int32ul * "The build number of the driver.",
    "QfeNumber" / Int32ul * "The QFE number of the driver.",
    doc="Information about a single Device-Specific Module (DSM).",
)

# 2.2.8 ("Dms" is the spec's name for the array)
REGISTERED_DSMS = message(
    "REGISTERED_DSMS", "registered_dsms", "2.2.8",
    "NumDsms" / Int32ul * "The number of REGISTERED_DSM structures that directly follow this field.",
    "Dms" / Array(this.NumDsms, REGISTERED_DSM.struct) * "An array of valid REGISTERED_DSM structures.",
    doc="The DSMs installed on the server: the RegisteredDsms buffer of CprepDiskGetDsms (3.2.4.29).",
)

# 2.2.10. Each identifier is NextOffset bytes long (Windows aligns it); the bytes
# after Identifier, up to NextOffset, are padding. The last one may have NextOffset 0.
STORAGE_IDENTIFIER_HEADER_SIZE = 16
STORAGE_IDENTIFIER = message(
    "STORAGE_IDENTIFIER", "storage_identifier", "2.2.10",
    "CodeSet" / Enum(Int32ul, **CODE_SET) * "The CODE SET of the identifier (SPC-3 7.6.3.1).",
    "Type" / Enum(Int32ul, **IDENTIFIER_TYPE) * "The IDENTIFIER TYPE (SPC-3 7.6.3.1).",
    "IdentifierSize" / Int16ul * "The length, in bytes, of the Identifier field.",
    "NextOffset" / Int16ul
    * "The offset, in bytes, from the start of this structure to the next STORAGE_IDENTIFIER structure.",
    "Association" / Enum(Int32ul, **ASSOCIATION) * "The ASSOCIATION of the identifier (SPC-3 7.6.3.1).",
    "Identifier" / Bytes(this.IdentifierSize) * "The IDENTIFIER (SPC-3 7.6.3.1).",
    "Padding" / When(this.NextOffset > STORAGE_IDENTIFIER_HEADER_SIZE + this.IdentifierSize,
                     Bytes(this.NextOffset - STORAGE_IDENTIFIER_HEADER_SIZE - this.IdentifierSize))
    * "Bytes between the end of Identifier and NextOffset (alignment).",
    doc="An identifier for a storage device, from SCSI VPD page 83h.",
)

# 2.2.9
STORAGE_DEVICE_ID_DESCRIPTOR = message(
    "STORAGE_DEVICE_ID_DESCRIPTOR", "storage_device_id_descriptor", "2.2.9",
    "Version" / Hex(Int32ul)
    * "The version of the structure; not important, but the same for all servers of an implementation.",
    "Size" / Int32ul * "The size, in bytes, of the structure.",
    "NumberOfIdentifiers" / Int32ul * "The number of identifiers in the Identifiers area of the structure.",
    "Identifiers" / Array(this.NumberOfIdentifiers, STORAGE_IDENTIFIER.struct)
    * "A set of STORAGE_IDENTIFIER structures; the first starts at the start of this field.",
    doc="SCSI page 83h identifiers of a disk: the pbData of CprepDiskGetUniqueIds (3.2.4.13) and the "
        "ppbDeviceIdHeader of CprepDiskGetUniqueIds3 (3.4.4.1).",
)

# Not in MS-CSVP: 3.4.4.1 puts a STORAGE_DEVICE_DESCRIPTOR in ppDeviceDescriptor but
# never lays it out. Windows ntddstor.h: 36 bytes of header, RawDeviceProperties,
# then the NUL-terminated ASCII strings the *Offset fields point at (from the
# structure's start; 0 means absent). The strings are shown as one block: the
# generator has no step that seeks to an offset.
STORAGE_DEVICE_DESCRIPTOR = message(
    "STORAGE_DEVICE_DESCRIPTOR", "storage_device_descriptor",
    "Windows ntddstor.h STORAGE_DEVICE_DESCRIPTOR (named by MS-CSVP 3.4.4.1, not laid out)",
    "Version" / Int32ul * "sizeof(STORAGE_DEVICE_DESCRIPTOR) of the writer.",
    "Size" / Int32ul * "The size, in bytes, of the descriptor and the data after it.",
    "DeviceType" / Hex(Int8ul) * "The SCSI peripheral device type (0: direct access block device).",
    "DeviceTypeModifier" / Hex(Int8ul) * "The SCSI device type modifier, or zero.",
    "RemovableMedia" / BOOLEAN8() * "TRUE when the medium is removable.",
    "CommandQueueing" / BOOLEAN8() * "TRUE when the device supports tagged command queueing.",
    "VendorIdOffset" / Int32ul * "Offset of the NUL-terminated ASCII vendor ID, or zero.",
    "ProductIdOffset" / Int32ul * "Offset of the NUL-terminated ASCII product ID, or zero.",
    "ProductRevisionOffset" / Int32ul * "Offset of the NUL-terminated ASCII product revision, or zero.",
    "SerialNumberOffset" / Int32ul * "Offset of the NUL-terminated ASCII serial number (page 80h), or zero.",
    "BusType" / Enum(Int32ul, **DISK_BUS_TYPE) * "The bus the device is attached to (STORAGE_BUS_TYPE).",
    "RawPropertiesLength" / Int32ul * "The length, in bytes, of RawDeviceProperties.",
    "RawDeviceProperties" / Bytes(this.RawPropertiesLength) * "Bus-specific property data.",
    "StringData" / GreedyBytes * "The strings the *Offset fields point at (vendor, product, revision, serial).",
    doc="Device properties of a disk, with its page 80h serial number: the ppDeviceDescriptor of "
        "CprepDiskGetUniqueIds3 (3.4.4.1).",
)

_SOCKADDR_IN = Struct(
    "sin_port" / Int16ub * "The port, in network byte order.",
    "sin_addr" / Bytes(4) * "The IPv4 address, in network byte order.",
    "sin_zero" / Bytes(8) * "Zero.",
    "Padding" / Bytes(SOCKADDR_SIZE - 16) * "The rest of the 128 bytes; SHOULD be zero.",
)
_SOCKADDR_IN6 = Struct(
    "sin6_port" / Int16ub * "The port, in network byte order.",
    "sin6_flowinfo" / Hex(Int32ub) * "IPv6 flow information.",
    "sin6_addr" / Bytes(16) * "The IPv6 address, in network byte order.",
    "sin6_scope_id" / Int32ul * "The scope (interface or zone) of a link- or site-local address.",
    "Padding" / Bytes(SOCKADDR_SIZE - 28) * "The rest of the 128 bytes; SHOULD be zero.",
)
_SOCKADDR_OTHER = Struct("Data" / Bytes(SOCKADDR_SIZE - 2) * "The address, of a family not decoded.")

# The 128-byte address of 2.2.13, 2.2.14, 2.2.17: a sockaddr_in or sockaddr_in6 in a
# SOCKADDR_STORAGE (RFC 2553 3.10), the remaining bytes zero.
SOCKADDR = message(
    "SOCKADDR", "sockaddr", "RFC 2553 3.10 (128-byte Address of MS-CSVP 2.2.13, 2.2.14, 2.2.17)",
    "ss_family" / Enum(Int16ul, **ADDRESS_FAMILY) * "The address family, little-endian (AF_INET 2, AF_INET6 23).",
    "Sockaddr" / IfEquals(this.ss_family, ADDRESS_FAMILY["AF_INET"], _SOCKADDR_IN,
                          IfEquals(this.ss_family, ADDRESS_FAMILY["AF_INET6"], _SOCKADDR_IN6, _SOCKADDR_OTHER)),
    doc="A sockaddr_in or sockaddr_in6 in 128 bytes.",
)

# 2.2.12
SERIALIZEDGUID = message(
    "SERIALIZEDGUID", "serialized_guid", "2.2.12",
    "GuidLength" / Checked(Int16ul, must_equal(GUID_LENGTH, "MS-CSVP 2.2.12")) * "MUST be 0x0048.",
    "Guid" / Utf16String(this.GuidLength) * "The UUID as a Unicode string (C706), 36 characters.",
    doc="A GUID in string format.",
)

# 2.2.14
IPPREFIX = message(
    "IPPREFIX", "ipprefix", "2.2.14",
    "Endpoint" / SOCKADDR.struct * "A sockaddr_in or sockaddr_in6; the remaining bytes SHOULD be zero.",
    "PrefixLength" / Int32ul * "The prefix length of the associated network of the IP address in Endpoint.",
    doc="An IP address and the prefix length of its network.",
)

_BOOL_RULE = must_be_one_of(0, 1, spec="MS-CSVP 2.2.13, 2.2.17")


def _adapter_body(spec: str):
    """The fields ADAPTER (2.2.13) and ADAPTER2 (2.2.17) share, from DescriptionLength to
    GatewayAddress."""
    return (
        "DescriptionLength" / Int16ul * "The size, in bytes, of the Description field.",
        "Description" / Utf16String(this.DescriptionLength)
        * "A user-friendly description of the adapter (no terminating null).",
        "FriendlyNameLength" / Int16ul * "The size, in bytes, of the FriendlyName field.",
        "FriendlyName" / Utf16String(this.FriendlyNameLength)
        * "A user-friendly name of the adapter, unique in the list (no terminating null).",
        "NameLength" / Int16ul * "The size, in bytes, of the Name field.",
        "Name" / Utf16String(this.NameLength)
        * "The name the adapter identifies itself as, unique in the list (no terminating null).",
        "NumberOfPrefixes" / Int16ul * "The number of Prefix elements that follow.",
        "Prefix" / Array(this.NumberOfPrefixes, IPPREFIX.struct)
        * "The prefix lengths of the adapter's addresses.",
        "PhysicalAddressLength" / Int16ul * "The size, in bytes, of the PhysicalAddress field.",
        "PhysicalAddress" / Utf16String(this.PhysicalAddressLength)
        * "The MAC address as text, \"AA-BB-CC-DD-EE-FF\" (no terminating null).",
        "NumberOfAddresses" / Int16ul * "The number of Address elements that follow.",
        "Address" / Array(this.NumberOfAddresses, SOCKADDR.struct) * "The addresses of the adapter.",
        "NumberOfGatewayAddresses" / Int16ul * "The number of GatewayAddress elements that follow.",
        "GatewayAddress" / Array(this.NumberOfGatewayAddresses, SOCKADDR.struct)
        * "The addresses of the network gateway.",
    )


def _adapter_tail(spec: str):
    return (
        "AdapterType" / Enum(Int32ul, **IF_TYPE) * "The adapter type, an IANAifType value.",
        "TunnelType" / Enum(Int32ul, **TUNNEL_TYPE)
        * "The tunnel protocol the adapter supports: an IANA tunnelType, or 0 (TUNNEL_TYPE_NONE).",
        "OperStatus" / Checked(Enum(Int32ul, **IF_OPER_STATUS), must_be_known(spec))
        * "The status of the adapter, an RFC 2863 ifOperStatus value.",
        "DhcpEnabled" / Checked(BOOLEAN8(), _BOOL_RULE) * "0x01 when the adapter is enabled for DHCP.",
        "InternalNetwork" / Checked(BOOLEAN8(), _BOOL_RULE)
        * "0x01 when the adapter is recommended as a private network.",
        "ClusterAdapter" / Checked(BOOLEAN8(), _BOOL_RULE)
        * "0x01 when the adapter is a cluster adapter (one per list SHOULD be).",
    )


# 2.2.13 (Windows Server 2008 and 2008 R2)
ADAPTER = message(
    "ADAPTER", "adapter", "2.2.13",
    "AdapterNameLength" / Checked(Int16ul, must_equal(ADAPTER_NAME_LENGTH, "MS-CSVP 2.2.13")) * "MUST be 0x0026.",
    "AdapterName" / Utf16String(this.AdapterNameLength)
    * "The Unicode string \"class mscs::Adapter\" without a terminating null (38 bytes).",
    *_adapter_body("MS-CSVP 2.2.13"),
    *_adapter_tail("MS-CSVP 2.2.13"),
    doc="Information about a single network adapter.",
)

# 2.2.11
ADAPTERLIST = message(
    "ADAPTERLIST", "adapterlist", "2.2.11",
    "AdapterListNameLength" / Checked(Int16ul, must_equal(ADAPTERLIST_NAME_LENGTH, "MS-CSVP 2.2.11"))
    * "MUST be 0x002E.",
    "AdapterListName" / Utf16String(this.AdapterListNameLength)
    * "The Unicode string \"class mscs::AdapterList\" without a terminating null (46 bytes).",
    "ServerNameLength" / Int16ul * "The size, in bytes, of the ServerName field.",
    "ServerName" / Utf16String(this.ServerNameLength) * "The FQDN of the server (no terminating null).",
    "NumberOfAdapters" / Int16ul * "The number of Adapter items that follow.",
    "Adapter" / Array(this.NumberOfAdapters, ADAPTER.struct) * "ADAPTER structures.",
    "NumberOfGuids" / Int16ul * "The number of Guid items that follow; at least 2 x NumberOfAdapters.",
    "Guid" / Array(this.NumberOfGuids, SERIALIZEDGUID.struct) * "SERIALIZEDGUID structures.",
    doc="The network adapters of a server: GetIpConfigSerialized Data on Windows Server 2008 and 2008 R2 "
        "(3.6.4.3 <35>).",
)

# 2.2.17
ADAPTER2 = message(
    "ADAPTER2", "adapter2", "2.2.17",
    "Adapter2IdentifierLength" / Checked(Int16ul, must_equal(ADAPTER2_IDENTIFIER_LENGTH, "MS-CSVP 2.2.17"))
    * "MUST be 0x0002.",
    "Adapter2Identifier" / Checked(Hex(Int16ul), must_equal(ADAPTER2_IDENTIFIER, "MS-CSVP 2.2.17"))
    * "MUST be 0x227B.",
    *_adapter_body("MS-CSVP 2.2.17"),
    "InterfaceIndex" / Int32ul * "The client MUST ignore this value.",
    *_adapter_tail("MS-CSVP 2.2.17"),
    "ConnectedToiSCSI" / Checked(BOOLEAN8(), _BOOL_RULE)
    * "0x01 when the server uses the adapter as an iSCSI initiator.",
    "LinkSpeed" / Int64ul * "The bytes per second the adapter can transmit and receive (per the spec).",
    "RdmaCapable" / Checked(BOOLEAN8(), _BOOL_RULE)
    * "0x01 when the adapter is recommended for large data payloads (RDMA).",
    "RssCapable" / Checked(BOOLEAN8(), _BOOL_RULE)
    * "0x01 when the adapter is recommended for processing received data across processors (RSS).",
    doc="Information about a single network adapter.",
)

# 2.2.16
ADAPTERLIST2 = message(
    "ADAPTERLIST2", "adapterlist2", "2.2.16",
    "AdapterList2IdentifierLength" / Checked(Int16ul, must_equal(ADAPTERLIST2_IDENTIFIER_LENGTH, "MS-CSVP 2.2.16"))
    * "MUST be 0x0002.",
    "AdapterList2Identifier" / Checked(Hex(Int16ul), must_equal(ADAPTERLIST2_IDENTIFIER, "MS-CSVP 2.2.16"))
    * "MUST be 0x227A.",
    "ServerNameLength" / Int16ul * "The size, in bytes, of the ServerName field.",
    "ServerName" / Utf16String(this.ServerNameLength) * "The FQDN of the server (no terminating null).",
    "NumberOfAdapter2s" / Int16ul * "The number of Adapter2 items that follow.",
    "Adapter2" / Array(this.NumberOfAdapter2s, ADAPTER2.struct) * "ADAPTER2 structures.",
    "NumberOfGuids" / Int16ul
    * "The number of Guid items that follow; at least 2 x NumberOfAdapter2s (the client reads only those).",
    "Guid" / Array(this.NumberOfGuids, SERIALIZEDGUID.struct) * "SERIALIZEDGUID structures.",
    doc="The network adapters of a server: the Data of GetIpConfigSerialized (3.6.4.3).",
)

STRUCTURES = [
    REGISTERED_DSM,
    REGISTERED_DSMS,
    STORAGE_DEVICE_ID_DESCRIPTOR,
    STORAGE_IDENTIFIER,
    ADAPTERLIST,
    SERIALIZEDGUID,
    ADAPTER,
    IPPREFIX,
    ADAPTERLIST2,
    ADAPTER2,
]
# Declared here though not MS-CSVP layouts: the sockaddr inside ADAPTER/IPPREFIX, and
# the STORAGE_DEVICE_DESCRIPTOR of CprepDiskGetUniqueIds3.
MESSAGES = STRUCTURES + [SOCKADDR, STORAGE_DEVICE_DESCRIPTOR]

# Which method's buffer holds which structure (for the NDR definitions to overlay).
BUFFERS = {
    ("CprepDiskGetDsms", "RegisteredDsms"): REGISTERED_DSMS,
    ("CprepDiskGetUniqueIds", "pbData"): STORAGE_DEVICE_ID_DESCRIPTOR,
    ("CprepDiskGetUniqueIds3", "ppbDeviceIdHeader"): STORAGE_DEVICE_ID_DESCRIPTOR,
    ("CprepDiskGetUniqueIds3", "ppDeviceDescriptor"): STORAGE_DEVICE_DESCRIPTOR,
    ("GetIpConfigSerialized", "Data"): ADAPTERLIST2,  # ADAPTERLIST from 2008/2008 R2
}

NOTES = [" ".join(b.split()) for b in __doc__.split("Errata in the spec")[1].split("\n- ")[1:]]

# GetIpConfigSerialized Data (3.6.4.3): ADAPTERLIST2, or ADAPTERLIST from Windows
# Server 2008 and 2008 R2 (<35>). The first two bytes tell them apart: 0x0002
# (AdapterList2IdentifierLength) or 0x002E (AdapterListNameLength).
IP_CONFIG_DATA = message(
    "GetIpConfigSerialized Data", "ip_config_data", "3.6.4.3",
    "Lead" / Overlay(2, Struct("LeadingLength" / Int16ul
                               * "The first two bytes: 0x0002 for ADAPTERLIST2, 0x002E for ADAPTERLIST.")),
    "AdapterList" / IfEquals(this.Lead.LeadingLength, ADAPTERLIST_NAME_LENGTH, ADAPTERLIST.struct,
                             ADAPTERLIST2.struct),
    doc="The adapter list GetIpConfigSerialized returns: ADAPTERLIST2, or ADAPTERLIST from Windows Server "
        "2008 and 2008 R2.",
)
MESSAGES.append(IP_CONFIG_DATA)
BUFFERS[("GetIpConfigSerialized", "Data")] = IP_CONFIG_DATA
