"""dissectors.vocabulary.ndr against a reference NDR encoder: impacket's (test-only dependency).

Each case builds the same value with ndr.py and with impacket.dcerpc.v5.ndr and compares
the bytes, then parses impacket's bytes with ndr.py. The ndr.py types are written inline,
as the MS-CSVP IDL (/work/shared/specs/MS-CSVP.md, section 6) reads.

Two things differ between the encoders by design, and only those are normalised:

- Referent ids. ndr.py numbers pointers 0x00020000, 0x00020004, ... in marshalling order
  (as Windows does); impacket picks random ids. The tests set every impacket pointer's
  ReferentID to the id ndr.py gives it, so referent ids are compared too, never masked.
- Alignment padding. NDR leaves pad octets unspecified (C706 14.2.2). ndr.py writes 0,
  impacket writes filler bytes (0xaa, 0xab, 0xbf, ...). Each case lists its pad runs as
  (offset, length); `unpad` checks that impacket really put non-zero filler there (so a
  listed run is a pad, not data) and zeroes it. ndr.py's bytes are then compared whole,
  so its pads must sit at exactly those offsets and be zero.

Where impacket itself departs from Windows/MIDL (noted at each such place), the impacket
side is corrected with a small subclass, and the reason is given.

Two ndr.py defects these tests found, now fixed:
- CPREP_DISKID: ndr.py aligned the whole non-encapsulated union to 4 before sending the
  discriminant (NDR64's rule, MS-RPCE 2.2.5.3.4.4). NDR32 (Microsoft's NDR engine,
  NdrpUnionMarshall; Samba's ndr_push_union_align is a no-op outside NDR64; impacket)
  sends the enum16 discriminant right after DiskIdType and aligns only the arm.
- wireSAFEARRAY: SAFEARRAYUNION is an *encapsulated* union (`switch (unsigned long
  sfType)`), so sfType goes on the wire once; ndr.py sends it twice.
"""
import struct
import uuid

import pytest

from dissectors.vocabulary import ndr
from dissectors.vocabulary.oaut import Bstr, SafeArray

from impacket.dcerpc.v5.dtypes import GUID as I_GUID
from impacket.dcerpc.v5.dtypes import BOOLEAN, DWORD, HRESULT, LPWSTR, ULONG, ULONGLONG, USHORT, WSTR
from impacket.dcerpc.v5.dcom import oaut
from impacket.dcerpc.v5.enum import Enum
from impacket.dcerpc.v5.ndr import (NULL, NDRCALL, NDRENUM, NDRHYPER, NDRPOINTER, NDRSMALL, NDRSTRUCT, NDRUNION,
                                    NDRUniConformantArray, NDRUniConformantVaryingArray, NDRUniFixedArray)

REF = 0x00020000  # ndr.py's first referent id; each further pointer adds 4
GUID_S = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
GUID_B = uuid.UUID(GUID_S).bytes_le
GUID_S2 = "01234567-89ab-cdef-0123-456789abcdef"
GUID_B2 = uuid.UUID(GUID_S2).bytes_le



def ref(i):
    return REF + 4 * i


def set_refs(*pointers):
    """Give impacket pointers ndr.py's referent ids, in marshalling order."""
    for i, p in enumerate(pointers):
        p["ReferentID"] = ref(i)


def unpad(data, pads):
    b = bytearray(data)
    for off, n in pads:
        run = b[off:off + n]
        assert len(run) == n and all(run), (
            "impacket has no filler at %d+%d (%s): the case's pad list is wrong" % (off, n, run.hex()))
        b[off:off + n] = bytes(n)
    return bytes(b)


def same(ours, theirs, pads=()):
    ref_bytes = unpad(theirs, pads)
    assert ours.hex() == ref_bytes.hex()


# ==== MS-CSVP types, ndr.py side ===========================================================
CPREP_DISKID_ENUM = ndr.Enum16({0x0: "CprepIdSignature", 0x1: "CprepIdGuid",
                                0xFA0: "CprepIdNumber", 0x1388: "CprepIdUnknown"})
CPREP_DISKID = ndr.Struct(
    "CPREP_DISKID", "2.2.2",
    "DiskIdType" / CPREP_DISKID_ENUM,
    ndr.Union(on="DiskIdType", switch_type=CPREP_DISKID_ENUM, cases={
        0x0: "DiskSignature" / ndr.ULONG,
        0x1: "DiskGuid" / ndr.GUID,
        0xFA0: "DeviceNumber" / ndr.ULONG,
        0x1388: "Junk" / ndr.ULONG,
    }))


# ==== impacket side, written the way impacket writes MS IDL ================================
class I_CPREP_DISKID_ENUM(NDRENUM):  # NDRENUM: '<H' in NDR32
    class enumItems(Enum):
        CprepIdSignature = 0x0
        CprepIdGuid = 0x1
        CprepIdNumber = 0xFA0
        CprepIdUnknown = 0x1388


class I_CPREP_DISKID_UNION(NDRUNION):  # default tag: NDRUSHORT, the enum's wire type
    union = {
        0x0: ("DiskSignature", ULONG),
        0x1: ("DiskGuid", I_GUID),
        0xFA0: ("DeviceNumber", ULONG),
        0x1388: ("Junk", ULONG),
    }


class I_CPREP_DISKID(NDRSTRUCT):
    structure = (
        ("DiskIdType", I_CPREP_DISKID_ENUM),
        ("u", I_CPREP_DISKID_UNION),
    )


ARM_NAME = {0x0: "DiskSignature", 0x1: "DiskGuid", 0xFA0: "DeviceNumber", 0x1388: "Junk"}


def i_diskid(kind, value):
    s = I_CPREP_DISKID()
    s["DiskIdType"] = kind
    s["u"]["tag"] = kind
    s["u"][ARM_NAME[kind]] = GUID_B if kind == 1 else value
    return s


def n_diskid(kind, value):
    return {"DiskIdType": kind, ARM_NAME[kind]: GUID_S if kind == 1 else value}


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
    same(CPREP_DISKID.build(n_diskid(kind, value)), i_diskid(kind, value).getData())


@pytest.mark.parametrize("kind,value,wire", DISKID_CASES)
def test_cprep_diskid_parses_reference(kind, value, wire):
    got = CPREP_DISKID.parse(i_diskid(kind, value).getData())
    assert got["DiskIdType"] == kind
    assert got[ARM_NAME[kind]] == (GUID_S if kind == 1 else value)


# ==== 2. [in] parameters: CprepDiskWriteFileData ==========================================
class I_CprepDiskWriteFileData(NDRCALL):
    opnum = 17
    structure = (
        ("DiskId", I_CPREP_DISKID),
        ("ulPartition", ULONG),
        ("FileName", WSTR),          # [in, string] wchar_t*: top-level [ref], no referent id
        ("cbDataIn", ULONG),
        ("DataIn", BYTE_CARRAY),     # [in, size_is(cbDataIn)] byte*: top-level [ref]
    )


class I_WriteFileDataTail(NDRCALL):
    structure = I_CprepDiskWriteFileData.structure[1:]


WRITE_FILE_DATA = ndr.Params(
    "DiskId" / CPREP_DISKID,
    "ulPartition" / ndr.ULONG,
    "FileName" / ndr.Ref(ndr.WString()),
    "cbDataIn" / ndr.ULONG,
    "DataIn" / ndr.Ref(ndr.ConfArray(ndr.byte)),
)
WRITE_FILE_DATA_TAIL = ndr.Params(*[n / t for n, t, _ in WRITE_FILE_DATA.members[1:]])

FILE_NAME = "ClusterStorage\\probe.txt"  # 24 chars + NUL: 25 units, 50 bytes -> 2 pad bytes
DATA_IN = b"\x01\x02\x03\x04\x05"


def i_write_file_data(cls, kind, value):
    r = cls()
    if "DiskId" in r.fields:
        r["DiskId"] = i_diskid(kind, value)
    r["ulPartition"] = 2
    r["FileName"] = i_wstr(FILE_NAME)
    r["cbDataIn"] = len(DATA_IN)
    r["DataIn"] = i_bytes(BYTE_CARRAY, DATA_IN)
    return r


def n_write_file_data(kind, value):
    return {"DiskId": n_diskid(kind, value), "ulPartition": 2, "FileName": FILE_NAME,
            "cbDataIn": len(DATA_IN), "DataIn": DATA_IN}


def write_tail_pads(start):
    # FileName: max, offset, actual (12) + 50 bytes -> ends at start+4+62; cbDataIn aligns.
    end = start + 4 + 12 + 2 * (len(FILE_NAME) + 1)
    return [(end, (-end) % 4)]


def test_write_file_data_without_diskid_matches_reference():
    """The parameters after DiskId, alone: string, count, conformant byte array."""
    theirs = i_write_file_data(I_WriteFileDataTail, 0, 0).getData()
    v = n_write_file_data(0, 0)
    del v["DiskId"]
    same(WRITE_FILE_DATA_TAIL.build(v), theirs, pads=write_tail_pads(0))
    got = WRITE_FILE_DATA_TAIL.parse(theirs)
    assert (got.ulPartition, got.FileName, got.cbDataIn, got.DataIn) == (2, FILE_NAME, 5, DATA_IN)


@pytest.mark.parametrize("kind,value", [pytest.param(0, 0x11223344, id="signature"),
                                        pytest.param(1, None, id="guid")])
def test_write_file_data_matches_reference(kind, value):
    theirs = i_write_file_data(I_CprepDiskWriteFileData, kind, value).getData()
    diskid_len = 20 if kind == 1 else 8
    same(WRITE_FILE_DATA.build(n_write_file_data(kind, value)), theirs, pads=write_tail_pads(diskid_len))


def test_write_file_data_parses_reference():
    got = WRITE_FILE_DATA.parse(i_write_file_data(I_CprepDiskWriteFileData, 0xFA0, 3).getData())
    assert got.DiskId.DeviceNumber == 3 and got.FileName == FILE_NAME and got.DataIn == DATA_IN


# ==== 3. [out] parameters: CprepDiskRawRead response =======================================
class I_CprepDiskRawReadResponse(NDRCALL):
    structure = (
        ("pbData", BYTE_CVARRAY),    # [out, size_is(cbData), length_is(*pcbDataRead)] byte*
        ("pcbDataRead", ULONG),
        ("ullatency", ULONG),
        ("ErrorCode", HRESULT),
    )


RAW_READ_RESPONSE = ndr.Params(
    "pbData" / ndr.Ref(ndr.ConfArray(ndr.byte, varying=True)),
    "pcbDataRead" / ndr.Ref(ndr.ULONG),
    "ullatency" / ndr.Ref(ndr.ULONG),
    "ErrorCode" / ndr.LONG,
)
SECTOR = bytes(range(0x41, 0x48))  # 7 bytes: 1 pad byte before pcbDataRead


def i_raw_read(data, max_count=None, status=0):
    r = I_CprepDiskRawReadResponse()
    r["pbData"] = i_bytes(BYTE_CVARRAY, data)
    if max_count is not None:
        r.fields["pbData"].fields["MaximumCount"] = max_count
    r["pcbDataRead"] = len(data)
    r["ullatency"] = 12
    r["ErrorCode"] = status
    return r


@pytest.mark.parametrize("data,status", [
    pytest.param(SECTOR, 0, id="7-bytes-S_OK"),
    pytest.param(bytes(range(256)) * 2, 0, id="512-byte-sector"),
    pytest.param(b"", -0x7FF8FFE2, id="empty-ERROR_READ_FAULT"),
])
def test_raw_read_response_matches_reference(data, status):
    theirs = i_raw_read(data, status=status).getData()
    end = 12 + len(data)
    same(RAW_READ_RESPONSE.build({"pbData": data, "pcbDataRead": len(data), "ullatency": 12,
                                  "ErrorCode": status}),
         theirs, pads=[(end, (-end) % 4)] if end % 4 else [])
    got = RAW_READ_RESPONSE.parse(theirs)
    assert (got.pbData, got.pcbDataRead, got.ullatency, got.ErrorCode) == (data, len(data), 12, status)


def test_raw_read_response_parses_max_count_above_actual_count():
    """size_is(cbData)=16 with length_is(*pcbDataRead)=7: ndr.py keeps the 7 sent bytes."""
    theirs = i_raw_read(SECTOR, max_count=16).getData()
    assert theirs[:12].hex() == "10000000" "00000000" "07000000"
    got = RAW_READ_RESPONSE.parse(theirs)
    assert (got.pbData, got.pcbDataRead, got.ullatency) == (SECTOR, 7, 12)


# ==== 4. embedded [string] LPWSTRs and a GUID: DISK_PROPS_EX ===============================
DISK_PROPS_EX_SUBSET = ndr.Struct(
    "DISK_PROPS_EX_SUBSET", "2.2.6",
    "DiskNumber" / ndr.ULONG,
    "AdapterDesc" / ndr.FixedWString(5),
    "pwszFriendlyName" / ndr.Unique(ndr.WString()),
    "NumPaths" / ndr.ULONG,
    "pwszPoolName" / ndr.Unique(ndr.WString()),
    "pwszPage83Id" / ndr.Unique(ndr.WString()),
    "pwszSerialNumber" / ndr.Unique(ndr.WString()),
    "guidPoolId" / ndr.GUID,
)


class WCHAR5(NDRUniFixedArray):
    def getDataLen(self, data, offset=0):
        return 10


class I_DISK_PROPS_EX_SUBSET(NDRSTRUCT):
    structure = (
        ("DiskNumber", ULONG),
        ("AdapterDesc", WCHAR5),
        ("pwszFriendlyName", LPWSTR),
        ("NumPaths", ULONG),
        ("pwszPoolName", LPWSTR),
        ("pwszPage83Id", LPWSTR),
        ("pwszSerialNumber", LPWSTR),
        ("guidPoolId", I_GUID),
    )


PROPS = {"DiskNumber": 3, "AdapterDesc": "HBA", "pwszFriendlyName": "Msft Virtual Disk",
         "NumPaths": 1, "pwszPoolName": None, "pwszPage83Id": "naa.600", "pwszSerialNumber": "S1",
         "guidPoolId": GUID_S}


def i_props(props):
    s = I_DISK_PROPS_EX_SUBSET()
    s["DiskNumber"] = props["DiskNumber"]
    s["AdapterDesc"] = props["AdapterDesc"].encode("utf-16-le").ljust(10, b"\0")
    n = 0
    for name in ("pwszFriendlyName", "pwszPoolName", "pwszPage83Id", "pwszSerialNumber"):
        if props[name] is None:
            s[name] = NULL
        else:
            s.fields[name]["ReferentID"] = ref(n)
            s[name] = props[name] + "\0"
            n += 1
    s["NumPaths"] = props["NumPaths"]
    s["guidPoolId"] = uuid.UUID(props["guidPoolId"]).bytes_le
    return s


def props_pads(props):
    """Pads: after AdapterDesc (4+10 -> 16), then after each odd-length deferred string."""
    pads, pos = [(14, 2)], 4 + 12 + 4 + 4 + 4 + 4 + 4 + 16
    for name in ("pwszFriendlyName", "pwszPoolName", "pwszPage83Id", "pwszSerialNumber"):
        if props[name] is None:
            continue
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        pos += 12 + 2 * (len(props[name]) + 1)
    return pads


@pytest.mark.parametrize("props", [
    pytest.param(PROPS, id="null-pool-name"),
    pytest.param(dict(PROPS, pwszPoolName="Pool 1"), id="all-strings"),
    pytest.param(dict(PROPS, pwszFriendlyName=None, pwszPoolName=None, pwszPage83Id=None,
                      pwszSerialNumber=None), id="all-null"),
])
def test_disk_props_subset_deferral_matches_reference(props):
    """Embedded pointers: referent ids inline in order, strings after the struct's scalars."""
    theirs = i_props(props).getData()
    theirs += i_props(props).getDataReferents(len(theirs))  # impacket defers referents here
    same(DISK_PROPS_EX_SUBSET.build(props), theirs, pads=props_pads(props))
    got = DISK_PROPS_EX_SUBSET.parse(theirs)
    for k, v in props.items():
        assert got[k] == v, k


class I_GetProps3Response(NDRCALL):  # [out] DISK_PROPS_EX* pDiskProps + HRESULT
    structure = (("pDiskProps", I_DISK_PROPS_EX_SUBSET), ("ErrorCode", HRESULT))


def test_disk_props_subset_as_out_parameter_matches_reference():
    """Inside NDRCALL the referents come before the next parameter (ErrorCode)."""
    r = I_GetProps3Response()
    r["pDiskProps"] = i_props(PROPS)
    r["ErrorCode"] = 0
    theirs = r.getData()
    params = ndr.Params("pDiskProps" / ndr.Ref(DISK_PROPS_EX_SUBSET), "ErrorCode" / ndr.LONG)
    ours = params.build({"pDiskProps": PROPS, "ErrorCode": 0})
    # The last string (S1\0: 3 units) ends 2 bytes short of a 4 boundary before ErrorCode.
    last = len(theirs) - 4
    pads = props_pads(PROPS) + [(last - 2, 2)]
    same(ours, theirs, pads=pads)
    got = params.parse(theirs)
    assert got.pDiskProps.pwszSerialNumber == "S1" and got.ErrorCode == 0


# ==== 5. LPWSTR arrays: CprepCreateNewSmbShares3 / CprepConnectToNewSmbShares3 ============
PATHS = ["\\\\node1\\share$", "\\\\node2\\x", "\\\\n3\\abc"]


def string_pads(start, texts):
    pads, pos = [], start
    for t in texts:
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        pos += 12 + 2 * (len(t) + 1)
    return pads, pos


class I_CprepConnectToNewSmbShares3(NDRCALL):
    opnum = 8
    structure = (
        ("ppwszSharePaths", LPWSTR_CARRAY),  # [in, string, size_is(n,)] LPWSTR*: top-level [ref]
        ("dwNumberOfPaths", DWORD),
    )


CONNECT_SHARES = ndr.Params(
    "ppwszSharePaths" / ndr.Ref(ndr.ConfArray(ndr.Unique(ndr.WString()))),
    "dwNumberOfPaths" / ndr.DWORD,
)


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
    if end % 4:
        pads.append((end, (-end) % 4))
    same(CONNECT_SHARES.build({"ppwszSharePaths": paths, "dwNumberOfPaths": len(paths)}), theirs, pads)
    got = CONNECT_SHARES.parse(theirs)
    assert list(got.ppwszSharePaths) == paths and got.dwNumberOfPaths == len(paths)


class I_CreateNewSmbShares3Response(NDRCALL):
    # [out, string, size_is(,*pdw)] LPWSTR** read as: top-level [ref] -> [unique] pointer to
    # the conformant array of [unique] string pointers (the array the server allocates).
    structure = (
        ("ppwszSharePaths", PLPWSTR_CARRAY),
        ("pdwNumberOfPaths", DWORD),
        ("ErrorCode", HRESULT),
    )


CREATE_SHARES_RESPONSE = ndr.Params(
    "ppwszSharePaths" / ndr.Ref(ndr.Unique(ndr.ConfArray(ndr.Unique(ndr.WString())))),
    "pdwNumberOfPaths" / ndr.DWORD,
    "ErrorCode" / ndr.LONG,
)


class I_CreateNewSmbShares3ResponseLiteral(NDRCALL):
    # The IDL as printed, size_is(*pdw) on the first level of LPWSTR**: top-level [ref] to
    # a conformant array of LPWSTR*, each a [unique] pointer to a [unique] LPWSTR.
    structure = (
        ("ppwszSharePaths", PLPWSTR_ARRAY),
        ("pdwNumberOfPaths", DWORD),
        ("ErrorCode", HRESULT),
    )


CREATE_SHARES_RESPONSE_LITERAL = ndr.Params(
    "ppwszSharePaths" / ndr.Ref(ndr.ConfArray(ndr.Unique(ndr.Unique(ndr.WString())))),
    "pdwNumberOfPaths" / ndr.DWORD,
    "ErrorCode" / ndr.LONG,
)


@pytest.mark.parametrize("paths", [pytest.param(PATHS, id="three-paths"),
                                   pytest.param(PATHS[1:2], id="one-path"),
                                   pytest.param(None, id="null-array")])
def test_create_smb_shares3_response_matches_reference(paths):
    r = I_CreateNewSmbShares3Response()
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
        if end % 4:
            pads.append((end, (-end) % 4))
    ours = CREATE_SHARES_RESPONSE.build({"ppwszSharePaths": paths, "pdwNumberOfPaths": len(paths or []),
                                         "ErrorCode": 0})
    same(ours, theirs, pads)
    got = CREATE_SHARES_RESPONSE.parse(theirs)
    assert (list(got.ppwszSharePaths) if paths is not None else got.ppwszSharePaths) == paths
    assert got.pdwNumberOfPaths == len(paths or [])


def test_create_smb_shares3_response_literal_idl_matches_reference():
    r = I_CreateNewSmbShares3ResponseLiteral()
    arr = PLPWSTR_ARRAY()
    items = []
    # ids in marshalling order: the 3 LPWSTR* first (array scalars), then each LPWSTR as its
    # referent is reached (deferred: one level per construction).
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
    ours = CREATE_SHARES_RESPONSE_LITERAL.build({"ppwszSharePaths": PATHS, "pdwNumberOfPaths": 3,
                                                 "ErrorCode": 0})
    # max_count + 3 LPWSTR* ids, then per path: its LPWSTR id, then the string (deferred
    # one level at a time, so each string follows its own LPWSTR id).
    pads, pos = [], 4 + 12
    for p in PATHS:
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        pos += 4 + 12 + 2 * (len(p) + 1)
    pads += [(pos, (-pos) % 4)] if pos % 4 else []
    same(ours, theirs, pads)
    got = CREATE_SHARES_RESPONSE_LITERAL.parse(theirs)
    assert list(got.ppwszSharePaths) == PATHS


# ==== 6. [out, size_is(,*pcb)] BYTE **: CprepDiskGetUniqueIds3 response ===================
class I_CprepDiskGetUniqueIds3Response(NDRCALL):
    structure = (
        ("ppbDeviceIdHeader", PBYTE_CARRAY),
        ("pcbDihSize", ULONG),
        ("ppDeviceDescriptor", PBYTE_CARRAY),
        ("pcbDdSize", ULONG),
        ("ErrorCode", HRESULT),
    )


GET_UNIQUE_IDS3_RESPONSE = ndr.Params(
    "ppbDeviceIdHeader" / ndr.Ref(ndr.Unique(ndr.ConfArray(ndr.byte))),
    "pcbDihSize" / ndr.ULONG,
    "ppDeviceDescriptor" / ndr.Ref(ndr.Unique(ndr.ConfArray(ndr.byte))),
    "pcbDdSize" / ndr.ULONG,
    "ErrorCode" / ndr.LONG,
)


@pytest.mark.parametrize("dih,dd", [
    pytest.param(b"\x10\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00", b"\x28\x00\x00\x00\x01\x02",
                 id="both-buffers"),
    pytest.param(b"\xaa\xbb\xcc", None, id="odd-length-and-null"),
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
        if pos % 4:
            pads.append((pos, (-pos) % 4))
            pos += (-pos) % 4
        r[size_field] = len(data or b"")
        pos += 4
    r["ErrorCode"] = 0
    theirs = r.getData()
    v = {"ppbDeviceIdHeader": dih, "pcbDihSize": len(dih or b""), "ppDeviceDescriptor": dd,
         "pcbDdSize": len(dd or b""), "ErrorCode": 0}
    same(GET_UNIQUE_IDS3_RESPONSE.build(v), theirs, pads)
    got = GET_UNIQUE_IDS3_RESPONSE.parse(theirs)
    for k, x in v.items():
        assert got[k] == x, k


# ==== 7. BSTR ==============================================================================
class I_BstrIn(NDRCALL):
    structure = (("bstrIn", oaut.BSTR), ("dwFlags", DWORD))


class I_BstrOut(NDRCALL):
    structure = (("pbstrOut", oaut.BSTR), ("ErrorCode", HRESULT))  # [out] BSTR*: top-level ref


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
    same(ours, theirs, [(end, (-end) % 4)] if end % 4 else [])
    got = params.parse(theirs)
    assert got[names[0]] == text and got[names[1]] == 0x55


# ==== 8. SAFEARRAY =========================================================================
# impacket's BYTE_SIZEDARR / DWORD_SIZEDARR put the conformant array inline, but MS-OAUT
# 2.2.30.8 declares `[size_is(clSize)] byte* pData`: a pointer. Corrected here.
class BYTE_SIZEDARR_P(NDRSTRUCT):
    structure = (("clSize", ULONG), ("pData", PBYTE_CARRAY))


class DWORD_SIZEDARR_P(NDRSTRUCT):
    structure = (("clSize", ULONG), ("pData", PDWORD_CARRAY))


class SAFEARRAYUNION_P(oaut.SAFEARRAYUNION):
    union = dict(oaut.SAFEARRAYUNION.union)
    union[oaut.SF_TYPE.SF_I1] = ("ByteStr", BYTE_SIZEDARR_P)
    union[oaut.SF_TYPE.SF_I4] = ("LongStr", DWORD_SIZEDARR_P)


class I_SAFEARRAY(oaut.SAFEARRAY):
    structure = tuple(("uArrayStructs", SAFEARRAYUNION_P) if n == "uArrayStructs" else (n, t)
                      for n, t in oaut.SAFEARRAY.structure)


class I_PSAFEARRAY(NDRPOINTER):
    referent = (("Data", I_SAFEARRAY),)


class I_SafeArrayIn(NDRCALL):  # [in] SAFEARRAY(T) psa, [in] DWORD after it
    structure = (("psa", I_PSAFEARRAY), ("dwTail", DWORD))


SF = {"BSTR": (0x08, "BstrStr"), "ULONG": (0x03, "LongStr"), "byte": (0x10, "ByteStr")}
NDR_ELEMENT = {"BSTR": Bstr(), "ULONG": ndr.ULONG, "byte": ndr.byte}
FEATURES = {"BSTR": 0x0180, "ULONG": 0x0080, "byte": 0x0080}   # ndr.py's defaults, set on impacket
CB_ELEMENTS = {"BSTR": 8, "ULONG": 4, "byte": 1}


def i_safearray_call(kind, values):
    """impacket's SAFEARRAY with ndr.py's header values and referent ids.

    ids: psa 0, the arm's data pointer 1, then (BSTR) one per element."""
    sf_type, arm = SF[kind]
    r = I_SafeArrayIn()
    psa = r.fields["psa"]
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
            b = oaut.BSTR()
            b["asData"] = text
            b["ReferentID"] = ref(2 + i)
            items.append(b)
        arr = oaut.BSTR_ARRAY()
        arr["Data"] = items
        body.fields["aBstr"].fields["Data"] = arr
        body.fields["aBstr"]["ReferentID"] = ref(1)
    else:
        body["clSize"] = len(values)
        body.fields["pData"].fields["Data"] = i_bytes(BYTE_CARRAY if kind == "byte" else DWORD_CARRAY, values)
        body.fields["pData"]["ReferentID"] = ref(1)
    bound = oaut.SAFEARRAYBOUND()
    bound["cElements"] = len(values)
    bound["lLbound"] = 0
    bounds = oaut.SAFEARRAYBOUND_ARRAY()
    bounds["Data"] = [bound]
    sa["rgsabound"] = bounds
    r["dwTail"] = 0x77
    return r


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
        if pos % 4:
            pads.append((pos, (-pos) % 4))
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
def test_safearray_ndr_py_header_fields(kind, values):
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


# ==== 9. hyper alignment, small and BOOLEAN packing =======================================
class I_PRRegister3(NDRCALL):  # CprepDiskPRRegister3 without DiskId: ULONG then ULONGLONGs
    structure = (("ulTag", ULONG), ("OldPrKey", ULONGLONG), ("NewPrKey", ULONGLONG))


PR_REGISTER = ndr.Params("ulTag" / ndr.ULONG, "OldPrKey" / ndr.ULONGLONG, "NewPrKey" / ndr.ULONGLONG)


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


@pytest.mark.parametrize("start", [pytest.param(0, id="at-0"), pytest.param(4, id="at-4")])
def test_hyper_after_ulong_matches_reference(start):
    r = I_PRRegister3()
    r["ulTag"], r["OldPrKey"], r["NewPrKey"] = 9, 0x1122334455667788, 0xFFFFFFFFFFFFFFFF
    theirs = r.getData()
    assert len(theirs) == 24
    ours = PR_REGISTER.build({"ulTag": 9, "OldPrKey": 0x1122334455667788, "NewPrKey": 2 ** 64 - 1})
    same(ours, theirs, [(4, 4)])
    got = PR_REGISTER.parse(theirs)
    assert (got.ulTag, got.OldPrKey, got.NewPrKey) == (9, 0x1122334455667788, 2 ** 64 - 1)


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
