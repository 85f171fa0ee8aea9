"""MS-RSVD (Remote Shared Virtual Disk Protocol) structures, after the spec's §2.2 tables.

Field names are the spec's. Where the seed revision (v1, ../shared/specs/MS-RSVD.md)
and what Windows sends disagree, both layouts are declared as `Variants` and the
bytes pick one; each such place says so in a comment and in docs/fields.md:

- GET_INITIAL_INFO/FILE_INFO (2.2.5.3, 2.2.5.4): 20 bytes in the seed; Windows
  sends 24, with a 4-byte Reserved before VirtualSize (natural alignment of the
  64-bit field). Wireshark's built-in rsvd decodes the 24-byte form. The current
  revision (2.2.4.13, and its 4.1 example) makes the request the header only and
  names operation 0x02001001 RSVD_TUNNEL_GET_INITIAL_INFO_OPERATION; an empty
  request is decoded as that layout.
- SVHDX_OPEN_DEVICE_CONTEXT (2.2.5.2): the seed's variable-length form; Windows
  sends 168 bytes (v1: OpenRequestId added, InitiatorHostName a fixed 126-byte
  buffer) or 192 bytes (v2: five disk-property fields appended).
- SRB_STATUS response (2.2.5.8): a 4-byte StatusKey in the seed; newer revisions and
  Windows use a 1-byte StatusKey followed at once by SrbStatus, ScsiStatus and
  SenseInfoExLength. The seed form has three zero bytes after the key.
- SHARED_VIRTUAL_DISK_SUPPORT response (2.2.5.16): 2+2 bytes in the seed, 4+4 on
  Windows (and in Wireshark's SMB2 dissector).
- VALIDATE_DISK (2.2.5.13, 2.2.5.14): header only in the seed; Windows sends 56
  reserved bytes in the request and a 1-byte IsValidDisk in the response.
- SCSI DataBuffer (2.2.5.11, 2.2.5.12): the seed sizes it by DataTransferLength, but
  a Data-in request (and a Data-out response) carries the length and no buffer
  (3.1.4.9 "set this field to empty"), so DataBuffer runs to the end of the buffer.
- DataIn (2.2.5.11): the seed's 2.2.5.11 says TRUE means "store onto the disk",
  its 3.1.4.9 says TRUE means Data-in; Windows uses SCSI_PASS_THROUGH's values
  (0 out, 1 in, 2 unspecified), and those names are shown.
- SCSI_RESPONSE SrbFlags (2.2.5.12): the seed's prose says 1 byte, its table 4; 4.
- STATUS_SVHDX_ERROR_STORED 0xC05C0000 (ORed with a StatusKey, 3.2.5.3-4) is used
  by the seed but missing from its 2.2.3 table; it is named here.
"""
from __future__ import annotations

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Enum,
    Flag,
    FlagsEnum,
    GreedyBytes,
    Hex,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Struct,
    Switch,
    this,
)

from dissectors.definitions import scsi
from dissectors.vocabulary.wire import (
    BOOLEAN8,
    Checked,
    must_be_at_most,
    must_be_known,
    must_be_one_of,
    must_equal,
    warn_when,
    Overlay,
    When,
    Guid,
    IfEquals,
    Otherwise,
    PeekZero,
    Present,
    RemainingIs,
    Utf16String,
    Variant,
    Variants,
    message,
)

SPEC = "MS-RSVD"

# 2.2.1 Constants
RSVD_ECP_CONTEXT_VERSION_1 = 0x00000001
RSVD_ECP_CONTEXT_VERSION_2 = 0x00000002  # Windows Server 2016+, not in the seed
RSVD_CDB_GENERIC_LENGTH = 0x10
RSVD_SCSI_SENSE_BUFFER_SIZE = 0x14
RSVD_MAXIMUM_NAME_LENGTH = 0x3F
FSCTL_SVHDX_SYNC_TUNNEL_REQUEST = 0x00090304
FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST = 0x00090364  # MS-SMB2 2.2.31; absent from the seed's table
FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT = 0x00090300
SMB_CCF_APP_INSTANCE_EA_NAME = "ClusteredApplicationInstance"
APP_TRAFFIC_TYPE_EA_NAME = "ApplicationTrafficType"
# The SMB2 create context name of SVHDX_OPEN_DEVICE_CONTEXT (MS-SMB2 2.2.13.2),
# as the 16 bytes on the wire; v1 and v2 share it and differ by Version.
SVHDX_OPEN_DEVICE_CONTEXT_TAG = bytes.fromhex("9CCBCF9E04C1E643980E158DA1F6EC83")
SHARED_VIRTUAL_DISK_SUFFIX = ":SharedVirtualDisk"

# What 3.1.4.2 puts beside the open context in the CREATE: its SMB2_CREATE_CONTEXT chain
# (MS-SMB2 2.2.13.2) and the "ExtA" context's FILE_FULL_EA_INFORMATION entries (MS-FSCC 2.4.15).
# Not messages of the dissector (Wireshark's SMB2 shows them): the analyzer checks the EAs with them.
EA_CONTEXT_NAME = b"ExtA"
SMB2_CREATE_CONTEXT = Struct(
    "Next" / Int32ul,
    "NameOffset" / Int16ul,
    "NameLength" / Int16ul,
    "Reserved" / Int16ul,
    "DataOffset" / Int16ul,
    "DataLength" / Int32ul,
)
FILE_FULL_EA_INFORMATION = Struct(
    "NextEntryOffset" / Int32ul,
    "Flags" / Int8ul,
    "EaNameLength" / Int8ul,
    "EaValueLength" / Int16ul,
    "EaName" / Bytes(this.EaNameLength),  # then a NUL, not counted in EaNameLength
)

# What Windows sends instead of the app instance EA: NtCreateFile takes ClusteredApplicationInstance
# as an EA (ntifs NETWORK_APP_INSTANCE_EA) and the SMB2 client puts it on the wire as the
# SMB2_CREATE_APP_INSTANCE_ID create context (MS-SMB2 2.2.13.2.13), AppInstanceId its value.
SMB2_CREATE_APP_INSTANCE_ID_TAG = bytes.fromhex("45BCA66AEFA7F74A9008FA462E144D74")
SMB2_CREATE_APP_INSTANCE_ID = Struct(
    "StructureSize" / Int16ul,  # 20
    "Reserved" / Int16ul,
    "AppInstanceId" / Guid(),
)

CONSTANTS = {
    "RSVD_ECP_CONTEXT_VERSION_1": RSVD_ECP_CONTEXT_VERSION_1,
    "RSVD_CDB_GENERIC_LENGTH": RSVD_CDB_GENERIC_LENGTH,
    "RSVD_SCSI_SENSE_BUFFER_SIZE": RSVD_SCSI_SENSE_BUFFER_SIZE,
    "RSVD_MAXIMUM_NAME_LENGTH": RSVD_MAXIMUM_NAME_LENGTH,
    "FSCTL_SVHDX_SYNC_TUNNEL_REQUEST": FSCTL_SVHDX_SYNC_TUNNEL_REQUEST,
    "FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST": FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST,
    "FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT": FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT,
    "SMB_CCF_APP_INSTANCE_EA_NAME": SMB_CCF_APP_INSTANCE_EA_NAME,
    "APP_TRAFFIC_TYPE_EA_NAME": APP_TRAFFIC_TYPE_EA_NAME,
}

# 2.2.2 Operation Codes (v1), then the v2 codes Windows Server 2016+ sends.
OPERATION_CODES_V1 = dict(
    RSVD_TUNNEL_GET_FILE_INFO_OPERATION=0x02001001,
    RSVD_TUNNEL_SCSI_OPERATION=0x02001002,
    RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION=0x02001003,
    RSVD_TUNNEL_SRB_STATUS_OPERATION=0x02001004,
    RSVD_TUNNEL_GET_DISK_INFO_OPERATION=0x02001005,
    RSVD_TUNNEL_VALIDATE_DISK_OPERATION=0x02001006,
)
OPERATION_CODES_V2 = dict(
    RSVD_TUNNEL_META_OPERATION_START=0x02002101,
    RSVD_TUNNEL_META_OPERATION_QUERY_PROGRESS=0x02002002,
    RSVD_TUNNEL_VHDSET_QUERY_INFORMATION=0x02002005,
    RSVD_TUNNEL_DELETE_SNAPSHOT=0x02002006,
    RSVD_TUNNEL_CHANGE_TRACKING_GET_PARAMETERS=0x02002008,
    RSVD_TUNNEL_CHANGE_TRACKING_START=0x02002009,
    RSVD_TUNNEL_CHANGE_TRACKING_STOP=0x0200200A,
    RSVD_TUNNEL_QUERY_VIRTUAL_DISK_CHANGES=0x0200200C,
    RSVD_TUNNEL_QUERY_SAFE_SIZE=0x0200200D,
)
OPERATION_CODES = {**OPERATION_CODES_V1, **OPERATION_CODES_V2}

# 2.2.3 Error Code. STATUS_SVHDX_ERROR_STORED is used by §3.2.5.3-4 (ORed with a
# one-byte StatusKey) but missing from the seed's table.
ERROR_CODES = dict(
    STATUS_SVHDX_ERROR_STORED=0xC05C0000,
    STATUS_SVHDX_ERROR_NOT_AVAILABLE=0xC05CFF00,
    STATUS_SVHDX_UNIT_ATTENTION_AVAILABLE=0xC05CFF01,
    STATUS_SVHDX_UNIT_ATTENTION_CAPACITY_DATA_CHANGED=0xC05CFF02,
    STATUS_SVHDX_UNIT_ATTENTION_RESERVATIONS_PREEMPTED=0xC05CFF03,
    STATUS_SVHDX_UNIT_ATTENTION_RESERVATIONS_RELEASED=0xC05CFF04,
    STATUS_SVHDX_UNIT_ATTENTION_REGISTRATIONS_PREEMPTED=0xC05CFF05,
    STATUS_SVHDX_UNIT_ATTENTION_OPERATING_DEFINITION_CHANGED=0xC05CFF06,
    STATUS_SVHDX_RESERVATION_CONFLICT=0xC05CFF07,
    STATUS_SVHDX_WRONG_FILE_TYPE=0xC05CFF08,
    STATUS_SVHDX_VERSION_MISMATCH=0xC05CFF09,
)
STATUS_SVHDX_ERROR_STORED_MASK = 0xFFFFFF00
# NTSTATUS values the header's Status carries besides the RSVD ones.
NT_STATUS = dict(
    STATUS_SUCCESS=0x00000000,
    STATUS_PENDING=0x00000103,
    STATUS_INVALID_PARAMETER=0xC000000D,
    STATUS_NOT_SUPPORTED=0xC00000BB,
    STATUS_INVALID_DEVICE_REQUEST=0xC0000010,
    STATUS_ACCESS_DENIED=0xC0000022,
    **ERROR_CODES,
)

# 2.2.4 SCSI command descriptor block flags. NO_DATA_TRANSFER (0) and
# UNSPECIFIED_DIRECTION (DATA_IN|DATA_OUT) are combinations, not bits.
SRB_FLAGS = dict(
    SRB_FLAGS_QUEUE_ACTION_ENABLE=0x00000002,
    SRB_FLAGS_DISABLE_DISCONNECT=0x00000004,
    SRB_FLAGS_DISABLE_SYNCH_TRANSFER=0x00000008,
    SRB_FLAGS_BYPASS_FROZEN_QUEUE=0x00000010,
    SRB_FLAGS_DISABLE_AUTOSENSE=0x00000020,
    SRB_FLAGS_DATA_IN=0x00000040,
    SRB_FLAGS_DATA_OUT=0x00000080,
    SRB_FLAGS_NO_QUEUE_FREEZE=0x00000100,
    SRB_FLAGS_ADAPTER_CACHE_ENABLE=0x00000200,
    SRB_FLAGS_FREE_SENSE_BUFFER=0x00000400,
    SRB_FLAGS_D3_PROCESSING=0x00000800,
    SRB_FLAGS_IS_ACTIVE=0x00001000,
    SRB_FLAGS_ALLOCATED_FROM_ZONE=0x00002000,
    SRB_FLAGS_SGLIST_FROM_POOL=0x00004000,
    SRB_FLAGS_BYPASS_LOCKED_QUEUE=0x00008000,
    SRB_FLAGS_NO_KEEP_AWAKE=0x00010000,
    SRB_FLAGS_PORT_DRIVER_ALLOCSENSE=0x00020000,
    SRB_FLAGS_PORT_DRIVER_SENSEHASPORT=0x00040000,
    SRB_FLAGS_DONT_START_NEXT_PACKET=0x00080000,
)
SRB_FLAGS_NO_DATA_TRANSFER = 0x00000000
SRB_FLAGS_UNSPECIFIED_DIRECTION = SRB_FLAGS["SRB_FLAGS_DATA_IN"] | SRB_FLAGS["SRB_FLAGS_DATA_OUT"]

# DataIn: §2.2.5.11 says TRUE means "store the data onto the disk", §3.1.4.9 says
# TRUE means Data-in (receive from the server). Windows follows §3.1.4.9, with the
# values of SCSI_PASS_THROUGH.DataIn, so those names are used.
DATA_IN = dict(SCSI_IOCTL_DATA_OUT=0, SCSI_IOCTL_DATA_IN=1, SCSI_IOCTL_DATA_UNSPECIFIED=2)

def SRB_STATUS_BYTE():
    """SrbStatus: Windows' SRB status in the low six bits, two flag bits above."""
    return BitStruct(
        "AutosenseValid" / Flag * "SRB_STATUS_AUTOSENSE_VALID (0x80): sense data was returned.",
        "QueueFrozen" / Flag * "SRB_STATUS_QUEUE_FROZEN (0x40).",
        "Status" / Enum(BitsInteger(6), **scsi.SRB_STATUS) * "The SRB status.",
    )


# 0x04 VHD_TYPE_DIFFERENCING is what a VHD Set with checkpoints reports (DiskFormat VHDSET); not in the seed.
DISK_TYPE = dict(VHD_TYPE_FIXED=0x00000002, VHD_TYPE_DYNAMIC=0x00000003, VHD_TYPE_DIFFERENCING=0x00000004)
# 0x04 VHDSET is what Windows reports for a .vhds; not in the seed.
DISK_FORMAT = dict(VIRTUAL_STORAGE_TYPE_DEVICE_VHDX=0x00000003, VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET=0x00000004)
HANDLE_STATE = dict(HandleStateNone=0x0000, HandleStateFileShared=0x0001, HandleStateShared=0x0003)
ORIGINATOR_FLAGS = dict(SVHDX_ORIGINATOR_PVHDPARSER=0x00000001, SVHDX_ORIGINATOR_VHDMP=0x00000004)


UNIT_ATTENTIONS = [k for k in ERROR_CODES if k.startswith("STATUS_SVHDX_UNIT_ATTENTION_")]

# 2.2.5.1
SVHDX_TUNNEL_OPERATION_HEADER = message(
    "SVHDX_TUNNEL_OPERATION_HEADER", "header", "2.2.5.1",
    "OperationCode" / Checked(Enum(Int32ul, **OPERATION_CODES), must_be_known("MS-RSVD 2.2.2, 3.2.5.5"))
    * "The command code of this packet; one of the values of section 2.2.2.",
    "Status" / Checked(
        Enum(Int32ul, **NT_STATUS),
        warn_when(["STATUS_SVHDX_RESERVATION_CONFLICT"], "MS-RSVD 3.2.5.4",
                  "%s: a persistent reservation held by another initiator denied the operation"),
        warn_when(UNIT_ATTENTIONS, "MS-RSVD 2.2.3", "%s: the disk reports a unit attention"),
        warn_when(["STATUS_SVHDX_VERSION_MISMATCH"], "MS-RSVD 3.2.5.5", "%s: the server does not know the OperationCode"),
        warn_when(["STATUS_SVHDX_WRONG_FILE_TYPE"], "MS-RSVD 2.2.3", "%s: the file is not a shared virtual disk"),
        warn_when(["STATUS_SVHDX_ERROR_NOT_AVAILABLE"], "MS-RSVD 3.2.5.5.3",
                  "%s: no sense data is stored under the StatusKey"),
    ) * "The client SHOULD set this field to zero; in a response, the NTSTATUS of the operation.",
    "RequestId" / Hex(Int64ul)
    * "A value that uniquely identifies an operation request and response for all requests sent by this client.",
    doc="The header of every RSVD tunnel operation.",
)

def _open_context_common(version: int):
    """The fields every layout of SVHDX_OPEN_DEVICE_CONTEXT starts with (2.2.5.2)."""
    return (
        "Version" / Checked(Int32ul, must_equal(version, "MS-RSVD 3.2.5.1"))
        * "The version of the create context: the highest protocol version supported (1.7).",
        "HasInitiatorId" / Checked(BOOLEAN8(), must_be_one_of(0, 1, spec="MS-RSVD 3.2.5.1"))
        * "A Boolean value, where zero represents FALSE and nonzero represents TRUE.",
        "Reserved" / Bytes(3) * "MUST be set to zero when sent and MUST be ignored on receipt.",
        "InitiatorId" / Guid() * "A GUID that optionally identifies the initiator of the open request.",
        "Flags" / Hex(Int32ul) * "Reserved. The client SHOULD set this field to 0x00000000.",
        "OriginatorFlags" / Checked(Enum(Int32ul, **ORIGINATOR_FLAGS), must_equal(1, "MS-RSVD 2.2.5.2"))
        * "Which component originated the operation. MUST be set to 0x00000001.",
    )


_HOST_NAME_LENGTH = (
    "InitiatorHostNameLength" / Int16ul
    * "The length, in bytes, of the InitiatorHostName, including the null termination."
)
_OPEN_REQUEST_ID = (
    "OpenRequestId" / Hex(Int64ul)
    * "Windows form only: a 64-bit value assigned by the client; the server ignores it."
)
_V2_TAIL = (
    "VirtualDiskPropertiesInitialized" / Int32ul * "Version 2 only: nonzero when the server filled in the disk properties.",
    "ServerServiceVersion" / Int32ul * "Version 2 only: the server's RSVD protocol version.",
    "VirtualSectorSize" / Int32ul * "Version 2 only: the virtual disk's logical sector size.",
    "PhysicalSectorSize" / Int32ul * "Version 2 only: the virtual disk's physical sector size.",
    "VirtualSize" / Int64ul * "Version 2 only: the virtual disk's size in bytes.",
)
_HOST_NAME = "InitiatorHostName" / Utf16String(this.InitiatorHostNameLength) * (
    "A null-terminated UTF-16 computer name on which the initiator resides (a 126-byte buffer)."
)
_HOST_NAME_126 = "InitiatorHostName" / Utf16String(126) * (
    "A null-terminated UTF-16 computer name on which the initiator resides (a 126-byte buffer)."
)

# 2.2.5.2
SVHDX_OPEN_DEVICE_CONTEXT = message(
    "SVHDX_OPEN_DEVICE_CONTEXT", "open_device_context", "2.2.5.2",
    Variants(
        Variant("windows_v2", RemainingIs(192),
                Struct(*_open_context_common(2), _OPEN_REQUEST_ID, _HOST_NAME_LENGTH, _HOST_NAME_126, *_V2_TAIL),
                "Windows SVHDX_OPEN_DEVICE_CONTEXT_V2, 192 bytes"),
        Variant("windows_v1", RemainingIs(168),
                Struct(*_open_context_common(1), _OPEN_REQUEST_ID, _HOST_NAME_LENGTH, _HOST_NAME_126),
                "Windows SVHDX_OPEN_DEVICE_CONTEXT, 168 bytes (OpenRequestId, fixed 126-byte name)"),
        Variant("seed", Otherwise(),
                Struct(*_open_context_common(1), _HOST_NAME_LENGTH, _HOST_NAME),
                "MS-RSVD v1 seed layout, variable-length InitiatorHostName"),
    ),
    doc="The SMB2 create context the client sends to open a shared virtual disk.",
)


def _file_info(name, abbrev, spec, client_note, header_only=False):
    seed = Struct(
        "ServerVersion" / Int32ul * "The current version of the protocol running on the server.",
        "SectorSize" / Int32ul * ("The sector size of the shared virtual disk." + client_note),
        "PhysicalSectorSize" / Int32ul * ("The physical sector size of the shared virtual disk." + client_note),
        "VirtualSize" / Int64ul * ("The virtual size of the shared virtual disk." + client_note),
    )
    windows = Struct(
        *seed.subcons[:3],
        "Reserved" / Hex(Int32ul) * "Windows form only: padding that aligns VirtualSize; not in the seed.",
        seed.subcons[3],
    )
    current = [Variant("current", RemainingIs(0), Struct(),
                       "current MS-RSVD 2.2.4.13 SVHDX_TUNNEL_INITIAL_INFO_REQUEST: the header only")]
    return message(
        name, abbrev, spec,
        Variants(
            *(current if header_only else []),
            Variant("windows", RemainingIs(24), windows, "Windows, 24 bytes with Reserved before VirtualSize"),
            Variant("seed", Otherwise(), seed, "MS-RSVD v1 seed layout, 20 bytes"),
        ),
    )


# 2.2.5.3, 2.2.5.4 (RSVD_TUNNEL_GET_FILE_INFO_OPERATION, called GET_INITIAL_INFO by Windows)
SVHDX_TUNNEL_FILE_INFO_REQUEST = _file_info(
    "SVHDX_TUNNEL_FILE_INFO_REQUEST", "file_info_request", "2.2.5.3",
    " In a request the client SHOULD set it to zero.", header_only=True)
SVHDX_TUNNEL_FILE_INFO_RESPONSE = _file_info(
    "SVHDX_TUNNEL_FILE_INFO_RESPONSE", "file_info_response", "2.2.5.4", "")

# 2.2.5.5, 2.2.5.6, 2.2.5.13, 2.2.5.15: header only.
SVHDX_TUNNEL_CHECK_CONNECTION_REQUEST = message(
    "SVHDX_TUNNEL_CHECK_CONNECTION_REQUEST", "check_connection_request", "2.2.5.5",
    doc="Only the header; MUST NOT contain any payload.")
SVHDX_TUNNEL_CHECK_CONNECTION_RESPONSE = message(
    "SVHDX_TUNNEL_CHECK_CONNECTION_RESPONSE", "check_connection_response", "2.2.5.6",
    doc="Only the header; MUST NOT contain any payload.")

# 2.2.5.7. Windows declares StatusKey as one byte followed by 27 reserved bytes;
# with the key below 256 both readings are the same bytes.
SVHDX_TUNNEL_SRB_STATUS_REQUEST = message(
    "SVHDX_TUNNEL_SRB_STATUS_REQUEST", "srb_status_request", "2.2.5.7",
    "StatusKey" / Int32ul
    * "The least significant bytes of the status code the server gave for the failed request.",
    "SrbStatus" / Hex(Int8ul) * "Reserved; the client MUST set it to zero.",
    "ScsiStatus" / Hex(Int8ul) * "Reserved; the client MUST set it to zero.",
    "SenseInfoExLength" / Int8ul * "Reserved; the client MUST set it to zero.",
    "Reserved" / Hex(Int8ul) * "MUST be set to zero.",
    "SenseDataEx" / Bytes(RSVD_SCSI_SENSE_BUFFER_SIZE) * "Reserved; the client MUST set it to zero.",
)

# 2.2.5.8
SVHDX_TUNNEL_SRB_STATUS_RESPONSE = message(
    "SVHDX_TUNNEL_SRB_STATUS_RESPONSE", "srb_status_response", "2.2.5.8",
    Variants(
        Variant("seed", PeekZero(1, 3), Struct(
            "StatusKey" / Int32ul * "The status key of the failed request (the seed's 4 bytes; Windows sends 1).",
            "SrbStatus" / SRB_STATUS_BYTE() * "The SRB status of the failed request; bit 0x80 flags auto-generated sense data.",
            "ScsiStatus" / scsi.SCSI_STATUS_CHECKED() * "The SCSI status returned by the shared virtual disk.",
            "SenseInfoExLength" / Int8ul * "The length, in bytes, of the sense data in SenseDataEx.",
            "Reserved" / Hex(Int8ul) * "MUST be set to zero.",
            "Sense" / When(this.SenseInfoExLength > 0, Overlay(RSVD_SCSI_SENSE_BUFFER_SIZE, scsi.SENSE_DATA.struct, option="scsi")),
            "SenseDataEx" / Bytes(RSVD_SCSI_SENSE_BUFFER_SIZE) * "The sense data.",
        ), "MS-RSVD v1 seed layout: 4-byte StatusKey"),
        Variant("windows", Otherwise(), Struct(
            "StatusKey" / Int8ul * "The status key of the failed request (the seed's 4 bytes; Windows sends 1).",
            "SrbStatus" / SRB_STATUS_BYTE() * "The SRB status of the failed request; bit 0x80 flags auto-generated sense data.",
            "ScsiStatus" / scsi.SCSI_STATUS_CHECKED() * "The SCSI status returned by the shared virtual disk.",
            "SenseInfoExLength" / Int8ul * "The length, in bytes, of the sense data in SenseDataEx.",
            "Sense" / When(this.SenseInfoExLength > 0, Overlay(None, scsi.SENSE_DATA.struct, option="scsi")),
            "SenseDataEx" / Bytes(this.SenseInfoExLength) * "The sense data.",
            "Padding" / GreedyBytes * "Bytes after the sense data, up to the end of the buffer.",
        ), "Windows layout: 1-byte StatusKey, no Reserved"),
    ),
)

# 2.2.5.9. The seed's §2.2.5.10 says this answers VALIDATE_DISK; it answers GET_DISK_INFO.
SVHDX_TUNNEL_DISK_INFO_REQUEST = message(
    "SVHDX_TUNNEL_DISK_INFO_REQUEST", "disk_info_request", "2.2.5.9",
    "Reserved1" / Hex(Int64ul) * "The client MUST set this field to zero.",
    "BlockSize" / Int32ul * "The client MUST set this field to zero.",
    "LinkageID" / Guid() * "The client MUST set this field to zero.",
    "IsMounted" / BOOLEAN8() * "The client MUST set this field to zero.",
    "Is4kAligned" / BOOLEAN8() * "The client MUST set this field to zero.",
    "Reserved2" / Hex(Int16ul) * "The client MUST set this field to zero.",
    "FileSize" / Int64ul * "The client MUST set this field to zero.",
    "VirtualDiskId" / Guid() * "Reserved; the client MUST set this field to zero.",
)

# 2.2.5.10
SVHDX_TUNNEL_DISK_INFO_RESPONSE = message(
    "SVHDX_TUNNEL_DISK_INFO_RESPONSE", "disk_info_response", "2.2.5.10",
    "DiskType" / Enum(Int32ul, **DISK_TYPE) * "The type of the disk.",
    "DiskFormat" / Enum(Int32ul, **DISK_FORMAT) * "The format of the disk.",
    "BlockSize" / Int32ul * "The disk block size in bytes.",
    "LinkageID" / Guid() * "A GUID that specifies the linkage identification of the disk.",
    "IsMounted" / BOOLEAN8() * "TRUE when the disk is mounted and ready for read or write operations.",
    "Is4kAligned" / BOOLEAN8() * "TRUE when the disk sectors are aligned to 4 kilobytes.",
    "Reserved" / Hex(Int16ul) * "MUST be reserved; the client SHOULD set it to zero.",
    "FileSize" / Int64ul * "The size of the shared virtual disk, in bytes.",
    "VirtualDiskId" / Guid() * "A GUID that specifies the identification of the disk.",
)

# 2.2.5.11
SVHDX_TUNNEL_SCSI_REQUEST = message(
    "SVHDX_TUNNEL_SCSI_REQUEST", "scsi_request", "2.2.5.11",
    "Length" / Checked(Int16ul, must_equal(36, "MS-RSVD 3.2.5.5.5"))
    * "The size, in bytes, of the SVHDX_TUNNEL_SCSI_REQUEST structure (36).",
    "Reserved1" / Hex(Int16ul) * "The client SHOULD set this field to zero.",
    "CdbLength" / Checked(Int8ul, must_be_at_most(RSVD_CDB_GENERIC_LENGTH, "MS-RSVD 2.2.5.11, 3.2.5.5.5"))
    * "The length, in bytes, of the SCSI CDB; at most RSVD_CDB_GENERIC_LENGTH (16).",
    "SenseInfoExLength" / Checked(Int8ul, must_be_at_most(RSVD_SCSI_SENSE_BUFFER_SIZE, "MS-RSVD 2.2.5.11"))
    * "The length, in bytes, of the request sense data buffer; at most RSVD_SCSI_SENSE_BUFFER_SIZE (20).",
    "DataIn" / Enum(Int8ul, **DATA_IN) * "The CDB data-transfer direction.",
    "Reserved2" / Hex(Int8ul) * "MUST be set to 0x00.",
    "SrbFlags" / FlagsEnum(Int32ul, **SRB_FLAGS) * "Options of the SCSI request (2.2.4).",
    "DataTransferLength" / Int32ul * "The length, in bytes, of the additional data in DataBuffer.",
    "Cdb" / Overlay(RSVD_CDB_GENERIC_LENGTH, scsi.SCSI_CDB.struct, option="scsi"),
    "CDBBuffer" / Bytes(RSVD_CDB_GENERIC_LENGTH) * "The SCSI command descriptor block.",
    "Reserved3" / Hex(Int32ul) * "SHOULD be set to 0x00000000.",
    "Data" / Overlay(None, scsi.REQUEST_DATA, option="scsi"),
    # The spec sizes DataBuffer by DataTransferLength, but for Data-in the client sends
    # the expected length and no buffer (3.1.4.9: "set this field to empty").
    "DataBuffer" / GreedyBytes * "The additional data: DataTransferLength bytes for Data-out, else empty.",
)

# 2.2.5.12. The seed's prose says SrbFlags is 1 byte; its table and Windows use 4.
SVHDX_TUNNEL_SCSI_RESPONSE = message(
    "SVHDX_TUNNEL_SCSI_RESPONSE", "scsi_response", "2.2.5.12",
    "Length" / Int16ul * "The size, in bytes, of the SVHDX_TUNNEL_SCSI_RESPONSE structure.",
    "SrbStatus" / SRB_STATUS_BYTE() * "The SRB status of the request (SPC-3 4.18).",
    "ScsiStatus" / scsi.SCSI_STATUS_CHECKED() * "The SCSI status that was returned by the target device.",
    "CdbLength" / Int8ul * "The length, in bytes, of the SCSI command descriptor block.",
    "SenseInfoExLength" / Int8ul * "The length, in bytes, of the sense data in SenseDataEx.",
    "DataIn" / Enum(Int8ul, **DATA_IN) * "The CDB data-transfer direction, echoed from the request.",
    "Reserved" / Hex(Int8ul) * "MUST be set to zero.",
    "SrbFlags" / FlagsEnum(Int32ul, **SRB_FLAGS) * "Options of the SCSI response (2.2.4).",
    "DataTransferLength" / Int32ul * "The length, in bytes, of the additional data in DataBuffer.",
    # Sense data only when there is some: a GOOD response's SenseDataEx is all zero.
    "Sense" / When(this.SenseInfoExLength > 0, Overlay(RSVD_SCSI_SENSE_BUFFER_SIZE, scsi.SENSE_DATA.struct, option="scsi")),
    "SenseDataEx" / Bytes(RSVD_SCSI_SENSE_BUFFER_SIZE) * "The sense data.",
    "Data" / Overlay(None, scsi.RESPONSE_DATA, option="scsi"),
    # As in the request: Data-out answers carry the count and no buffer.
    "DataBuffer" / GreedyBytes * "The additional data: DataTransferLength bytes for Data-in, else empty.",
)

# 2.2.5.13, 2.2.5.14: header only in the seed; see the module docstring.
SVHDX_TUNNEL_VALIDATE_DISK_REQUEST = message(
    "SVHDX_TUNNEL_VALIDATE_DISK_REQUEST", "validate_disk_request", "2.2.5.13",
    Variants(
        Variant("seed", RemainingIs(0), Struct(), "MS-RSVD v1 seed layout: the header only"),
        Variant("windows", Otherwise(), Struct(
            "Reserved" / GreedyBytes * "Windows form only: 56 reserved bytes.",
        ), "Windows layout: 56 reserved bytes after the header"),
    ),
)
SVHDX_TUNNEL_VALIDATE_DISK_RESPONSE = message(
    "SVHDX_TUNNEL_VALIDATE_DISK_RESPONSE", "validate_disk_response", "2.2.5.14",
    Variants(
        Variant("seed", RemainingIs(0), Struct(), "MS-RSVD v1 seed layout: the header only"),
        Variant("windows", Otherwise(), Struct(
            "IsValidDisk" / BOOLEAN8() * "Windows form only: TRUE when the disk is valid.",
            "Padding" / GreedyBytes * "Bytes after IsValidDisk, up to the end of the buffer.",
        ), "Windows layout: a 1-byte IsValidDisk after the header"),
    ),
)

# 2.2.5.15: the seed says "only the header"; Windows sends an empty input buffer. The header's
# OperationCode is named when it is one but not judged: the support query is no tunnel operation,
# and no section gives it an OperationCode (a client sends 0), so an unknown one is no error here.
SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_REQUEST = message(
    "SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_REQUEST", "support_request", "2.2.5.15",
    "Header" / Present(Struct(
        "OperationCode" / Enum(Int32ul, **OPERATION_CODES)
        * "Whatever the client sends (2.2.5.15 names no OperationCode for this request; 0 in practice).",
        *SVHDX_TUNNEL_OPERATION_HEADER.struct.subcons[1:],
    )),
)

# 2.2.5.16
SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE = message(
    "SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE", "support_response", "2.2.5.16",
    Variants(
        Variant("windows", RemainingIs(8), Struct(
            "SharedVirtualDiskSupport" / Hex(Int32ul) * "Whether the server supports shared virtual disks; MUST be 0x0001.",
            "SharedVirtualDiskHandleState" / Enum(Int32ul, **HANDLE_STATE) * "The state of the shared virtual disk Open.",
        ), "Windows and MS-SMB2: 4-byte fields"),
        Variant("seed", Otherwise(), Struct(
            "SharedVirtualDiskSupport" / Hex(Int16ul) * "Whether the server supports shared virtual disks; MUST be 0x0001.",
            "SharedVirtualDiskHandleState" / Enum(Int16ul, **HANDLE_STATE) * "The state of the shared virtual disk Open.",
        ), "MS-RSVD v1 seed layout: 2-byte fields"),
    ),
)

# -- RSVD v2 (Windows Server 2016+; not in the seed) --------------------------------
# Layouts as Wireshark's packet-rsvd.c decodes them; bodies no public source lays out
# (change tracking, QUERY_VIRTUAL_DISK_CHANGES, ExtractVHD) are shown as not decoded.
V2_SPEC = "MS-RSVD v2 (not in the seed; layout after Wireshark packet-rsvd.c)"
META_OPERATION_TYPES = dict(SvhdxMetaOperationTypeResize=0, SvhdxMetaOperationTypeCreateSnapshot=1,
                            SvhdxMetaOperationTypeOptimize=2, SvhdxMetaOperationTypeExtractVHD=3,
                            SvhdxMetaOperationTypeConvertToVHDSet=4, SvhdxMetaOperationTypeApplySnapshot=5)
SNAPSHOT_TYPES = dict(SvhdxSnapshotTypeVM=1, SvhdxSnapshotTypeCDP=3, SvhdxSnapshotTypeWriteable=4)
SNAPSHOT_STAGES = dict(SvhdxSnapshotStageInvalid=0, SvhdxSnapshotStageInitialize=1, SvhdxSnapshotStageBlockIO=2,
                       SvhdxSnapshotStageSwitchObjectStore=3, SvhdxSnapshotStageUnblockIO=4,
                       SvhdxSnapshotStageFinalize=5)
VHDSET_INFORMATION_TYPES = dict(SvhdxVHDSetInformationTypeSnapshotList=0x02,
                                SvhdxVHDSetInformationTypeSnapshotEntry=0x05,
                                SvhdxVHDSetInformationTypeOptimizeNeeded=0x08,
                                SvhdxVHDSetInformationTypeCdpSnapshotRoot=0x09,
                                SvhdxVHDSetInformationTypeCdpSnapshotActiveList=0x0A,
                                SvhdxVHDSetInformationTypeCdpSnapshotInactiveList=0x0C)
_NOT_DECODED = "BodyNotDecoded" / GreedyBytes * "A body whose layout is not publicly documented; not decoded."
_BOOL32 = lambda: Enum(Int32ul, FALSE=0, TRUE=1)  # noqa: E731

META_OPERATION_START_REQUEST = message(
    "SVHDX_META_OPERATION_START_REQUEST", "meta_operation_start", V2_SPEC,
    "TransactionId" / Guid() * "Identifies the meta-operation in later QUERY_PROGRESS requests.",
    "OperationType" / Enum(Int32ul, **META_OPERATION_TYPES) * "Which meta-operation to start.",
    "Padding" / Hex(Int32ul) * "Alignment.",
    "Parameters" / Switch(this.OperationType, {
        "SvhdxMetaOperationTypeResize": Struct(
            "NewSize" / Int64ul * "The new virtual size in bytes.",
            "ExpandOnly" / BOOLEAN8() * "The size may only grow.",
            "AllowUnsafeVirtualSize" / BOOLEAN8() * "The size may drop below the data the disk holds.",
            "ShrinkToMinimumSafeSize" / BOOLEAN8() * "Shrink to the data the disk holds.",
            "Reserved" / Hex(Int8ul)),
        "SvhdxMetaOperationTypeCreateSnapshot": Struct(
            "SnapshotType" / Enum(Int32ul, **SNAPSHOT_TYPES) * "The kind of snapshot.",
            "SnapshotFlags" / FlagsEnum(Int32ul, SVHDX_SNAPSHOT_DISK_FLAG_ENABLE_CHANGE_TRACKING=1)
            * "Snapshot options.",
            "Stage1" / Enum(Int32ul, **SNAPSHOT_STAGES), "Stage2" / Enum(Int32ul, **SNAPSHOT_STAGES),
            "Stage3" / Enum(Int32ul, **SNAPSHOT_STAGES), "Stage4" / Enum(Int32ul, **SNAPSHOT_STAGES),
            "Stage5" / Enum(Int32ul, **SNAPSHOT_STAGES), "Stage6" / Enum(Int32ul, **SNAPSHOT_STAGES),
            "SnapshotId" / Guid() * "The snapshot's identifier (in META_OPERATION_START: the snapshot to apply).",
            "ParametersPayloadSize" / Int32ul * "Bytes of further parameters.",
            _NOT_DECODED),
        "SvhdxMetaOperationTypeOptimize": Struct(),
        "SvhdxMetaOperationTypeConvertToVHDSet": Struct(
            "DestinationVhdSetNameLength" / Int32ul * "Bytes of DestinationVhdSetName.",
            "DestinationVhdSetName" / Utf16String(this.DestinationVhdSetNameLength) * "The new VHD set's name."),
        "SvhdxMetaOperationTypeApplySnapshot": Struct(
            "SnapshotType" / Enum(Int32ul, **SNAPSHOT_TYPES) * "The kind of snapshot.",
            "SnapshotId" / Guid() * "The snapshot's identifier (in META_OPERATION_START: the snapshot to apply)."),
    }, default=Struct(_NOT_DECODED)),
)
META_OPERATION_QUERY_PROGRESS_REQUEST = message(
    "SVHDX_META_OPERATION_QUERY_PROGRESS_REQUEST", "query_progress_request", V2_SPEC,
    "TransactionId" / Guid() * "The meta-operation whose progress is asked.")
META_OPERATION_QUERY_PROGRESS_RESPONSE = message(
    "SVHDX_META_OPERATION_QUERY_PROGRESS_RESPONSE", "query_progress_response", V2_SPEC,
    "CurrentProgressValue" / Int64ul * "Work done so far.",
    "CompleteValue" / Int64ul * "Work to do in all.")
VHDSET_QUERY_INFORMATION_REQUEST = message(
    "SVHDX_VHDSET_QUERY_INFORMATION_REQUEST", "vhdset_query_request", V2_SPEC,
    "VHDSetInformationType" / Enum(Int32ul, **VHDSET_INFORMATION_TYPES) * "What to return.",
    "SnapshotType" / Enum(Int32ul, **SNAPSHOT_TYPES) * "The kind of snapshot.",
    "SnapshotId" / Guid() * "The snapshot asked about.")
VHDSET_QUERY_INFORMATION_RESPONSE = message(
    "SVHDX_VHDSET_QUERY_INFORMATION_RESPONSE", "vhdset_query_response", V2_SPEC,
    "VHDSetInformationType" / Enum(Int32ul, **VHDSET_INFORMATION_TYPES) * "What this answer holds.",
    "Information" / Switch(this.VHDSetInformationType, {
        "SvhdxVHDSetInformationTypeSnapshotEntry": Struct(
            "Padding" / Hex(Int32ul),
            "SnapshotCreationTime" / Hex(Int64ul) * "When the snapshot was taken (FILETIME).",
            "SnapshotType" / Enum(Int32ul, **SNAPSHOT_TYPES) * "The kind of snapshot.",
            "IsValidSnapshot" / _BOOL32() * "TRUE when the snapshot is valid.",
            "SnapshotId" / Guid() * "The snapshot.",
            "ParentSnapshotId" / Guid() * "Its parent.",
            "LogFileId" / Guid() * "Its log file."),
    }, default=Struct(_NOT_DECODED)),
)
DELETE_SNAPSHOT_REQUEST = message(
    "SVHDX_TUNNEL_DELETE_SNAPSHOT_REQUEST", "delete_snapshot_request", V2_SPEC,
    "SnapshotId" / Guid() * "The snapshot to delete.",
    "PersistReference" / _BOOL32() * "Keep a reference to the snapshot.",
    "SnapshotType" / Enum(Int32ul, **SNAPSHOT_TYPES) * "The kind of snapshot.")
QUERY_SAFE_SIZE_RESPONSE = message(
    "SVHDX_TUNNEL_QUERY_SAFE_SIZE_RESPONSE", "query_safe_size_response", V2_SPEC,
    "SafeVirtualSize" / Int64ul * "The smallest size the disk can shrink to without losing data.")
V2_STRUCTURES = [META_OPERATION_START_REQUEST, META_OPERATION_QUERY_PROGRESS_REQUEST,
                 META_OPERATION_QUERY_PROGRESS_RESPONSE, VHDSET_QUERY_INFORMATION_REQUEST,
                 VHDSET_QUERY_INFORMATION_RESPONSE, DELETE_SNAPSHOT_REQUEST, QUERY_SAFE_SIZE_RESPONSE]

# Tunnel operations: the header, then the payload its OperationCode names.
REQUEST_PAYLOADS = {
    "RSVD_TUNNEL_GET_FILE_INFO_OPERATION": SVHDX_TUNNEL_FILE_INFO_REQUEST,
    "RSVD_TUNNEL_SCSI_OPERATION": SVHDX_TUNNEL_SCSI_REQUEST,
    "RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION": SVHDX_TUNNEL_CHECK_CONNECTION_REQUEST,
    "RSVD_TUNNEL_SRB_STATUS_OPERATION": SVHDX_TUNNEL_SRB_STATUS_REQUEST,
    "RSVD_TUNNEL_GET_DISK_INFO_OPERATION": SVHDX_TUNNEL_DISK_INFO_REQUEST,
    "RSVD_TUNNEL_VALIDATE_DISK_OPERATION": SVHDX_TUNNEL_VALIDATE_DISK_REQUEST,
    "RSVD_TUNNEL_META_OPERATION_START": META_OPERATION_START_REQUEST,
    "RSVD_TUNNEL_META_OPERATION_QUERY_PROGRESS": META_OPERATION_QUERY_PROGRESS_REQUEST,
    "RSVD_TUNNEL_VHDSET_QUERY_INFORMATION": VHDSET_QUERY_INFORMATION_REQUEST,
    "RSVD_TUNNEL_DELETE_SNAPSHOT": DELETE_SNAPSHOT_REQUEST,
}
RESPONSE_PAYLOADS = {
    "RSVD_TUNNEL_GET_FILE_INFO_OPERATION": SVHDX_TUNNEL_FILE_INFO_RESPONSE,
    "RSVD_TUNNEL_SCSI_OPERATION": SVHDX_TUNNEL_SCSI_RESPONSE,
    "RSVD_TUNNEL_CHECK_CONNECTION_STATUS_OPERATION": SVHDX_TUNNEL_CHECK_CONNECTION_RESPONSE,
    "RSVD_TUNNEL_SRB_STATUS_OPERATION": SVHDX_TUNNEL_SRB_STATUS_RESPONSE,
    "RSVD_TUNNEL_GET_DISK_INFO_OPERATION": SVHDX_TUNNEL_DISK_INFO_RESPONSE,
    "RSVD_TUNNEL_VALIDATE_DISK_OPERATION": SVHDX_TUNNEL_VALIDATE_DISK_RESPONSE,
    "RSVD_TUNNEL_META_OPERATION_QUERY_PROGRESS": META_OPERATION_QUERY_PROGRESS_RESPONSE,
    "RSVD_TUNNEL_VHDSET_QUERY_INFORMATION": VHDSET_QUERY_INFORMATION_RESPONSE,
    "RSVD_TUNNEL_QUERY_SAFE_SIZE": QUERY_SAFE_SIZE_RESPONSE,
}

_UNDECODED = "BodyNotDecoded" / GreedyBytes * "A payload with no known layout (unknown OperationCode, or a v2 body no public source lays out)."

TUNNEL_REQUEST = message(
    "SVHDX tunnel request", "tunnel_request", "2.2.5.1",
    "Header" / SVHDX_TUNNEL_OPERATION_HEADER.struct,
    "Payload" / Switch(this.Header.OperationCode,
                       {k: m.struct for k, m in REQUEST_PAYLOADS.items()}, default=Struct(_UNDECODED)),
    doc="An FSCTL_SVHDX_SYNC/ASYNC_TUNNEL_REQUEST input buffer.",
)
# A failed operation comes back as the bare header (3.2.5.5.1-6): the payload is
# there only with STATUS_SUCCESS; anything after a failure's header is shown raw.
TUNNEL_RESPONSE = message(
    "SVHDX tunnel response", "tunnel_response", "2.2.5.1",
    "Header" / SVHDX_TUNNEL_OPERATION_HEADER.struct,
    "Payload" / IfEquals(this.Header.Status, NT_STATUS["STATUS_SUCCESS"],
                         Switch(this.Header.OperationCode,
                                {k: m.struct for k, m in RESPONSE_PAYLOADS.items()}, default=Struct(_UNDECODED)),
                         Struct(_UNDECODED)),
    doc="An FSCTL_SVHDX_SYNC/ASYNC_TUNNEL_REQUEST output buffer.",
)

STRUCTURES = [
    SVHDX_TUNNEL_OPERATION_HEADER,
    SVHDX_OPEN_DEVICE_CONTEXT,
    SVHDX_TUNNEL_FILE_INFO_REQUEST,
    SVHDX_TUNNEL_FILE_INFO_RESPONSE,
    SVHDX_TUNNEL_CHECK_CONNECTION_REQUEST,
    SVHDX_TUNNEL_CHECK_CONNECTION_RESPONSE,
    SVHDX_TUNNEL_SRB_STATUS_REQUEST,
    SVHDX_TUNNEL_SRB_STATUS_RESPONSE,
    SVHDX_TUNNEL_DISK_INFO_REQUEST,
    SVHDX_TUNNEL_DISK_INFO_RESPONSE,
    SVHDX_TUNNEL_SCSI_REQUEST,
    SVHDX_TUNNEL_SCSI_RESPONSE,
    SVHDX_TUNNEL_VALIDATE_DISK_REQUEST,
    SVHDX_TUNNEL_VALIDATE_DISK_RESPONSE,
    SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_REQUEST,
    SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE,
]
MESSAGES = STRUCTURES + [TUNNEL_REQUEST, TUNNEL_RESPONSE] + V2_STRUCTURES + scsi.STRUCTURES


# -- how the messages reach the dissector -------------------------------------------
from dissectors.vocabulary.protocol import (  # noqa: E402
    ColorRule,
    CreateContextEntry,
    IoctlEntry,
    Counter,
    OpenStatistics,
    ExportForAnalyzer,
    Option,
    Protocol,
    ResponseTimes,
    SharedOpens,
    Show,
    Test,
    StoredErrors,
    Summary,
    TimeGroup,
    TrackExchanges,
    Transaction,
)

# The Info column (as Wireshark's SCSI dissector writes its own): the operation, then what the
# message has of these. A SCSI request names its command, LBA and length; its response the same
# (from the request), the SCSI status and the sense key and ASC/ASCQ; an SRB_STATUS exchange the
# StatusKey, and its response the status and sense it retrieves; a failed operation its status.
_STORED = ERROR_CODES["STATUS_SVHDX_ERROR_STORED"]
STATUS_NAMES = {v: k for k, v in NT_STATUS.items()}


def _cdb_info(request: bool):
    cdb = "Payload.Cdb."
    op = cdb + "OperationCode"
    return [
        Show([op], "SCSI:", scsi.COMMAND_NAMES, fmt="0x%02X", sep=", ", request=request),
        Show([cdb + "Fields.ServiceAction"], names=scsi.PR_IN_NAMES, fmt="0x%02X", request=request,
             when=(op, [scsi.OPERATION_CODES["PERSISTENT_RESERVE_IN"]])),
        Show([cdb + "Fields.ServiceAction"], names=scsi.PR_OUT_NAMES, fmt="0x%02X", request=request,
             when=(op, [scsi.OPERATION_CODES["PERSISTENT_RESERVE_OUT"]])),
        Show([cdb + "Fields.ServiceAction"], names=scsi.SERVICE_ACTION_IN_NAMES, fmt="0x%02X", request=request,
             when=(op, [scsi.OPERATION_CODES["SERVICE_ACTION_IN_16"]])),
        Show([cdb + "Fields.LogicalBlockAddress", cdb + "Fields.Address.LogicalBlockAddress"], "LBA:",
             fmt="0x%08X", request=request, when=(op, scsi.BLOCK_COMMANDS)),
        Show([cdb + "Fields.TransferLength"], "Len:", request=request),
    ]


_STATUS_KEY_INFO = Show(["Payload.StatusKey"], "StatusKey", sep=", ")
TUNNEL_REQUEST_INFO = _cdb_info(False) + [_STATUS_KEY_INFO]
TUNNEL_RESPONSE_INFO = [
    *_cdb_info(True),
    Show(["Header.Status"], names=STATUS_NAMES, fmt="0x%08X", sep=", ", hide=[NT_STATUS["STATUS_SUCCESS"]],
         ranges=[(_STORED, _STORED + 2 ** 32 - STATUS_SVHDX_ERROR_STORED_MASK - 1, "STATUS_SVHDX_ERROR_STORED | %d")]),
    _STATUS_KEY_INFO,
    Show(["Payload.ScsiStatus"], names=scsi.STATUS_NAMES, fmt="SCSI status 0x%02X", sep=", "),
    Show(["Payload.Sense.Format.KeyFlags.SenseKey", "Payload.Sense.Format.SenseKey"], names=scsi.SENSE_KEY_NAMES,
         fmt="sense key 0x%X", sep=", "),
    Show(["Payload.Sense.Format.AdditionalSense"], names=scsi.ASC_NAMES, fmt="ASC/ASCQ 0x%04X", sep=": "),
]

# Per open (`-z msrsvd,opens`): the tunnel operations, READs and WRITEs it carried, and its
# answers that failed, reported a reservation conflict or a unit attention, or stored an error.
_SMB2_CMDS = dict(READ=8, WRITE=9, IOCTL=11)
_IO = ("Command", list(_SMB2_CMDS.values()))  # an SMB2 READ, WRITE or IOCTL (a tunnel operation's)
_SCSI_ANSWER = ("Header.OperationCode", [OPERATION_CODES["RSVD_TUNNEL_SCSI_OPERATION"]])
_STORED_RANGE = (_STORED, _STORED + 2 ** 32 - STATUS_SVHDX_ERROR_STORED_MASK - 1)
_UA_RANGE = (min(ERROR_CODES[k] for k in UNIT_ATTENTIONS), max(ERROR_CODES[k] for k in UNIT_ATTENTIONS))
assert sorted(ERROR_CODES[k] for k in UNIT_ATTENTIONS) == list(range(_UA_RANGE[0], _UA_RANGE[1] + 1))
_CONFLICT = ERROR_CODES["STATUS_SVHDX_RESERVATION_CONFLICT"]
_SENSE_KEY = ["Payload.Sense.Format.KeyFlags.SenseKey", "Payload.Sense.Format.SenseKey"]


def _statuses(values=(), ranges=()):
    """The tunnel header's status, or the SMB2 status of a READ, WRITE or IOCTL answer."""
    return [Test("tunnel_response", ["Header.Status"], values=values, ranges=ranges),
            Test("smb2 response", ["Status"], values=values, ranges=ranges, when=_IO)]


OPEN_STATISTICS = OpenStatistics(menu="MS-RSVD Opens", counters=[
    Counter("Tunnel", [Test("tunnel_request", ["Header.OperationCode"])]),
    Counter("Reads", [Test("smb2 request", ["Command"], [_SMB2_CMDS["READ"]])]),
    Counter("Writes", [Test("smb2 request", ["Command"], [_SMB2_CMDS["WRITE"]])]),
    # an answer that failed: a tunnel status other than STATUS_SUCCESS, an SMB2 error (severity
    # ERROR), a SCSI status other than GOOD
    Counter("Failed", [
        Test("tunnel_response", ["Header.Status"], [NT_STATUS["STATUS_SUCCESS"]], negate=True),
        Test("smb2 response", ["Status"], ranges=[(0xC0000000, 0xFFFFFFFF)], when=_IO),
        Test("tunnel_response", ["Payload.ScsiStatus"], [scsi.SCSI_STATUS["GOOD"]], negate=True, when=_SCSI_ANSWER),
    ]),
    Counter("Conflicts", [
        Test("tunnel_response", ["Payload.ScsiStatus"], [scsi.SCSI_STATUS["RESERVATION_CONFLICT"]], when=_SCSI_ANSWER),
        *_statuses(values=[_CONFLICT]),
    ]),
    # sense data with UNIT ATTENTION (a SCSI answer's, or the retrieved one of a stored error), or
    # a STATUS_SVHDX_UNIT_ATTENTION_*
    Counter("UnitAttn", [Test("tunnel_response", _SENSE_KEY, [scsi.SENSE_KEYS["UNIT_ATTENTION"]]),
                         *_statuses(ranges=[_UA_RANGE])]),
    Counter("Stored", _statuses(ranges=[_STORED_RANGE])),
])

# §3.1.4.1: every tunnel operation carries the client's RequestIdentifier, unique per client.
TUNNEL_TRANSACTION = Transaction(id_path="Header.RequestId", spec="MS-RSVD 3.1.4.1")

PROTOCOL = Protocol(
    name="msrsvd",
    title="MS-RSVD Remote Shared Virtual Disk (generated)",
    spec=SPEC,
    module=__name__,
    structures=STRUCTURES,
    messages=MESSAGES,
    binding="smb2",
    ioctls=[
        IoctlEntry(FSCTL_SVHDX_SYNC_TUNNEL_REQUEST, "FSCTL_SVHDX_SYNC_TUNNEL_REQUEST", TUNNEL_REQUEST, TUNNEL_RESPONSE,
                   TUNNEL_TRANSACTION),
        IoctlEntry(FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST, "FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST", TUNNEL_REQUEST,
                   TUNNEL_RESPONSE, TUNNEL_TRANSACTION),
        IoctlEntry(FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT, "FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT",
                   SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_REQUEST, SVHDX_SHARED_VIRTUAL_DISK_SUPPORT_RESPONSE),
    ],
    create_contexts=[
        CreateContextEntry(SVHDX_OPEN_DEVICE_CONTEXT_TAG, "SVHDX_OPEN_DEVICE_CONTEXT", SVHDX_OPEN_DEVICE_CONTEXT),
    ],
    summaries={
        "tunnel_request": Summary("Header.OperationCode", "msrsvd.header.operation_code", TUNNEL_REQUEST_INFO),
        "tunnel_response": Summary("Header.OperationCode", "msrsvd.header.operation_code", TUNNEL_RESPONSE_INFO),
    },
    status_names=STATUS_NAMES,
    # §3.2.5.3-4: STATUS_SVHDX_ERROR_STORED ORed with the StatusKey (its low byte)
    value_ranges={"msrsvd.header.status": [(_STORED, _STORED + 2 ** 32 - STATUS_SVHDX_ERROR_STORED_MASK - 1,
                                            "STATUS_SVHDX_ERROR_STORED | StatusKey")]},
    # a failed operation, a READ or WRITE that stored an error, SCSI answered other than GOOD
    color_rules=[ColorRule("MS-RSVD error", "msrsvd.header.status >= 0x80000000 || msrsvd.sense.status_key || "
                           "msrsvd.scsi_response.scsi_status != 0 || msrsvd.srb_status_response.scsi_status != 0")],
    options=[
        Option("scsi", "Decode SCSI", "Decode CDBs, SCSI data and sense data inside tunnel operations "
               "(off: much faster on large captures)"),
        TrackExchanges("exchanges", "Track exchanges", "Link requests and responses, and stored errors to their "
               "retrieval (off: faster, no links)"),
        ExportForAnalyzer("export", "Export for the analyzer", "Instead of decoding, add each message's first bytes "
               "(msrsvd.raw) and its SMB2 message number (msrsvd.raw.smb2_index), for `analyze`", default=False),
    ],
    shared_opens=SharedOpens(SVHDX_OPEN_DEVICE_CONTEXT_TAG, SHARED_VIRTUAL_DISK_SUFFIX, "MS-RSVD 3.1.4.2, 3.2.5.1"),
    # §3.2.5.3-4: a failed READ or WRITE (or tunnel operation) returns
    # STATUS_SVHDX_ERROR_STORED | StatusKey; §3.1.5.3-4: the client fetches it with
    # RSVD_TUNNEL_SRB_STATUS_OPERATION; §3.2.5.5.3: an unknown key gets ERROR_NOT_AVAILABLE.
    stored_errors=StoredErrors(
        base=ERROR_CODES["STATUS_SVHDX_ERROR_STORED"], mask=STATUS_SVHDX_ERROR_STORED_MASK,
        status_path="Header.Status", op_path="Header.OperationCode",
        retrieve_op=OPERATION_CODES["RSVD_TUNNEL_SRB_STATUS_OPERATION"], key_path="Payload.StatusKey",
        spec="MS-RSVD 3.1.5.3, 3.1.5.4, 3.2.5.5.3", base_name="STATUS_SVHDX_ERROR_STORED",
        retrieve_name="RSVD_TUNNEL_SRB_STATUS_OPERATION"),
    constants=CONSTANTS,
    notes=[" ".join(b.split()) for b in __doc__.split("\n- ")[1:]],
    # tunnel operations by the request's OperationCode; SCSI commands by the CDB's OPERATION CODE
    # (RSVD_TUNNEL_SCSI_OPERATION requests, with the scsi preference on)
    response_times=ResponseTimes(menu="MS-RSVD", groups=[
        TimeGroup("RSVD tunnel operations", "Operation", "msrsvd.header.operation_code", "Header.OperationCode"),
        TimeGroup("SCSI commands", "Command", "msrsvd.scsi.opcode", "Payload.Cdb.OperationCode"),
    ]),
    open_statistics=OPEN_STATISTICS,
)
