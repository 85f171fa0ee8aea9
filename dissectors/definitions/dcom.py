"""MS-DCOM 2.2.13: ORPCTHIS and ORPCTHAT, the first parameter of every DCOM request and
response stub, in the NDR vocabulary. Their Wireshark fields are named by type, like
every NDR structure's (`<proto>.orpcthis.*`), not repeated per method."""
from __future__ import annotations

from dissectors.vocabulary.ndr import GUID, ULONG, USHORT, ConfArray, Struct, Unique, byte

ORPCTHIS_FLAGS = {"ORPCF_LOCAL": 0x01, "ORPCF_RESERVED1": 0x02, "ORPCF_RESERVED2": 0x04,
                  "ORPCF_RESERVED3": 0x08, "ORPCF_RESERVED4": 0x10}

COMVERSION = Struct("COMVERSION", "MS-DCOM 2.2.11",
                    "MajorVersion" / USHORT,
                    "MinorVersion" / USHORT)

# [size_is((size+7)&~7)] byte data[]: a conformant struct, its count hoisted to the front.
ORPC_EXTENT = Struct("ORPC_EXTENT", "MS-DCOM 2.2.21.4",
                     "id" / GUID,
                     "size" / ULONG,
                     "data" / ConfArray(byte))

ORPC_EXTENT_ARRAY = Struct("ORPC_EXTENT_ARRAY", "MS-DCOM 2.2.21.5",
                           "size" / ULONG,
                           "reserved" / ULONG,
                           "extent" / Unique(ConfArray(Unique(ORPC_EXTENT))))

ORPCTHIS = Struct("ORPCTHIS", "MS-DCOM 2.2.13.1",
                  "version" / COMVERSION,
                  "flags" / ULONG.with_flags(ORPCTHIS_FLAGS),
                  "reserved1" / ULONG,
                  "cid" / GUID,
                  "extensions" / Unique(ORPC_EXTENT_ARRAY))

ORPCTHAT = Struct("ORPCTHAT", "MS-DCOM 2.2.13.3",
                  "flags" / ULONG,
                  "extensions" / Unique(ORPC_EXTENT_ARRAY))
