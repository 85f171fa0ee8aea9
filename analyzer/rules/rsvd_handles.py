"""MS-RSVD rules on an open's handle: a CREATE request lacking what it must carry, the asynchronous
tunnel on a version 1 open, a CREATE the server must refuse, a closed handle served.
"""
from __future__ import annotations

import uuid
from typing import List, Optional

from dissectors.definitions import rsvd

from ..reconstruction import decoding
from ..reconstruction.bus import for_kinds
from ..reconstruction.rsvd_records import SUFFIX, Operation
from .findings import Rule
from .rsvd_zero_fields import V1_OPS


class OpenRequestIncomplete(Rule):
    id, severity, spec = "rsvd.open_request_incomplete", "error", "MS-RSVD 3.1.4.2"
    checks = ("R16", "R17")
    title = "A :SharedVirtualDisk open without the shared-disk context, or with bad extended attributes"
    advice = ("Check the :SharedVirtualDisk CREATE: it needs the shared-disk open context, and any "
              "ClusteredApplicationInstance or ApplicationTrafficType EA must hold the InitiatorId with Flags 0.")
    # 3.1.4.2 hands the EAs to the SMB2 client's interface (MS-SMB2 3.2.4.30), which is not the wire:
    # Windows' SMB2 client sends the app instance EA as the SMB2_CREATE_APP_INSTANCE_ID create context,
    # and the traffic-type EA need not appear at all. So an EA missing from the ExtA context proves
    # nothing and is never reported; what is judged is an ExtA entry of those names with Flags not 0
    # or a value other than the open context's InitiatorId. The SMB2_CREATE_APP_INSTANCE_ID context is
    # accepted and not judged (READINGS R16). 3.1.4.2 sets each EA's NextEntryOffset to zero, which
    # cannot chain two entries in one ExtA list (MS-FSCC 2.4.15): a chained list is accepted. R17 sees
    # a CREATE without the context only in a frame with some create context or FSCTL (the plugin's
    # export gate); one with no create context at all is not seen.
    NAMES = (rsvd.SMB_CCF_APP_INSTANCE_EA_NAME, rsvd.APP_TRAFFIC_TYPE_EA_NAME)

    def on_rsvd_create_without_context(self, m, conn):
        self.report([m.frame], "CREATE of \"%s\" ends in %s but carries no SVHDX_OPEN_DEVICE_CONTEXT"
                    % (m.bare_name, SUFFIX), conn.label, check="R17")

    def on_rsvd_create(self, req, conn):
        if req.eas is None:
            self.cannot_evaluate(conn.label, "the EAs of a CREATE: %s" % req.eas_error)
            return
        c = req.context
        want = None
        if c is not None:
            try:
                want = uuid.UUID(str(c.InitiatorId)).bytes_le
            except ValueError:
                want = None
        problems = []
        names = {n.lower(): n for n in self.NAMES}
        for _, flags, name, value in req.eas:
            name = names.get(name.lower())
            if name is None:
                continue  # another EA: not 3.1.4.2's
            if flags:
                problems.append("%s Flags 0x%02X (must be 0)" % (name, flags))
            if want is not None and value != want:
                problems.append("%s value %s (must be the InitiatorId, %s)" % (name, value[:20].hex() or "empty",
                                                                                want.hex()))
        if problems:
            self.report([req.frame], "CREATE of %s: %s" % (req.name, "; ".join(problems)), conn.label, check="R16")


class TunnelNotSync(Rule):
    id, severity, spec = "rsvd.tunnel_not_sync", "error", "MS-RSVD 3.1.4.6-3.1.4.10"
    checks = ("R18",)
    title = "The client used the asynchronous tunnel on a version 1 open (only version 2 opens may)"
    advice = ("Check the open context's Version: an open made as version 1 must use the synchronous tunnel FSCTL, so "
              "an async one means the client mixes protocol versions; check its RSVD driver build.")
    # The seed's 3.1.4.6-10 name FSCTL_SVHDX_SYNC_TUNNEL_REQUEST. FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST
    # (MS-SMB2 2.2.31) came with RSVD version 2: an open whose context says Version 2 may use it, and
    # the v2 OperationCodes always may. An open made before the capture shows no version: not evaluated.
    needs_create = True

    @for_kinds(V1_OPS)
    def on_rsvd_request(self, op: Operation, conn):
        if op.function != rsvd.FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST or op.kind not in V1_OPS:
            return
        o = op.open
        if o is None or o.context is None:  # needs_create lists an open made before the capture
            return
        if decoding.int_of(o.context.Version) < 2:
            self.report([op.request_frame], "%s sent with FSCTL_SVHDX_ASYNC_TUNNEL_REQUEST on an open whose context "
                        "is Version %d: a version 1 client uses FSCTL_SVHDX_SYNC_TUNNEL_REQUEST"
                        % (op.kind, decoding.int_of(o.context.Version)), op.subject)


class CreateNotRefused(Rule):
    id, severity, spec = "rsvd.create_not_refused", "error", "MS-RSVD 3.2.5.1"
    side, checks = "server", ("R07", "R13", "R15")
    title = "The server accepted a shared-disk open it must refuse (bad name, version or initiator)"
    advice = ("The file server accepted a shared-disk open it must reject (bad name suffix, Version or "
              "HasInitiatorId); check its shared VHDX support and patch level, and the client that built the CREATE.")
    needs_create = True
    # 3.2.5.1 names STATUS_INVALID_PARAMETER, but MS-SMB2 and the object store may refuse the CREATE
    # first for their own reasons (e.g. STATUS_OBJECT_NAME_NOT_FOUND): any failure is accepted, success
    # is flagged. Version: RSVD_ECP_CONTEXT_VERSION_1 in the seed; a Version 2 context in the 192-byte
    # SVHDX_OPEN_DEVICE_CONTEXT_V2 layout is what a version 2 server accepts (newer revisions), so it is too.

    def on_rsvd_create_answer(self, req, status: Optional[int], frame: int, conn):
        if status != 0:
            return
        c = req.context
        problems = []
        if not req.name.lower().endswith(SUFFIX.lower()):
            problems.append(("R15", "the name \"%s\" does not end in %s" % (req.name, SUFFIX)))
        if c is not None:
            version = decoding.int_of(c.Version)
            if version != 1 and not (version == 2 and c.get("_variant") == "windows_v2"):
                problems.append(("R07", "the open context's Version is %d (not RSVD_ECP_CONTEXT_VERSION_1)" % version))
            has_id = decoding.int_of(c.HasInitiatorId)
            if has_id not in (0, 1):
                problems.append(("R13", "the open context's HasInitiatorId is %d (neither FALSE nor TRUE)" % has_id))
        for check, why in problems:
            self.report([req.frame, frame], "CREATE of %s succeeded, but %s: the server MUST fail it with "
                        "STATUS_INVALID_PARAMETER" % (req.name, why), conn.label, check=check)


class ClosedOpenServed(Rule):
    id, severity, spec = "rsvd.closed_open_served", "error", "MS-RSVD 3.2.5.3, 3.2.5.4, 3.2.5.5"
    side, checks = "server", ("R30", "R31", "R36")
    title = "The server served a READ, WRITE or tunnel operation on a handle already closed"
    advice = ("Check the server's handle bookkeeping: the client used a FileId after its CLOSE succeeded; look for a "
              "reconnect (durable handle) that should have reopened it, else report the server build.")
    # 3.2.5.3-5 fail it with STATUS_INVALID_PARAMETER when no Open is found; MS-SMB2 (3.3.5.x) fails a
    # request on a closed FileId first, with STATUS_FILE_CLOSED, so any failure is accepted and only
    # success is flagged. Opens made before the capture are not judged: only a CLOSE seen says "no Open".
    CHECK = {"SMB2_READ": ("R30", "MS-RSVD 3.2.5.3"), "SMB2_WRITE": ("R31", "MS-RSVD 3.2.5.4")}

    def flag(self, op: Operation, what: str):
        check, spec = self.CHECK.get(op.kind, ("R36", "MS-RSVD 3.2.5.5"))
        o = op.closed
        self.report([o.close_frame, op.request_frame, op.response_frame], "%s on %s after its CLOSE (frame %d) "
                    "succeeded%s: with no Open the server MUST fail it (STATUS_INVALID_PARAMETER; MS-SMB2's "
                    "STATUS_FILE_CLOSED is accepted too)" % (what, o.name or "the open", o.close_frame,
                                                             ""), o.label, check=check, spec=spec)

    def on_rsvd_after_close_answer(self, op: Operation):
        if op.status == 0:
            self.flag(op, op.kind)

    def on_rsvd_response(self, op: Operation):
        if op.closed is not None and op.status == 0:
            self.flag(op, op.kind)


RULES: List[type] = [OpenRequestIncomplete, TunnelNotSync, CreateNotRefused, ClosedOpenServed]
