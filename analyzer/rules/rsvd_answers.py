"""MS-RSVD rules on the server's answers: stored-error keys, WRITE answers (reservations and
buffering), stored errors asked for, and the fields and status of each tunnel operation's answer.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from dissectors.definitions import rsvd

from ..reconstruction import decoding
from ..reconstruction.bus import for_kinds
from ..reconstruction.request_numbers import StoredKeys
from ..reconstruction.rsvd_records import (FILE_NO_INTERMEDIATE_BUFFERING, SCSI_OP, SRB_STATUS_OP, Open, Operation,
                                           stored_key)
from .findings import Rule
from .rsvd_zero_fields import (CHECK_CONNECTION_OP, DISK_INFO_OP, FILE_INFO_OP, HEADER_SIZE, STATUS_INVALID_PARAMETER,
                               STATUS_NOT_SUPPORTED, VALIDATE_DISK_OP, is_zero, payload_of, shown)

NOT_AVAILABLE = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_NOT_AVAILABLE"]


class StoredKeySequence(Rule):
    id, severity, spec = "rsvd.stored_key_sequence", "error", "MS-RSVD 3.2.5.3, 3.2.5.4"
    side, checks = "server", ("R32",)
    title = "The server numbered stored I/O errors out of sequence (a key repeated or skipped)"
    advice = ("List this handle's STATUS_SVHDX_ERROR_STORED answers in order: keys count up by one per failure, so a "
              "repeat or gap means the server lost an error or a failing request is missing from the capture.")
    # Open.SenseErrorSequence starts at 0 (3.2.5.1) and each stored error increments it (0xFF wraps to
    # 0x00) before it becomes the key. Concurrent failing READs and WRITEs (and multichannel) are
    # answered out of order, so per open the highest key and a bounded set of keys skipped so far are
    # kept (analyzer.reconstruction.request_numbers.StoredKeys): a key that fills a skipped slot is fine, and a jump
    # ahead is fine while at least as many other requests of the open are in flight as keys it skips.
    # Reported: a key issued again (not a wrap after 256), a jump no request in flight explains, and at
    # the open's CLOSE the keys skipped and never filled. For an open made before the capture the first
    # key seen starts the sequence (the rule is listed as not evaluated for it: needs_create).
    needs_create = True

    def __init__(self, sink):
        super().__init__(sink)
        self.opens: Dict[str, StoredKeys] = {}
        self.closing: Dict[str, Tuple[Open, int, StoredKeys]] = {}  # closed with requests in flight: judged
        # once they are answered (a FileId reused meanwhile is another open, with its own sequence)

    def on_rsvd_open(self, o: Open, conn, frame: int):
        self.opens[o.id] = StoredKeys(known_start=not o.pre_capture, start_frame=o.create_frame or frame)

    def on_rsvd_stored_error(self, e, op: Operation):
        seq = self.opens.get(e.open.id)
        late = self.closing.get(e.open.id)
        if late is not None and late[0] is e.open:
            seq = late[2]  # answered after the CLOSE was sent
        if seq is None:
            return
        for v in seq.add(e.key, e.frame, op.request_frame, e.open.in_flight):
            if v[0] == "repeat":
                self.report([v[1], op.request_frame, e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d, a key "
                            "already issued on this open (frame %d) and not wrapped since: each stored error takes "
                            "the next Open.SenseErrorSequence" % (e.operation, e.key, v[1]), e.open.label)
            elif v[0] == "jump":
                after = "the highest so far (frame %d)" % v[2] if v[3] else "the open's CREATE (frame %d), whose " \
                    "first stored error is key 1" % v[2]
                self.report([v[2], op.request_frame, e.frame], "%s answered STATUS_SVHDX_ERROR_STORED|%d, skipping "
                            "%d key%s after %s with %d other request%s of the open in flight: each stored error takes "
                            "the next Open.SenseErrorSequence"
                            % (e.operation, e.key, v[1], "s" if v[1] != 1 else "", after, e.open.in_flight,
                               "s" if e.open.in_flight != 1 else ""), e.open.label)
            else:
                self.lost(e.open, v[1], [v[2]], "before the sequence wrapped past them")

    def lost(self, o: Open, keys: List[int], frames: List[int], when: str) -> None:
        self.report(frames, "stored-error key%s %s skipped on %s and never given to any answer %s: each stored error "
                    "takes the next Open.SenseErrorSequence" % ("s" if len(keys) > 1 else "",
                                                                ", ".join(str(k) for k in keys), o.name or "the open",
                                                                when), o.label)

    def judge_close(self, o: Open, frame: int, seq: Optional[StoredKeys]) -> None:
        unfilled = seq.unfilled() if seq is not None else []
        if unfilled:
            self.lost(o, [k for k, _ in unfilled], sorted({f for _, f in unfilled}) + [frame],
                      "before the CLOSE (frame %d)" % frame)

    def on_rsvd_close(self, o: Open, frame: int):
        seq = self.opens.pop(o.id, None)
        if o.in_flight:
            self.closing[o.id] = (o, frame, seq)
        else:
            self.judge_close(o, frame, seq)

    def on_rsvd_response(self, op: Operation):
        if not self.closing:  # most of the time: nothing waits (and o.id is a format)
            return
        o = op.open
        late = self.closing.get(o.id) if o is not None else None
        if late is not None and late[0] is o and o.in_flight == 0:
            del self.closing[o.id]
            self.judge_close(*late)



class WriteAnswer(Rule):
    id, severity, spec = "rsvd.write_answer", "error", "MS-RSVD 3.2.5.4"
    side, checks = "server", ("R33", "R34")
    title = "The server did not refuse a WRITE as required (disk reserved by another, or buffered open)"
    advice = ("Run PERSISTENT RESERVE IN to see who holds the disk: a WRITE served under another node's exclusive "
              "reservation risks corruption; if the finding is about buffering, check the CREATE's CreateOptions.")
    needs_create = True
    # R33 (3.2.5.4, SPC-3 5.6): the reservation as the capture shows it, per (server, disk), from
    # PERSISTENT RESERVE OUT commands the disk accepted (GOOD): RESERVE sets holder and type; PREEMPT of
    # the holder's key moves it; the holder re-registering changes its key; REGISTER by another
    # initiator leaves it; any other accepted PR OUT (RELEASE, CLEAR, the holder unregistering, ...)
    # drops it. Only WRITE EXCLUSIVE and EXCLUSIVE ACCESS are judged: there only the holder may write,
    # whatever registrations predate the capture. The state starts unknown, and becomes unknown again
    # when the holder's open closes: what another server did in between is not in the capture. The
    # initiator is its InitiatorId when HasInitiatorId is set (a live-migrated VM keeps it on another
    # host), else its host. Only a WRITE served (success) is flagged: the newer revision's earlier
    # branches (a stored error, STATUS_NOT_SUPPORTED) come before the reservation check.
    # R34 is the newer revision's 3.2.5.4; the seed's server (Windows Server 2012 R2) writes whatever
    # the CreateOptions. It is judged only on an open that shows a newer server: a FILE_INFO answered
    # with ServerVersion 2 or more, or a Version 2 (SVHDX_OPEN_DEVICE_CONTEXT_V2) context accepted;
    # a WRITE on another open is held until that evidence comes, else listed as not evaluated. On an
    # open with no InitiatorId a stored error is accepted too (the newer 3.2.5.4's first branch, for
    # an Open.IsVirtualSCSIDisk the wire does not show: NOT_CHECKED R35).
    EXCLUSIVE = ("WRITE_EXCLUSIVE", "EXCLUSIVE_ACCESS")
    MAX_HELD = 8  # per open: WRITEs waiting for evidence of a newer server

    def __init__(self, sink):
        super().__init__(sink)
        self.reservations: Dict[Tuple, dict] = {}  # disk -> holder, type, key, frame, holder's open id
        self.newer: Dict[str, bool] = {}  # open id -> a newer server shown
        self.held: Dict[str, Tuple[Open, list]] = {}  # open id -> (open, [(frames, text)]): WRITEs that break R34
        # on a newer server, held until one shows

    @staticmethod
    def who(o: Open) -> Tuple[str, str]:
        if o.initiator_id:
            return ("id", o.initiator_id.lower())
        return ("host", (o.initiator_host or o.client.rsplit(":", 1)[0]).lower())

    def on_rsvd_open(self, o: Open, conn, frame: int):
        c = o.context
        if c is not None and c.get("_variant") == "windows_v2" and decoding.int_of(c.Version) >= 2:
            self.newer[o.id] = True

    def on_rsvd_close(self, o: Open, frame: int):
        r = self.reservations.get(o.disk)
        if r is not None and r["open"] == o.id:
            del self.reservations[o.disk]
        self.give_up(o)

    def on_finish(self):
        for o, _ in list(self.held.values()):
            self.give_up(o)

    def give_up(self, o: Open) -> None:
        self.newer.pop(o.id, None)
        if self.held.pop(o.id, None):
            self.cannot_evaluate(o.label, "a WRITE on an open without FILE_NO_INTERMEDIATE_BUFFERING was served, but "
                                 "nothing shows a server of the newer revision (FILE_INFO ServerVersion 2, or a Version "
                                 "2 open context accepted), and the seed's server writes whatever the CreateOptions")

    def track(self, op: Operation):
        o, q = op.open, op.request["Payload"]
        cdb = q.get("Cdb")
        if cdb is None or str(cdb.get("OperationCode")) != "PERSISTENT_RESERVE_OUT":
            return
        resp = payload_of(op.response)
        if not resp or decoding.int_of(resp.get("ScsiStatus", 1)) != 0:
            return
        r = self.reservations.get(o.disk)
        if not isinstance(q.get("Data"), dict):
            self.reservations.pop(o.disk, None)  # a change the capture does not show: unknown
            return
        fields, data = cdb.get("Fields") or {}, q.Data
        action = str(fields.get("ServiceAction", ""))
        kind = str((fields.get("ScopeType") or {}).get("Type", ""))
        key, sa_key = int(data.get("ReservationKey", 0)), int(data.get("ServiceActionReservationKey", 0))
        mine = r is not None and r["holder"] == self.who(o)
        if action == "RESERVE":
            self.reservations[o.disk] = dict(holder=self.who(o), name=o.initiator, type=kind, key=key,
                                             frame=op.request_frame, open=o.id)
        elif action.startswith("PREEMPT") and r and sa_key == r["key"]:
            self.reservations[o.disk] = dict(holder=self.who(o), name=o.initiator, type=kind, key=key,
                                             frame=op.request_frame, open=o.id)
        elif action.startswith("REGISTER") and r and not mine:
            pass  # another initiator registering: the reservation stays
        elif action.startswith("REGISTER") and mine and sa_key:
            r["key"] = sa_key
        elif action.startswith("PREEMPT") and r and not mine and sa_key != r["key"]:
            pass  # another registration removed: the reservation stays
        else:
            self.reservations.pop(o.disk, None)  # RELEASE, CLEAR, the holder unregistering, ...

    @for_kinds([SCSI_OP, FILE_INFO_OP, "SMB2_WRITE"])
    def on_rsvd_response(self, op: Operation):
        o = op.open
        if o is not None and op.kind == SCSI_OP and op.response is not None:
            cdb = op.request["Payload"].get("Cdb")
            if cdb is not None and cdb.get("OperationCode") == "PERSISTENT_RESERVE_OUT":  # what track() wants first
                self.track(op)
        if o is not None and op.kind == FILE_INFO_OP and op.status == 0:
            p = payload_of(op.response) or {}
            if decoding.int_of(p.get("ServerVersion", 0)) >= 2:
                self.newer[o.id] = True
                for frames, text in self.held.pop(o.id, (o, []))[1]:
                    self.report(frames, text, o.label, check="R34", spec="MS-RSVD 3.2.5.4 (newer revision)")
        if op.kind != "SMB2_WRITE" or o is None:
            return
        r = self.reservations.get(o.disk)
        if r is not None and r["type"] in self.EXCLUSIVE and r["holder"] != self.who(o) and op.status == 0:
            self.report([r["frame"], op.request_frame, op.response_frame], "SMB2 WRITE by %s served while %s "
                        "holds a %s reservation (frame %d) and no later PR change on the disk is in the capture: the "
                        "server MUST fail it with STATUS_SVHDX_RESERVATION_CONFLICT" % (
                            o.initiator, r["name"], r["type"], r["frame"]), o.label, check="R33")
            return
        if o.pre_capture:  # needs_create lists it as not evaluated (R33 above needs no CREATE)
            return
        if o.create_options is None or o.create_options & FILE_NO_INTERMEDIATE_BUFFERING \
                or op.status == STATUS_NOT_SUPPORTED:
            return
        if not o.initiator_id and stored_key(op.status) is not None:
            return  # the newer 3.2.5.4's first branch (Open.IsVirtualSCSIDisk and no InitiatorId)
        frames = [o.create_frame, op.request_frame, op.response_frame]
        text = ("SMB2 WRITE on %s answered %s: its CREATE (CreateOptions 0x%08X) lacks FILE_NO_INTERMEDIATE_BUFFERING, "
                "so a server of the newer revision MUST fail it with STATUS_NOT_SUPPORTED"
                % (o.name, op.status_name or "-", o.create_options))
        if self.newer.get(o.id):
            self.report(frames, text, o.label, check="R34", spec="MS-RSVD 3.2.5.4 (newer revision)")
        else:
            held = self.held.setdefault(o.id, (o, []))[1]
            if len(held) < self.MAX_HELD:
                held.append((frames, text))


class SenseKeyAnswer(Rule):
    id, severity, spec = "rsvd.sense_key_answer", "error", "MS-RSVD 3.2.5.5.3"
    side, checks = "server", ("R44",)
    title = "The server answered a request for a stored error (SRB_STATUS) with the wrong status"
    advice = ("Compare the SRB_STATUS answer with the earlier stored error on this handle: a stored key must return "
              "its sense data, a never-stored one STATUS_SVHDX_ERROR_NOT_AVAILABLE; check the server's build.")
    # A key "never stored" is known only for an open whose CREATE is in the capture; for an open made
    # before it, a key may predate the capture, so only a stored key's answer is judged there (and the
    # rule is listed as not evaluated for that open: needs_create).
    # The request's SenseInfoExLength (0, as 2.2.5.7 and 3.1.5.3-4 require) is not a reason to fail:
    # see NOT_CHECKED R43.
    needs_create = True

    @for_kinds([SRB_STATUS_OP])
    def on_rsvd_response(self, op: Operation):
        o = op.open
        if op.kind != SRB_STATUS_OP or o is None or "StatusKey" not in (op.request["Payload"] or {}):
            return
        key = decoding.int_of(op.request["Payload"]["StatusKey"])
        frames = [op.request_frame, op.response_frame]
        if op.stored is not None:
            if op.status != 0:
                self.report([op.stored.frame] + frames, "SRB_STATUS for StatusKey %d answered %s, but %s stored an "
                            "error under that key (frame %d): the server MUST return it with STATUS_SUCCESS"
                            % (key, op.status_name or "-", op.stored.operation, op.stored.frame), o.label)
        elif o.pre_capture:
            return  # the key may have been stored before the capture started: not judged
        elif op.status != NOT_AVAILABLE:
            self.report(frames, "SRB_STATUS for StatusKey %d, which no error on this open was stored under, answered "
                        "%s: the server MUST return STATUS_SVHDX_ERROR_NOT_AVAILABLE" % (key, op.status_name or "-"),
                        o.label)


class ResponseInvalid(Rule):
    id, severity, spec = "rsvd.response_invalid", "error", "MS-RSVD 3.2.5.5.1-3.2.5.6"
    side = "server"
    checks = ("R40", "R41", "R42", "R45", "R46", "R47", "R48", "R49", "R50")
    title = "The server's answer to a tunnel operation or support query has wrong fields or status"
    advice = ("Open the answer in Wireshark and compare the fields the finding names (sizes, flags, versions, payload "
              "after a failure) with the request; check the file server build and any filter rewriting it.")
    # Windows layouts are accepted where dissectors/definitions/rsvd.py declares them: ServerVersion 2 (an RSVD v2
    # server's ServerServiceVersion), DiskFormat VHDSET, the 1-byte StatusKey SRB_STATUS answer, the
    # 1-byte IsValidDisk VALIDATE_DISK answer, 4-byte support fields with snapshot support (3, 7).
    FAIL_HEADER_ONLY = {FILE_INFO_OP: "3.2.5.5.1", DISK_INFO_OP: "3.2.5.5.4", SCSI_OP: "3.2.5.5.5"}
    SUPPORT = {"seed": (1,), "windows": (1, 3, 7)}  # SharedVirtualDisksSupported; newer: snapshots (3), CDP (7)
    DISK_TYPES = ("VHD_TYPE_FIXED", "VHD_TYPE_DYNAMIC")  # the seed's; a VHD Set may be differencing (READINGS R46)
    # R48: the SCSI answer's Length is "the size of the SVHDX_TUNNEL_SCSI_RESPONSE structure that is
    # constructed" (3.2.5.5.5): 36 (its fixed part, as the request's Length) or 36 + DataTransferLength
    # (with its data) are accepted, and the request's Length (READINGS R48). VALIDATE_DISK's Windows
    # padding after IsValidDisk is alignment, not judged (R49).
    # R41 across answers: ServerVersion is the server's one ServerServiceVersion (3.2.3), so every
    # FILE_INFO answer of a server carries the same; SectorSize and PhysicalSectorSize are the disk's,
    # the same in every answer about one disk (VirtualSize may change: a resize).
    CONSTANTS = ("SectorSize", "PhysicalSectorSize")
    MAX_KEPT = 65536  # servers and disks remembered

    def __init__(self, sink):
        super().__init__(sink)
        self.versions: Dict[str, Tuple[int, int]] = {}  # server host -> (ServerVersion, frame first seen)
        self.sizes: Dict[Tuple[str, str, str], Tuple[Tuple[int, int], int]] = {}  # (server, tree, name) -> ...

    def constants(self, op: Operation, p) -> None:
        if op.open is None:
            return
        host = op.open.server.rsplit(":", 1)[0]
        version = decoding.int_of(p.get("ServerVersion", 0))
        first = self.differs(self.versions, host, version, op.response_frame)
        if first is not None:
            self.reporter(op)("R41", "3.2.3, 3.2.5.5.1", "ServerVersion %d, but this server answered %d at frame %d: "
                              "both MUST be its one ServerServiceVersion" % (version, first[0], first[1]))
        sizes = tuple(decoding.int_of(p.get(f, 0)) for f in self.CONSTANTS)
        first = self.differs(self.sizes, (host, op.open.tree.lower(), op.open.name.lower()), sizes, op.response_frame)
        if first is not None:
            self.reporter(op)("R41", "3.2.5.5.1", "SectorSize %d, PhysicalSectorSize %d, but the same disk was %d, "
                              "%d at frame %d: a disk's sector sizes do not change" % (sizes + first[0] + (first[1],)))

    def differs(self, kept: dict, key, value, frame: int):
        """The (value, frame) first seen under `key` when `value` is another; None when it is the same
        or the first (then remembered, up to MAX_KEPT keys)."""
        first = kept.get(key)
        if first is None:
            if len(kept) < self.MAX_KEPT:
                kept[key] = (value, frame)
            return None
        return first if first[0] != value else None

    def reporter(self, op: Operation):
        """report(check, spec, text) for one answer's findings."""
        frames = [op.request_frame, op.response_frame]
        return lambda check, spec, text: self.report(frames, "%s response: %s" % (op.kind, text), op.subject,
                                                     check=check, spec="MS-RSVD " + spec)

    def on_rsvd_response(self, op: Operation):
        # Decoded values are dicts: the hot SCSI path reads items (construct's __getattr__ is a call each).
        # The report closure is made only for an answer that has something to report (reporter).
        kind = op.kind
        if kind == SCSI_OP and op.request is not None:
            p = op.request["Payload"]
            if (p["Length"] != 36 or p["CdbLength"] > rsvd.RSVD_CDB_GENERIC_LENGTH) and op.status != STATUS_INVALID_PARAMETER:
                self.reporter(op)("R47", "3.2.5.5.5", "the request's Length %d / CdbLength %d, answered %s: the server "
                                  "MUST fail it with STATUS_INVALID_PARAMETER" % (p.Length, p.CdbLength,
                                                                                  op.status_name or "-"))
        value = op.response
        if value is None:
            return  # an SMB2-level answer with no buffer: nothing of RSVD's to judge
        status = value["Header"]["Status"]
        status = getattr(status, "intvalue", status)  # decoding.int_of, inline
        extra = op.response_size - HEADER_SIZE
        if status:
            report = self.reporter(op)
            if op.kind in self.FAIL_HEADER_ONLY and extra > 0:
                report("R40", self.FAIL_HEADER_ONLY[op.kind], "Status %s with %d bytes after the header: a failure "
                       "MUST return the header only" % (op.status_name, extra))
            if op.kind == CHECK_CONNECTION_OP and op.closed is None and op.open is not None:  # 3.2.5.5 first
                report("R42", "3.2.5.5.2", "Status %s: the server MUST answer STATUS_SUCCESS" % op.status_name)
            return
        named = value["Header"].get("OperationCode")
        if named is not None and str(named) != op.kind:
            return  # an answer naming another operation (rsvd.response_mismatch) carries that one's payload
        p = payload_of(value) or {}
        if kind == SCSI_OP:  # the commonest, first: the branches below are for other kinds
            if p and op.request is not None:
                q = op.request["Payload"]
                # scsi_answer's tests, inline: it runs only when one fails (an enum value is one object
                # per value; a Length is an int)
                a, b, n, r = p["DataIn"], q["DataIn"], p["Length"], p["Reserved"]
                if (a is not b and str(a) != str(b)) or (n != 36 and n != q["Length"] and n != 36 + decoding.int_of(
                        p["DataTransferLength"])) or not (r.__class__ is int and r == 0):
                    self.scsi_answer(op, p)
            return
        if op.kind == FILE_INFO_OP and decoding.int_of(p.get("ServerVersion", 1)) not in (1, 2):
            self.reporter(op)("R41", "3.2.5.5.1", "ServerVersion %d (MUST be ServerServiceVersion: 1, or 2 for an "
                              "RSVD v2 server)" % decoding.int_of(p.ServerVersion))
        elif op.kind == FILE_INFO_OP and p:
            self.constants(op, p)
        elif op.kind == CHECK_CONNECTION_OP and extra > 0:
            self.reporter(op)("R42", "2.2.5.6", "%d bytes after the header (it MUST NOT contain any payload)" % extra)
        elif op.kind == SRB_STATUS_OP and p:
            self.srb_status(op, p, self.reporter(op))
        elif op.kind == DISK_INFO_OP and p:
            bad = []
            vhdset = str(p.DiskFormat) == "VIRTUAL_STORAGE_TYPE_DEVICE_VHDSET"
            if str(p.DiskType) not in self.DISK_TYPES + (("VHD_TYPE_DIFFERENCING",) if vhdset else ()):
                bad.append("DiskType %s (VHD_TYPE_FIXED or VHD_TYPE_DYNAMIC; a VHD Set: or VHD_TYPE_DIFFERENCING)"
                           % shown(p.DiskType))
            if str(p.DiskFormat) not in rsvd.DISK_FORMAT:
                bad.append("DiskFormat %s (VIRTUAL_STORAGE_TYPE_DEVICE_VHDX; Windows: or VHDSET)" % shown(p.DiskFormat))
            for f in ("IsMounted", "Is4kAligned"):
                if decoding.int_of(p[f]) not in (0, 1):
                    bad.append("%s %d (FALSE or TRUE)" % (f, decoding.int_of(p[f])))
            if not is_zero(p.Reserved):
                bad.append("Reserved %s (zero)" % shown(p.Reserved))
            if bad:
                self.reporter(op)("R46", "2.2.5.10, 3.2.5.5.4", "; ".join(bad))
        elif op.kind == VALIDATE_DISK_OP and p and p.get("_variant") == "windows":
            if decoding.int_of(p.IsValidDisk) not in (0, 1):  # the padding after it is Windows' alignment
                self.reporter(op)("R49", "2.2.5.14, 3.2.5.5.6", "%d bytes after the header that are neither nothing "
                                  "nor Windows' IsValidDisk (0 or 1), here %d"
                                  % (extra, decoding.int_of(p.IsValidDisk)))

    def scsi_answer(self, op: Operation, p) -> None:
        q, bad = op.request["Payload"], []
        if str(p["DataIn"]) != str(q["DataIn"]):
            bad.append("DataIn %s (the request's is %s)" % (p.DataIn, q.DataIn))
        sizes = {36, 36 + decoding.int_of(p["DataTransferLength"]), q["Length"]}
        if p["Length"] not in sizes:
            bad.append("Length %d (the size of SVHDX_TUNNEL_SCSI_RESPONSE: %s)"
                       % (p.Length, " or ".join(str(n) for n in sorted(sizes))))
        if not is_zero(p["Reserved"]):
            bad.append("Reserved %s (zero)" % shown(p.Reserved))
        if bad:
            self.reporter(op)("R48", "2.2.5.12, 3.2.5.5.5", "; ".join(bad))

    def srb_status(self, op: Operation, p, report):
        bad = []
        want = decoding.int_of(op.request.Payload.StatusKey)
        got = decoding.int_of(p.StatusKey)
        if got != (want & 0xFF if p.get("_variant") == "windows" else want):
            bad.append("StatusKey %d (the request's is %d)" % (got, want))
        if not is_zero(p.get("Reserved")):
            bad.append("Reserved %s (zero)" % shown(p.Reserved))
        if p.SenseInfoExLength > rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE:
            bad.append("SenseInfoExLength %d (the sense data's length: at most %d)"
                       % (p.SenseInfoExLength, rsvd.RSVD_SCSI_SENSE_BUFFER_SIZE))
        if bad:
            report("R45", "2.2.5.8, 3.2.5.5.3", "; ".join(bad))

    def on_rsvd_support(self, q):
        v = q.response
        if v is None:
            return
        bad = []
        support = decoding.int_of(v.SharedVirtualDiskSupport)
        if support not in self.SUPPORT.get(v.get("_variant"), (1,)):
            bad.append("SharedVirtualDiskSupport 0x%X (MUST be 0x0001)" % support)
        state = decoding.int_of(v.SharedVirtualDiskHandleState)
        if state not in rsvd.HANDLE_STATE.values():
            bad.append("SharedVirtualDiskHandleState 0x%X (HandleStateNone, FileShared or Shared)" % state)
        elif q.open is not None and not q.open.pre_capture and state != rsvd.HANDLE_STATE["HandleStateShared"]:
            bad.append("SharedVirtualDiskHandleState %s for a handle this capture opened as a shared virtual disk "
                       "(MUST be HandleStateShared)" % v.SharedVirtualDiskHandleState)
        if bad:
            self.report([q.request_frame, q.response_frame], "shared-disk support answer: %s" % "; ".join(bad),
                        q.subject, check="R50", spec="MS-RSVD 2.2.5.16, 3.2.5.6")


RULES: List[type] = [StoredKeySequence, WriteAnswer, SenseKeyAnswer, ResponseInvalid]
