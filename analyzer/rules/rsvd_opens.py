"""MS-RSVD and MS-VSOD rules on the CREATE that opens a shared virtual disk: the SMB dialect, the
name's suffix, the open context, and the CreateOptions it needs.
"""
from __future__ import annotations

from typing import List

from ..reconstruction import decoding
from ..reconstruction.rsvd_records import FILE_NO_INTERMEDIATE_BUFFERING, SUFFIX
from .findings import Rule

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def dialect_text(d: int) -> str:
    return "%d.%d.%d" % (d >> 8, (d >> 4) & 0xF, d & 0xF) if d != 0x02FF else "2.??"


class DialectBelow302(Rule):
    id, severity, spec = "rsvd.dialect_below_302", "observation", "MS-RSVD 2.1; MS-VSOD 3.2.1.1"
    level, side = None, None  # 2.1 describes the transport ("uses the SMB 3.02 dialect"); no MUST
    title = "A shared-disk open on a connection that negotiated SMB older than 3.0.2"
    advice = ("Look at this connection's NEGOTIATE: shared VHDX needs SMB 3.02 or later, so check the file server's "
              "Windows version and any policy capping the SMB dialect; act only if the open fails.")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if conn.dialect is None:
            self.cannot_evaluate(conn.label, "the connection's NEGOTIATE is not in the capture (it started mid-connection)")
        elif conn.dialect < 0x0302:
            self.report([req.frame], "CREATE of %s with the RSVD open context on a connection that negotiated SMB %s"
                        % (req.name, dialect_text(conn.dialect)), conn.label)


class OpenNameSuffix(Rule):
    id, severity, spec = "rsvd.open_name_suffix", "error", "MS-RSVD 3.1.4.2"
    checks = ("R14",)
    title = "The client opened a shared disk by a name without the :SharedVirtualDisk suffix"
    advice = ("Check how the client builds the file name: a CREATE carrying the shared-disk open context must name "
              "the .vhdx with :SharedVirtualDisk appended; an app passing the bare path is the usual cause.")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if not req.name.lower().endswith(SUFFIX.lower()):
            self.report([req.frame], "CREATE of \"%s\" carries SVHDX_OPEN_DEVICE_CONTEXT but the name does not end in %s"
                        % (req.name, SUFFIX), conn.label)


class OpenContextInvalid(Rule):
    id, severity, spec = "rsvd.open_context_invalid", "error", "MS-RSVD 2.2.5.2, 3.1.4.2"
    title = "The client sent a shared-disk open with bad fields (version, initiator, flags, host name)"
    advice = ("Decode the CREATE's SVHDX_OPEN_DEVICE_CONTEXT in Wireshark and compare Version, HasInitiatorId with "
              "InitiatorId, OriginatorFlags (1) and the host name length with what the client should send.")
    checks = ("R06", "R10", "R11", "R12")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        subject = conn.label
        c = req.context
        if c is None:
            return  # does not parse: rsvd.message_malformed says why
        problems = {}  # check -> what is wrong
        want = 2 if c.get("_variant") == "windows_v2" else 1
        if c.Version != want:
            problems.setdefault("R06", []).append("Version %d (a %s context must say %d)" % (
                c.Version, c.get("_variant"), want))
        has_id = decoding.int_of(c.HasInitiatorId)
        if has_id not in (0, 1):
            problems.setdefault("R12", []).append("HasInitiatorId %d (not 0 or 1)" % has_id)
        elif not has_id and str(c.InitiatorId) != ZERO_GUID:
            problems.setdefault("R12", []).append("HasInitiatorId FALSE with InitiatorId %s (must then be zero)"
                                                  % c.InitiatorId)
        if decoding.int_of(c.OriginatorFlags) != 1:
            problems.setdefault("R10", []).append("OriginatorFlags 0x%X (must be 1)" % decoding.int_of(c.OriginatorFlags))
        length = c.InitiatorHostNameLength
        if length > 126:
            problems.setdefault("R11", []).append("InitiatorHostNameLength %d (at most 126)" % length)
        elif 2 * len(c.InitiatorHostName) + 2 > length:
            problems.setdefault("R11", []).append("InitiatorHostName \"%s\" is not NUL-terminated within its %d bytes"
                                                  % (c.InitiatorHostName, length))
        for check, what in sorted(problems.items()):
            self.report([req.frame], "open context of %s: %s" % (req.name, "; ".join(what)), subject, check=check)


class OpenMissingNoIntermediateBuffering(Rule):
    id, severity = "rsvd.open_missing_no_intermediate_buffering", "observation"
    level, side = None, None  # the MUST binds the server's answer to its writes (R34)
    spec = "MS-VSOD 3.2.1.1 step 9; MS-RSVD 3.2.5.4 (newer revision)"
    title = "A shared-disk open did not ask for unbuffered I/O (FILE_NO_INTERMEDIATE_BUFFERING)"
    advice = ("Check the shared-disk CREATE's CreateOptions: without FILE_NO_INTERMEDIATE_BUFFERING a newer file "
              "server fails every WRITE with STATUS_NOT_SUPPORTED; act only if writes fail.")
    needs_create = True

    def on_rsvd_create(self, req, conn):
        if req.create_options is not None and not req.create_options & FILE_NO_INTERMEDIATE_BUFFERING:
            self.report([req.frame], "CREATE of %s with CreateOptions 0x%08X: FILE_NO_INTERMEDIATE_BUFFERING is not "
                        "set, so a server of the newer revision fails its writes with STATUS_NOT_SUPPORTED" % (req.name, req.create_options),
                        conn.label)


RULES: List[type] = [DialectBelow302, OpenNameSuffix, OpenContextInvalid, OpenMissingNoIntermediateBuffering]
