"""The wire-observable rules of MS-RSVD and MS-CSVP: the inventory made by reading the specs
section by section (every MUST, MUST NOT, SHOULD and SHOULD NOT a passive observer can check),
as (id, section, level, side, rule). The ids name them in docs/rules.md and in each finding's
`check`; tests/test_rules_reference.py keeps this list equal to ../shared/conformance/spec-rules.md.

Every id is checked by a rule class (its `checks`) or listed in NOT_CHECKED with the reason.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

INVENTORY: List[Tuple[str, str, str, str, str]] = [
    ('R01', '2.1', 'MUST', 'both',
     'Reserved fields are 0 when sent (all structures)'),
    ('R02', '2.2.5.1', 'MUST', 'client',
     'Request OperationCode is one of the 2.2.2 values'),
    ('R03', '2.2.5.1, 3.1.4.6-10, 3.1.5.3-4', 'MUST (SHOULD in 2.2.5.1)', 'client',
     'Request header Status = 0'),
    ('R04', '2.2.5.1', 'MUST', 'client',
     'RequestId unique across all requests of the client'),
    ('R05', '3.1.4.1', 'MUST', 'client',
     'RequestIdentifier incremented by 1 per tunnel operation'),
    ('R06', '2.2.5.2, 3.1.4.2', 'MUST', 'client',
     'Open context Version = ClientServiceVersion (1)'),
    ('R07', '3.2.5.1', 'MUST', 'server',
     'Version != 1 -> CREATE fails STATUS_INVALID_PARAMETER'),
    ('R08', '2.2.5.2', 'MUST', 'client',
     'Open context Reserved (3 bytes) = 0'),
    ('R09', '2.2.5.2', 'SHOULD', 'client',
     'Open context Flags = 0'),
    ('R10', '2.2.5.2, 3.1.4.2', 'MUST', 'client',
     'OriginatorFlags = 0x00000001'),
    ('R11', '2.2.5.2, 3.1.4.2', 'MUST', 'client',
     'InitiatorHostName <=126 bytes, NUL-terminated, Length incl. NUL'),
    ('R12', '3.1.4.2', 'MUST', 'client',
     'HasInitiatorId FALSE => InitiatorId zero (and TRUE iff an id is given)'),
    ('R13', '3.2.5.1', 'MUST', 'server',
     'HasInitiatorId not 0/1 -> STATUS_INVALID_PARAMETER'),
    ('R14', '3.1.4.2', 'MUST', 'client',
     'File name ends in :SharedVirtualDisk'),
    ('R15', '3.2.5.1', 'MUST', 'server',
     'Name without suffix -> STATUS_INVALID_PARAMETER'),
    ('R16', '3.1.4.2', 'MUST', 'client',
     'CREATE carries the two EAs (ClusteredApplicationInstance, ApplicationTrafficType; NextEntryOffset 0, Flags 0, value = InitiatorId)'),
    ('R17', '3.1.4.2', 'MUST', 'client',
     'A :SharedVirtualDisk CREATE carries SVHDX_OPEN_DEVICE_CONTEXT'),
    ('R18', '3.1.4.6-10', 'MUST', 'client',
     'Tunnel operations use FSCTL_SVHDX_SYNC_TUNNEL_REQUEST (v1)'),
    ('R19', '2.2.5.3, 3.1.4.6', 'MUST (SHOULD in 2.2.5.3)', 'client',
     'FILE_INFO request fields all 0'),
    ('R20', '2.2.5.5, 2.2.5.13, 2.2.5.15', 'MUST', 'client',
     'CHECK_CONNECTION / VALIDATE_DISK / SVD_SUPPORT requests carry no payload'),
    ('R21', '2.2.5.7, 3.1.5.3-4', 'MUST', 'client',
     'SRB_STATUS request SrbStatus/ScsiStatus/SenseInfoExLength/Reserved/SenseDataEx = 0'),
    ('R22', '2.2.5.7, 3.1.5.3-4', 'MUST', 'client',
     "SRB_STATUS StatusKey = low byte of the failed request's status, same handle"),
    ('R23', '2.2.5.9, 3.1.4.8', 'MUST', 'client',
     'DISK_INFO request fields all 0'),
    ('R24', '2.2.5.11', 'MUST', 'client',
     'CdbLength <= 16'),
    ('R25', '2.2.5.11', 'MUST', 'client',
     'SenseInfoExLength <= 20'),
    ('R26', '2.2.5.11, 3.1.4.9', '(MUST via 3.2.5.5.5)', 'client',
     'SCSI request Length = 36'),
    ('R27', '2.2.5.11', 'MUST/SHOULD', 'client',
     'Reserved2 = 0 (MUST); Reserved1, Reserved3 = 0 (SHOULD)'),
    ('R28', '3.1.5.3', 'MUST', 'client',
     'READ error not in 2.2.3 -> SRB_STATUS on the same handle'),
    ('R29', '3.1.5.4', 'MUST', 'client',
     'WRITE error not in 2.2.3 -> SRB_STATUS on the same handle'),
    ('R30', '3.2.5.3', 'MUST', 'server',
     'READ with no Open -> STATUS_INVALID_PARAMETER'),
    ('R31', '3.2.5.4', 'MUST', 'server',
     'WRITE with no Open -> STATUS_INVALID_PARAMETER'),
    ('R32', '3.2.5.3-4', 'MUST', 'server',
     'Stored errors: STATUS_SVHDX_ERROR_STORED|key, key = per-open sequence 1,2,...,0xFF,0x00'),
    ('R33', '3.2.5.4', 'MUST', 'server',
     'PR-denied WRITE -> STATUS_SVHDX_RESERVATION_CONFLICT'),
    ('R34', '3.2.5.4 (newer)', 'MUST', 'server',
     'WRITE on open without FILE_NO_INTERMEDIATE_BUFFERING -> STATUS_NOT_SUPPORTED'),
    ('R35', '3.2.5.4 (newer)', 'MUST', 'server',
     'Virtual-SCSI open with InitiatorId 0: WRITE -> STATUS_SVHDX_ERROR_STORED|key'),
    ('R36', '3.2.5.5', 'MUST', 'server',
     'Tunnel op with no Open -> STATUS_INVALID_PARAMETER'),
    ('R37', '3.2.5.5', 'MUST', 'server',
     'Unknown OperationCode -> STATUS_SVHDX_VERSION_MISMATCH (and only then)'),
    ('R38', '3.2.5.5.1-6', 'MUST', 'server',
     "Response OperationCode = request's"),
    ('R39', '3.2.5.5.1-6', 'MUST', 'server',
     "Response RequestId = request's"),
    ('R40', '3.2.5.5.1, .4, .5', 'MUST', 'server',
     'Object-store error: Status carries it, header only returned'),
    ('R41', '3.2.5.5.1', 'MUST', 'server',
     'FILE_INFO ServerVersion = ServerServiceVersion (1)'),
    ('R42', '2.2.5.6, 3.2.5.5.2', 'MUST', 'server',
     'CHECK_CONNECTION answer: STATUS_SUCCESS, header only'),
    ('R43', '3.2.5.5.3', 'MUST', 'server',
     'SRB_STATUS with SenseInfoExLength != 20 -> STATUS_INVALID_PARAMETER (conflicts with 2.2.5.7)'),
    ('R44', '3.2.5.5.3', 'MUST', 'server',
     'Unknown key -> STATUS_SVHDX_ERROR_NOT_AVAILABLE; stored key -> success'),
    ('R45', '2.2.5.8, 3.2.5.5.3', 'MUST', 'server',
     'SRB_STATUS answer: StatusKey echoed, Reserved 0, SenseInfoExLength = sense length'),
    ('R46', '2.2.5.10, 3.2.5.5.4', 'MUST', 'server',
     'DISK_INFO: DiskType 2|3, DiskFormat 3, IsMounted/Is4kAligned 0|1, Reserved 0'),
    ('R47', '3.2.5.5.5', 'MUST', 'server',
     'SCSI Length!=36 or CdbLength>16 -> STATUS_INVALID_PARAMETER'),
    ('R48', '2.2.5.12, 3.2.5.5.5', 'MUST', 'server',
     "SCSI answer: DataIn = request's, Length = response size, Reserved 0"),
    ('R49', '2.2.5.14, 3.2.5.5.6', 'MUST', 'server',
     'VALIDATE_DISK answer: header only, echoed'),
    ('R50', '2.2.5.16, 3.2.5.6', 'MUST', 'server',
     'SVD_SUPPORT: Support = 1; HandleState in {0,1,3}, 3 for an RSVD open'),
    ('C01', '2.1', 'MUST', 'server',
     'Reject binds/calls below RPC_C_AUTHN_LEVEL_PKT_PRIVACY'),
    ('C02', '3.2.4, 3.4.4, 3.6.4, 3.8.4, 3.10.4, 3.12.4, 3.14.4, 3.16.4', 'MUST NOT', 'server',
     'Methods throw exceptions (fault)'),
    ('C03', 'same', 'MUST', 'server',
     'Strict NDR consistency check (reject inconsistent stubs)'),
    ('C04', '3.2.4, 3.6.4 tables', '(not called)', 'client',
     'IClusterStorage2 opnums 8-11,15,16,21 / IClusterNetwork2 opnum 10 not used'),
    ('C05', '3.2.4, 3.4.4', 'MUST', 'server',
     'CprepPrepareNode when not Initial (repeat) -> 0x80070548'),
    ('C06', '3.2.4, 3.4.4', 'MUST', 'server',
     'Phase2 when not Preparing -> 0x80070548'),
    ('C07', '3.2.4, 3.4.4', 'MUST', 'server',
     'Other methods when not Online -> 0x80070548'),
    ('C08', '3.3.4.1, 3.5.4.1', 'MUST', 'client',
     'CprepPrepareNode before any other method'),
    ('C09', '3.3.4.1, 3.5.4.1', 'MUST', 'client',
     'CprepPrepareNodePhase2 before any further method'),
    ('C10', '3.2.4.4', 'MUST', 'client',
     'AttachDisksOnSystemBus = 1'),
    ('C11', '3.2.4, 3.4.4', 'MUST', 'server',
     'GetProps(3)/GetUniqueIds(3)/Attach accepted in any disk state'),
    ('C12', '3.2.4, 3.4.4, <15>/<21>', 'SHOULD', 'server',
     'Unknown CPREP_DISKID -> 0x80070002 (Attach: 0x80070490)'),
    ('C13', '3.2.4 / 3.4.4, <16>/<22>', 'SHOULD', 'server',
     'Attached-required method on un-attached disk -> 0x8007139F (IClusterStorage2) / 0x80070002 (3.4.4); IsOnline/SetOnline 0x80070490'),
    ('C14', '3.2.4, 3.4.4', 'MUST', 'server',
     'Owned-required (StopDefense, Online, SetOnline; +CsvTestSetup3, ConnectToNewSmbShares3) not OwnedByThisServer -> 0x8007139F'),
    ('C15', '3.2.4, 3.4.4', 'MUST', 'server',
     'Online-required (Write/VerifyFileData, DeleteFile, Offline, IsNtfs, GetFSName) not Online -> 0x8007139F'),
    ('C16', '3.2.4, 3.4.4', 'MUST', 'server',
     'Unmappable ulPartition -> ERROR_FILE_NOT_FOUND'),
    ('C17', '3.2.4, 3.4.4', 'MUST', 'server',
     'File-system method on volume without FS -> ERROR_UNRECOGNIZED_VOLUME'),
    ('C18', '3.2.4.1', 'MUST', 'server',
     'RawRead cbData>512 -> ERROR_READ_FAULT; success: pcbDataRead = cbData'),
    ('C19', '3.2.4.2', 'MUST', 'server',
     'RawWrite cbData>512 -> ERROR_WRITE_FAULT; pcbDataWritten 512 / 0 on error'),
    ('C20', '3.2.4.6, 3.3.4.6, 3.5.4.6', 'MUST', 'client',
     'StopDefense: after successful PRArbitrate and Offline, disk Not Online'),
    ('C21', '3.2.4.7, 3.2.4.14', '(returns)', 'server',
     'Online on Online disk / Attach on Attached disk -> S_OK'),
    ('C22', '3.2.4.20', 'MUST', 'server',
     'IsNtfs ERROR_WRONG_DISK iff GetFSName != "NTFS"'),
    ('C23', '3.2.4.22', 'MUST', 'server',
     'IsPRPresent Present in {0,1,2}'),
    ('C24', '3.2.4.25', 'MUST', 'server',
     'IsOnline S_OK iff Online, else ERROR_NOT_READY'),
    ('C25', '3.2.4.27', 'MUST', 'server',
     'GetFSName "NTFS"/"FAT"/"RAW", NUL-terminated'),
    ('C26', '3.2.4.13, 3.2.4.29, 3.4.4.1', 'MUST', 'server',
     'GetUniqueIds/GetDsms buffer-size answers (INSUFFICIENT_BUFFER, MORE_DATA); GetUniqueIds3 no page 80h -> size 0, NULL'),
    ('C27', '3.4.4.5', 'MUST', 'server',
     'CreateNewSmbShares3 paths NUL-terminated \\\\IP'),
    ('C28', '3.3.4.2, 3.5.4.2', 'MUST', 'client',
     'CprepDiskAttach before other DiskId methods (except GetProps(3)/GetUniqueIds(3))'),
    ('C29', '3.3.4.3, 3.5.4.3', 'SHOULD', 'client',
     'GetArbSectors before RawRead/RawWrite, using its sectors'),
    ('C30', '3.3.4.4, 3.5.4.4', 'MUST', 'client',
     'CprepDiskOnline before partition methods'),
    ('C31', '3.3.4.4, 3.5.4.4', 'SHOULD NOT', 'client',
     'Partition outside 1..MaxPartitionNumber'),
    ('C32', '3.3.4.5, 3.5.4.5', 'SHOULD NOT', 'client',
     'File access before identifying partition as NTFS'),
    ('C33', '3.3.4.6, 3.5.4.6', 'SHOULD', 'client',
     'PRRegister before PRUnRegister'),
    ('C34', '3.3.4.6, 3.5.4.6', 'SHOULD', 'client',
     'PRRegister before PRReserve'),
    ('C35', '3.3.4.6, 3.5.4.6', 'SHOULD', 'client',
     'PRReserve before PRPreempt'),
    ('C36', '3.3.4.6, 3.5.4.6', 'SHOULD', 'client',
     'PRReserve before PRRelease'),
    ('C37', '3.3.4.6, 3.5.4.6', 'SHOULD', 'client',
     'PRClear before PRRegister in Clear/Register/Reserve sequence'),
    ('C38', '3.5.4.6 (7)', 'SHOULD', 'client',
     'PRRegister3 before PRReserve3 and FindKey3'),
    ('C39', '3.5.4.6 (8)', 'SHOULD', 'client',
     'PRReserve3 before IsPRPresent3, PRPreempt3, PRRelease3'),
    ('C40', '3.5.4.6 (9)', 'SHOULD', 'client',
     'PRClear3 before PRRegister3 in Clear3/Register3/Reserve3/Preempt3 sequence'),
    ('C41', '3.5.4.7', 'SHOULD', 'client',
     'CreateNewSmbShares3 before ConnectToNewSmbShares3'),
    ('C42', '3.7.4 (3.6.4 SHOULD)', 'MUST', 'client',
     'InitializeNode succeeds before any other IClusterNetwork2 method'),
    ('C43', '3.7.4', 'SHOULD', 'client',
     'CleanupNode after the last call'),
    ('C44', '3.6.4.2, 3.6.4.4', 'SHOULD', 'server',
     'SendRTMessage / CleanupNode fail when not initialized'),
    ('C45', '3.6.4.3, 3.6.4.5', 'SHOULD', 'server',
     'GetIpConfigSerialized / QueryFirewallConfiguration served when not initialized'),
    ('C46', '3.6.4.1', 'MUST', 'server',
     'BoundUDPPort = RequestUDPPort, or 3343 when 0'),
    ('C47', '3.6.4.2', 'MUST', 'client',
     'SendRTMessage: Timeout <= 1000, AddressFamily 2|0x17, IPv4 dotted decimal'),
    ('C48', '3.6.4.2', 'MUST', 'server',
     'SendRTMessage: error when no reply in 1000 ms'),
    ('C49', '3.6.4.3', 'MUST', 'server',
     'GetIpConfigSerialized pcbOut = size of Data'),
    ('C50', '3.6.4.6', 'MUST', 'server',
     'ProcessAddRoutes while monitoring -> E_FAIL'),
    ('C51', '3.6.4.7', 'MUST', 'server',
     'GetAddRoutesStatus: routeUnavailable TRUE iff not monitoring'),
    ('C52', '3.6.4.8', 'MUST', 'server',
     'CancelAddRoutesRequest when not monitoring -> E_FAIL'),
    ('C53', '2.2.18', 'MUST', 'client',
     'NODE_ROUTE_INFO indices unique across request; IPs dotted decimal'),
    ('C54', '2.2.11-2.2.13', 'MUST', 'server',
     'ADAPTERLIST/ADAPTER constants, lengths, counts, unique names, MAC form, 0/1 flags (grouped)'),
    ('C55', '2.2.16-2.2.17', 'MUST', 'server',
     'ADAPTERLIST2/ADAPTER2 constants (0x0002, 0x227A/B), counts, Guids >= 2*adapters, unique names, 0/1 flags (grouped)'),
    ('C56', '2.2.2', 'MUST', 'both',
     'CPREP_DISKID DiskIdType valid; DeviceNumber < disk count'),
    ('C57', '2.2.5-2.2.6', 'MUST', 'server',
     'DISK_PROPS(_EX) enums/flags; pool name NULL / GUID_NULL outside a pool (grouped)'),
    ('C58', '3.8.4.1', 'MUST', 'client',
     'CleanUpEvictedNode Flags one of 0,1,2'),
    ('C59', '3.8.4.1', 'MUST', 'server',
     'Complete by TimeOut; WAIT_TIMEOUT when Delay > TimeOut'),
    ('C60', '3.10.4, 3.11.4', 'MUST', 'client',
     'ConfigSvcSecret before RetrieveSvcSecret (may be an earlier activation)'),
    ('C61', '3.10.4.1-2', 'MUST', 'server',
     'RetrieveSvcSecret: ERROR_FILE_NOT_FOUND iff never configured; returns last configured secret'),
    ('C62', '3.12.4.1-2', 'MUST', 'server',
     'LogFilePath is "<share>\\\\<file>" forming a valid UNC'),
    ('C63', '3.14.4', 'MUST', 'client',
     'InitializeAdapterConfiguration before GetNextAdapterFirewallConfiguration'),
    ('C64', '3.14.4.2', '(table)', 'server',
     'GetNext before Initialize -> E_UNEXPECTED'),
    ('C65', '3.14.4.2', 'MUST', 'server',
     'idx >= cRetAdapters -> E_INVALIDARG'),
    ('C66', '3.14.4.2', 'MUST', 'server',
     'adapterProfile a CLUSTER_NETWORK_PROFILE value'),
    ('C67', '3.16.4.1', 'MUST', 'server',
     'GetUpdates: UpdateCount = <update> elements; XML form <updates version="1.0">'),
]

# Inventory rules no rule class checks, and why: the trace cannot show them, or the spec
# contradicts itself and the reading chosen makes the rule moot.
NOT_CHECKED: Dict[str, str] = {
    "R43": ("MS-RSVD contradicts itself: 3.2.5.5.3 fails an SRB_STATUS whose SenseInfoExLength is not the "
            "size of SenseDataEx (20), but 2.2.5.7 and 3.1.5.3-4 make the client send 0 there and the "
            "server ignore it, so every conforming request would fail. The reading chosen is 2.2.5.7's "
            "(the field is ignored); rsvd.sense_key_answer judges the answer by the stored key alone."),
    "R35": ("The newer revision's 3.2.5.4 answers a WRITE on an open with Open.IsVirtualSCSIDisk and a zero "
            "InitiatorId with a stored error, but nothing on the wire shows Open.IsVirtualSCSIDisk: the newer "
            "3.2.5.4 is all of that revision available (../shared/specs), and it does not say what sets it. "
            "OriginatorFlags cannot stand in for it: the seed makes 0x00000001 mandatory on every open (2.2.5.2, "
            "3.1.4.2), so it tells no open apart. rsvd.write_answer accepts a stored error on such an open (R34)."),
    "C60": ("The ConfigSvcSecret that must precede RetrieveSvcSecret MAY come from any earlier activation of "
            "IClusterSetup (3.10.4, 3.11.4), by any client, before the capture or before the server's last "
            "reboot (the secret persists, 3.10.3), so no capture shows its absence. The one trace of it, "
            "RetrieveSvcSecret answered ERROR_FILE_NOT_FOUND, is the server's documented answer for exactly "
            "this case (3.10.4.2), not proof that the client broke the rule; clusprep.secret_not_configured "
            "judges that answer against a ConfigSvcSecret the capture does show (C61)."),
    "C43": ("That the client calls CleanupNode after its last IClusterNetwork2 call is a statement about the "
            "future no finite capture settles: the DCOM object outlives its connections (an idle connection is "
            "closed and reopened, a concurrent call opens another), so a connection closing with the object "
            "still initialized proves nothing, and a new connection may call CleanupNode after the capture ends. "
            "No sound observable form was found; the rule is not checked."),
}

# Where the spec says two things, the reading each rule follows and why (docs/rules.md shows them).
READINGS: Dict[str, str] = {
    "R43": "3.2.5.5.3 against 2.2.5.7: the field is ignored (2.2.5.7), so R43 is not checked; see above.",
    "R03": ("2.2.5.1 says the request header's Status SHOULD be 0; 3.1.4.6-10 and 3.1.5.3-4, which say how each "
            "request is built, say MUST: judged as a MUST for the six v1 operations."),
    "R19": "2.2.5.3 says SHOULD, 3.1.4.6 MUST: judged as a MUST, as R03.",
    "R27": ("2.1 makes every Reserved field a MUST; 2.2.5.11 says Reserved1 and Reserved3 SHOULD be zero: the "
            "section's own word wins (a warning, rsvd.reserved_should_be_zero), Reserved2 stays a MUST."),
    "R20": ("2.2.5.13 makes VALIDATE_DISK header-only; Windows sends 56 reserved bytes after the header (newer "
            "revisions): both are accepted, and the 56 bytes must be zero (R01)."),
    "R41": "The seed's ServerServiceVersion is 1; an RSVD v2 server (Windows) answers 2: both are accepted.",
    "R16": ("3.1.4.2 builds two EAs and hands them to the SMB2 client's interface (MS-SMB2 3.2.4.30), which is not "
            "the wire: Windows' NtCreateFile takes the app instance EA (ntifs NETWORK_APP_INSTANCE_EA) and its SMB2 "
            "client sends it as the SMB2_CREATE_APP_INSTANCE_ID create context; the traffic-type EA need not appear. "
            "So an EA missing from the CREATE's ExtA is never reported; an ExtA entry of either name with Flags not 0 "
            "or a value other than the open context's InitiatorId is. An SMB2_CREATE_APP_INSTANCE_ID context is "
            "accepted and its AppInstanceId not compared with the InitiatorId: MS-RSVD does not name that context, "
            "and any application (Hyper-V for a VM's transparent failover among them) may set it, so a difference "
            "is not proof that the client broke 3.1.4.2."),
    "R21": ("2.2.5.7 and 3.1.5.3-4 make the SRB_STATUS request's SenseInfoExLength 0; a server implementing "
            "3.2.5.5.3 fails any but 20 (R43): 0 and 20 are both accepted, the other fields must be zero."),
    "R04": ("2.2.5.1 makes RequestId unique per client: only an exact duplicate of an id the client used (of its "
            "last 65536) is reported, whatever the order."),
    "R05": ("3.1.4.1 adds 1 per tunnel operation, but concurrent operations and channels are captured out of "
            "order: an id filling an earlier gap is fine; a gap no id fills by the end of the capture (or a jump "
            "of more than 1024 at once) is reported. The first id is not judged: 3.1.3 makes it "
            "implementation-specific (Windows clients start at zero, footnote <3>)."),
    "R28": ("3.1.5.3-4 fetch a stored error on the same handle but say not when: a CLOSE with the key unfetched "
            "is reported; a capture that ends first leaves it not evaluated. R29 likewise."),
    "R32": ("3.2.5.3-4 number stored errors 1, 2, ..., 0xFF, 0x00 per open, but concurrent failing READs and "
            "WRITEs are answered out of order: a key filling a skipped slot is fine, a jump ahead is fine while "
            "as many other requests of the open are in flight; reported are a key issued again (not a wrap "
            "after 256), a jump nothing in flight explains, and keys still skipped at the open's CLOSE."),
    "R33": ("The initiator a reservation belongs to is its InitiatorId when HasInitiatorId is set (a "
            "live-migrated VM keeps it on another host), else its host; only a WRITE served while the capture "
            "shows an exclusive reservation taken by another, and no later PR change on that disk, is reported."),
    "R34": ("The newer revision's 3.2.5.4 (STATUS_NOT_SUPPORTED without FILE_NO_INTERMEDIATE_BUFFERING) binds a "
            "newer server; the seed's (Windows Server 2012 R2) writes whatever the CreateOptions. Judged only on an "
            "open that shows a newer server: FILE_INFO ServerVersion 2 or more, or a Version 2 context accepted."),
    "R46": ("The seed's DiskType is FIXED or DYNAMIC; Windows reports DiskFormat VHDSET for a VHD Set, which with "
            "checkpoints is VHD_TYPE_DIFFERENCING (4): accepted with VHDSET only."),
    "R48": ("3.2.5.5.5 sets Length to \"the size of the SVHDX_TUNNEL_SCSI_RESPONSE structure that is constructed\": "
            "read as its fixed part (36, as the request's Length) or with its data (36 + DataTransferLength); "
            "both, and the request's Length, are accepted."),
    "R01": ("2.1 zeroes Reserved fields; Windows-only alignment padding is no field of the spec and is often "
            "uninitialised: the 24-byte FILE_INFO's 4 bytes before VirtualSize and VALIDATE_DISK's padding after "
            "IsValidDisk (R49) are not judged."),
    "C16": ("3.3.4.4 numbers partitions 1..MaxPartitionNumber, 3.2.1 numbers them 0..N-1: the client is held to "
            "1..N (C31; Windows numbers from 1, Partition0 being the whole disk); the server is judged only "
            "for numbers past N, which neither reading maps."),
    "C31": "As C16: the client's partitions are 1..MaxPartitionNumber.",
    "C56": ("2.2.2 says the device number ranges from zero to the number of disks accessible by the server minus "
            "one, but Windows disk numbers keep gaps after a LUN is removed, until a reboot: a DeviceNumber at or "
            "past CprepPrepareNodePhase2's pulNumDisks is no proof of an invalid or unknown disk. Only DiskIdType "
            "is held to CPREP_DISKID_ENUM; the count is not judged (neither here nor for C12)."),
    "C05": ("3.2.1 says \"a server maintains its prepare state\", as if one per server, while each activation is its "
            "own object: the state is kept per object, known only when the object's first captured call is "
            "CprepPrepareNode (a bind proves a new connection, not a new object), and a CprepPrepareNode refused "
            "with ERROR_INVALID_SERVER_STATE (another object moved the server's state) makes it unknown: calls "
            "are judged only against states the answers establish (C05-C07, C09 and the disk rules)."),
    "C14": ("3.2.4 refuses Owned- and Online-requiring calls on a disk not in that state, while 3.2.6 lets local "
            "events change it (ownership lost to another node): after a call on the disk fails with "
            "ERROR_INVALID_STATE or ERROR_NOT_READY its Owned and Online states are unknown until an answer sets "
            "them again (Arbitrate, StopDefense, Online, SetOnline, Offline, IsOnline S_OK); C14, C15, C16, C17, "
            "C21 and C24 are not judged in between."),
    "C55": ("3.6.4.3 says Data SHOULD be an ADAPTERLIST2 (<35>: an ADAPTERLIST before Windows Server 2012), so a "
            "Data that parses as neither breaks no MUST: it is listed as not evaluated; 2.2.11-2.2.17's MUSTs are "
            "judged once the Data parses. Bytes after the last Guid are not judged (no requirement names them; "
            "pcbOut, C49, covers the whole Data)."),
    "C59": ("3.8.4.1's table writes WAIT_TIMEOUT as 0x80070102; Windows returns the Win32 code 0x00000102 in the "
            "HRESULT's place: both are the timeout answer. TimeOut 0 is not judged, nor the answer's latency (the "
            "capture point adds the network's delay): only a success when DelayBeforeCleanup exceeds TimeOut is."),
    "C67": ("3.16.4.1 shows <updates version=\"1.0\"> without a namespace: a default namespace on the elements is "
            "read by local names; comments and CDATA are ordinary XML; only DOCTYPE and ENTITY declarations are "
            "refused; elements besides <update> are not judged (no MUST forbids them)."),
    "C42": ("3.6.4 (the server's view) says the client SHOULD call InitializeNode first, 3.7.4 (the client's "
            "sequencing) says MUST: judged as a MUST."),
    "C01": ("2.1 has the server require PKT_PRIVACY without saying where it refuses; a server may acknowledge a "
            "weaker bind and refuse its calls (an RPC security callback does), so a bind_ack alone is not judged: "
            "a call below privacy answered other than by a fault or E_ACCESSDENIED is."),
}
