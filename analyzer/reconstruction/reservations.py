"""The reservations table: one row per persistent-reservation event, from the SCSI commands
tunnelled by RSVD (PERSISTENT RESERVE OUT and IN, SPC-3 6.11-6.12; a RESERVATION CONFLICT on any
command; the UNIT ATTENTIONs that say a reservation or registration was preempted or released,
SPC-3 5.6.11) and from ClusPrep's PR calls (MS-CSVP 3.2.4.15-3.2.4.24, 3.4.4.9-3.4.4.15).

Keys are written as tshark shows msrsvd.scsi.pr.reservation_key (0x and 16 lowercase hex
digits); `registered` lists the registered keys, space-separated (READ KEYS, READ FULL STATUS).

History follows each disk's state through its rows (SPC-3 5.6): which key is registered by
which host, which key holds the reservation. Every row gets `holder_after` and `holder_host`
(the holder once the event is done, as far as the capture shows it), and the report gets each
disk's story. A ClusPrep disk (known by its CPREP_DISKID) and an RSVD disk (known by its path)
that share a reservation key are one disk seen twice: the validation run's calls and the
initiators' own commands, told as one story.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .tables import Tables

PR_OUT_EVENTS = {
    "REGISTER": "register", "REGISTER_AND_IGNORE_EXISTING_KEY": "register", "RESERVE": "reserve",
    "RELEASE": "release", "CLEAR": "clear", "PREEMPT": "preempt", "PREEMPT_AND_ABORT": "preempt",
    "REGISTER_AND_MOVE": "move",
}
PR_IN_EVENTS = {
    "READ_KEYS": "read_keys", "READ_RESERVATION": "read_reservation", "READ_FULL_STATUS": "read_full_status",
    "REPORT_CAPABILITIES": "report_capabilities",
}
# the additional sense codes of a UNIT ATTENTION that report another initiator's PR action
SVHDX_CONFLICT = "STATUS_SVHDX_RESERVATION_CONFLICT"  # MS-RSVD 2.2.2: the tunnel's own conflict status
PR_UNIT_ATTENTIONS = {"RESERVATIONS PREEMPTED", "RESERVATIONS RELEASED", "REGISTRATIONS PREEMPTED"}
# and the tunnel's own statuses that say the same (MS-RSVD 2.2.2), e.g. on a GET_FILE_INFO
SVHDX_PR_UNIT_ATTENTIONS = {"STATUS_SVHDX_UNIT_ATTENTION_" + a.replace(" ", "_") for a in PR_UNIT_ATTENTIONS}
# ClusPrep's PR methods (IClusterStorage2 and the *3 of IClusterStorage3) -> event
CLUSPREP_EVENTS = {
    "CprepDiskPRRegister": "register", "CprepDiskPRUnRegister": "unregister", "CprepDiskPRReserve": "reserve",
    "CprepDiskPRRelease": "release", "CprepDiskPRPreempt": "preempt", "CprepDiskPRClear": "clear",
    "CprepDiskPRArbitrate": "arbitrate", "CprepDiskIsPRPresent": "is_pr_present", "CprepDiskFindKey": "find_key",
}
# where a ClusPrep method's keys sit: (reservation key, service action key), as the SCSI command it
# performs (3.4.4.9: OldPrKey is the Reservation Key, NewPrKey the Service Action Reservation Key;
# 3.4.4.11: NewKey is the Reservation Key, OwnerKey the Service Action Reservation Key)
CLUSPREP_KEYS = {"CprepDiskPRRegister3": ("OldPrKey", "NewPrKey"), "CprepDiskPRPreempt3": ("NewKey", "OwnerKey")}


def key_text(v) -> Optional[str]:
    if v is None or v == "":
        return None
    return "0x%016x" % int(v)


def _name(v) -> Optional[str]:
    return str(v) if v is not None else None


def refusal(op, scsi_status: str, sense_key: str, asc: str) -> Optional[str]:
    """"conflict" or "unit_attention" when an answer reports another initiator's PR action, else None."""
    if scsi_status == "RESERVATION_CONFLICT" or op.status_name == SVHDX_CONFLICT:
        return "conflict"
    if (sense_key == "UNIT_ATTENTION" and asc in PR_UNIT_ATTENTIONS) or op.status_name in SVHDX_PR_UNIT_ATTENTIONS:
        return "unit_attention"
    return None


PR_COMMANDS = ("PERSISTENT_RESERVE_OUT", "PERSISTENT_RESERVE_IN")


def rsvd_row(history: "History", op, value, opcode: str, fields, scsi_status: str, sense_key: str, asc: str) -> None:
    """The reservation event of one tunnelled SCSI command, if it is one: a PR command, or any
    command refused with RESERVATION CONFLICT or told a PR UNIT ATTENTION."""
    if opcode not in PR_COMMANDS and refusal(op, scsi_status, sense_key, asc) is None:
        return  # the commonest: no event (what the last branch below finds, sooner)
    req = op.request["Payload"]
    resp = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
    action = str(fields.get("ServiceAction", "")) if fields else ""
    row = dict(command=action or opcode)
    if opcode == "PERSISTENT_RESERVE_OUT":
        data = req.get("Data") or {}
        row["event"] = PR_OUT_EVENTS.get(action, action.lower() or "pr_out")
        row["key"] = key_text(data.get("ReservationKey"))
        row["sa_key"] = key_text(data.get("ServiceActionReservationKey"))
        if action.startswith("REGISTER") and action != "REGISTER_AND_MOVE" and row["sa_key"] == key_text(0):
            row["event"] = "unregister"  # SPC-3 5.6.10.3: REGISTER with a zero service action key
        scope_type = fields.get("ScopeType") or {}
        row["type"], row["scope"] = _name(scope_type.get("Type")), _name(scope_type.get("Scope"))
        flags = data.get("MoveFlags") or data.get("ParameterFlags") or {}
        row["detail"] = " ".join(k for k, v in flags.items() if not k.startswith("_") and v is True) or None
    elif opcode == "PERSISTENT_RESERVE_IN":
        row["event"] = PR_IN_EVENTS.get(action, action.lower() or "pr_in")
        data = resp.get("Data") if resp else None
        if data:
            row["detail"] = "PRgeneration %d" % data.PrGeneration if "PrGeneration" in data else None
            if action == "READ_KEYS":
                row["registered"] = " ".join(key_text(k) for k in data.get("ReservationKey") or [])
            elif action == "READ_RESERVATION":
                held = data.get("Reservation")
                if held:
                    row["holder"] = key_text(held.ReservationKey)
                    row["type"], row["scope"] = _name(held.ScopeType.Type), _name(held.ScopeType.Scope)
            elif action == "READ_FULL_STATUS":
                descs = data.get("Descriptors") or []
                row["registered"] = " ".join(key_text(d.ReservationKey) for d in descs)
                for d in descs:
                    if d.Holder.R_HOLDER:
                        row["holder"] = key_text(d.ReservationKey)
                        row["type"], row["scope"] = _name(d.ScopeType.Type), _name(d.ScopeType.Scope)
    else:
        row["event"] = refusal(op, scsi_status, sense_key, asc)
        if row["event"] is None:
            return
    _add(history, op, row, resp, scsi_status, sense_key, asc)


def operation_row(history: "History", op, value, sense_key: str, asc: str) -> None:
    """The reservation event of a tunnel operation other than SCSI: a READ/WRITE or operation
    refused with STATUS_SVHDX_RESERVATION_CONFLICT, or an SRB_STATUS answer (3.2.5.5.3) whose
    retrieved status is a RESERVATION CONFLICT or a PR UNIT ATTENTION (the command is the one
    whose error was stored)."""
    resp = value["Payload"] if value is not None and isinstance(value.get("Payload"), dict) else {}
    scsi_status = str(resp.get("ScsiStatus", "")) if resp else ""
    event = refusal(op, scsi_status, sense_key, asc)
    if event is None:
        return
    row = dict(event=event, command=op.kind)
    if op.stored is not None:  # an SRB_STATUS retrieval: the stored error's command and frame
        row["command"] = op.stored.operation
        row["detail"] = "stored error of frame %d, retrieved" % op.stored.frame
    _add(history, op, row, resp, scsi_status, sense_key, asc)


def _add(history: "History", op, row: dict, resp, scsi_status: str, sense_key: str, asc: str) -> None:
    o = op.open
    if o is not None:
        host = o.initiator_host or o.client.rsplit(":", 1)[0]
        disk = o.path
        row["client_ip"] = o.client.rsplit(":", 1)[0]  # names the node ClusPrep calls by address (History)
    else:
        host, disk = "", ""
    if resp and scsi_status:
        result = scsi_status
    else:
        result = op.status_name or ("unanswered" if op.response_frame is None else None)
    sense = ("%s: %s" % (sense_key, asc) if asc else sense_key) or None
    if sense is None and op.status_name in SVHDX_PR_UNIT_ATTENTIONS:
        sense = "UNIT_ATTENTION: " + op.status_name[len("STATUS_SVHDX_UNIT_ATTENTION_"):].replace("_", " ")
    history.add(dict(
        row, stream=op.stream, time=op.time, frame=op.request_frame, response_frame=op.response_frame,
        source="rsvd", host=host, disk=disk, result=result, sense=sense))


def clusprep_row(history: "History", c, node: str) -> None:
    """The reservation event of one ClusPrep call, if it is a PR method."""
    method = c.method
    base = method[:-1] if method.endswith("3") else method
    event = CLUSPREP_EVENTS.get(base)
    if event is None:
        return
    key_name, sa_name = CLUSPREP_KEYS.get(method, ("Key", None))
    req = c.request if c.request is not None else {}
    row = dict(event=event, command=method, key=key_text(req.get(key_name)),
               sa_key=key_text(req.get(sa_name)) if sa_name else None)
    if method == "CprepDiskPRRegister3" and row["sa_key"] == key_text(0):
        row["event"] = "unregister"
    answer = c.response if c.response is not None else {}
    for out in ("Present", "pbFound"):
        if out in answer:
            row["detail"] = "%s=%s" % (out, int(answer[out]))
    history.add(dict(
        row, stream=c.conversation.stream, time=c.time, frame=c.request_frame, response_frame=c.response_frame,
        source="clusprep", host=node, disk=c.disk, result=c.result_text))


OK_RESULTS = {"GOOD", "S_OK", "ERROR_SUCCESS", "STATUS_SUCCESS"}
MAX_DISKS = 1024  # disks whose story is kept (more are in the table only)
MAX_EVENTS = 400  # events per disk kept for the story (the table has all)
MAX_KEYS = 4096  # registrations tracked per disk
# what makes an event the same as the one before (a flood of conflicts is one event and its count)
SAME = ("source", "host", "event", "command", "key", "sa_key", "result", "sense", "holder_after", "detail")


@dataclass
class Disk:
    name: str
    source: str
    registered: Dict[str, str] = field(default_factory=dict)  # key -> host that registered it ("" unknown)
    holder: Optional[str] = None  # the reservation holder's key, None when none is known
    held_type: Optional[str] = None
    events: List[dict] = field(default_factory=list)
    more: int = 0  # events past MAX_EVENTS
    keys: set = field(default_factory=set)  # every key seen on it: joins disks seen by both protocols

    def host_of(self, key: Optional[str]) -> str:
        return self.registered.get(key, "") if key else ""

    def apply(self, row: dict) -> None:
        """The state once `row` is done (SPC-3 5.6.6-5.6.10, 6.11-6.12); a failed command changes nothing."""
        event, key, sa = row.get("event"), row.get("key"), row.get("sa_key")
        zero = key_text(0)
        for k in (key, sa, row.get("holder")):
            if k and k != zero and len(self.keys) < MAX_KEYS:
                self.keys.add(k)
        ok = row.get("result") in OK_RESULTS
        if event in ("read_reservation", "read_full_status", "read_keys") and ok:
            if event != "read_keys":  # what the disk says is the truth from here on
                self.holder, self.held_type = row.get("holder"), row.get("type") if row.get("holder") else None
            if row.get("registered") is not None:
                now = (row.get("registered") or "").split()
                self.registered = {k: self.registered.get(k, "") for k in now[:MAX_KEYS]}
            return
        if not ok:
            return
        host = row.get("host") or ""
        if event == "register" and sa and sa != zero:
            if key and key != zero and key != sa:
                self.registered.pop(key, None)
            if len(self.registered) < MAX_KEYS:
                self.registered[sa] = host
        elif event == "unregister":
            self.registered.pop(key, None)
            if self.holder == key:
                self.holder = self.held_type = None
        elif event == "reserve" and key:
            self.holder, self.held_type = key, row.get("type")
            if key not in self.registered and len(self.registered) < MAX_KEYS:
                self.registered[key] = host
        elif event == "release" and (key is None or key == self.holder):
            self.holder = self.held_type = None
        elif event == "clear":
            self.registered, self.holder, self.held_type = {}, None, None
        elif event == "preempt":
            if key and key != zero and len(self.registered) < MAX_KEYS:
                self.registered.setdefault(key, host)  # only a registrant preempts (SPC-3 5.6.10.4)
            if sa:
                self.registered.pop(sa, None)
            if key and (self.holder is None or self.holder == sa or sa is None):
                self.holder, self.held_type = key, row.get("type") or self.held_type
        elif event == "move" and sa:
            self.holder, self.held_type = sa, row.get("type") or self.held_type
            self.registered.setdefault(sa, "")


class History:
    """Each disk's reservation state through its rows; one per capture, shared by both trackers."""

    def __init__(self, tables: Tables):
        self.tables = tables
        self.disks: Dict[Tuple[str, str], Disk] = {}
        self.names: Dict[str, str] = {}  # an RSVD client's address -> its initiator's name

    def add(self, row: dict) -> None:
        dkey = (row["source"], row.get("disk") or "")
        if row.get("client_ip") and row.get("host") and len(self.names) < MAX_DISKS:
            self.names.setdefault(row["client_ip"], row["host"])
        d = self.disks.get(dkey)
        if not dkey[1]:  # a sealed ClusPrep call: which disk is unknown, so it is in no disk's story
            d = None
        elif d is None and len(self.disks) < MAX_DISKS:
            d = self.disks[dkey] = Disk(dkey[1], dkey[0])
        if d is not None:
            hosts = dict(key_host=d.host_of(row.get("key")), sa_host=d.host_of(row.get("sa_key")))  # before it
            d.apply(row)
            row["holder_after"] = d.holder
            row["holder_host"] = d.host_of(d.holder) or None
            same = tuple(row.get(k) for k in SAME)
            last = d.events[-1] if d.events else None
            if last is not None and tuple(last.get(k) for k in SAME) == same:  # again: counted on the first
                last["repeats"] = last.get("repeats", 1) + 1
                last["last_time"], last["last_frame"] = row.get("time"), row.get("frame")
                last["last_response_frame"] = row.get("response_frame")
            elif len(d.events) < MAX_EVENTS:
                d.events.append(dict(row, key_host=hosts["key_host"] or d.host_of(row.get("key")),
                                     sa_host=hosts["sa_host"] or d.host_of(row.get("sa_key"))))
            else:
                d.more += 1
        self.tables.add("reservations", row)

    def holder(self, source: str, disk: str) -> Tuple[Optional[str], str]:
        """The holder's key and its host, as the disk's events so far make it (None: none known)."""
        d = self.disks.get((source, disk))
        if d is None or d.holder is None:
            return None, ""
        return d.holder, d.host_of(d.holder)

    def stories(self) -> List[dict]:
        """Per disk (disks that share a key joined), its events in time order: the report's story."""
        disks = [d for d in self.disks.values() if d.events]
        group = list(range(len(disks)))

        def root(i):
            while group[i] != i:
                group[i] = group[group[i]]
                i = group[i]
            return i

        owner: Dict[str, int] = {}
        for i, d in enumerate(disks):
            for k in sorted(d.keys):
                if k in owner:
                    group[root(i)] = root(owner[k])
                else:
                    owner[k] = i
        joined: Dict[int, List[Disk]] = {}
        for i, d in enumerate(disks):
            joined.setdefault(root(i), []).append(d)
        out = []
        for d in disks:  # a node ClusPrep called, by the name it gave as an RSVD initiator
            for e in d.events:
                if e.get("source") != "clusprep":
                    continue
                for k in ("key_host", "sa_host", "holder_host"):
                    if e.get(k) in self.names:
                        e[k] = self.names[e[k]]
                if e.get("host") in self.names:
                    e["host"] = "%s (%s)" % (self.names[e["host"]], e["host"])
        for members in joined.values():
            members.sort(key=lambda d: (d.source != "rsvd", d.name))
            events = sorted((e for d in members for e in d.events), key=lambda e: (e.get("time") or 0, e["frame"] or 0))
            last = members[0]
            out.append(dict(disk=last.name, also=[d.name for d in members[1:]],
                            sources=sorted({d.source for d in members}), events=events,
                            more=sum(d.more for d in members), holder=last.holder,
                            holder_host=last.host_of(last.holder) or None))
        return sorted(out, key=lambda s: (s["events"][0].get("time") or 0) if s["events"] else 0)

