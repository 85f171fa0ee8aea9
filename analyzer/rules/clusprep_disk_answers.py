"""MS-CSVP rules on the node's answers about disks: refused or served against the disk's state,
partitions, raw I/O, file system, queries, buffer sizes, share paths, disk ids and properties.
"""
from __future__ import annotations

import ipaddress
from typing import List

from dissectors.definitions import csvp_buffers as B

from ..reconstruction.clusprep_records import (ERROR_FILE_NOT_FOUND, ERROR_INVALID_STATE, ERROR_NOT_FOUND,
                                               ERROR_NOT_READY, ERROR_WRONG_DISK, Call, DiskState)
from .clusprep_preparation import (ANY_DISK_STATE, DiskRule, ERROR_INSUFFICIENT_BUFFER, ERROR_READ_FAULT,
                                   ERROR_UNRECOGNIZED_VOLUME, ERROR_WRITE_FAULT, FILE_ACCESS, MAX_PATHS, NEEDS_ATTACH,
                                   PARTITION, SECTOR, ServerDiskRule, UNKNOWN_STATE, hr)
from .findings import Rule


class DiskCallRefused(ServerDiskRule):
    id, severity, spec = "clusprep.disk_call_refused", "error", "MS-CSVP 3.2.4, 3.4.4, 3.2.4.7, 3.2.4.14"
    checks = ("C11", "C21")
    title = "The node refused a disk call it must always serve, or failed a repeated attach or online"
    advice = ("The node refused a disk call it must always serve (properties, IDs, attach) or failed a repeated "
              "attach or online; check the disk in Disk Management and the node's System event log.")

    def check(self, c, d):
        if c.method in ANY_DISK_STATE and c.hresult == ERROR_INVALID_STATE:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered ERROR_INVALID_STATE; it must be "
                        "served whatever the disk's state" % (c.method, c.disk), c.subject, check="C11",
                        spec="MS-CSVP 3.2.4, 3.4.4")
        elif c.succeeded is False and d.missing is None and (
                c.method == "CprepDiskAttach" and d.attached or
                c.method == "CprepDiskOnline" and d.online and not d.online_pending and d.online_known):
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; the disk is already %s, so "
                        "it returns S_OK" % (c.method, c.disk, c.result_text,
                                             "Attached" if c.method == "CprepDiskAttach" else "Online"),
                        c.subject, check="C21", spec="MS-CSVP 3.2.4.7, 3.2.4.14")


def unknown_disk(c: Call, d: DiskState):
    """Why the server has no such disk, or None: it said so (the list is fixed until the next Phase2).
    A device number at or past Phase2's pulNumDisks is no proof: Windows disk numbers keep gaps after
    a LUN is removed, until a reboot (READINGS["C56"])."""
    if d.missing is not None:
        return "the server answered that it has no such disk in frame %d" % d.missing
    return None


class UnknownDiskAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.unknown_disk_answer", "warning", "MS-CSVP 3.2.4, 3.4.4"
    level, checks = "SHOULD", ("C12",)
    title = "The node answered a call on a disk it does not have with the wrong error code"
    advice = ("Low impact: the node answered an unknown disk ID with an unexpected code; check that the disk list did "
              "not change after enumeration (a LUN removed or a rescan during validation).")
    # Attach: 3.2.4's general text says ERROR_FILE_NOT_FOUND, its own table and <15> ERROR_NOT_FOUND: either.

    def check(self, c, d):
        why = unknown_disk(c, d)
        ok = (ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND) if c.method == "CprepDiskAttach" else (ERROR_FILE_NOT_FOUND,)
        if why and c.hresult not in ok:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; %s, so it should be %s"
                        % (c.method, c.disk, c.result_text, why, " or ".join(hr(x) for x in ok)), c.subject)


class UnattachedDiskAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.unattached_disk_answer", "warning", "MS-CSVP 3.2.4, 3.4.4"
    level, checks = "SHOULD", ("C13",)
    title = "The node did not refuse a call on an unattached disk with the expected error"
    advice = ("The node did not refuse a call on a disk no CprepDiskAttach attached; check whether the call really "
              "ran against the disk, and report the returned code with the node's Windows build.")
    # 3.2.4 says ERROR_INVALID_STATE, 3.4.4 (the same object's other interface) ERROR_FILE_NOT_FOUND,
    # <16>/<22> ERROR_NOT_FOUND for IsOnline and SetOnline (Windows): any of them is a refusal as asked.

    def check(self, c, d):
        if c.method not in NEEDS_ATTACH or d.attached or unknown_disk(c, d):
            return
        ok = {ERROR_INVALID_STATE, ERROR_FILE_NOT_FOUND}
        if c.method in ("CprepDiskIsOnline", "CprepDiskSetOnline"):
            ok.add(ERROR_NOT_FOUND)
        if c.hresult not in ok:
            self.report([c.request_frame, c.response_frame], "%s on disk %s answered %s; no CprepDiskAttach attached "
                        "the disk, so it should be refused with %s" % (
                            c.method, c.disk, c.result_text, " or ".join(hr(x) for x in sorted(ok))), c.subject)


class PartitionAnswer(ServerDiskRule):
    id, severity, spec = "clusprep.partition_answer", "error", "MS-CSVP 3.2.4, 3.4.4"
    checks = ("C16", "C17")
    title = "The node did not refuse a missing partition, or a volume with no file system, as required"
    advice = ("Check the disk's partitions and volumes on that node (Get-Partition, Get-Volume): it did not refuse a "
              "partition past the count or file access on a RAW volume; a stale volume mount is likely.")
    # Partition numbers: 3.3.4.4 gives the client 1 to MaxPartitionNumber (clusprep.partition_out_of_range
    # holds it to that: Windows numbers partitions from 1, Partition0 being the whole disk); 3.2.1 numbers
    # them 0 to N-1. A server following either maps neither a number past MaxPartitionNumber, so only
    # those are judged here: 0 and N are each mappable in one reading.

    def check(self, c, d):
        name = PARTITION.get(c.method)
        if (name is None or not d.attached or not d.online or d.online_pending or not d.online_known
                or c.hresult == ERROR_INVALID_STATE):
            return
        p = c.param(name)
        if d.partitions is not None and isinstance(p, int) and p > d.partitions and c.hresult != ERROR_FILE_NOT_FOUND:
            self.report([c.request_frame, c.response_frame], "%s on disk %s partition %d answered %s; CprepDiskOnline "
                        "reported %d partitions, so it maps to no volume and must be ERROR_FILE_NOT_FOUND"
                        % (c.method, c.disk, p, c.result_text, d.partitions), c.subject, check="C16")
        elif c.method in FILE_ACCESS and d.fs.get(p, ("",))[0].upper() == "RAW" and (
                c.hresult != ERROR_UNRECOGNIZED_VOLUME):
            self.report([d.fs[p][1], c.request_frame, c.response_frame], "%s on disk %s partition %d answered %s; "
                        "CprepDiskGetFSName found no file system there (RAW), so it must be ERROR_UNRECOGNIZED_VOLUME"
                        % (c.method, c.disk, p, c.result_text), c.subject, check="C17")


class RawIoAnswer(Rule):
    id, severity, spec = "clusprep.raw_io_answer", "error", "MS-CSVP 3.2.4.1, 3.2.4.2"
    side, checks = "server", ("C18", "C19")
    title = "The node misreported a raw sector read or write (over 512 bytes served, or wrong count)"
    advice = ("Compare cbData with the byte count returned: raw I/O moves one 512-byte sector, so a wrong count or an "
              "oversized transfer served points at the node's storage stack or a 4K-native disk.")
    needs_stub = True

    def on_call(self, c: Call):
        if c.method not in ("CprepDiskRawRead", "CprepDiskRawWrite") or c.hresult is None or c.request is None:
            return
        read = c.method == "CprepDiskRawRead"
        check, fault = ("C18", ERROR_READ_FAULT) if read else ("C19", ERROR_WRITE_FAULT)
        cb, frames = c.param("cbData"), [c.request_frame, c.response_frame]
        done = c.param("pcbDataRead" if read else "pcbDataWritten")
        if not isinstance(cb, int) or not isinstance(done, int):
            return
        what = "%s of %d bytes on disk %s" % (c.method, cb, c.disk)
        # ERROR_READ_FAULT / ERROR_WRITE_FAULT for 512 bytes or fewer is not judged: a failing disk returns them.
        if c.succeeded and cb > SECTOR:
            self.report(frames, "%s answered %s; more than one 512-byte sector must be %s" % (what, c.result_text,
                        hr(fault)), c.subject, check=check)
        elif c.succeeded and done != (cb if read else SECTOR):
            self.report(frames, "%s succeeded with %s %d; it must be %d" % (
                what, "pcbDataRead" if read else "pcbDataWritten", done, cb if read else SECTOR), c.subject, check=check)
        elif not read and c.succeeded is False and done != 0:
            self.report(frames, "%s failed (%s) with pcbDataWritten %d; on an error it must be 0" % (
                what, c.result_text, done), c.subject, check=check)


class FileSystemAnswer(DiskRule):
    id, severity, spec = "clusprep.file_system_answer", "error", "MS-CSVP 3.2.4.20, 3.2.4.27"
    side, checks = "server", ("C22", "C25")
    title = "The node reported a partition's file system inconsistently, or with an empty or bad name"
    advice = ("The node's NTFS check and file system name disagree for a partition, or the name is empty or "
              "unterminated; check the volume on that node (Get-Volume) and for a format or remount meanwhile.")

    needs_known = False  # one answer against another, both in the capture

    def check(self, c, d):
        if c.hresult is None:
            return
        if c.method == "CprepDiskDiskPartitionIsNtfs" and c.hresult in (0, ERROR_WRONG_DISK):
            p = c.param("ulPartition")
            known = d.fs.get(p)
            if known is not None and (known[0].upper() == "NTFS") != (c.hresult == 0):
                self.report([known[1], c.request_frame, c.response_frame], "CprepDiskDiskPartitionIsNtfs on disk %s "
                            "partition %d answered %s; CprepDiskGetFSName named its file system %r" % (
                                c.disk, p, c.result_text, known[0]), c.subject, check="C22", spec="MS-CSVP 3.2.4.20")
        elif c.method == "CprepDiskGetFSName" and c.succeeded:
            p, name = c.param("Partition"), str(c.param("FsName", "")).rstrip("\x00")
            said = d.ntfs.get(p)
            if said is not None and said[0] != (name.upper() == "NTFS"):
                self.report([said[1], c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d "
                            "names %r; CprepDiskDiskPartitionIsNtfs answered %s" % (
                                c.disk, p, name, "S_OK (NTFS)" if said[0] else "ERROR_WRONG_DISK"), c.subject,
                            check="C22", spec="MS-CSVP 3.2.4.20")
            if not name:
                self.report([c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d answered "
                            "an empty name; no file system must be \"RAW\"" % (c.disk, p), c.subject, check="C25",
                            spec="MS-CSVP 3.2.4.27")
            elif len(str(c.param("FsName", ""))) >= 100:
                self.report([c.request_frame, c.response_frame], "CprepDiskGetFSName on disk %s partition %d answered "
                            "100 characters with no NUL terminator" % (c.disk, p), c.subject, check="C25",
                            spec="MS-CSVP 3.2.4.27")


class DiskQueryAnswer(DiskRule):
    id, severity, spec = "clusprep.disk_query_answer", "error", "MS-CSVP 3.2.4.22, 3.2.4.25"
    side, checks = "server", ("C23", "C24")
    title = "The node misreported a disk's reservation-present value or online state"
    advice = ("Check the disk's real state on that node: the reservation-present value is out of range or the "
              "is-online answer contradicts earlier calls; look for another tool onlining or offlining the disk.")
    needs_known = False  # Present needs no history; IsOnline is judged only where c.disks_known

    def on_call(self, c: Call):
        if c.method == "CprepDiskIsOnline" and c.hresult is not None and not c.disks_known:
            self.cannot_evaluate(c.subject, UNKNOWN_STATE)
        super().on_call(c)

    def check(self, c, d):
        if c.method == "CprepDiskIsPRPresent" and c.succeeded and c.param("Present", 0) not in (0, 1, 2):
            self.report([c.request_frame, c.response_frame], "CprepDiskIsPRPresent on disk %s answered Present %s "
                        "(must be 0, 1 or 2)" % (c.disk, c.param("Present")), c.subject, check="C23",
                        spec="MS-CSVP 3.2.4.22")
        elif (c.method == "CprepDiskIsOnline" and c.hresult is not None and c.prepare_state == "Online" and d.attached
              and not d.online_pending and d.missing is None and d.online_known and c.disks_known):
            want = 0 if d.online else ERROR_NOT_READY
            if c.hresult != want:
                self.report([c.request_frame, c.response_frame], "CprepDiskIsOnline on disk %s answered %s; the disk "
                            "is %s, so it must be %s" % (c.disk, c.result_text, "Online" if d.online else "not Online",
                                                         hr(want)), c.subject, check="C24", spec="MS-CSVP 3.2.4.25")


class BufferSizeAnswer(Rule):
    id, severity, spec = "clusprep.buffer_size_answer", "error", "MS-CSVP 3.2.4.13, 3.4.4.1"
    side, checks = "server", ("C26",)
    title = "The node misreported the size of a disk's device IDs against the client's buffer"
    advice = ("Compare the device ID answer's sizes with the client's buffer: the node overstated or misreported what "
              "it needed; read the disk's VPD pages 83h and 80h from that node.")
    needs_stub = True
    # CprepDiskGetDsms (3.2.4.29): ERROR_MORE_DATA when the DSMs do not fit in Size; its answer does not
    # say how many bytes they need (pReserved is to be ignored), and NDR itself keeps the data within
    # Size, so nothing of it is left to judge.

    def on_call(self, c: Call):
        if c.hresult is None or c.response is None:
            return
        frames = [c.request_frame, c.response_frame]
        if c.method == "CprepDiskGetUniqueIds":
            cb, out, needed = c.param("cbData"), c.param("pcbDataOut"), c.param("pcbNeeded")
            if c.request is None or not all(isinstance(x, int) for x in (cb, out, needed)):
                return  # a request stub that does not parse: clusprep.stub_malformed says so
            if c.succeeded and out > cb:
                self.report(frames, "CprepDiskGetUniqueIds on disk %s succeeded with pcbDataOut %d, more than the "
                            "cbData %d given" % (c.disk, out, cb), c.subject)
            elif c.hresult == ERROR_INSUFFICIENT_BUFFER and needed <= cb:
                self.report(frames, "CprepDiskGetUniqueIds on disk %s answered ERROR_INSUFFICIENT_BUFFER with "
                            "pcbNeeded %d, which the cbData %d given holds" % (c.disk, needed, cb), c.subject)
        elif c.method == "CprepDiskGetUniqueIds3" and c.succeeded:
            size, data = c.param("pcbDdSize"), c.param("ppDeviceDescriptor")
            if (size == 0) != (data is None):
                self.report(frames, "CprepDiskGetUniqueIds3 on disk %s answered pcbDdSize %d with %s "
                            "ppDeviceDescriptor; without a page 80h serial number both are 0 and NULL" % (
                                c.disk, size, "a NULL" if data is None else "a non-NULL"), c.subject,
                            spec="MS-CSVP 3.4.4.1")


class SharePathsInvalid(Rule):
    id, severity, spec = "clusprep.share_paths_invalid", "error", "MS-CSVP 3.4.4.5"
    side, checks = "server", ("C27",)
    title = "The node returned test share paths that are not \\\\<IP address>"
    advice = ("Check the test share paths the node returned: each must be \\\\ plus an IPv4 address or a bracketed "
              "IPv6 one; a host name or malformed address means the node builds them wrongly.")
    needs_stub = True
    # The NUL terminator each path MUST carry is not judged: the NDR layer ([string]) reads the text up
    # to it and keeps no trace of whether it was there.

    def on_call(self, c: Call):
        if c.method != "CprepCreateNewSmbShares3" or not c.succeeded:
            return
        bad = [p for p in list(c.param("ppwszSharePaths") or [])[:MAX_PATHS] if not share_path_ok(str(p))]
        if bad:
            self.report([c.request_frame, c.response_frame], "CprepCreateNewSmbShares3 returned %s; each path must "
                        "be \\\\ and an IPv4 address, or \\\\[IPv6 address]" % ", ".join(repr(p) for p in bad[:4]),
                        c.subject)


def share_path_ok(path: str) -> bool:
    if not path.startswith("\\\\"):
        return False
    rest = path[2:]
    try:
        if rest.startswith("[") and rest.endswith("]"):
            ipaddress.IPv6Address(rest[1:-1].split("%", 1)[0])
        else:
            ipaddress.IPv4Address(rest)
    except ValueError:
        return False
    return True


class SharesNotCreated(Rule):
    id, severity, spec = "clusprep.shares_not_created", "warning", "MS-CSVP 3.5.4.7"
    level, checks = "SHOULD", ("C41",)
    title = "The client connected to test share paths that no node created in the capture"
    advice = ("Find the CprepCreateNewSmbShares3 on the other node that should have produced these paths; if it is "
              "outside the capture, capture both nodes, else the client passed stale paths.")
    needs_start = needs_stub = True
    # Create on one node, Connect on another (3.5.4.7): the reconstruction looks the paths up among
    # every Create answer of the capture (Call.shares_created).

    def on_call(self, c: Call):
        if c.method == "CprepConnectToNewSmbShares3" and c.shares_created is False:
            paths = [str(p) for p in list(c.param("ppwszSharePaths") or [])[:4]]
            self.report([c.request_frame], "CprepConnectToNewSmbShares3 with %s, which no CprepCreateNewSmbShares3 "
                        "in the capture returned" % (", ".join(repr(p) for p in paths) or "no paths"), c.subject)


class DiskIdInvalid(Rule):
    id, severity, spec = "clusprep.disk_id_invalid", "error", "MS-CSVP 2.2.2"
    side, checks = "both", ("C56",)
    title = "A client or server sent a disk identifier (CPREP_DISKID) of unknown type"
    advice = ("Decode the CPREP_DISKID in the frame: its type is not signature, GUID, number or unknown; check the "
              "build of the side that sent it for a corrupt or mismatched interface definition.")
    needs_stub = True
    # A DiskIdType outside CPREP_DISKID_ENUM has no union arm, so the stub does not parse
    # (clusprep.stub_malformed says so too); this names the field and whose it is. The device number
    # is not held to the disk count CprepPrepareNodePhase2 reported (READINGS["C56"]).

    def on_call_malformed(self, c: Call, frame: int, why: str):
        if "no union arm for DiskIdType" in why:
            self.report([frame], "%s: %s; DiskIdType must be CprepIdSignature (0), CprepIdGuid (1), CprepIdNumber "
                        "(0xFA0) or CprepIdUnknown (0x1388)" % (c.method, why.split(": ", 1)[-1]), c.subject,
                        side="client" if frame == c.request_frame else "server")


ALL_DISK_FLAGS = sum(B.DISK_FLAGS.values())
ALL_EXTENDED_FLAGS = sum(B.DISK_EXTENDED_FLAGS.values())
DISK_POOL_DRIVE = B.DISK_FLAGS["DISK_POOL_DRIVE"]
GUID_NULL = "00000000-0000-0000-0000-000000000000"


class DiskPropsInvalid(Rule):
    id, severity, spec = "clusprep.disk_props_invalid", "error", "MS-CSVP 2.2.5, 2.2.6"
    side, checks = "server", ("C57",)
    title = "The node reported invalid disk properties (stack, SCSI address, bus type, flags, pool)"
    advice = ("Check the disk's properties on that node (Get-PhysicalDisk: bus type, SCSI address, storage pool): the "
              "node reported values outside the allowed set; a third-party storage driver is a likely cause.")
    needs_stub = True
    # DISK_PROPS's DiskBusType and Flags "MAY" be the listed values (2.2.5); DISK_PROPS_EX's MUST (2.2.6).

    def on_call(self, c: Call):
        if c.method not in ("CprepDiskGetProps", "CprepDiskGetProps3") or not c.succeeded:
            return
        ex = c.method == "CprepDiskGetProps3"
        p = c.param("pDiskProps" if ex else "DiskProps")
        if p is None:
            return
        bad = []
        if int(p.StackType) not in B.DISK_STACK_TYPE.values():
            bad.append("StackType %d is no DiskStackType" % int(p.StackType))
        if p.ScsiAddress.Length != 8:
            bad.append("ScsiAddress.Length %d (the structure is 8 bytes)" % p.ScsiAddress.Length)
        if ex:
            if int(p.DiskBusType) not in B.DISK_BUS_TYPE.values():
                bad.append("DiskBusType %d is not a listed bus type" % int(p.DiskBusType))
            if int(p.Flags) & ~ALL_DISK_FLAGS:
                bad.append("Flags 0x%08X has undefined bits 0x%08X" % (int(p.Flags), int(p.Flags) & ~ALL_DISK_FLAGS))
            if int(p.ExtendedFlags) & ~ALL_EXTENDED_FLAGS:
                bad.append("ExtendedFlags 0x%08X has undefined bits" % int(p.ExtendedFlags))
            if not int(p.Flags) & DISK_POOL_DRIVE:
                if p.get("pwszPoolName") is not None:
                    bad.append("pwszPoolName %r for a disk not in a pool (DISK_POOL_DRIVE clear) must be NULL"
                               % p.pwszPoolName)
                if str(p.get("guidPoolId", GUID_NULL)).lower() != GUID_NULL:
                    bad.append("guidPoolId %s for a disk not in a pool must be GUID_NULL" % p.guidPoolId)
        if bad:
            self.report([c.request_frame, c.response_frame], "%s on disk %s: %s" % (c.method, c.disk, "; ".join(bad)),
                        c.subject)


RULES: List[type] = [DiskCallRefused, UnknownDiskAnswer, UnattachedDiskAnswer, PartitionAnswer, RawIoAnswer,
                     FileSystemAnswer, DiskQueryAnswer, BufferSizeAnswer, SharePathsInvalid, SharesNotCreated,
                     DiskIdInvalid, DiskPropsInvalid]
