"""MS-CSVP conformance: what the generic NDR model cannot guess from the IDL, kept beside
the definitions (as pidl keeps a .cnf beside its .idl), never in the generator.

Every named NDR structure's fields are named once, by type: `clusprep.<namespace>.<member>`,
the namespace being the type name in snake_case unless listed here.
"""

TYPE_NAMES = {
    "CPREP_DISKID": "disk_id",  # clusprep.disk_id.disk_guid, .disk_signature, .device_number
    "CPREP_SCSI_ADDRESS": "scsi_address",
}
