"""The reservations table: one row per persistent-reservation event, from the SCSI commands
tunnelled by RSVD (PERSISTENT RESERVE OUT and IN, SPC-3 6.11-6.12; a RESERVATION CONFLICT on any
command; the UNIT ATTENTIONs that say a reservation or registration was preempted or released,
SPC-3 5.6.11) and from ClusPrep's PR calls (MS-CSVP 3.2.4.15-3.2.4.24, 3.4.4.9-3.4.4.15).

Keys are written as tshark shows msrsvd.scsi.pr.reservation_key (0x and 16 lowercase hex
digits); `registered` lists the registered keys, space-separated (READ KEYS, READ FULL STATUS).
"""
from __future__ import annotations

from typing import Optional

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


def rsvd_row(tables: Tables, op, value, opcode: str, fields, scsi_status: str, sense_key: str, asc: str) -> None:
    """The reservation event of one tunnelled SCSI command, if it is one: a PR command, or any
    command refused with RESERVATION CONFLICT or told a PR UNIT ATTENTION."""
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
    _add(tables, op, row, resp, scsi_status, sense_key, asc)


def operation_row(tables: Tables, op, value, sense_key: str, asc: str) -> None:
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
    _add(tables, op, row, resp, scsi_status, sense_key, asc)


def _add(tables: Tables, op, row: dict, resp, scsi_status: str, sense_key: str, asc: str) -> None:
    o = op.open
    if o is not None:
        host = o.initiator_host or o.client.rsplit(":", 1)[0]
        disk = (o.tree + "\\" if o.tree else "") + (o.name or "")
    else:
        host, disk = "", ""
    if resp and scsi_status:
        result = scsi_status
    else:
        result = op.status_name or ("unanswered" if op.response_frame is None else None)
    sense = ("%s: %s" % (sense_key, asc) if asc else sense_key) or None
    if sense is None and op.status_name in SVHDX_PR_UNIT_ATTENTIONS:
        sense = "UNIT_ATTENTION: " + op.status_name[len("STATUS_SVHDX_UNIT_ATTENTION_"):].replace("_", " ")
    tables.add("reservations", dict(
        row, stream=op.stream, time=op.time, frame=op.request_frame, response_frame=op.response_frame,
        source="rsvd", host=host, disk=disk, result=result, sense=sense))


def clusprep_row(tables: Tables, c, node: str) -> None:
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
    tables.add("reservations", dict(
        row, stream=c.conversation.stream, time=c.time, frame=c.request_frame, response_frame=c.response_frame,
        source="clusprep", host=node, disk=c.disk, result=c.result_text))
