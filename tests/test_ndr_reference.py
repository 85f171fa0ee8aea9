"""The MS-CSVP definitions against an independent NDR encoder: impacket's (test-only dependency).

Our side is always the real thing: the types of `dissectors.definitions.csvp` (CPREP_DISKID,
DISK_PROPS, DISK_PROPS_EX) and the request/response stubs of its methods, found by interface
and method name in `csvp.PROTOCOL.interfaces` (`Method.request()` / `Method.response()`, with
`dcom.ORPCTHIS` / `dcom.ORPCTHAT` for the whole DCOM stub). Nothing of ours is re-declared here.

The reference side is a transcription of the MS-CSVP §6 IDL (/work/shared/specs/MS-CSVP.md,
lines cited as "IDL l.NNNN") in impacket's NDR vocabulary (impacket.dcerpc.v5.ndr), written
from the IDL text, not from our definitions. Each case
  - builds the same value on both sides and compares the bytes (build),
  - parses impacket's bytes with our definition and compares the values (our parse), and
  - parses our bytes with impacket and compares the values (impacket's parse).

Three things differ between the encoders by design, and only those are normalised:

- Referent ids. Ours are numbered 0x00020000, 0x00020004, ... in marshalling order (as
  Windows does); impacket picks random ids. The tests set every impacket pointer's
  ReferentID to the id ours gives it, so referent ids are compared too, never masked.
- Alignment padding. NDR leaves pad octets unspecified (C706 14.2.2). Ours writes 0,
  impacket writes filler (0xaa, 0xab, 0xbf, ...). Each case lists its pad runs as
  (offset, length); `unpad` checks that impacket really put non-zero filler there (so a
  listed run is a pad, not data) and zeroes it. Our bytes are then compared whole, so
  our pads must sit at exactly those offsets and be zero.
- HRESULT. MS-DTYP 2.2.18 makes it a LONG, and impacket parses it signed; our stubs
  carry it as `ReturnValue`, an unsigned 32-bit code (0x8007001E, as MS-ERREF writes
  it). Same four bytes; values are compared modulo 2**32.

Where impacket itself departs from Windows/MIDL (noted at each such place), the impacket
side is corrected with a small subclass, and the reason is given.

Sections 9-11 also check the NDR vocabulary itself (BSTR, SAFEARRAY, small/BOOLEAN
packing, nested unique pointers) on small local parameter lists, marked "vocabulary": they
test dissectors.vocabulary, not a definition.

Found by these tests in the past, and fixed in the vocabulary:
- CPREP_DISKID: the whole non-encapsulated union was aligned to 4 before the
  discriminant (NDR64's rule, MS-RPCE 2.2.5.3.4.4). NDR32 (Microsoft's NdrpUnionMarshall;
  Samba; impacket) sends the enum16 discriminant right after DiskIdType and aligns only
  the arm.
- wireSAFEARRAY: SAFEARRAYUNION is an *encapsulated* union (`switch (unsigned long
  sfType)`), so sfType goes on the wire once; it was sent twice.
"""
import struct
import uuid

import pytest

from dissectors.definitions import csvp, dcom
from dissectors.vocabulary import ndr
from dissectors.vocabulary.oaut import Bstr, SafeArray

from impacket.dcerpc.v5.dcom import oaut as i_oaut
from impacket.dcerpc.v5.dcomrt import DCOMANSWER, DCOMCALL
from impacket.dcerpc.v5.dtypes import GUID as I_GUID
from impacket.dcerpc.v5.dtypes import (BOOL, BOOLEAN, DWORD, HRESULT, LONG, LPWSTR, UCHAR, ULONG, ULONGLONG, USHORT,
                                       WSTR)
from impacket.dcerpc.v5.enum import Enum
from impacket.dcerpc.v5.ndr import (NULL, NDRCALL, NDRENUM, NDRHYPER, NDRPOINTER, NDRSMALL, NDRSTRUCT, NDRUNION,
                                    NDRUniConformantArray, NDRUniConformantVaryingArray, NDRUniFixedArray)

REF = 0x00020000  # our first referent id; each further pointer adds 4
GUID_S = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
GUID_B = uuid.UUID(GUID_S).bytes_le
GUID_S2 = "01234567-89ab-cdef-0123-456789abcdef"
CAUSALITY = "3e7a1a5c-0c1f-4c8e-9e43-6a7d2f0e9b01"


def ref(i):
    return REF + 4 * i


def unpad(data, pads):
    b = bytearray(data)
    for off, n in pads:
        run = b[off:off + n]
        assert len(run) == n and all(run), (
            "impacket has no filler at %d+%d (%s): the case's pad list is wrong" % (off, n, run.hex()))
        b[off:off + n] = bytes(n)
    return bytes(b)


def same(ours, theirs, pads=()):
    assert ours.hex() == unpad(theirs, pads).hex()


def tail_pad(end):
    """The pad a 4-aligned item after offset `end` needs."""
    return [(end, (-end) % 4)] if end % 4 else []


def string_pads(start, texts):
    """Conformant varying strings one after another from `start` (each aligned to 4):
    the pads between them, and where the last one ends."""
    pads, pos = [], start
    for t in texts:
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        pos += 12 + 2 * (len(t) + 1)
    return pads, pos


def hresult(v):
    return v & 0xFFFFFFFF


def method(interface, name):
    """The real Method of csvp, by interface and method name."""
    itf = next(i for i in csvp.PROTOCOL.interfaces if i.name == interface)
    return next(m for m in itf.methods if m.name == name)


def parsed_by_impacket(cls, data):
    obj = cls()
    obj.fromString(data)
    return obj


def octets(value):
    """impacket's bytes of a byte array (or of a pointer to one), however deep they sit."""
    while not isinstance(value, (list, bytes)):
        value = value["Data"]
    return b"".join(value) if isinstance(value, list) else value


def items(value):
    """The elements of an impacket array (or of a pointer to one)."""
    while not isinstance(value, list):
        value = value["Data"]
    return value


def wstr(value):
    """impacket's text of a [string] wchar_t (WSTR, or an LPWSTR's Data), without the NUL."""
    if value is None or value == NULL:
        return None
    return value.rstrip("\0") if isinstance(value, str) else value["Data"].rstrip("\0")


# ==== the reference: MS-CSVP §6 in impacket's vocabulary ===================================
class I_CPREP_DISKID_ENUM(NDRENUM):  # IDL l.5078: a plain enum (no [v1_enum]), '<H' in NDR32
    class enumItems(Enum):
        CprepIdSignature = 0x00000000
        CprepIdGuid = 0x00000001
        CprepIdNumber = 0x00000fa0
        CprepIdUnknown = 0x00001388


class I_CPREP_DISKID_UNION(NDRUNION):  # IDL l.5087 [switch_is(DiskIdType)]; tag: NDRUSHORT, the enum's type
    union = {
        0x0: ("DiskSignature", ULONG),
        0x1: ("DiskGuid", I_GUID),
        0xFA0: ("DeviceNumber", ULONG),
        0x1388: ("Junk", ULONG),
    }


class I_CPREP_DISKID(NDRSTRUCT):  # IDL l.5085
    structure = (
        ("DiskIdType", I_CPREP_DISKID_ENUM),
        ("u", I_CPREP_DISKID_UNION),
    )


class I_DiskStackType(NDRENUM):  # IDL l.5095
    class enumItems(Enum):
        DiskStackScsiPort = 0x00000000
        DiskStackStorPort = 0x00000001
        DiskStackFullPort = 0x00000002


class I_CPREP_SCSI_ADDRESS(NDRSTRUCT):  # IDL l.5101
    structure = (
        ("Length", ULONG),
        ("PortNumber", UCHAR),
        ("PathId", UCHAR),
        ("TargetId", UCHAR),
        ("Lun", UCHAR),
    )


class WCHAR_260(NDRUniFixedArray):  # wchar_t AdapterDesc[260]: 520 bytes inline, aligned to 2
    item = "<H"

    def getDataLen(self, data, offset=0):
        return 520


class WCHAR_100(NDRUniFixedArray):  # [out] wchar_t FsName[100]
    item = "<H"

    def getDataLen(self, data, offset=0):
        return 200


class I_DISK_PROPS(NDRSTRUCT):  # IDL l.5109-5119
    structure = (
        ("DiskNumber", ULONG),
        ("DiskId", I_CPREP_DISKID),
        ("DiskBusType", ULONG),
        ("StackType", I_DiskStackType),
        ("ScsiAddress", I_CPREP_SCSI_ADDRESS),
        ("DiskIsClusterable", LONG),
        ("AdapterDesc", WCHAR_260),
        ("NumPaths", ULONG),
        ("Flags", ULONG),
    )


class I_DISK_PROPS_EX(NDRSTRUCT):  # IDL l.5121-5142: every member, in the IDL's order
    structure = (
        ("DiskNumber", ULONG),
        ("DiskId", I_CPREP_DISKID),
        ("DiskBusType", ULONG),
        ("StackType", I_DiskStackType),
        ("ScsiAddress", I_CPREP_SCSI_ADDRESS),
        ("DiskIsClusterable", BOOL),
        ("AdapterDesc", WCHAR_260),
        ("pwszFriendlyName", LPWSTR),  # [string] LPWSTR: embedded [unique] pointers, referents deferred
        ("NumPaths", ULONG),
        ("Flags", ULONG),
        ("ExtendedFlags", ULONG),
        ("pwszPoolName", LPWSTR),
        ("pwszPage83Id", LPWSTR),
        ("pwszSerialNumber", LPWSTR),
        ("guidPoolId", I_GUID),
    )


class BYTE_CARRAY(NDRUniConformantArray):
    item = "c"


class BYTE_CVARRAY(NDRUniConformantVaryingArray):
    item = "c"


class PBYTE_CARRAY(NDRPOINTER):
    referent = (("Data", BYTE_CARRAY),)


class DWORD_CARRAY(NDRUniConformantArray):
    item = "<L"


class PDWORD_CARRAY(NDRPOINTER):
    referent = (("Data", DWORD_CARRAY),)


class LPWSTR_CARRAY(NDRUniConformantArray):
    item = LPWSTR


class PLPWSTR_CARRAY(NDRPOINTER):
    referent = (("Data", LPWSTR_CARRAY),)


class PLPWSTR(NDRPOINTER):
    referent = (("Data", LPWSTR),)


class PLPWSTR_ARRAY(NDRUniConformantArray):
    item = PLPWSTR


# -- methods (top-level [in]/[out] pointers are [ref]: no wire form, the referent inline) --
class I_CprepDiskRawReadResponse(NDRCALL):  # IDL l.5157
    structure = (
        ("pbData", BYTE_CVARRAY),    # [out, size_is(cbData), length_is(*pcbDataRead)] byte*
        ("pcbDataRead", ULONG),
        ("ulLatency", ULONG),
        ("ErrorCode", HRESULT),
    )


class I_CprepDiskRawWrite(NDRCALL):  # IDL l.5166
    opnum = 4
    structure = (
        ("DiskId", I_CPREP_DISKID),
        ("ulSector", ULONG),
        ("cbData", ULONG),
        ("pbData", BYTE_CARRAY),     # [in, size_is(cbData)] byte*
    )


class I_CprepDiskGetPropsResponse(NDRCALL):  # IDL l.5186: [out] DISK_PROPS*
    structure = (("DiskProps", I_DISK_PROPS), ("ErrorCode", HRESULT))


class I_CprepDiskWriteFileData(NDRCALL):  # IDL l.5217
    opnum = 17
    structure = (
        ("DiskId", I_CPREP_DISKID),
        ("ulPartition", ULONG),
        ("FileName", WSTR),          # [in, string] wchar_t*
        ("cbDataIn", ULONG),
        ("DataIn", BYTE_CARRAY),     # [in, size_is(cbDataIn)] byte*
    )


class I_CprepDiskWriteFileDataDcom(DCOMCALL):  # the same, as the DCOM request stub: ORPCTHIS first
    opnum = 17
    structure = I_CprepDiskWriteFileData.structure


class I_CprepDiskGetFSNameResponse(NDRCALL):  # IDL l.5314: [out] wchar_t FsName[100]
    structure = (("FsName", WCHAR_100), ("ErrorCode", HRESULT))


class I_CprepDiskGetUniqueIds3Response(NDRCALL):  # IDL l.5346, l.5348: [out, size_is( ,*pcb)] BYTE**
    structure = (
        ("ppbDeviceIdHeader", PBYTE_CARRAY),  # [ref] -> [unique] -> conformant byte array
        ("pcbDihSize", ULONG),
        ("ppDeviceDescriptor", PBYTE_CARRAY),
        ("pcbDdSize", ULONG),
        ("ErrorCode", HRESULT),
    )


class I_CprepCsvTestSetup3(NDRCALL):  # IDL l.5361: [in] GUID, [in, string] LPWSTR
    opnum = 5
    structure = (("TestShareGuid", I_GUID), ("Reserved", WSTR))


class I_CprepCreateNewSmbShares3Response(NDRCALL):
    # IDL l.5373 prints `[out, string, size_is(*pdwNumberOfPaths)] LPWSTR **ppwszSharePaths`;
    # §3.4.4.5 (l.3244) says it is "the address of a pointer to a *pdwNumberOfPaths-sized
    # block of LPWSTRs. The server allocates ... the returned buffer": the size belongs to
    # the inner level, size_is(, *pdwNumberOfPaths), as IDL l.5348 writes for BYTE**. An
    # [out]-only array sized by an [out]-only count cannot be allocated by the client, which
    # the outer level would require. So: top-level [ref] -> [unique] pointer to the
    # conformant array of [unique] string pointers. (The as-printed reading is checked as a
    # vocabulary case in section 5.)
    structure = (
        ("ppwszSharePaths", PLPWSTR_CARRAY),
        ("pdwNumberOfPaths", DWORD),
        ("ErrorCode", HRESULT),
    )


class I_CprepConnectToNewSmbShares3(NDRCALL):  # IDL l.5383
    opnum = 8
    structure = (
        ("ppwszSharePaths", LPWSTR_CARRAY),  # [in, string, size_is(dwNumberOfPaths,)] LPWSTR*: [ref]
        ("dwNumberOfPaths", DWORD),
    )


class I_CprepDiskGetProps3Response(NDRCALL):  # IDL l.5389: [out] DISK_PROPS_EX*
    structure = (("pDiskProps", I_DISK_PROPS_EX), ("ErrorCode", HRESULT))


class I_CprepDiskGetProps3ResponseDcom(DCOMANSWER):  # the same, as the DCOM response stub: ORPCTHAT first
    structure = I_CprepDiskGetProps3Response.structure


class I_CprepDiskPRRegister3(NDRCALL):  # IDL l.5401
    opnum = 11
    structure = (("DiskId", I_CPREP_DISKID), ("OldPrKey", ULONGLONG), ("NewPrKey", ULONGLONG))


class I_CLUSTER_NETWORK_PROFILE(NDRENUM):  # IDL l.5144
    class enumItems(Enum):
        ClusterNetworkProfilePublic = 0x00
        ClusterNetworkProfilePrivate = 0x01
        ClusterNetworkProfileDomainAuthenticated = 0x02


class I_GetNextAdapterFirewallConfigurationResponse(NDRCALL):
    # IDL l.5611: [out] GUID*, [out] CLUSTER_NETWORK_PROFILE*, [out] small* x3
    structure = (
        ("adapterId", I_GUID),
        ("adapterProfile", I_CLUSTER_NETWORK_PROFILE),
        ("serverRulesEnabled", NDRSMALL),
        ("managementRulesEnabled", NDRSMALL),
        ("commonRulesEnabled", NDRSMALL),
        ("ErrorCode", HRESULT),
    )


class I_SendRTMessage(NDRCALL):  # IDL l.5489: BSTRs, then unsigned shorts and longs
    opnum = 3
    structure = (
        ("SourceIPAddress", i_oaut.BSTR),
        ("DestIPAddress", i_oaut.BSTR),
        ("DestPort", USHORT),
        ("AddressFamily", USHORT),
        ("MessageSize", ULONG),
        ("Timeout", ULONG),
    )


# -- building reference values --------------------------------------------------------------
ARM_NAME = {0x0: "DiskSignature", 0x1: "DiskGuid", 0xFA0: "DeviceNumber", 0x1388: "Junk"}


def i_diskid(kind, value):
    s = I_CPREP_DISKID()
    s["DiskIdType"] = kind
    s["u"]["tag"] = kind
    s["u"][ARM_NAME[kind]] = GUID_B if kind == 1 else value
    return s


def n_diskid(kind, value):
    return {"DiskIdType": kind, ARM_NAME[kind]: GUID_S if kind == 1 else value}


def diskid_of(s):
    """impacket's CPREP_DISKID read back in our value form."""
    kind = s["DiskIdType"]
    arm = s["u"][ARM_NAME[kind]]
    return {"DiskIdType": kind, ARM_NAME[kind]: str(uuid.UUID(bytes_le=arm)) if kind == 1 else arm}


def diskid_len(kind):
    return 20 if kind == 1 else 8


def i_wstr(text):
    w = WSTR()
    w["Data"] = text + "\0"
    return w


def i_lpwstr(text, referent_id):
    p = LPWSTR()
    p["Data"] = text + "\0"
    p["ReferentID"] = referent_id
    return p


def i_bytes(cls, data):
    a = cls()
    a["Data"] = list(data)
    return a


def i_orpcthis():
    t = DCOMCALL().fields["ORPCthis"]
    t["version"]["MajorVersion"], t["version"]["MinorVersion"] = 5, 7
    t["flags"] = 0
    t["reserved1"] = 0
    t["cid"] = uuid.UUID(CAUSALITY).bytes_le
    t["extensions"] = NULL
    return t


N_ORPCTHIS = dict(version=dict(MajorVersion=5, MinorVersion=7), flags=0, reserved1=0, cid=CAUSALITY,
                  extensions=None)
N_ORPCTHAT = dict(flags=0, extensions=None)


# ==== 1. CPREP_DISKID ======================================================================
# What the reference puts on the wire, spelled out: enum 16 bits (C706 14.2.5), the union's
# discriminant again in the switch type (the enum: 16 bits), no alignment of the union as a
# whole in NDR32, then the arm at its own alignment (4).
DISKID_CASES = [
    pytest.param(0x0, 0x11223344, "0000" "0000" "44332211", id="signature-ulong-arm"),
    pytest.param(0x1, None, "0100" "0100" + GUID_B.hex(), id="guid-arm"),
    pytest.param(0xFA0, 7, "a00f" "a00f" "07000000", id="number-ulong-arm"),
    pytest.param(0x1388, 0xDEADBEEF, "8813" "8813" "efbeadde", id="unknown-ulong-arm"),
]


@pytest.mark.parametrize("kind,value,wire", DISKID_CASES)
def test_impacket_cprep_diskid_wire_form(kind, value, wire):
    """Pins the reference: impacket's NDRENUM + NDRUNION(USHORT tag) encoding of CPREP_DISKID."""
    assert i_diskid(kind, value).getData().hex() == wire


@pytest.mark.parametrize("kind,value,wire", DISKID_CASES)
def test_cprep_diskid_build_matches_reference(kind, value, wire):
    same(csvp.CPREP_DISKID.build(n_diskid(kind, value)), i_diskid(kind, value).getData())


@pytest.mark.parametrize("kind,value,wire", DISKID_CASES)
def test_cprep_diskid_parse_both_ways(kind, value, wire):
    assert csvp.CPREP_DISKID.parse(i_diskid(kind, value).getData()) == n_diskid(kind, value)
    back = parsed_by_impacket(I_CPREP_DISKID, csvp.CPREP_DISKID.build(n_diskid(kind, value)))
    assert diskid_of(back) == n_diskid(kind, value)


def test_cprep_diskid_names_build_the_same_bytes():
    """The enum names the samples use build what the numbers build."""
    assert (csvp.CPREP_DISKID.build(dict(DiskIdType="CprepIdGuid", DiskGuid=GUID_S))
            == i_diskid(1, None).getData())


# ==== 2. [in] parameters: CprepDiskWriteFileData, CprepDiskRawWrite =====================
WRITE_FILE_DATA = method("IClusterStorage2", "CprepDiskWriteFileData")
FILE_NAME = "ClusterStorage\\probe.txt"  # 24 chars + NUL: 25 units, 50 bytes -> 2 pad bytes
DATA_IN = b"\x01\x02\x03\x04\x05"
DISKIDS = [pytest.param(0x0, 0x11223344, id="signature"), pytest.param(0x1, None, id="guid"),
           pytest.param(0xFA0, 3, id="number")]


def i_write_file_data(cls, kind, value):
    r = cls()
    r["DiskId"] = i_diskid(kind, value)
    r["ulPartition"] = 2
    r["FileName"] = i_wstr(FILE_NAME)
    r["cbDataIn"] = len(DATA_IN)
    r["DataIn"] = i_bytes(BYTE_CARRAY, DATA_IN)
    return r


def n_write_file_data(kind, value):
    return {"DiskId": n_diskid(kind, value), "ulPartition": 2, "FileName": FILE_NAME,
            "cbDataIn": len(DATA_IN), "DataIn": DATA_IN}


def write_file_data_pads(start):
    """DiskId ends at `start`; ulPartition, then the string (max, offset, actual + 50 bytes),
    then cbDataIn aligned to 4."""
    return tail_pad(start + 4 + 12 + 2 * (len(FILE_NAME) + 1))


@pytest.mark.parametrize("kind,value", DISKIDS)
def test_write_file_data_request_matches_reference(kind, value):
    theirs = i_write_file_data(I_CprepDiskWriteFileData, kind, value).getData()
    ours = WRITE_FILE_DATA.request().build(n_write_file_data(kind, value))
    same(ours, theirs, write_file_data_pads(diskid_len(kind)))
    assert WRITE_FILE_DATA.request().parse(theirs) == n_write_file_data(kind, value)
    back = parsed_by_impacket(I_CprepDiskWriteFileData, ours)
    assert (diskid_of(back["DiskId"]), back["ulPartition"], wstr(back["FileName"]), back["cbDataIn"],
            octets(back["DataIn"])) == (n_diskid(kind, value), 2, FILE_NAME, len(DATA_IN), DATA_IN)


def test_write_file_data_dcom_request_stub_matches_reference():
    """The whole request stub, as csvp and dcom declare it: ORPCTHIS (MS-DCOM 2.2.13.1, 32
    bytes with a NULL extensions pointer) then the [in] parameters."""
    r = i_write_file_data(I_CprepDiskWriteFileDataDcom, 1, None)
    r["ORPCthis"] = i_orpcthis()
    theirs = r.getData()
    assert len(theirs) >= 32 and theirs[:4].hex() == "05000700"
    ours = WRITE_FILE_DATA.request(dcom.ORPCTHIS).build(dict(ORPCthis=N_ORPCTHIS, **n_write_file_data(1, None)))
    same(ours, theirs, write_file_data_pads(32 + 20))
    got = WRITE_FILE_DATA.request(dcom.ORPCTHIS).parse(theirs)
    assert got.ORPCthis == N_ORPCTHIS and got.FileName == FILE_NAME and got.DiskId == n_diskid(1, None)
    back = parsed_by_impacket(I_CprepDiskWriteFileDataDcom, ours)
    assert (str(uuid.UUID(bytes_le=back["ORPCthis"]["cid"])), wstr(back["FileName"])) == (CAUSALITY, FILE_NAME)


RAW_WRITE = method("IClusterStorage2", "CprepDiskRawWrite")


@pytest.mark.parametrize("data", [pytest.param(bytes(range(7)), id="7-bytes"),
                                  pytest.param(bytes(range(256)) * 2, id="512-byte-sector")])
def test_raw_write_request_matches_reference(data):
    r = I_CprepDiskRawWrite()
    r["DiskId"], r["ulSector"], r["cbData"] = i_diskid(0xFA0, 2), 11, len(data)
    r["pbData"] = i_bytes(BYTE_CARRAY, data)
    theirs = r.getData()
    v = {"DiskId": n_diskid(0xFA0, 2), "ulSector": 11, "cbData": len(data), "pbData": data}
    ours = RAW_WRITE.request().build(v)
    same(ours, theirs)  # no pads: every item is 4-aligned and the bytes end the stub
    assert RAW_WRITE.request().parse(theirs) == v
    back = parsed_by_impacket(I_CprepDiskRawWrite, ours)
    assert (back["ulSector"], back["cbData"], octets(back["pbData"])) == (11, len(data), data)


# ==== 3. [out] parameters: CprepDiskRawRead response =======================================
RAW_READ = method("IClusterStorage2", "CprepDiskRawRead")
SECTOR = bytes(range(0x41, 0x48))  # 7 bytes: 1 pad byte before pcbDataRead


def i_raw_read(data, max_count=None, status=0):
    r = I_CprepDiskRawReadResponse()
    r["pbData"] = i_bytes(BYTE_CVARRAY, data)
    if max_count is not None:
        r.fields["pbData"].fields["MaximumCount"] = max_count
    r["pcbDataRead"] = len(data)
    r["ulLatency"] = 12
    r["ErrorCode"] = status
    return r


@pytest.mark.parametrize("data,status", [
    pytest.param(SECTOR, 0, id="7-bytes-S_OK"),
    pytest.param(bytes(range(256)) * 2, 0, id="512-byte-sector"),
    pytest.param(b"", -0x7FF8FFE2, id="empty-ERROR_READ_FAULT"),
])
def test_raw_read_response_matches_reference(data, status):
    theirs = i_raw_read(data, status=status).getData()
    v = {"pbData": data, "pcbDataRead": len(data), "ulLatency": 12, "ReturnValue": hresult(status)}
    ours = RAW_READ.response().build(v)
    same(ours, theirs, tail_pad(12 + len(data)))
    assert RAW_READ.response().parse(theirs) == v
    back = parsed_by_impacket(I_CprepDiskRawReadResponse, ours)
    assert (octets(back["pbData"]), back["pcbDataRead"], back["ulLatency"], back["ErrorCode"]) == (
        data, len(data), 12, status)


def test_raw_read_response_parses_max_count_above_actual_count():
    """size_is(cbData)=16 with length_is(*pcbDataRead)=7: ours keeps the 7 bytes sent."""
    theirs = i_raw_read(SECTOR, max_count=16).getData()
    assert theirs[:12].hex() == "10000000" "00000000" "07000000"
    got = RAW_READ.response().parse(theirs)
    assert (got.pbData, got.pcbDataRead, got.ulLatency) == (SECTOR, 7, 12)


# ==== 4. DISK_PROPS and DISK_PROPS_EX: inline wchar_t[260], embedded deferred LPWSTRs =====
DISK_GET_PROPS = method("IClusterStorage2", "CprepDiskGetProps")
DISK_GET_PROPS3 = method("IClusterStorage3", "CprepDiskGetProps3")
STRINGS = ("pwszFriendlyName", "pwszPoolName", "pwszPage83Id", "pwszSerialNumber")
ADAPTER = "Microsoft Storage Spaces Controller"

PROPS_EX = {"DiskNumber": 3, "DiskId": n_diskid(1, None), "DiskBusType": 10, "StackType": 1,
            "ScsiAddress": {"Length": 8, "PortNumber": 3, "PathId": 0, "TargetId": 1, "Lun": 0},
            "DiskIsClusterable": 1, "AdapterDesc": ADAPTER, "pwszFriendlyName": "Msft Virtual Disk",
            "NumPaths": 2, "Flags": 0x0008A000, "ExtendedFlags": 0x00000001, "pwszPoolName": None,
            "pwszPage83Id": "naa.600", "pwszSerialNumber": "S1", "guidPoolId": GUID_S2}
PROPS = {k: v for k, v in PROPS_EX.items() if not k.startswith("pwsz") and k not in ("ExtendedFlags", "guidPoolId")}

PROPS_EX_CASES = [
    pytest.param(PROPS_EX, id="guid-diskid-null-pool-name"),
    pytest.param(dict(PROPS_EX, pwszPoolName="Pool 1"), id="guid-diskid-all-strings"),
    pytest.param(dict(PROPS_EX, DiskId=n_diskid(0, 0x5A3C9E71), pwszFriendlyName="", pwszSerialNumber="SN 7"),
                 id="signature-diskid-empty-string"),
    pytest.param(dict(PROPS_EX, DiskId=n_diskid(0xFA0, 2), **{s: None for s in STRINGS}),
                 id="number-diskid-all-null"),
]


def i_scsi(v):
    s = I_CPREP_SCSI_ADDRESS()
    for k, x in v.items():
        s[k] = x
    return s


def i_props_common(s, props):
    s["DiskNumber"] = props["DiskNumber"]
    s["DiskId"] = i_diskid(props["DiskId"]["DiskIdType"], next(x for k, x in props["DiskId"].items()
                                                               if k != "DiskIdType"))
    s["DiskBusType"] = props["DiskBusType"]
    s["StackType"] = props["StackType"]
    s["ScsiAddress"] = i_scsi(props["ScsiAddress"])
    s["DiskIsClusterable"] = props["DiskIsClusterable"]
    s["AdapterDesc"] = props["AdapterDesc"].encode("utf-16-le").ljust(520, b"\0")
    s["NumPaths"] = props["NumPaths"]
    s["Flags"] = props["Flags"]
    return s


def i_props(props):
    return i_props_common(I_DISK_PROPS(), props)


def i_props_ex(props):
    s = i_props_common(I_DISK_PROPS_EX(), props)
    n = 0
    for name in STRINGS:  # referent ids in marshalling order
        if props[name] is None:
            s[name] = NULL
        else:
            s.fields[name]["ReferentID"] = ref(n)
            s[name] = props[name] + "\0"
            n += 1
    s["ExtendedFlags"] = props["ExtendedFlags"]
    s["guidPoolId"] = uuid.UUID(props["guidPoolId"]).bytes_le
    return s


def props_of(s):
    """impacket's DISK_PROPS(_EX) read back in our value form."""
    v = {"DiskNumber": s["DiskNumber"], "DiskId": diskid_of(s["DiskId"]), "DiskBusType": s["DiskBusType"],
         "StackType": s["StackType"], "ScsiAddress": {k: s["ScsiAddress"][k] for k in PROPS["ScsiAddress"]},
         "DiskIsClusterable": s["DiskIsClusterable"],
         "AdapterDesc": bytes(s["AdapterDesc"]).decode("utf-16-le").split("\0", 1)[0],
         "NumPaths": s["NumPaths"], "Flags": s["Flags"]}
    if "guidPoolId" in s.fields:
        v.update({name: None if s.fields[name]["ReferentID"] == 0 else wstr(s[name]) for name in STRINGS})
        v.update(ExtendedFlags=s["ExtendedFlags"], guidPoolId=str(uuid.UUID(bytes_le=s["guidPoolId"])))
    return v


def props_fixed_len(props):
    """DiskNumber, DiskId, DiskBusType, StackType (+2 pad), ScsiAddress, DiskIsClusterable,
    AdapterDesc: where the DiskId's arm puts everything after it."""
    return 4 + diskid_len(props["DiskId"]["DiskIdType"]) + 4 + 2 + 2 + 8 + 4 + 520


def props_ex_pads(props):
    """After StackType (2), then between the deferred strings, which follow the struct's
    scalars (4 pointers, 3 ULONGs, the GUID) in member order; and where they end."""
    stack_end = 4 + diskid_len(props["DiskId"]["DiskIdType"]) + 4 + 2
    scalars_end = props_fixed_len(props) + 4 + 4 * 3 + 4 * 3 + 16
    pads, end = string_pads(scalars_end, [props[n] for n in STRINGS if props[n] is not None])
    return [(stack_end, 2)] + pads, end


@pytest.mark.parametrize("props", PROPS_EX_CASES)
def test_disk_props_ex_matches_reference(props):
    """csvp.DISK_PROPS_EX alone (a construction of its own): referent ids inline in member
    order, the strings after the whole structure."""
    s = i_props_ex(props)
    theirs = s.getData()
    theirs += s.getDataReferents(len(theirs))  # impacket defers the referents here
    pads, end = props_ex_pads(props)
    assert end == len(theirs)
    ours = csvp.DISK_PROPS_EX.build(props)
    same(ours, theirs, pads)
    assert csvp.DISK_PROPS_EX.parse(theirs) == props
    back = I_DISK_PROPS_EX()
    scalars = back.fromString(ours)  # the structure, then its deferred strings
    assert back.fromStringReferents(ours, scalars) == len(ours) - scalars
    assert props_of(back) == props


@pytest.mark.parametrize("props", PROPS_EX_CASES)
@pytest.mark.parametrize("status", [pytest.param(0, id="S_OK"), pytest.param(-0x7FF8FFFE, id="FILE_NOT_FOUND")])
def test_get_props3_response_matches_reference(props, status):
    """[out] DISK_PROPS_EX*: inside the stub the referents come before the next parameter."""
    r = I_CprepDiskGetProps3Response()
    r["pDiskProps"] = i_props_ex(props)
    r["ErrorCode"] = status
    theirs = r.getData()
    pads, end = props_ex_pads(props)
    ours = DISK_GET_PROPS3.response().build({"pDiskProps": props, "ReturnValue": hresult(status)})
    same(ours, theirs, pads + tail_pad(end))
    assert DISK_GET_PROPS3.response().parse(theirs) == {"pDiskProps": props, "ReturnValue": hresult(status)}
    back = parsed_by_impacket(I_CprepDiskGetProps3Response, ours)
    assert (props_of(back["pDiskProps"]), back["ErrorCode"]) == (props, status)


def test_get_props3_dcom_response_stub_matches_reference():
    """The whole response stub: ORPCTHAT (flags, NULL extensions: 8 bytes), DISK_PROPS_EX
    and its strings, the HRESULT."""
    props = dict(PROPS_EX, pwszPoolName="Pool01")
    r = I_CprepDiskGetProps3ResponseDcom()
    r["ORPCthat"]["flags"] = 0
    r["ORPCthat"]["extensions"] = NULL
    r["pDiskProps"] = i_props_ex(props)
    r["ErrorCode"] = 0
    theirs = r.getData()
    pads, end = props_ex_pads(props)
    ours = DISK_GET_PROPS3.response(dcom.ORPCTHAT).build(
        {"ORPCthat": N_ORPCTHAT, "pDiskProps": props, "ReturnValue": 0})
    same(ours, theirs, [(8 + o, n) for o, n in pads] + tail_pad(8 + end))
    got = DISK_GET_PROPS3.response(dcom.ORPCTHAT).parse(theirs)
    assert (got.ORPCthat, got.pDiskProps, got.ReturnValue) == (N_ORPCTHAT, props, 0)
    back = parsed_by_impacket(I_CprepDiskGetProps3ResponseDcom, ours)
    assert props_of(back["pDiskProps"]) == props


@pytest.mark.parametrize("props", [pytest.param(PROPS, id="guid-diskid"),
                                   pytest.param(dict(PROPS, DiskId=n_diskid(0xFA0, 2), AdapterDesc="A" * 259),
                                                id="number-diskid-259-char-adapter")])
def test_get_props_response_matches_reference(props):
    """IClusterStorage2's DISK_PROPS: no pointers, wchar_t[260] inline (long where _EX has BOOL)."""
    r = I_CprepDiskGetPropsResponse()
    r["DiskProps"] = i_props(props)
    r["ErrorCode"] = 0
    theirs = r.getData()
    ours = DISK_GET_PROPS.response().build({"DiskProps": props, "ReturnValue": 0})
    same(ours, theirs, [(4 + diskid_len(props["DiskId"]["DiskIdType"]) + 6, 2)])
    assert len(ours) == props_fixed_len(props) + 4 + 4 + 4
    assert DISK_GET_PROPS.response().parse(theirs) == {"DiskProps": props, "ReturnValue": 0}
    back = parsed_by_impacket(I_CprepDiskGetPropsResponse, ours)
    assert props_of(back["DiskProps"]) == props


# ==== 5. LPWSTR arrays: CprepConnectToNewSmbShares3 / CprepCreateNewSmbShares3 ============
CONNECT_SHARES = method("IClusterStorage3", "CprepConnectToNewSmbShares3")
CREATE_SHARES = method("IClusterStorage3", "CprepCreateNewSmbShares3")
PATHS = ["\\\\10.0.10.11", "\\\\[fd00:20:11::11]", "\\\\n3"]


@pytest.mark.parametrize("paths", [pytest.param(PATHS, id="three-paths"),
                                   pytest.param(PATHS[:1], id="one-path"),
                                   pytest.param([], id="no-paths")])
def test_connect_smb_shares3_request_matches_reference(paths):
    r = I_CprepConnectToNewSmbShares3()
    arr = LPWSTR_CARRAY()
    arr["Data"] = [i_lpwstr(p, ref(i)) for i, p in enumerate(paths)]
    r["ppwszSharePaths"] = arr
    r["dwNumberOfPaths"] = len(paths)
    theirs = r.getData()
    pads, end = string_pads(4 + 4 * len(paths), paths)
    v = {"ppwszSharePaths": paths, "dwNumberOfPaths": len(paths)}
    ours = CONNECT_SHARES.request().build(v)
    same(ours, theirs, pads + tail_pad(end))
    assert CONNECT_SHARES.request().parse(theirs) == v
    back = parsed_by_impacket(I_CprepConnectToNewSmbShares3, ours)
    assert ([wstr(p) for p in items(back["ppwszSharePaths"])], back["dwNumberOfPaths"]) == (paths, len(paths))


@pytest.mark.parametrize("paths", [pytest.param(PATHS, id="three-paths"),
                                   pytest.param(PATHS[1:2], id="one-path"),
                                   pytest.param(None, id="null-array")])
def test_create_smb_shares3_response_matches_reference(paths):
    r = I_CprepCreateNewSmbShares3Response()
    if paths is None:
        r["ppwszSharePaths"] = NULL
    else:
        arr = LPWSTR_CARRAY()
        arr["Data"] = [i_lpwstr(p, ref(1 + i)) for i, p in enumerate(paths)]
        r.fields["ppwszSharePaths"].fields["Data"] = arr
        r.fields["ppwszSharePaths"]["ReferentID"] = ref(0)
    r["pdwNumberOfPaths"] = len(paths or [])
    r["ErrorCode"] = 0
    theirs = r.getData()
    pads = []
    if paths:
        pads, end = string_pads(8 + 4 * len(paths), paths)
        pads += tail_pad(end)
    v = {"ppwszSharePaths": paths, "pdwNumberOfPaths": len(paths or []), "ReturnValue": 0}
    ours = CREATE_SHARES.response().build(v)
    same(ours, theirs, pads)
    assert CREATE_SHARES.response().parse(theirs) == v
    back = parsed_by_impacket(I_CprepCreateNewSmbShares3Response, ours)
    got = back.fields["ppwszSharePaths"]  # the pointer itself
    assert (None if got["ReferentID"] == 0 else [wstr(p) for p in items(got)]) == paths


class I_CreateNewSmbShares3AsPrinted(NDRCALL):
    # IDL l.5373 read literally, size_is(*pdw) on the first level of LPWSTR**: top-level
    # [ref] to a conformant array of LPWSTR*, each a [unique] pointer to a [unique] LPWSTR.
    structure = (
        ("ppwszSharePaths", PLPWSTR_ARRAY),
        ("pdwNumberOfPaths", DWORD),
        ("ErrorCode", HRESULT),
    )


def test_vocabulary_nested_unique_pointers_in_an_array_match_reference():
    """Vocabulary check (not a csvp definition: csvp reads CreateNewSmbShares3 as
    size_is(,*pdw), see I_CprepCreateNewSmbShares3Response): an array of [unique] pointers
    to [unique] strings, where each referent is deferred one level per construction."""
    as_printed = ndr.Params(
        "ppwszSharePaths" / ndr.Ref(ndr.ConfArray(ndr.Unique(ndr.Unique(ndr.WString())))),
        "pdwNumberOfPaths" / ndr.DWORD,
        "ErrorCode" / ndr.LONG,
    )
    r = I_CreateNewSmbShares3AsPrinted()
    arr = PLPWSTR_ARRAY()
    items = []
    # ids in marshalling order: the 3 LPWSTR* first (array scalars), then each LPWSTR as its
    # referent is reached.
    for i, p in enumerate(PATHS):
        outer = PLPWSTR()
        outer["ReferentID"] = ref(i)
        outer["Data"] = i_lpwstr(p, ref(3 + i))
        items.append(outer)
    arr["Data"] = items
    r["ppwszSharePaths"] = arr
    r["pdwNumberOfPaths"] = len(PATHS)
    r["ErrorCode"] = 0
    theirs = r.getData()
    ours = as_printed.build({"ppwszSharePaths": PATHS, "pdwNumberOfPaths": 3, "ErrorCode": 0})
    # max_count + 3 LPWSTR* ids, then per path: its LPWSTR id, then the string.
    pads, pos = [], 4 + 12
    for p in PATHS:
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        pos += 4 + 12 + 2 * (len(p) + 1)
    same(ours, theirs, pads + tail_pad(pos))
    assert list(as_printed.parse(theirs).ppwszSharePaths) == PATHS
    # and it is not what csvp's CprepCreateNewSmbShares3 reads: one pointer level less
    with pytest.raises(ndr.NdrError):  # the first LPWSTR* id read as a max_count
        CREATE_SHARES.response().parse(theirs)


# ==== 6. [out, size_is(,*pcb)] BYTE **: CprepDiskGetUniqueIds3 response ===================
GET_UNIQUE_IDS3 = method("IClusterStorage3", "CprepDiskGetUniqueIds3")


@pytest.mark.parametrize("dih,dd", [
    pytest.param(b"\x10\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00", b"\x28\x00\x00\x00\x01\x02",
                 id="both-buffers"),
    pytest.param(b"\xaa\xbb\xcc", None, id="odd-length-and-null"),
    pytest.param(None, b"\x01", id="null-and-one-byte"),
    pytest.param(None, None, id="both-null"),
])
def test_get_unique_ids3_response_matches_reference(dih, dd):
    r = I_CprepDiskGetUniqueIds3Response()
    n, pads, pos = 0, [], 0
    for field, size_field, data in (("ppbDeviceIdHeader", "pcbDihSize", dih),
                                    ("ppDeviceDescriptor", "pcbDdSize", dd)):
        if data is None:
            r[field] = NULL
            pos += 4
        else:
            r.fields[field].fields["Data"] = i_bytes(BYTE_CARRAY, data)
            r.fields[field]["ReferentID"] = ref(n)
            n += 1
            pos += 8 + len(data)
        pads += tail_pad(pos)
        pos += (-pos) % 4
        r[size_field] = len(data or b"")
        pos += 4
    r["ErrorCode"] = 0
    theirs = r.getData()
    v = {"ppbDeviceIdHeader": dih, "pcbDihSize": len(dih or b""), "ppDeviceDescriptor": dd,
         "pcbDdSize": len(dd or b""), "ReturnValue": 0}
    ours = GET_UNIQUE_IDS3.response().build(v)
    same(ours, theirs, pads)
    assert GET_UNIQUE_IDS3.response().parse(theirs) == v
    back = parsed_by_impacket(I_CprepDiskGetUniqueIds3Response, ours)
    for field, data in (("ppbDeviceIdHeader", dih), ("ppDeviceDescriptor", dd)):
        p = back.fields[field]  # the pointer itself
        assert (None if p["ReferentID"] == 0 else octets(p)) == data, field


# ==== 7. hyper after the DiskId: CprepDiskPRRegister3 =====================================
PR_REGISTER3 = method("IClusterStorage3", "CprepDiskPRRegister3")


@pytest.mark.parametrize("kind,value,pads", [
    pytest.param(1, None, [(20, 4)], id="guid-diskid-20-bytes-then-4-pad"),
    pytest.param(0xFA0, 2, [], id="number-diskid-8-bytes-no-pad"),
])
def test_pr_register3_request_matches_reference(kind, value, pads):
    r = I_CprepDiskPRRegister3()
    r["DiskId"] = i_diskid(kind, value)
    r["OldPrKey"], r["NewPrKey"] = 0x1122334455667788, 0xFFFFFFFFFFFFFFFF
    theirs = r.getData()
    assert len(theirs) == 24 + sum(n for _, n in pads) + diskid_len(kind) - 8
    v = {"DiskId": n_diskid(kind, value), "OldPrKey": 0x1122334455667788, "NewPrKey": 2 ** 64 - 1}
    ours = PR_REGISTER3.request().build(v)
    same(ours, theirs, pads)
    assert PR_REGISTER3.request().parse(theirs) == v
    back = parsed_by_impacket(I_CprepDiskPRRegister3, ours)
    assert (diskid_of(back["DiskId"]), back["OldPrKey"], back["NewPrKey"]) == (
        n_diskid(kind, value), 0x1122334455667788, 2 ** 64 - 1)


# ==== 8. other shapes: GUID + string, wchar_t[100] out, enum + smalls, BSTRs ==============
def test_csv_test_setup3_request_matches_reference():
    m = method("IClusterStorage3", "CprepCsvTestSetup3")
    r = I_CprepCsvTestSetup3()
    r["TestShareGuid"] = uuid.UUID(GUID_S2).bytes_le
    r["Reserved"] = i_wstr("x")
    theirs = r.getData()
    v = {"TestShareGuid": GUID_S2, "Reserved": "x"}
    ours = m.request().build(v)
    same(ours, theirs)
    assert m.request().parse(theirs) == v
    back = parsed_by_impacket(I_CprepCsvTestSetup3, ours)
    assert (str(uuid.UUID(bytes_le=back["TestShareGuid"])), wstr(back["Reserved"])) == (GUID_S2, "x")


def test_get_fs_name_response_matches_reference():
    """[out] wchar_t FsName[100]: a fixed array parameter, 200 bytes inline."""
    m = method("IClusterStorage2", "CprepDiskGetFSName")
    r = I_CprepDiskGetFSNameResponse()
    r["FsName"] = "NTFS".encode("utf-16-le").ljust(200, b"\0")
    r["ErrorCode"] = 0
    theirs = r.getData()
    ours = m.response().build({"FsName": "NTFS", "ReturnValue": 0})
    same(ours, theirs)
    assert m.response().parse(theirs) == {"FsName": "NTFS", "ReturnValue": 0}
    back = parsed_by_impacket(I_CprepDiskGetFSNameResponse, ours)
    assert bytes(back["FsName"]).decode("utf-16-le").rstrip("\0") == "NTFS"


@pytest.mark.parametrize("profile", [0, 1, 2])
def test_get_next_adapter_firewall_configuration_response_matches_reference(profile):
    m = method("IClusterFirewall", "GetNextAdapterFirewallConfiguration")
    r = I_GetNextAdapterFirewallConfigurationResponse()
    r["adapterId"] = uuid.UUID(GUID_S).bytes_le
    r["adapterProfile"] = profile
    r["serverRulesEnabled"], r["managementRulesEnabled"], r["commonRulesEnabled"] = 1, 0, 1
    r["ErrorCode"] = 0
    theirs = r.getData()
    v = {"adapterId": GUID_S, "adapterProfile": profile, "serverRulesEnabled": 1, "managementRulesEnabled": 0,
         "commonRulesEnabled": 1, "ReturnValue": 0}
    ours = m.response().build(v)
    # GUID 16, enum16 2, three octets, then 3 pad bytes before the HRESULT
    same(ours, theirs, [(21, 3)])
    assert m.response().parse(theirs) == v
    back = parsed_by_impacket(I_GetNextAdapterFirewallConfigurationResponse, ours)
    assert (back["adapterProfile"], back["serverRulesEnabled"], back["commonRulesEnabled"]) == (profile, 1, 1)


@pytest.mark.parametrize("src,dst", [pytest.param("10.0.0.12", "10.0.0.11", id="odd-lengths"),
                                     pytest.param("fe80::1", "fe80::2", id="ipv6")])
def test_send_rt_message_request_matches_reference(src, dst):
    m = method("IClusterNetwork2", "SendRTMessage")
    r = I_SendRTMessage()
    for i, (name, text) in enumerate((("SourceIPAddress", src), ("DestIPAddress", dst))):
        r[name]["asData"] = text
        r.fields[name]["ReferentID"] = ref(i)
    r["DestPort"], r["AddressFamily"], r["MessageSize"], r["Timeout"] = 3343, 2, 1024, 1000
    theirs = r.getData()
    v = {"SourceIPAddress": src, "DestIPAddress": dst, "DestPort": 3343, "AddressFamily": 2,
         "MessageSize": 1024, "Timeout": 1000}
    ours = m.request().build(v)
    # each BSTR: referent id, then (deferred to the end of its parameter) max_count, cBytes,
    # clSize and the units; the next BSTR aligns to 4, the USHORTs to 2, MessageSize to 4.
    first_end = 4 + 12 + 2 * len(src)
    second_end = first_end + (-first_end) % 4 + 4 + 12 + 2 * len(dst)
    assert second_end % 2 == 0
    same(ours, theirs, tail_pad(first_end) + tail_pad(second_end + 2 + 2))
    assert m.request().parse(theirs) == v
    back = parsed_by_impacket(I_SendRTMessage, ours)
    assert (back["SourceIPAddress"]["asData"], back["DestIPAddress"]["asData"], back["Timeout"]) == (src, dst, 1000)


# ==== 9. BSTR (vocabulary) =================================================================
class I_BstrIn(NDRCALL):
    structure = (("bstrIn", i_oaut.BSTR), ("dwFlags", DWORD))


class I_BstrOut(NDRCALL):
    structure = (("pbstrOut", i_oaut.BSTR), ("ErrorCode", HRESULT))  # [out] BSTR*: top-level ref


def i_bstr_call(cls, text, tail):
    r = cls()
    if text is None:
        r[cls.structure[0][0]] = NULL
    else:
        r[cls.structure[0][0]]["asData"] = text
        r.fields[cls.structure[0][0]]["ReferentID"] = ref(0)
    r[cls.structure[1][0]] = tail
    return r


BSTR_IN = ndr.Params("bstrIn" / Bstr(), "dwFlags" / ndr.DWORD)
BSTR_OUT = ndr.Params("pbstrOut" / ndr.Ref(Bstr()), "ErrorCode" / ndr.LONG)


@pytest.mark.parametrize("params,cls", [pytest.param(BSTR_IN, I_BstrIn, id="in-BSTR"),
                                        pytest.param(BSTR_OUT, I_BstrOut, id="out-BSTR*")])
@pytest.mark.parametrize("text", [pytest.param("Cluster Disk 1", id="even"),
                                  pytest.param("abc", id="odd"),
                                  pytest.param("", id="empty"),
                                  pytest.param(None, id="null")])
def test_bstr_matches_reference(params, cls, text):
    theirs = i_bstr_call(cls, text, 0x55).getData()
    end = 4 + (12 + 2 * len(text) if text is not None else 0)
    if text is not None:
        # impacket: [referent, max_count, cBytes, clSize, units]; max_count is units.
        assert theirs[4:16].hex() == (len(text).to_bytes(4, "little") + (2 * len(text)).to_bytes(4, "little")
                                      + len(text).to_bytes(4, "little")).hex()
    names = [n for n, _, _ in params.members]
    ours = params.build({names[0]: text, names[1]: 0x55})
    same(ours, theirs, tail_pad(end))
    got = params.parse(theirs)
    assert got[names[0]] == text and got[names[1]] == 0x55


# ==== 10. SAFEARRAY (vocabulary); then csvp's methods with a SAFEARRAY or BSTRs ===========
# impacket's BYTE_SIZEDARR / DWORD_SIZEDARR put the conformant array inline, but MS-OAUT
# 2.2.30.8 declares `[size_is(clSize)] byte* pData`: a pointer. Corrected here.
class BYTE_SIZEDARR_P(NDRSTRUCT):
    structure = (("clSize", ULONG), ("pData", PBYTE_CARRAY))


class DWORD_SIZEDARR_P(NDRSTRUCT):
    structure = (("clSize", ULONG), ("pData", PDWORD_CARRAY))


class SAFEARRAYUNION_P(i_oaut.SAFEARRAYUNION):
    union = dict(i_oaut.SAFEARRAYUNION.union)
    union[i_oaut.SF_TYPE.SF_I1] = ("ByteStr", BYTE_SIZEDARR_P)
    union[i_oaut.SF_TYPE.SF_I4] = ("LongStr", DWORD_SIZEDARR_P)


class I_SAFEARRAY(i_oaut.SAFEARRAY):
    structure = tuple(("uArrayStructs", SAFEARRAYUNION_P) if n == "uArrayStructs" else (n, t)
                      for n, t in i_oaut.SAFEARRAY.structure)


class I_PSAFEARRAY(NDRPOINTER):
    referent = (("Data", I_SAFEARRAY),)


class I_SafeArrayIn(NDRCALL):  # [in] SAFEARRAY(T) psa, [in] DWORD after it
    structure = (("psa", I_PSAFEARRAY), ("dwTail", DWORD))


SF = {"BSTR": (0x08, "BstrStr"), "ULONG": (0x03, "LongStr"), "byte": (0x10, "ByteStr")}
NDR_ELEMENT = {"BSTR": Bstr(), "ULONG": ndr.ULONG, "byte": ndr.byte}
FEATURES = {"BSTR": 0x0180, "ULONG": 0x0080, "byte": 0x0080}   # our defaults, set on impacket
CB_ELEMENTS = {"BSTR": 8, "ULONG": 4, "byte": 1}


def i_safearray_call(kind, values):
    """impacket's SAFEARRAY with our header values and referent ids.

    ids: psa 0, the arm's data pointer 1, then (BSTR) one per element."""
    r = I_SafeArrayIn()
    fill_safearray(r.fields["psa"], kind, values)
    r["dwTail"] = 0x77
    return r


def fill_safearray(psa, kind, values):
    sf_type, arm = SF[kind]
    psa["ReferentID"] = ref(0)
    sa = psa.fields["Data"]
    sa["cDims"] = 1
    sa["fFeatures"] = FEATURES[kind]
    sa["cbElements"] = CB_ELEMENTS[kind]
    sa["cLocks"] = 0
    u = sa.fields["uArrayStructs"]
    u["tag"] = sf_type
    body = u.fields[arm]
    if kind == "BSTR":
        body["Size"] = len(values)
        items = []
        for i, text in enumerate(values):
            b = i_oaut.BSTR()
            b["asData"] = text
            b["ReferentID"] = ref(2 + i)
            items.append(b)
        arr = i_oaut.BSTR_ARRAY()
        arr["Data"] = items
        body.fields["aBstr"].fields["Data"] = arr
        body.fields["aBstr"]["ReferentID"] = ref(1)
    else:
        body["clSize"] = len(values)
        body.fields["pData"].fields["Data"] = i_bytes(BYTE_CARRAY if kind == "byte" else DWORD_CARRAY, values)
        body.fields["pData"]["ReferentID"] = ref(1)
    bound = i_oaut.SAFEARRAYBOUND()
    bound["cElements"] = len(values)
    bound["lLbound"] = 0
    bounds = i_oaut.SAFEARRAYBOUND_ARRAY()
    bounds["Data"] = [bound]
    sa["rgsabound"] = bounds


SAFEARRAY_CASES = [
    pytest.param("BSTR", ["alpha", "be", ""], id="SAFEARRAY(BSTR)"),
    pytest.param("ULONG", [1, 0xFFFFFFFF, 0x12345678], id="SAFEARRAY(ULONG)"),
    pytest.param("byte", b"\x00\x01\xfe", id="SAFEARRAY(byte)"),
]


def safearray_pads(kind, values):
    """Pads of the impacket stub after its single sfType (44 bytes of header + bounds)."""
    pos = 4 + 4 + 2 + 2 + 4 + 4 + 4 + 4 + 4 + 8  # ptr, conf, cDims, fFeat, cbEl, cLocks, sfType, Size, ptr, bound
    pos += 4  # max_count of the data
    pads = []
    if kind == "BSTR":
        pos += 4 * len(values)
        for text in values:
            pos += 12 + 2 * len(text)
            if pos % 4:
                pads.append((pos, (-pos) % 4))
                pos += (-pos) % 4
    else:
        pos += len(values) * (1 if kind == "byte" else 4)
        pads += tail_pad(pos)
    return pads


def safearray_params(kind):
    return ndr.Params("psa" / SafeArray(NDR_ELEMENT[kind]), "dwTail" / ndr.DWORD)


def header_fields(stub):
    """(conformance, cDims, fFeatures, cbElements, cLocks, sfType, Size, cElements, lLbound)."""
    conf, c_dims, feat, cb, locks, sf = struct.unpack_from("<IHHIII", stub, 4)
    size, _ptr, c_elems, lbound = struct.unpack_from("<IIIi", stub, 24)
    return conf, c_dims, feat, cb, locks, sf, size, c_elems, lbound


@pytest.mark.parametrize("kind,values", SAFEARRAY_CASES)
def test_safearray_reference_header(kind, values):
    """Pins the reference header (impacket): sfType once, bounds after the arm's scalars."""
    theirs = i_safearray_call(kind, values).getData()
    assert header_fields(theirs) == (1, 1, FEATURES[kind], CB_ELEMENTS[kind], 0, SF[kind][0],
                                     len(values), len(values), 0)


@pytest.mark.parametrize("kind,values", SAFEARRAY_CASES)
def test_safearray_our_header_fields(kind, values):
    ours = safearray_params(kind).build({"psa": values, "dwTail": 0x77})
    assert header_fields(ours) == (1, 1, FEATURES[kind], CB_ELEMENTS[kind], 0, SF[kind][0],
                                   len(values), len(values), 0)


@pytest.mark.parametrize("kind,values", SAFEARRAY_CASES)
def test_safearray_build_matches_reference(kind, values):
    theirs = i_safearray_call(kind, values).getData()
    same(safearray_params(kind).build({"psa": values, "dwTail": 0x77}), theirs,
         safearray_pads(kind, values))


@pytest.mark.parametrize("kind,values", SAFEARRAY_CASES)
def test_safearray_parses_reference(kind, values):
    got = safearray_params(kind).parse(i_safearray_call(kind, values).getData())
    assert got.psa == (bytes(values) if kind == "byte" else list(values)) and got.dwTail == 0x77


class I_GetIpConfigSerializedResponse(NDRCALL):  # IDL l.5514: [out] SAFEARRAY(byte)*, [out] int*
    structure = (("Data", I_PSAFEARRAY), ("pcbOut", LONG), ("ErrorCode", HRESULT))


@pytest.mark.parametrize("blob", [pytest.param(b"\x00\x01\xfe", id="3-bytes"),
                                  pytest.param(bytes(range(40)), id="40-bytes")])
def test_get_ip_config_serialized_response_matches_reference(blob):
    """csvp's [out] SAFEARRAY(byte)*: a top-level [ref] to the wireSAFEARRAY pointer."""
    m = method("IClusterNetwork2", "GetIpConfigSerialized")
    r = I_GetIpConfigSerializedResponse()
    fill_safearray(r.fields["Data"], "byte", blob)
    r["pcbOut"] = len(blob)
    r["ErrorCode"] = 0
    theirs = r.getData()
    v = {"Data": blob, "pcbOut": len(blob), "ReturnValue": 0}
    ours = m.response().build(v)
    same(ours, theirs, safearray_pads("byte", blob))
    assert m.response().parse(theirs) == v
    back = parsed_by_impacket(I_GetIpConfigSerializedResponse, ours)
    body = back.fields["Data"].fields["Data"].fields["uArrayStructs"].fields["ByteStr"]
    assert (octets(body.fields["pData"]), back["pcbOut"]) == (blob, len(blob))


class I_ConfigSvcSecret(NDRCALL):  # IDL l.5567: [in] BSTR SecretBLOB
    opnum = 3
    structure = (("SecretBLOB", i_oaut.BSTR),)


class I_RetrieveHostLabelResponse(NDRCALL):  # IDL l.5580: [out] BSTR* HostLabel
    structure = (("HostLabel", i_oaut.BSTR), ("ErrorCode", HRESULT))


@pytest.mark.parametrize("text", [pytest.param("Gx7#kP2m!vQ9$wR4", id="even"), pytest.param("abc", id="odd"),
                                  pytest.param(None, id="null")])
def test_cluster_setup_bstrs_match_reference(text):
    """IClusterSetup's [in] BSTR and [out] BSTR*, as csvp declares them."""
    config, label = method("IClusterSetup", "ConfigSvcSecret"), method("IClusterSetup", "RetrieveHostLabel")
    q, a = I_ConfigSvcSecret(), I_RetrieveHostLabelResponse()
    for obj, name in ((q, "SecretBLOB"), (a, "HostLabel")):
        if text is None:
            obj[name] = NULL
        else:
            obj[name]["asData"] = text
            obj.fields[name]["ReferentID"] = ref(0)
    a["ErrorCode"] = 0
    end = 4 + (12 + 2 * len(text) if text is not None else 0)
    same(config.request().build({"SecretBLOB": text}), q.getData())
    same(label.response().build({"HostLabel": text, "ReturnValue": 0}), a.getData(), tail_pad(end))
    assert config.request().parse(q.getData()) == {"SecretBLOB": text}
    assert label.response().parse(a.getData()) == {"HostLabel": text, "ReturnValue": 0}
    back = parsed_by_impacket(I_RetrieveHostLabelResponse,
                              label.response().build({"HostLabel": text, "ReturnValue": 0}))
    assert (None if back.fields["HostLabel"]["ReferentID"] == 0 else back["HostLabel"]["asData"]) == text


# ==== 11. small, BOOLEAN and hyper packing in a struct (vocabulary) =======================
class I_Packed(NDRSTRUCT):
    structure = (
        ("a", NDRSMALL),
        ("b", BOOLEAN),
        ("c", USHORT),
        ("d", NDRSMALL),
        ("e", BOOLEAN),
        ("f", ULONG),
        ("g", NDRSMALL),
        ("h", NDRHYPER),
        ("i", BOOLEAN),
    )


PACKED = ndr.Struct("Packed", "-", "a" / ndr.small, "b" / ndr.BOOLEAN, "c" / ndr.USHORT,
                    "d" / ndr.small, "e" / ndr.BOOLEAN, "f" / ndr.ULONG, "g" / ndr.small,
                    "h" / ndr.hyper, "i" / ndr.BOOLEAN)
PACKED_V = {"a": -2, "b": 1, "c": 0xBEEF, "d": 0x7F, "e": 0, "f": 0x01020304, "g": -128,
            "h": -0x0123456789ABCDEF, "i": 1}


class I_PackedCall(NDRCALL):
    structure = (("lead", BOOLEAN), ("s", I_Packed), ("tail", ULONG))


def test_small_boolean_packing_matches_reference():
    s = I_Packed()
    for k, v in PACKED_V.items():
        s[k] = v
    theirs = s.getData()
    # a b c(2) d e pad(2) f(4) g pad(7) h(8) i  -> struct aligned 8
    assert len(theirs) == 25
    same(PACKED.build(PACKED_V), theirs, [(6, 2), (13, 3)])
    assert dict(PACKED.parse(theirs)) == PACKED_V


def test_small_boolean_struct_inside_call_matches_reference():
    """A BOOLEAN parameter, then the 8-aligned struct (7 pad bytes), then a ULONG."""
    r = I_PackedCall()
    r["lead"] = 1
    s = I_Packed()
    for k, v in PACKED_V.items():
        s[k] = v
    r["s"] = s
    r["tail"] = 0xCAFEF00D
    theirs = r.getData()
    params = ndr.Params("lead" / ndr.BOOLEAN, "s" / PACKED, "tail" / ndr.ULONG)
    ours = params.build({"lead": 1, "s": PACKED_V, "tail": 0xCAFEF00D})
    same(ours, theirs, [(1, 7), (8 + 6, 2), (8 + 13, 3), (8 + 25, 3)])
    got = params.parse(theirs)
    assert got.lead == 1 and dict(got.s) == PACKED_V and got.tail == 0xCAFEF00D
