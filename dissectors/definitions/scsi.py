"""SCSI as RSVD tunnels it: command names, statuses, sense data, CDBs and their data.

Names and layouts follow SPC-3 (T10/1416-D) and SBC-3; MS-RSVD refers to SPC-3 for
the SCSI it carries. Everything here is shared with Python (tests, samples, analyzer)
and generated into the Lua dissector; none of it is typed into a template.

Field namespaces: `scsi.cdb` (every CDB's common fields), `scsi.rw` (block commands),
`scsi.inquiry`, `scsi.capacity`, `scsi.pr` (persistent reservations, both directions),
`scsi.report_luns`, `scsi.mode_sense`, `scsi.unmap`, `scsi.sense`.
"""
from __future__ import annotations

import re

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Enum,
    FixedSized,
    Flag,
    GreedyBytes,
    GreedyRange,
    Array,
    Hex,
    Int8ub,
    Int16ub,
    Int32ub,
    Int64ub,
    Padding,
    Pass,
    Struct,
    Switch,
    this,
)

from dissectors.definitions import scsi_asc
from dissectors.vocabulary.wire import Ascii, BitField, Checked, FieldName, IfEquals, Named, Part, Parts, message, warn_when

# SPC-3 / SBC-3 operation codes (SPC-3 Annex D.3.1).
OPERATION_CODES = dict(
    TEST_UNIT_READY=0x00,
    REQUEST_SENSE=0x03,
    READ_6=0x08,
    WRITE_6=0x0A,
    INQUIRY=0x12,
    MODE_SELECT_6=0x15,
    RESERVE_6=0x16,
    RELEASE_6=0x17,
    MODE_SENSE_6=0x1A,
    START_STOP_UNIT=0x1B,
    SEND_DIAGNOSTIC=0x1D,
    PREVENT_ALLOW_MEDIUM_REMOVAL=0x1E,
    READ_CAPACITY_10=0x25,
    READ_10=0x28,
    WRITE_10=0x2A,
    VERIFY_10=0x2F,
    SYNCHRONIZE_CACHE_10=0x35,
    WRITE_BUFFER=0x3B,
    READ_BUFFER=0x3C,
    WRITE_SAME_10=0x41,
    UNMAP=0x42,
    LOG_SENSE=0x4D,
    MODE_SELECT_10=0x55,
    MODE_SENSE_10=0x5A,
    PERSISTENT_RESERVE_IN=0x5E,
    PERSISTENT_RESERVE_OUT=0x5F,
    EXTENDED_COPY=0x83,
    RECEIVE_COPY_RESULTS=0x84,
    READ_16=0x88,
    COMPARE_AND_WRITE=0x89,
    WRITE_16=0x8A,
    VERIFY_16=0x8F,
    SYNCHRONIZE_CACHE_16=0x91,
    WRITE_SAME_16=0x93,
    SERVICE_ACTION_IN_16=0x9E,
    REPORT_LUNS=0xA0,
    MAINTENANCE_IN=0xA3,
    READ_12=0xA8,
    WRITE_12=0xAA,
)

# SAM-3 5.3.1 status codes.
SCSI_STATUS = dict(
    GOOD=0x00,
    CHECK_CONDITION=0x02,
    CONDITION_MET=0x04,
    BUSY=0x08,
    INTERMEDIATE=0x10,
    INTERMEDIATE_CONDITION_MET=0x14,
    RESERVATION_CONFLICT=0x18,
    COMMAND_TERMINATED=0x22,
    TASK_SET_FULL=0x28,
    ACA_ACTIVE=0x30,
    TASK_ABORTED=0x40,
)

def SCSI_STATUS_CHECKED():
    """A SCSI status byte with the statuses an engineer wants flagged."""
    return Checked(
        Enum(Int8ub, **SCSI_STATUS),
        warn_when(["CHECK_CONDITION"], "SAM-3 5.3.1", "SCSI status %s: the sense data says why", rank=RANK_STATUS),
        warn_when(["RESERVATION_CONFLICT"], "SPC-3 5.6.1", "SCSI status %s: another initiator holds the reservation",
                  rank=RANK_STATUS),
        warn_when(["BUSY", "TASK_SET_FULL", "ACA_ACTIVE", "TASK_ABORTED", "COMMAND_TERMINATED"], "SAM-3 5.3.1",
                  "SCSI status %s", rank=RANK_STATUS),
    )


# Windows srb.h: the low six bits of SrbStatus; 0x80 and 0x40 are flags.
SRB_STATUS = dict(
    SRB_STATUS_PENDING=0x00,
    SRB_STATUS_SUCCESS=0x01,
    SRB_STATUS_ABORTED=0x02,
    SRB_STATUS_ABORT_FAILED=0x03,
    SRB_STATUS_ERROR=0x04,
    SRB_STATUS_BUSY=0x05,
    SRB_STATUS_INVALID_REQUEST=0x06,
    SRB_STATUS_INVALID_PATH_ID=0x07,
    SRB_STATUS_NO_DEVICE=0x08,
    SRB_STATUS_TIMEOUT=0x09,
    SRB_STATUS_SELECTION_TIMEOUT=0x0A,
    SRB_STATUS_COMMAND_TIMEOUT=0x0B,
    SRB_STATUS_MESSAGE_REJECTED=0x0D,
    SRB_STATUS_BUS_RESET=0x0E,
    SRB_STATUS_PARITY_ERROR=0x0F,
    SRB_STATUS_REQUEST_SENSE_FAILED=0x10,
    SRB_STATUS_NO_HBA=0x11,
    SRB_STATUS_DATA_OVERRUN=0x12,
    SRB_STATUS_UNEXPECTED_BUS_FREE=0x13,
    SRB_STATUS_PHASE_SEQUENCE_FAILURE=0x14,
    SRB_STATUS_BAD_SRB_BLOCK_LENGTH=0x15,
    SRB_STATUS_REQUEST_FLUSHED=0x16,
    SRB_STATUS_INVALID_LUN=0x20,
    SRB_STATUS_INVALID_TARGET_ID=0x21,
    SRB_STATUS_BAD_FUNCTION=0x22,
    SRB_STATUS_ERROR_RECOVERY=0x23,
    SRB_STATUS_NOT_POWERED=0x24,
    SRB_STATUS_LINK_DOWN=0x25,
    SRB_STATUS_INSUFFICIENT_RESOURCES=0x26,
    SRB_STATUS_THROTTLED_REQUEST=0x27,
    SRB_STATUS_INTERNAL_ERROR=0x30,
)

# SPC-3 4.5.6, table 27.
SENSE_KEYS = dict(
    NO_SENSE=0x0,
    RECOVERED_ERROR=0x1,
    NOT_READY=0x2,
    MEDIUM_ERROR=0x3,
    HARDWARE_ERROR=0x4,
    ILLEGAL_REQUEST=0x5,
    UNIT_ATTENTION=0x6,
    DATA_PROTECT=0x7,
    BLANK_CHECK=0x8,
    VENDOR_SPECIFIC=0x9,
    COPY_ABORTED=0xA,
    ABORTED_COMMAND=0xB,
    VOLUME_OVERFLOW=0xD,
    MISCOMPARE=0xE,
)

# SPC-3 4.5.6, table 28: ASC << 8 | ASCQ, the ones shared-disk clusters meet, in SPC-3's words;
# ASC_ASCQ below adds every other code Wireshark names (scsi_asc.py, generated from its table).
SPC3_ASC_ASCQ = {
    "NO ADDITIONAL SENSE INFORMATION": 0x0000,
    "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE": 0x0400,
    "LOGICAL UNIT IS IN PROCESS OF BECOMING READY": 0x0401,
    "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED": 0x0402,
    "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED": 0x0403,
    "LOGICAL UNIT NOT READY, FORMAT IN PROGRESS": 0x0404,
    "LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION": 0x040A,
    "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE": 0x040B,
    "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE": 0x040C,
    "LOGICAL UNIT COMMUNICATION FAILURE": 0x0800,
    "WRITE ERROR": 0x0C00,
    "UNRECOVERED READ ERROR": 0x1100,
    "PARAMETER LIST LENGTH ERROR": 0x1A00,
    "INVALID COMMAND OPERATION CODE": 0x2000,
    "LOGICAL BLOCK ADDRESS OUT OF RANGE": 0x2100,
    "INVALID FIELD IN CDB": 0x2400,
    "LOGICAL UNIT NOT SUPPORTED": 0x2500,
    "INVALID FIELD IN PARAMETER LIST": 0x2600,
    "WRITE PROTECTED": 0x2700,
    "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED": 0x2800,
    "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED": 0x2900,
    "POWER ON OCCURRED": 0x2901,
    "SCSI BUS RESET OCCURRED": 0x2902,
    "BUS DEVICE RESET FUNCTION OCCURRED": 0x2903,
    "DEVICE INTERNAL RESET": 0x2904,
    "I_T NEXUS LOSS OCCURRED": 0x2907,
    "PARAMETERS CHANGED": 0x2A00,
    "MODE PARAMETERS CHANGED": 0x2A01,
    "LOG PARAMETERS CHANGED": 0x2A02,
    "RESERVATIONS PREEMPTED": 0x2A03,
    "RESERVATIONS RELEASED": 0x2A04,
    "REGISTRATIONS PREEMPTED": 0x2A05,
    "ASYMMETRIC ACCESS STATE CHANGED": 0x2A06,
    "CAPACITY DATA HAS CHANGED": 0x2A09,
    "COMMAND SEQUENCE ERROR": 0x2C00,
    "COMMANDS CLEARED BY ANOTHER INITIATOR": 0x2F00,
    "MEDIUM NOT PRESENT": 0x3A00,
    "MICROCODE HAS BEEN CHANGED": 0x3F01,
    "INQUIRY DATA HAS CHANGED": 0x3F03,
    "REPORTED LUNS DATA HAS CHANGED": 0x3F0E,
    "INTERNAL TARGET FAILURE": 0x4400,
    "SCSI PARITY ERROR": 0x4700,
    "DATA PHASE ERROR": 0x4B00,
    "SYSTEM RESOURCE FAILURE": 0x5500,
    "FAILURE PREDICTION THRESHOLD EXCEEDED": 0x5D00,
}
_OURS = set(SPC3_ASC_ASCQ.values())
ASC_ASCQ = {**{n: c for n, c in scsi_asc.ASC_ASCQ.items() if c not in _OURS}, **SPC3_ASC_ASCQ}
assert len(set(ASC_ASCQ.values())) == len(ASC_ASCQ), "an ASC/ASCQ name for two codes"

# Sense keys and additional sense codes that mean something happened to the disk. One event, one
# expert item: the ASC/ASCQ says most (rank 3), then the sense key (2), then the status (1).
RANK_STATUS, RANK_SENSE_KEY, RANK_ASC = 1, 2, 3
_SENSE_KEY_RULE = warn_when([k for k in SENSE_KEYS if k not in ("NO_SENSE", "RECOVERED_ERROR")], "SPC-3 4.5.6",
                            "Sense key %s", rank=RANK_SENSE_KEY)
_ASC_RULE = warn_when([
    "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED", "POWER ON OCCURRED", "SCSI BUS RESET OCCURRED",
    "BUS DEVICE RESET FUNCTION OCCURRED", "DEVICE INTERNAL RESET", "I_T NEXUS LOSS OCCURRED",
    "RESERVATIONS PREEMPTED", "RESERVATIONS RELEASED", "REGISTRATIONS PREEMPTED", "CAPACITY DATA HAS CHANGED",
    "REPORTED LUNS DATA HAS CHANGED", "MEDIUM NOT PRESENT", "LOGICAL UNIT NOT SUPPORTED",
    "INVALID COMMAND OPERATION CODE", "INVALID FIELD IN CDB", "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE",
    "LOGICAL UNIT IS IN PROCESS OF BECOMING READY", "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED",
    "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED",
], "SPC-3 4.5.6", "Additional sense: %s", rank=RANK_ASC)

# The names the Info column gives, written as SPC-3 and Wireshark's SCSI dissector write them:
# READ(10), SERVICE ACTION IN(16), CHECK CONDITION, UNIT ATTENTION (value -> text).
def _spoken(names: dict) -> dict:
    return {v: re.sub(r"_(\d+)$", r"(\1)", k).replace("_", " ") for k, v in names.items()}


COMMAND_NAMES = _spoken(OPERATION_CODES)
STATUS_NAMES = _spoken(SCSI_STATUS)
SENSE_KEY_NAMES = _spoken(SENSE_KEYS)
ASC_NAMES = {v: k for k, v in ASC_ASCQ.items()}
# the commands whose CDB addresses logical blocks (an LBA worth naming in Info)
BLOCK_COMMANDS = [v for k, v in OPERATION_CODES.items()
                  if re.match(r"(READ|WRITE|VERIFY|SYNCHRONIZE_CACHE|WRITE_SAME)_\d+$", k)]

PR_IN_SERVICE_ACTIONS = dict(READ_KEYS=0x00, READ_RESERVATION=0x01, REPORT_CAPABILITIES=0x02,
                             READ_FULL_STATUS=0x03)
PR_OUT_SERVICE_ACTIONS = dict(REGISTER=0x00, RESERVE=0x01, RELEASE=0x02, CLEAR=0x03, PREEMPT=0x04,
                              PREEMPT_AND_ABORT=0x05, REGISTER_AND_IGNORE_EXISTING_KEY=0x06,
                              REGISTER_AND_MOVE=0x07)
PR_TYPES = dict(WRITE_EXCLUSIVE=0x1, EXCLUSIVE_ACCESS=0x3, WRITE_EXCLUSIVE_REGISTRANTS_ONLY=0x5,
                EXCLUSIVE_ACCESS_REGISTRANTS_ONLY=0x6, WRITE_EXCLUSIVE_ALL_REGISTRANTS=0x7,
                EXCLUSIVE_ACCESS_ALL_REGISTRANTS=0x8)
PR_SCOPES = dict(LU_SCOPE=0x0)
SERVICE_ACTION_IN_16 = dict(READ_CAPACITY_16=0x10, GET_LBA_STATUS=0x12)
PR_IN_NAMES, PR_OUT_NAMES = _spoken(PR_IN_SERVICE_ACTIONS), _spoken(PR_OUT_SERVICE_ACTIONS)
SERVICE_ACTION_IN_NAMES = _spoken(SERVICE_ACTION_IN_16)
RESPONSE_CODES = dict(CURRENT_FIXED=0x70, DEFERRED_FIXED=0x71, CURRENT_DESCRIPTOR=0x72, DEFERRED_DESCRIPTOR=0x73)
PAGE_CONTROL = dict(CURRENT=0, CHANGEABLE=1, DEFAULT=2, SAVED=3)

_CONTROL = "Control" / Hex(Int8ub) * "The CONTROL byte (SAM-3 5.2)."

# One description for a field name several structures share.
_BLOCKS_DOC = "Blocks to synchronize or write (SYNCHRONIZE CACHE: 0 means to the end of the medium)."
_PAGE_CODE_DOC = "The VPD page: asked for in INQUIRY when EVPD is set, named again in the page returned."
_RETURNED_LBA_DOC = "The last logical block (READ CAPACITY(10): 0xFFFFFFFF means ask READ CAPACITY(16))."
_PR_LENGTH_DOC = ("Bytes that follow: the keys (READ KEYS), 16 or 0 for the reservation (READ RESERVATION), "
                  "the descriptors (READ FULL STATUS).")
_SENSE_LENGTH_DOC = "Bytes of sense data that follow (10 for the 18-byte fixed form; the descriptors' length)."

# -- filter names: one per value, whatever structure carries it, beside Wireshark's own ------------
OPCODE = FieldName("scsi.opcode", "Operation code", "The SCSI command: the CDB's OPERATION CODE (SPC-3 4.3.4)",
                   "scsi.spc.opcode, scsi_sbc.opcode")
LBA = FieldName("scsi.lba", "Logical block address", "The first logical block a block command addresses, "
                "whatever the CDB size (6, 10, 12, 16)", "scsi_sbc.rdwr6.lba, scsi_sbc.rdwr10.lba, scsi_sbc.rdwr16.lba")
TRANSFER_LENGTH = FieldName("scsi.transfer_length", "Transfer length", "Logical blocks a READ, WRITE or VERIFY "
                            "transfers, whatever the CDB size (READ(6)/WRITE(6): 0 means 256)",
                            "scsi_sbc.rdwr6.xferlen, scsi_sbc.rdwr10.xferlen, scsi_sbc.rdwr12.xferlen")
SENSE_KEY = FieldName("scsi.sense.key", "Sense key", "The sense key, from fixed or descriptor format sense data "
                      "(SPC-3 4.5.6)", "scsi.sns.key")
ADDITIONAL_SENSE = FieldName("scsi.sense.asc_ascq", "Additional sense code and qualifier",
                     "ASC and ASCQ as one 16-bit value (ASC << 8 | ASCQ), named from SPC-3 Annex D.2",
                     "scsi.sns.ascascq")
ASC = FieldName("scsi.sense.asc", "Additional sense code", "The ADDITIONAL SENSE CODE byte (SPC-3 4.5.6)",
                "scsi.sns.asc")
ASCQ = FieldName("scsi.sense.ascq", "Additional sense code qualifier",
                 "The ADDITIONAL SENSE CODE QUALIFIER byte (SPC-3 4.5.6)", "scsi.sns.ascq")
RESERVATION_KEY = FieldName("scsi.pr.reservation_key", "Reservation key", "A persistent reservation key: the "
                            "I_T nexus's own in PERSISTENT RESERVE OUT, a registered or the holder's in PERSISTENT "
                            "RESERVE IN data", "scsi.persresv.reskey, scsi.spc.resv.key")
SA_RESERVATION_KEY = FieldName("scsi.pr.service_action_reservation_key", "Service action reservation key",
                               "PERSISTENT RESERVE OUT's second key: the new key (REGISTER) or the key to preempt "
                               "(PREEMPT)", "scsi.persresv.sareskey")
PR_TYPE = FieldName("scsi.pr.type", "Reservation type", "The persistent reservation type (SPC-3 6.11.3.4)",
                    "scsi.persresv.type")
PR_SCOPE = FieldName("scsi.pr.scope", "Reservation scope", "The persistent reservation scope (SPC-3 6.11.3.3)",
                     "scsi.persresv.scope")
PR_IN_SERVICE_ACTION = FieldName("scsi.pr_in.service_action", "PR IN service action",
                                 "What PERSISTENT RESERVE IN reads (SPC-3 6.11.1)", "scsi.persresvin.svcaction")
PR_OUT_SERVICE_ACTION = FieldName("scsi.pr_out.service_action", "PR OUT service action",
                                  "What PERSISTENT RESERVE OUT does (SPC-3 6.12.1)", "scsi.persresvout.svcaction")

# -- CDBs -------------------------------------------------------------------------------
# The fields after OPERATION CODE; the first byte is read once, in SCSI_CDB.
_RW_FLAGS = "Flags" / BitStruct(
    "RdWrProtect" / BitsInteger(3) * "RDPROTECT or WRPROTECT: protection information checking.",
    "DPO" / Flag * "Disable page out.",
    "FUA" / Flag * "Force unit access.",
    Padding(1),
    "FUA_NV" / Flag * "Force unit access, non-volatile cache.",
    Padding(1),
) * "Byte 1 of READ/WRITE(10/12/16)."

RW6 = message("READ(6)/WRITE(6)", "scsi.rw6", "SBC-3 5.7", "Address" / BitStruct(
    Padding(3), "LogicalBlockAddress" / Named(LBA, BitsInteger(21)) * "The first logical block."),
    "TransferLength" / Named(TRANSFER_LENGTH, Int8ub) * "Blocks to transfer (0 means 256).", _CONTROL,
    prefix="scsi.rw")
RW10 = message("READ(10)/WRITE(10)", "scsi.rw10", "SBC-3 5.8", _RW_FLAGS,
               "LogicalBlockAddress" / Named(LBA, Int32ub) * "The first logical block.",
               "GroupNumber" / BitField(8, 3, 5) * "The group number.",
               "TransferLength" / Named(TRANSFER_LENGTH, Int16ub) * "The number of logical blocks to transfer.", _CONTROL, prefix="scsi.rw")
RW12 = message("READ(12)/WRITE(12)", "scsi.rw12", "SBC-3 5.9", _RW_FLAGS,
               "LogicalBlockAddress" / Named(LBA, Int32ub) * "The first logical block.",
               "TransferLength" / Named(TRANSFER_LENGTH, Int32ub) * "The number of logical blocks to transfer.",
               "GroupNumber" / BitField(8, 3, 5) * "The group number.", _CONTROL, prefix="scsi.rw")
RW16 = message("READ(16)/WRITE(16)", "scsi.rw16", "SBC-3 5.10", _RW_FLAGS,
               "LogicalBlockAddress" / Named(LBA, Int64ub) * "The first logical block.",
               "TransferLength" / Named(TRANSFER_LENGTH, Int32ub) * "The number of logical blocks to transfer.",
               "GroupNumber" / BitField(8, 3, 5) * "The group number.", _CONTROL, prefix="scsi.rw")
SYNC10 = message("SYNCHRONIZE CACHE(10)", "scsi.sync10", "SBC-3 5.18",
                 "SyncFlags" / BitStruct(Padding(5), "SYNC_NV" / Flag, "IMMED" / Flag, Padding(1)),
                 "LogicalBlockAddress" / Named(LBA, Int32ub) * "The first logical block.",
                 "GroupNumber" / BitField(8, 3, 5) * "The group number.",
                 "NumberOfLogicalBlocks" / Int16ub * _BLOCKS_DOC, _CONTROL,
                 prefix="scsi.rw")
SYNC16 = message("SYNCHRONIZE CACHE(16)", "scsi.sync16", "SBC-3 5.19",
                 "SyncFlags" / BitStruct(Padding(5), "SYNC_NV" / Flag, "IMMED" / Flag, Padding(1)),
                 "LogicalBlockAddress" / Named(LBA, Int64ub) * "The first logical block.",
                 "NumberOfLogicalBlocks" / Int32ub * _BLOCKS_DOC,
                 "GroupNumber" / BitField(8, 3, 5) * "The group number.", _CONTROL, prefix="scsi.rw")
_WRITE_SAME_FLAGS = "WriteSameFlags" / BitStruct(
    "WrProtect" / BitsInteger(3), "ANCHOR" / Flag, "UNMAP" / Flag, Padding(2), Padding(1))
WRITE_SAME10 = message("WRITE SAME(10)", "scsi.write_same10", "SBC-3 5.38", _WRITE_SAME_FLAGS,
                       "LogicalBlockAddress" / Named(LBA, Int32ub) * "The first logical block.",
                       "GroupNumber" / BitField(8, 3, 5) * "The group number.",
                       "NumberOfLogicalBlocks" / Int16ub * _BLOCKS_DOC, _CONTROL, prefix="scsi.rw")
WRITE_SAME16 = message("WRITE SAME(16)", "scsi.write_same16", "SBC-3 5.40", _WRITE_SAME_FLAGS,
                       "LogicalBlockAddress" / Named(LBA, Int64ub) * "The first logical block.",
                       "NumberOfLogicalBlocks" / Int32ub * _BLOCKS_DOC,
                       "GroupNumber" / BitField(8, 3, 5) * "The group number.", _CONTROL, prefix="scsi.rw")
INQUIRY_CDB = message("INQUIRY", "scsi.inquiry_cdb", "SPC-3 6.4",
                      "Flags" / BitStruct(Padding(6), "CmdDt" / Flag * "Obsolete.",
                                          "EVPD" / Flag * "Return the vital product data page PAGE CODE."),
                      "PageCode" / Hex(Int8ub) * _PAGE_CODE_DOC,
                      "AllocationLength" / Int16ub * "Bytes the initiator has room for.", _CONTROL,
                      prefix="scsi.inquiry")
READ_CAPACITY10_CDB = message("READ CAPACITY(10)", "scsi.read_capacity10_cdb", "SBC-3 5.12",
                              "Reserved" / Bytes(1), "LogicalBlockAddress" / Int32ub * "Obsolete; zero.",
                              "Reserved2" / Bytes(2), "PMI" / BitField(8, 7, 1) * "Obsolete; zero.", _CONTROL,
                              prefix="scsi.capacity")
SERVICE_ACTION_IN16_CDB = message(
    "SERVICE ACTION IN(16)", "scsi.service_action_in16", "SBC-3 5.13",
    "ServiceAction" / BitField(8, 3, 5, SERVICE_ACTION_IN_16) * "0x10: READ CAPACITY(16).",
    "LogicalBlockAddress" / Int64ub * "Obsolete; zero.",
    "AllocationLength" / Int32ub * "Bytes the initiator has room for.",
    "PMI" / BitField(8, 7, 1) * "Obsolete; zero.", _CONTROL, prefix="scsi.capacity")
PR_IN_CDB = message("PERSISTENT RESERVE IN", "scsi.pr_in", "SPC-3 6.11",
                    "ServiceAction" / Named(PR_IN_SERVICE_ACTION, BitField(8, 3, 5, PR_IN_SERVICE_ACTIONS)) * "What to read.",
                    "Reserved" / Bytes(5),
                    "AllocationLength" / Int16ub * "Bytes the initiator has room for.", _CONTROL, prefix="scsi.pr")
PR_OUT_CDB = message("PERSISTENT RESERVE OUT", "scsi.pr_out", "SPC-3 6.12",
                     "ServiceAction" / Named(PR_OUT_SERVICE_ACTION, BitField(8, 3, 5, PR_OUT_SERVICE_ACTIONS)) * "What to do.",
                     "ScopeType" / BitStruct(
                         "Scope" / Named(PR_SCOPE, Enum(BitsInteger(4), **PR_SCOPES)) * "The reservation scope.",
                         "Type" / Named(PR_TYPE, Enum(BitsInteger(4), **PR_TYPES)) * "The reservation type."),
                     "Reserved" / Bytes(2),
                     "ParameterListLength" / Int32ub * "Bytes of parameter list in the data (24 for most actions).",
                     _CONTROL, prefix="scsi.pr")
REPORT_LUNS_CDB = message("REPORT LUNS", "scsi.report_luns_cdb", "SPC-3 6.21",
                          "Reserved" / Bytes(1), "SelectReport" / Hex(Int8ub) * "Which LUNs to report.",
                          "Reserved2" / Bytes(3), "AllocationLength" / Int32ub * "Bytes the initiator has room for.",
                          "Reserved3" / Bytes(1), _CONTROL, prefix="scsi.report_luns")
_MODE_SENSE_PAGE = "Page" / BitStruct(
    "PC" / Enum(BitsInteger(2), **PAGE_CONTROL) * "Page control: which values to return.",
    "PageCode" / Hex(BitsInteger(6)) * "The mode page (0x3F: all pages).")
MODE_SENSE6_CDB = message("MODE SENSE(6)", "scsi.mode_sense6", "SPC-3 6.9",
                          "Dbd" / BitStruct(Padding(4), "DBD" / Flag * "Disable block descriptors.", Padding(3)),
                          _MODE_SENSE_PAGE, "SubpageCode" / Hex(Int8ub) * "The mode subpage.",
                          "AllocationLength" / Int8ub * "Bytes the initiator has room for.", _CONTROL,
                          prefix="scsi.mode_sense")
MODE_SENSE10_CDB = message("MODE SENSE(10)", "scsi.mode_sense10", "SPC-3 6.10",
                           "Dbd" / BitStruct(Padding(3), "LLBAA" / Flag * "Long LBA accepted.",
                                             "DBD" / Flag * "Disable block descriptors.", Padding(3)),
                           _MODE_SENSE_PAGE, "SubpageCode" / Hex(Int8ub) * "The mode subpage.",
                           "Reserved" / Bytes(3),
                           "AllocationLength" / Int16ub * "Bytes the initiator has room for.", _CONTROL,
                           prefix="scsi.mode_sense")
UNMAP_CDB = message("UNMAP", "scsi.unmap_cdb", "SBC-3 5.28",
                    "Anchor" / BitField(8, 7, 1) * "ANCHOR: anchor the blocks rather than deallocate.",
                    "Reserved" / Bytes(4), "GroupNumber" / BitField(8, 3, 5) * "The group number.",
                    "ParameterListLength" / Int16ub * "Bytes of UNMAP parameter list in the data.", _CONTROL,
                    prefix="scsi.unmap")
TEST_UNIT_READY_CDB = message("TEST UNIT READY", "scsi.test_unit_ready", "SPC-3 6.33",
                              "Reserved" / Bytes(4), _CONTROL, prefix="scsi.cdb")

SCSI_CDB = message(
    "SCSI CDB", "scsi.cdb", "SPC-3 4.3",
    "OperationCode" / Named(OPCODE, Enum(Int8ub, **OPERATION_CODES)) * "The SCSI command.",
    "Fields" / Switch(this.OperationCode, {
        "TEST_UNIT_READY": TEST_UNIT_READY_CDB.struct,
        "READ_6": RW6.struct, "WRITE_6": RW6.struct,
        "READ_10": RW10.struct, "WRITE_10": RW10.struct, "VERIFY_10": RW10.struct,
        "READ_12": RW12.struct, "WRITE_12": RW12.struct,
        "READ_16": RW16.struct, "WRITE_16": RW16.struct, "VERIFY_16": RW16.struct,
        "SYNCHRONIZE_CACHE_10": SYNC10.struct, "SYNCHRONIZE_CACHE_16": SYNC16.struct,
        "WRITE_SAME_10": WRITE_SAME10.struct, "WRITE_SAME_16": WRITE_SAME16.struct,
        "INQUIRY": INQUIRY_CDB.struct,
        "READ_CAPACITY_10": READ_CAPACITY10_CDB.struct,
        "SERVICE_ACTION_IN_16": SERVICE_ACTION_IN16_CDB.struct,
        "PERSISTENT_RESERVE_IN": PR_IN_CDB.struct,
        "PERSISTENT_RESERVE_OUT": PR_OUT_CDB.struct,
        "REPORT_LUNS": REPORT_LUNS_CDB.struct,
        "MODE_SENSE_6": MODE_SENSE6_CDB.struct,
        "MODE_SENSE_10": MODE_SENSE10_CDB.struct,
        "UNMAP": UNMAP_CDB.struct,
    }, default=Pass),
    doc="The command descriptor block in CDBBuffer, decoded by its OPERATION CODE.",
)

# -- data sent with a command (Data-out) ---------------------------------------------------
PR_OUT_PARAMETERS = message(
    "PERSISTENT RESERVE OUT parameter list", "scsi.pr_out_parameters", "SPC-3 6.12.3",
    "ReservationKey" / Named(RESERVATION_KEY, Hex(Int64ub)) * "The I_T nexus's reservation key.",
    "ServiceActionReservationKey" / Named(SA_RESERVATION_KEY, Hex(Int64ub)) * "The new key (REGISTER) or the key to preempt (PREEMPT).",
    "Obsolete" / Bytes(4),
    "ParameterFlags" / BitStruct(Padding(4), "SPEC_I_PT" / Flag * "Specify initiator ports.",
                                 "ALL_TG_PT" / Flag * "All target ports.", Padding(1),
                                 "APTPL" / Flag * "Activate persist through power loss."),
    "Reserved" / Bytes(1), "Obsolete2" / Bytes(2),
    prefix="scsi.pr")
# REGISTER AND MOVE has its own parameter list: its flags sit in byte 17, not 20.
PR_OUT_MOVE_PARAMETERS = message(
    "PERSISTENT RESERVE OUT REGISTER AND MOVE parameter list", "scsi.pr_out_move_parameters", "SPC-3 6.12.4",
    "ReservationKey" / Named(RESERVATION_KEY, Hex(Int64ub)) * "The I_T nexus's reservation key.",
    "ServiceActionReservationKey" / Named(SA_RESERVATION_KEY, Hex(Int64ub)) * (
        "The new key (REGISTER) or the key to preempt (PREEMPT)."),
    "Reserved" / Bytes(1),
    "MoveFlags" / BitStruct(Padding(6), "UNREG" / Flag * "Unregister the I_T nexus that sent the command.",
                            "APTPL" / Flag * "Activate persist through power loss.") * (
        "Byte 17 of REGISTER AND MOVE's parameter list: UNREG and APTPL."),
    "RelativeTargetPortIdentifier" / Int16ub * "The target port of the I_T nexus.",
    "TransportIdParameterDataLength" / Int32ub * "Bytes of TransportID that follow.",
    "TransportID" / Bytes(this.TransportIdParameterDataLength) * "The initiator's TransportID.",
    prefix="scsi.pr")
UNMAP_PARAMETERS = message(
    "UNMAP parameter list", "scsi.unmap_parameters", "SBC-3 5.28.2",
    "DataLength" / Int16ub * "Bytes that follow.",
    "BlockDescriptorDataLength" / Int16ub * "Bytes of block descriptors.",
    "Reserved" / Bytes(4),
    "Descriptors" / Array(this.BlockDescriptorDataLength // 16, Struct(
        "UnmapLogicalBlockAddress" / Int64ub * "The first block to unmap.",
        "NumberOfLogicalBlocks" / Int32ub * "How many blocks.",
        "Reserved" / Bytes(4))),
    prefix="scsi.unmap")

# -- data returned (Data-in) ----------------------------------------------------------------
INQUIRY_DATA = message(
    "Standard INQUIRY data", "scsi.inquiry_data", "SPC-3 6.4.2",
    "Device" / BitStruct("PeripheralQualifier" / BitsInteger(3) * "0: the device is connected.",
                         "PeripheralDeviceType" / BitsInteger(5) * "0: direct access block device.") * (
        "Peripheral qualifier and device type."),
    "Removable" / BitField(8, 0, 1) * "RMB: removable medium.",
    "Version" / Hex(Int8ub) * "The SPC version claimed (0x05: SPC-3, 0x06: SPC-4).",
    "Format" / Hex(Int8ub) * "NormACA, HiSup and RESPONSE DATA FORMAT (2).",
    "AdditionalLength" / Int8ub * "Bytes that follow.",
    "CapabilityFlags" / Bytes(3) * "Bytes 5-7: SCCS...PROTECT, BQUE...ADDR16, WBUS16...CMDQUE.",
    "VendorIdentification" / Ascii(8) * "T10 vendor identification.",
    "ProductIdentification" / Ascii(16) * "Product identification.",
    "ProductRevisionLevel" / Ascii(4) * "Product revision level.",
    prefix="scsi.inquiry")
VPD_PAGE = message(
    "VPD page", "scsi.vpd_page", "SPC-3 7.6",
    "Device" / Hex(Int8ub) * "Peripheral qualifier and device type.",
    "PageCode" / Hex(Int8ub) * _PAGE_CODE_DOC,
    "PageLength" / Int16ub * "Bytes of page data.",
    "PageData" / GreedyBytes * "The page, not decoded further.",
    prefix="scsi.inquiry")
READ_CAPACITY10_DATA = message(
    "READ CAPACITY(10) data", "scsi.read_capacity10_data", "SBC-3 5.12.2",
    "ReturnedLogicalBlockAddress" / Int32ub * _RETURNED_LBA_DOC,
    "LogicalBlockLength" / Int32ub * "Bytes per logical block.", prefix="scsi.capacity")
READ_CAPACITY16_DATA = message(
    "READ CAPACITY(16) data", "scsi.read_capacity16_data", "SBC-3 5.13.2",
    "ReturnedLogicalBlockAddress" / Int64ub * _RETURNED_LBA_DOC,
    "LogicalBlockLength" / Int32ub * "Bytes per logical block.",
    "Protection" / BitStruct(Padding(4), "P_TYPE" / BitsInteger(3) * "Protection type.",
                             "PROT_EN" / Flag * "Protection enabled."),
    "Exponents" / BitStruct("P_I_EXPONENT" / BitsInteger(4),
                            "LogicalBlocksPerPhysicalBlockExponent" / BitsInteger(4)
                            * "2^n logical blocks per physical block."),
    "Provisioning" / BitStruct("LBPME" / Flag * "Logical block provisioning management enabled.",
                               "LBPRZ" / Flag * "Unmapped blocks read as zero.",
                               "LowestAlignedLogicalBlockAddress" / BitsInteger(14)),
    "Reserved" / Bytes(16), prefix="scsi.capacity")
PR_IN_READ_KEYS = message(
    "PERSISTENT RESERVE IN READ KEYS data", "scsi.pr_read_keys", "SPC-3 6.11.2",
    "PrGeneration" / Hex(Int32ub) * "Bumped by every PERSISTENT RESERVE OUT that changes registrations.",
    "AdditionalLength" / Int32ub * _PR_LENGTH_DOC,
    "ReservationKey" / Named(RESERVATION_KEY, Array(this.AdditionalLength // 8, Hex(Int64ub))) * "A registered reservation key.",
    prefix="scsi.pr")
PR_IN_READ_RESERVATION = message(
    "PERSISTENT RESERVE IN READ RESERVATION data", "scsi.pr_read_reservation", "SPC-3 6.11.3",
    "PrGeneration" / Hex(Int32ub) * "Bumped by every PERSISTENT RESERVE OUT that changes registrations.",
    "AdditionalLength" / Int32ub * _PR_LENGTH_DOC,
    "Reservation" / IfEquals(this.AdditionalLength, 16, Struct(
        "ReservationKey" / Named(RESERVATION_KEY, Hex(Int64ub)) * "The key of the reservation holder.",
        "Obsolete" / Bytes(4), "Reserved" / Bytes(1),
        "ScopeType" / BitStruct("Scope" / Named(PR_SCOPE, Enum(BitsInteger(4), **PR_SCOPES)) * "The reservation scope.",
                                "Type" / Named(PR_TYPE, Enum(BitsInteger(4), **PR_TYPES)) * "The reservation type."),
        "Obsolete2" / Bytes(2))),
    prefix="scsi.pr")
PR_IN_REPORT_CAPABILITIES = message(
    "PERSISTENT RESERVE IN REPORT CAPABILITIES data", "scsi.pr_capabilities", "SPC-3 6.11.4",
    "Length" / Int16ub * "8.",
    "Capabilities" / BitStruct(Padding(3), "CRH" / Flag * "Compatible reservation handling.",
                               "SIP_C" / Flag * "SPEC_I_PT capable.", "ATP_C" / Flag * "ALL_TG_PT capable.",
                               Padding(1), "PTPL_C" / Flag * "Persist through power loss capable."),
    "State" / BitStruct("TMV" / Flag * "The type mask is valid.", Padding(6),
                        "PTPL_A" / Flag * "Persist through power loss active."),
    "PersistentReservationTypeMask" / Hex(Int16ub) * "The reservation types supported.",
    "Reserved" / Bytes(2), prefix="scsi.pr")
PR_FULL_STATUS_DESCRIPTOR = Struct(
    "ReservationKey" / Named(RESERVATION_KEY, Hex(Int64ub)) * "A registered reservation key.",
    "Reserved" / Bytes(4),
    "Holder" / BitStruct(Padding(6), "ALL_TG_PT" / Flag * "Registered on all target ports.",
                         "R_HOLDER" / Flag * "This registrant holds the reservation."),
    "ScopeType" / BitStruct("Scope" / Named(PR_SCOPE, Enum(BitsInteger(4), **PR_SCOPES)) * "The reservation scope.",
                            "Type" / Named(PR_TYPE, Enum(BitsInteger(4), **PR_TYPES)) * "The reservation type."),
    "Reserved2" / Bytes(4),
    "RelativeTargetPortIdentifier" / Int16ub * "The target port of the I_T nexus.",
    "AdditionalDescriptorLength" / Int32ub * "Bytes of TransportID.",
    "TransportID" / Bytes(this.AdditionalDescriptorLength) * "The initiator's TransportID.",
)
PR_IN_READ_FULL_STATUS = message(
    "PERSISTENT RESERVE IN READ FULL STATUS data", "scsi.pr_full_status", "SPC-3 6.11.5",
    "PrGeneration" / Hex(Int32ub) * "Bumped by every PERSISTENT RESERVE OUT that changes registrations.",
    "AdditionalLength" / Int32ub * _PR_LENGTH_DOC,
    "Descriptors" / FixedSized(this.AdditionalLength, GreedyRange(PR_FULL_STATUS_DESCRIPTOR)),
    prefix="scsi.pr")
REPORT_LUNS_DATA = message(
    "REPORT LUNS parameter data", "scsi.report_luns_data", "SPC-3 6.21",
    "LunListLength" / Int32ub * "Bytes of LUNs that follow.",
    "Reserved" / Bytes(4),
    "Lun" / Array(this.LunListLength // 8, Hex(Int64ub)) * "A logical unit number.",
    prefix="scsi.report_luns")
MODE_PARAMETER_HEADER6 = message(
    "MODE SENSE(6) parameter header", "scsi.mode_header6", "SPC-3 7.4.3",
    "ModeDataLength" / Int8ub * "Bytes that follow.",
    "MediumType" / Hex(Int8ub) * "0 for direct access devices.",
    "DeviceSpecificParameter" / BitStruct("WP" / Flag * "Write protected.", Padding(2),
                                          "DPOFUA" / Flag * "DPO and FUA supported.", Padding(4)),
    "BlockDescriptorLength" / Int8ub * "Bytes of block descriptors.",
    "ModePages" / GreedyBytes * "Block descriptors and mode pages, not decoded further.",
    prefix="scsi.mode_sense")
MODE_PARAMETER_HEADER10 = message(
    "MODE SENSE(10) parameter header", "scsi.mode_header10", "SPC-3 7.4.3",
    "ModeDataLength" / Int16ub * "Bytes that follow.",
    "MediumType" / Hex(Int8ub) * "0 for direct access devices.",
    "DeviceSpecificParameter" / BitStruct("WP" / Flag * "Write protected.", Padding(2),
                                          "DPOFUA" / Flag * "DPO and FUA supported.", Padding(4)),
    "LongLba" / BitField(8, 7, 1) * "LONGLBA: 16-byte block descriptors.",
    "Reserved" / Bytes(1),
    "BlockDescriptorLength" / Int16ub * "Bytes of block descriptors.",
    "ModePages" / GreedyBytes * "Block descriptors and mode pages, not decoded further.",
    prefix="scsi.mode_sense")

# -- sense data (SPC-3 4.5) ------------------------------------------------------------------
_ADDITIONAL_SENSE = "AdditionalSense" / Named(ADDITIONAL_SENSE, Checked(Parts(
    Enum(Int16ub, **ASC_ASCQ), Part("ASC", 0xFF00, ASC), Part("ASCQ", 0x00FF, ASCQ)), _ASC_RULE)) * (
    "ADDITIONAL SENSE CODE and QUALIFIER (ASC << 8 | ASCQ).")
FIXED_SENSE = Struct(
    "KeyFlags" / BitStruct("FILEMARK" / Flag, "EOM" / Flag, "ILI" / Flag * "Incorrect length indicator.",
                           Padding(1), "SenseKey" / Named(SENSE_KEY, Checked(Enum(BitsInteger(4), **SENSE_KEYS), _SENSE_KEY_RULE))
                           * "The sense key."),
    "Information" / Hex(Int32ub) * "Command-specific information, e.g. the failing LBA.",
    "AdditionalSenseLength" / Int8ub * _SENSE_LENGTH_DOC,
    "CommandSpecificInformation" / Hex(Int32ub),
    _ADDITIONAL_SENSE,
    "FieldReplaceableUnitCode" / Hex(Int8ub),
    "SenseKeySpecific" / Bytes(3) * "SKSV and the sense-key specific bytes.",
)
DESCRIPTOR_SENSE = Struct(
    "SenseKey" / Named(SENSE_KEY, Checked(BitField(8, 4, 4, SENSE_KEYS), _SENSE_KEY_RULE)) * "The sense key.",
    _ADDITIONAL_SENSE,
    "Reserved" / Bytes(3),
    "AdditionalSenseLength" / Int8ub * _SENSE_LENGTH_DOC,
    "Descriptors" / Bytes(this.AdditionalSenseLength) * "Sense data descriptors, not decoded further.",
)
SENSE_DATA = message(
    "Sense data", "scsi.sense", "SPC-3 4.5",
    "ResponseCode" / BitStruct("VALID" / Flag * "INFORMATION is valid (fixed format).",
                               "Code" / Enum(BitsInteger(7), **RESPONSE_CODES) * "Fixed or descriptor format."),
    "Format" / Switch(this.ResponseCode.Code, {
        "CURRENT_FIXED": Struct("Obsolete" / Bytes(1), *FIXED_SENSE.subcons),
        "DEFERRED_FIXED": Struct("Obsolete" / Bytes(1), *FIXED_SENSE.subcons),
        "CURRENT_DESCRIPTOR": DESCRIPTOR_SENSE,
        "DEFERRED_DESCRIPTOR": DESCRIPTOR_SENSE,
    }, default=Pass),
    doc="Sense data in fixed (0x70/0x71) or descriptor (0x72/0x73) format.",
)

STRUCTURES = [
    SCSI_CDB, TEST_UNIT_READY_CDB, RW6, RW10, RW12, RW16, SYNC10, SYNC16, WRITE_SAME10, WRITE_SAME16,
    INQUIRY_CDB, READ_CAPACITY10_CDB, SERVICE_ACTION_IN16_CDB, PR_IN_CDB, PR_OUT_CDB, REPORT_LUNS_CDB,
    MODE_SENSE6_CDB, MODE_SENSE10_CDB, UNMAP_CDB, PR_OUT_PARAMETERS, PR_OUT_MOVE_PARAMETERS, UNMAP_PARAMETERS, INQUIRY_DATA, VPD_PAGE,
    READ_CAPACITY10_DATA, READ_CAPACITY16_DATA, PR_IN_READ_KEYS, PR_IN_READ_RESERVATION, PR_IN_REPORT_CAPABILITIES,
    PR_IN_READ_FULL_STATUS, REPORT_LUNS_DATA, MODE_PARAMETER_HEADER6, MODE_PARAMETER_HEADER10, SENSE_DATA,
]

# What a command's data buffer holds, by OPERATION CODE (Data-out in the request).
REQUEST_DATA = Switch(this.Cdb.OperationCode, {
    "PERSISTENT_RESERVE_OUT": Switch(this.Cdb.Fields.ServiceAction, {
        "REGISTER_AND_MOVE": PR_OUT_MOVE_PARAMETERS.struct}, default=PR_OUT_PARAMETERS.struct),
    "UNMAP": UNMAP_PARAMETERS.struct,
}, default=Pass)

# And what the response's buffer holds, by the matched request's CDB (Data-in).
_REQ_CDB = this._params.request.Payload.Cdb
RESPONSE_DATA = Switch(_REQ_CDB.OperationCode, {
    "INQUIRY": Switch(_REQ_CDB.Fields.Flags.EVPD, {0: INQUIRY_DATA.struct, 1: VPD_PAGE.struct}, default=Pass),
    "READ_CAPACITY_10": READ_CAPACITY10_DATA.struct,
    "SERVICE_ACTION_IN_16": Switch(_REQ_CDB.Fields.ServiceAction, {
        "READ_CAPACITY_16": READ_CAPACITY16_DATA.struct}, default=Pass),
    "PERSISTENT_RESERVE_IN": Switch(_REQ_CDB.Fields.ServiceAction, {
        "READ_KEYS": PR_IN_READ_KEYS.struct,
        "READ_RESERVATION": PR_IN_READ_RESERVATION.struct,
        "REPORT_CAPABILITIES": PR_IN_REPORT_CAPABILITIES.struct,
        "READ_FULL_STATUS": PR_IN_READ_FULL_STATUS.struct,
    }, default=Pass),
    "REPORT_LUNS": REPORT_LUNS_DATA.struct,
    "MODE_SENSE_6": MODE_PARAMETER_HEADER6.struct,
    "MODE_SENSE_10": MODE_PARAMETER_HEADER10.struct,
}, default=Pass)
