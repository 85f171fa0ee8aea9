"""MS-CSVP (Failover Cluster: Setup and Validation Protocol, "ClusPrep"): the §6 IDL.

Types and methods read like the IDL, in its order, with its names; the packed byte
layouts that travel inside BYTE buffers (§2.2.7-2.2.17) and the value tables are in
`dissectors.definitions.csvp_buffers`. Every method is a DCOM method: its request stub starts
with ORPCTHIS and its response stub with ORPCTHAT (`dissectors.definitions.dcom`).

Errata, and how they are resolved here:

- IClusterFirewall's UUID is printed with a digit missing in §2.1 and §6
  (F1D6C29C-8FBE-4691-8724-F6D8DEAEAF8, 11 digits in the last group); §1.9 has the
  whole F1D6C29C-8FBE-4691-8724-F6D8DEAEAFC8, which is used.
- §6 declares `HRESULT CprepCheckNetFtBindings3(HRESULT);`; §3.4.4.2 has `(void)`,
  which is what a method without parameters means on the wire: no [in] parameters.
- §3.4.4.1 writes `[out, size_is(*pcbDihSize)] BYTE**`; §6 has `size_is(,*pcbDihSize)`,
  the size of the inner array, which is the only form MIDL accepts for BYTE**.
- CPREP_DISKID_ENUM is a plain enum (no [v1_enum]), so NDR sends DiskIdType in 16
  bits and the union's discriminant again in 16 bits (no padding between them), then
  the arm aligned to 4: a GUID disk id is 2+2+16 = 20 bytes, a numbered one 8.
  tests/test_ndr_reference.py checks this against impacket's encoder (and Microsoft's
  NDR engine and Samba do the same).
- SAFEARRAY(T) is `#define`d to plain SAFEARRAY: the element type is not on the
  wire, so the dissector takes it from this IDL and checks the sfType.
"""
from __future__ import annotations

from dissectors.definitions import csvp_buffers as B
from dissectors.definitions import csvp_conformance, dcom
from dissectors.vocabulary.ndr import (
    BOOL,
    BOOLEAN,
    DWORD,
    GUID,
    LONG,
    ULONG,
    ULONGLONG,
    USHORT,
    ConfArray,
    Enum16,
    FixedWString,
    Ref,
    Struct,
    Union,
    Unique,
    WString,
    boolean,
    byte,
    int_,
    long_,
    small,
)
from dissectors.vocabulary.idl import Interface, Method
from dissectors.vocabulary.oaut import Bstr, SafeArray
from dissectors.vocabulary.protocol import ColorRule, Protocol, ResponseTimes, TimeGroup



def _names(values):
    """csvp_buffers tables map name -> value (as construct's Enum does); NDR wants value -> name."""
    return {v: k for k, v in values.items()}


# -- types (§2.2, §6) ----------------------------------------------------------------
CPREP_DISKID_ENUM = Enum16(_names(B.CPREP_DISKID_ENUM))

CPREP_DISKID = Struct("CPREP_DISKID", "2.2.2",
                      "DiskIdType" / CPREP_DISKID_ENUM,
                      Union("DiskIdType", {
                          0x00000000: "DiskSignature" / ULONG,
                          0x00000001: "DiskGuid" / GUID,
                          0x00000FA0: "DeviceNumber" / ULONG,
                          0x00001388: "Junk" / ULONG,
                      }, switch_type=CPREP_DISKID_ENUM))

DiskStackType = Enum16(_names(B.DISK_STACK_TYPE))

CPREP_SCSI_ADDRESS = Struct("CPREP_SCSI_ADDRESS", "2.2.4",
                            "Length" / ULONG,
                            "PortNumber" / byte,
                            "PathId" / byte,
                            "TargetId" / byte,
                            "Lun" / byte)

DISK_PROPS = Struct("DISK_PROPS", "2.2.5",
                    "DiskNumber" / ULONG,
                    "DiskId" / CPREP_DISKID,
                    "DiskBusType" / ULONG.named(_names(B.DISK_BUS_TYPE)),
                    "StackType" / DiskStackType,
                    "ScsiAddress" / CPREP_SCSI_ADDRESS,
                    "DiskIsClusterable" / long_,
                    "AdapterDesc" / FixedWString(260),
                    "NumPaths" / ULONG,
                    "Flags" / ULONG.with_flags(B.DISK_FLAGS))

DISK_PROPS_EX = Struct("DISK_PROPS_EX", "2.2.6",
                       "DiskNumber" / ULONG,
                       "DiskId" / CPREP_DISKID,
                       "DiskBusType" / ULONG.named(_names(B.DISK_BUS_TYPE)),
                       "StackType" / DiskStackType,
                       "ScsiAddress" / CPREP_SCSI_ADDRESS,
                       "DiskIsClusterable" / BOOL,
                       "AdapterDesc" / FixedWString(260),
                       "pwszFriendlyName" / Unique(WString()),
                       "NumPaths" / ULONG,
                       "Flags" / ULONG.with_flags(B.DISK_FLAGS),
                       "ExtendedFlags" / ULONG.with_flags(B.DISK_EXTENDED_FLAGS),
                       "pwszPoolName" / Unique(WString()),
                       "pwszPage83Id" / Unique(WString()),
                       "pwszSerialNumber" / Unique(WString()),
                       "guidPoolId" / GUID)

CLUSTER_NETWORK_PROFILE = Enum16(_names(B.CLUSTER_NETWORK_PROFILE))

NODE_ROUTE_INFO = Struct("NODE_ROUTE_INFO", "2.2.18",
                         "remoteVirtualIP" / Bstr(),
                         "localUnicastIPs" / SafeArray(Bstr()),
                         "remoteUnicastIPs" / SafeArray(Bstr()),
                         "indices" / SafeArray(ULONG))

ADD_ROUTES_REQUEST = Struct("ADD_ROUTES_REQUEST", "2.2.19",
                            "remoteVirtualIP" / Bstr(),
                            "nodeRouteInfos" / SafeArray(NODE_ROUTE_INFO, cb_elements=32))

ROUTE_STATUS = Enum16(_names(B.ROUTE_STATUS))

ROUTE_LOSS_AND_STATE = Struct("ROUTE_LOSS_AND_STATE", "2.2.21",
                              "packetLoss" / ULONG,
                              "status" / ROUTE_STATUS)

ADD_ROUTES_REPLY = Struct("ADD_ROUTES_REPLY", "2.2.22",
                          "indices" / SafeArray(ULONG),
                          "replies" / SafeArray(ROUTE_LOSS_AND_STATE, cb_elements=8),
                          "routeUnavailable" / boolean)

STRUCTURES = [CPREP_DISKID, CPREP_SCSI_ADDRESS, DISK_PROPS, DISK_PROPS_EX, NODE_ROUTE_INFO,
              ADD_ROUTES_REQUEST, ROUTE_LOSS_AND_STATE, ADD_ROUTES_REPLY]

# -- interfaces (§6; sections of §3 per method) ------------------------------------------
DiskId = "DiskId" / CPREP_DISKID


def _not_used(opnum: int, spec: str) -> Method:
    return Method(opnum, "Opnum%dNotUsedOnWire" % opnum, spec, used_on_wire=False)


IClusterStorage2 = Interface("IClusterStorage2", "12108A88-6858-4467-B92F-E6CF4568DFB6", "3.2", [
    Method(3, "CprepDiskRawRead", "3.2.4.1", [
        DiskId, "ulSector" / ULONG, "cbData" / ULONG,
    ], [
        "pbData" / Ref(ConfArray(byte, varying=True)),
        "pcbDataRead" / Ref(ULONG),
        "ulLatency" / Ref(ULONG),
    ]),
    Method(4, "CprepDiskRawWrite", "3.2.4.2", [
        DiskId, "ulSector" / ULONG, "cbData" / ULONG,
        "pbData" / Ref(ConfArray(byte)),
    ], [
        "pcbDataWritten" / Ref(ULONG),
        "ulLatency" / Ref(ULONG),
    ]),
    Method(5, "CprepPrepareNode", "3.2.4.3", [], [
        "pulMajorVersion" / Ref(ULONG),
        "pulMinorVersion" / Ref(ULONG),
        "pdwCPrepVersion" / Ref(ULONG),
    ]),
    Method(6, "CprepPrepareNodePhase2", "3.2.4.4", [
        "AttachDisksOnSystemBus" / ULONG,
    ], [
        "pulNumDisks" / Ref(ULONG),
    ]),
    Method(7, "CprepDiskGetProps", "3.2.4.5", [DiskId], [
        "DiskProps" / Ref(DISK_PROPS),
    ]),
    _not_used(8, "3.2.4"),
    _not_used(9, "3.2.4"),
    _not_used(10, "3.2.4"),
    _not_used(11, "3.2.4"),
    Method(12, "CprepDiskStopDefense", "3.2.4.6", [DiskId], []),
    Method(13, "CprepDiskOnline", "3.2.4.7", [DiskId], [
        "MaxPartitionNumber" / Ref(ULONG),
    ]),
    Method(14, "CprepDiskVerifyUnique", "3.2.4.8", [DiskId], []),
    _not_used(15, "3.2.4"),
    _not_used(16, "3.2.4"),
    Method(17, "CprepDiskWriteFileData", "3.2.4.9", [
        DiskId, "ulPartition" / ULONG,
        "FileName" / Ref(WString()),
        "cbDataIn" / ULONG,
        "DataIn" / Ref(ConfArray(byte)),
    ], []),
    Method(18, "CprepDiskVerifyFileData", "3.2.4.10", [
        DiskId, "ulPartition" / ULONG,
        "FileName" / Ref(WString()),
        "cbDataIn" / ULONG,
        "DataIn" / Ref(ConfArray(byte)),
    ], []),
    Method(19, "CprepDiskDeleteFile", "3.2.4.11", [
        DiskId, "ulPartition" / ULONG,
        "FileName" / Ref(WString()),
    ], []),
    Method(20, "CprepDiskOffline", "3.2.4.12", [DiskId], []),
    _not_used(21, "3.2.4"),
    Method(22, "CprepDiskGetUniqueIds", "3.2.4.13", [
        DiskId, "cbData" / ULONG,
    ], [
        "pbData" / Ref(ConfArray(byte, varying=True, content=B.STORAGE_DEVICE_ID_DESCRIPTOR)),
        "pcbDataOut" / Ref(ULONG),
        "pcbNeeded" / Ref(ULONG),
    ]),
    Method(23, "CprepDiskAttach", "3.2.4.14", [DiskId], []),
    Method(24, "CprepDiskPRArbitrate", "3.2.4.15", [DiskId], []),
    Method(25, "CprepDiskPRRegister", "3.2.4.16", [DiskId], []),
    Method(26, "CprepDiskPRUnRegister", "3.2.4.17", [DiskId], []),
    Method(27, "CprepDiskPRReserve", "3.2.4.18", [DiskId], []),
    Method(28, "CprepDiskPRRelease", "3.2.4.19", [DiskId], []),
    Method(29, "CprepDiskDiskPartitionIsNtfs", "3.2.4.20", [DiskId, "ulPartition" / ULONG], []),
    Method(30, "CprepDiskGetArbSectors", "3.2.4.21", [DiskId], [
        "SectorX" / Ref(ULONG),
        "SectorY" / Ref(ULONG),
    ]),
    Method(31, "CprepDiskIsPRPresent", "3.2.4.22", [DiskId], [
        "Present" / Ref(ULONG),
    ]),
    Method(32, "CprepDiskPRPreempt", "3.2.4.23", [DiskId], []),
    Method(33, "CprepDiskPRClear", "3.2.4.24", [DiskId], []),
    Method(34, "CprepDiskIsOnline", "3.2.4.25", [DiskId], []),
    Method(35, "CprepDiskSetOnline", "3.2.4.26", [DiskId], []),
    Method(36, "CprepDiskGetFSName", "3.2.4.27", [DiskId, "Partition" / ULONG], [
        "FsName" / FixedWString(100),
    ]),
    Method(37, "CprepDiskIsReadable", "3.2.4.28", [DiskId], []),
    Method(38, "CprepDiskGetDsms", "3.2.4.29", [
        "Size" / ULONG,
    ], [
        "pReserved" / Ref(ULONG),
        "RegisteredDsms" / Ref(ConfArray(byte, varying=True, content=B.REGISTERED_DSMS)),
    ]),
])

IClusterStorage3 = Interface("IClusterStorage3", "11942D87-A1DE-4E7F-83FB-A840D9C5928D", "3.4", [
    Method(3, "CprepDiskGetUniqueIds3", "3.4.4.1", [DiskId], [
        "ppbDeviceIdHeader" / Ref(Unique(ConfArray(byte, content=B.STORAGE_DEVICE_ID_DESCRIPTOR))),
        "pcbDihSize" / Ref(ULONG),
        "ppDeviceDescriptor" / Ref(Unique(ConfArray(byte, content=B.STORAGE_DEVICE_DESCRIPTOR))),
        "pcbDdSize" / Ref(ULONG),
    ]),
    Method(4, "CprepCheckNetFtBindings3", "3.4.4.2", [], []),
    Method(5, "CprepCsvTestSetup3", "3.4.4.3", [
        "TestShareGuid" / GUID,
        "Reserved" / Ref(WString()),
    ], []),
    Method(6, "CprepIsNodeClustered3", "3.4.4.4", [], [
        "pbIsClusterNode" / Ref(BOOLEAN),
    ]),
    Method(7, "CprepCreateNewSmbShares3", "3.4.4.5", [], [
        "ppwszSharePaths" / Ref(Unique(ConfArray(Unique(WString())))),
        "pdwNumberOfPaths" / Ref(DWORD),
    ]),
    Method(8, "CprepConnectToNewSmbShares3", "3.4.4.6", [
        "ppwszSharePaths" / Ref(ConfArray(Unique(WString()))),
        "dwNumberOfPaths" / DWORD,
    ], []),
    Method(9, "CprepDiskGetProps3", "3.4.4.7", [DiskId], [
        "pDiskProps" / Ref(DISK_PROPS_EX),
    ]),
    Method(10, "CprepDiskIsReadOnly3", "3.4.4.8", [DiskId], [
        "pbReadOnly" / Ref(BOOLEAN),
    ]),
    Method(11, "CprepDiskPRRegister3", "3.4.4.9", [
        DiskId, "OldPrKey" / ULONGLONG, "NewPrKey" / ULONGLONG,
    ], []),
    Method(12, "CprepDiskFindKey3", "3.4.4.10", [DiskId, "Key" / ULONGLONG], [
        "pbFound" / Ref(BOOLEAN),
    ]),
    Method(13, "CprepDiskPRPreempt3", "3.4.4.11", [
        DiskId, "OwnerKey" / ULONGLONG, "NewKey" / ULONGLONG,
    ], []),
    Method(14, "CprepDiskPRReserve3", "3.4.4.12", [DiskId, "Key" / ULONGLONG], []),
    Method(15, "CprepDiskIsPRPresent3", "3.4.4.13", [DiskId, "Key" / ULONGLONG], []),
    Method(16, "CprepDiskPRRelease3", "3.4.4.14", [DiskId, "Key" / ULONGLONG], []),
    Method(17, "CprepDiskPRClear3", "3.4.4.15", [DiskId, "Key" / ULONGLONG], []),
])

IClusterNetwork2 = Interface("IClusterNetwork2", "2931C32C-F731-4C56-9FEB-3D5F1C5E72BF", "3.6", [
    Method(3, "SendRTMessage", "3.6.4.2", [
        "SourceIPAddress" / Bstr(),
        "DestIPAddress" / Bstr(),
        "DestPort" / USHORT,
        "AddressFamily" / USHORT.named(_names(B.ADDRESS_FAMILY)),
        "MessageSize" / ULONG,
        "Timeout" / ULONG,
    ], [
        "RTElapsedTime" / Ref(ULONG),
    ]),
    Method(4, "InitializeNode", "3.6.4.1", [
        "RequestUDPPort" / USHORT,
    ], [
        "BoundUDPPort" / Ref(USHORT),
        "NodeMajorVersion" / Ref(ULONG),
        "NodeMinorVersion" / Ref(ULONG),
        "ClusprepVersion" / Ref(ULONG),
    ]),
    Method(5, "GetIpConfigSerialized", "3.6.4.3", [
        "ApplyClusterFilter" / small,
    ], [
        "Data" / Ref(SafeArray(byte, content=B.ADAPTERLIST2)),
        "pcbOut" / Ref(int_),
    ]),
    Method(6, "CleanupNode", "3.6.4.4", [], []),
    Method(7, "QueryFirewallConfiguration", "3.6.4.5", [], [
        "serverRulesEnabled" / Ref(small),
        "mgmtRulesEnabled" / Ref(small),
    ]),
    Method(8, "ProcessAddRoutes", "3.6.4.6", [
        "request" / Ref(ADD_ROUTES_REQUEST),
    ], []),
    Method(9, "GetAddRoutesStatus", "3.6.4.7", [], [
        "reply" / Ref(ADD_ROUTES_REPLY),
    ]),
    Method(10, "Opnum10Reserved", "3.6.4", used_on_wire=False),
    Method(11, "CancelAddRoutesRequest", "3.6.4.8", [], []),
])

IClusterCleanup = Interface("IClusterCleanup", "D6105110-8917-41A5-AA32-8E0AA2933DC9", "3.8", [
    Method(3, "CleanUpEvictedNode", "3.8.4.1", [
        "DelayBeforeCleanup" / ULONG,
        "TimeOut" / ULONG,
        "Flags" / ULONG,
    ], []),
    Method(4, "ClearPR", "3.8.4.2", [
        "DeviceNumber" / ULONG,
    ], []),
])

IClusterSetup = Interface("IClusterSetup", "491260B5-05C9-40D9-B7F2-1F7BDAE0927F", "3.10", [
    Method(3, "ConfigSvcSecret", "3.10.4.1", ["SecretBLOB" / Bstr()], []),
    Method(4, "RetrieveSvcSecret", "3.10.4.2", [], ["SecretBLOB" / Ref(Bstr())]),
    Method(5, "RetrieveHostLabel", "3.10.4.3", [], ["HostLabel" / Ref(Bstr())]),
])

IClusterLog = Interface("IClusterLog", "85923CA7-1B6B-4E83-A2E4-F5BA3BFBB8A3", "3.12", [
    Method(3, "GenerateClusterLog", "3.12.4.1", [], ["LogFilePath" / Ref(Bstr())]),
    Method(4, "GenerateTimeSpanLog", "3.12.4.2", [
        "SpanMinutes" / ULONG,
    ], [
        "LogFilePath" / Ref(Bstr()),
    ]),
])

# §1.9's UUID: §2.1 and §6 drop a digit from the last group (see the module docstring).
IClusterFirewall = Interface("IClusterFirewall", "F1D6C29C-8FBE-4691-8724-F6D8DEAEAFC8", "3.14", [
    Method(3, "InitializeAdapterConfiguration", "3.14.4.1", [], [
        "cRetAdapters" / Ref(ULONG),
    ]),
    Method(4, "GetNextAdapterFirewallConfiguration", "3.14.4.2", [
        "idx" / ULONG,
    ], [
        "adapterId" / Ref(GUID),
        "adapterProfile" / Ref(CLUSTER_NETWORK_PROFILE),
        "serverRulesEnabled" / Ref(small),
        "managementRulesEnabled" / Ref(small),
        "commonRulesEnabled" / Ref(small),
    ]),
])

IClusterUpdate = Interface("IClusterUpdate", "E3C9B851-C442-432B-8FC6-A7FAAFC09D3B", "3.16", [
    Method(3, "GetUpdates", "3.16.4.1", [], [
        "UpdateCount" / Ref(ULONG),
        "updates" / Ref(Bstr()),
    ]),
    Method(4, "Count", "3.16.4.2", [], [
        "Count" / Ref(LONG),
    ]),
])

INTERFACES = [IClusterStorage2, IClusterStorage3, IClusterNetwork2, IClusterCleanup, IClusterSetup,
              IClusterLog, IClusterFirewall, IClusterUpdate]

# §1.9 / §6 coclasses: IClusterStorage2 and IClusterStorage3 share one object.
CLSIDS = {
    "C72B09DB-4D53-4F41-8DCC-2D752AB56F7C": ("ClusterStorage2", ["IClusterStorage2", "IClusterStorage3"]),
    "E1568352-586D-43E4-933F-8E6DC4DE317A": ("ClusterNetwork2", ["IClusterNetwork2"]),
    "A6D3E32B-9814-4409-8DE3-CFA673E6D3DE": ("ClusterCleanup", ["IClusterCleanup"]),
    "04D55210-B6AC-4248-9E69-2A569D1D2AB6": ("ClusterSetup", ["IClusterSetup"]),
    "88E7AC6D-C561-4F03-9A60-39DD768F867D": ("ClusterLog", ["IClusterLog"]),
    "3CFEE98C-FB4B-44C6-BD98-A1DB14ABCA3F": ("ClusterFirewall", ["IClusterFirewall"]),
    "4142DD5D-3472-4370-8641-DE7856431FB0": ("ClusterUpdate", ["IClusterUpdate"]),
}

# The HRESULTs and Win32 errors (as HRESULT_FROM_WIN32) the methods' tables list, with
# MS-ERREF's names.
HRESULTS = {
    0x00000000: "S_OK",
    0x00000001: "S_FALSE",
    0x80004005: "E_FAIL",
    0x8000FFFF: "E_UNEXPECTED",
    0x80070002: "ERROR_FILE_NOT_FOUND",
    0x80070005: "E_ACCESSDENIED",
    0x80070015: "ERROR_NOT_READY",
    0x8007001D: "ERROR_WRITE_FAULT",
    0x8007001E: "ERROR_READ_FAULT",
    0x80070022: "ERROR_WRONG_DISK",
    0x80070032: "ERROR_NOT_SUPPORTED",
    0x80070057: "E_INVALIDARG",
    0x8007007A: "ERROR_INSUFFICIENT_BUFFER",
    0x800700EA: "ERROR_MORE_DATA",
    0x80070102: "WAIT_TIMEOUT",
    0x800703ED: "ERROR_UNRECOGNIZED_VOLUME",
    0x80070490: "ERROR_NOT_FOUND",
    0x80070548: "ERROR_INVALID_SERVER_STATE",
    0x800707DE: "ERROR_DUPLICATE_TAG",
    0x8007139F: "ERROR_INVALID_STATE",
    # fault PDU statuses (MS-RPCE 2.2.2.11 / C706 appendix E) a ClusPrep call may end in
    0x1C010002: "nca_s_op_rng_error",
    0x1C010003: "nca_s_unk_if",
    0x1C00001C: "nca_s_fault_remote_no_memory",
    0x00000005: "ERROR_ACCESS_DENIED",
    0x000006F7: "RPC_X_BAD_STUB_DATA",
    0x80010108: "RPC_E_DISCONNECTED",
    0x80010114: "RPC_E_INVALID_OBJECT",
}

PROTOCOL = Protocol(
    name="clusprep",
    title="MS-CSVP Failover Cluster Setup and Validation (ClusPrep)",
    short_title="CLUSPREP",
    spec="MS-CSVP",
    module=__name__,
    structures=B.STRUCTURES,
    messages=B.MESSAGES,
    binding="dcerpc",
    interfaces=INTERFACES,
    orpc=(dcom.ORPCTHIS, dcom.ORPCTHAT),
    hresults=HRESULTS,
    # a request's Info column names the disk it is about (CPREP_DISKID, 2.2.2), however named
    info_fields={"clusprep.disk_id.device_number": "disk %d", "clusprep.disk_id.disk_signature": "disk 0x%08X",
                 "clusprep.disk_id.disk_guid": "disk {%s}"},
    type_names=csvp_conformance.TYPE_NAMES,
    reference_example=("clusprep.disk_id.disk_guid", "in every call that names a disk by GUID"),
    # a failure HRESULT or a fault PDU
    color_rules=[ColorRule("ClusPrep failure", "clusprep.hresult >= 0x80000000 || clusprep.fault_status")],
    response_times=ResponseTimes(menu="ClusPrep (MS-CSVP)", groups=[
        TimeGroup("ClusPrep methods", "Method", "clusprep.method"),
    ]),
    notes=B.NOTES + [" ".join(b.split()) for b in __doc__.split("how they are resolved here:")[1].split("\n- ")[1:]],
)
