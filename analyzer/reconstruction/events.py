"""Typed events: what one frame of tshark output says, per SMB2 message and per RPC PDU.

tshark lists a frame's values field by field; a compound SMB2 frame lists several
messages' values in one column. Fields every message header carries line up one per
message; fields only some commands carry are handed to those commands' messages in
order (CARRIERS, checked against tshark 4.0's output on the samples). A frame whose
counts do not match keeps those fields unset rather than guessing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from ..capture.source import AGGREGATOR, CLUSPREP, COL, RSVD

# SMB2 commands (MS-SMB2 2.2.1)
NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, CREATE, CLOSE, FLUSH, READ, WRITE, LOCK, IOCTL = range(12)
COMMAND_NAMES = ["NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT", "CREATE", "CLOSE",
                 "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO", "QUERY_DIRECTORY", "CHANGE_NOTIFY",
                 "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK"]
STATUS_PENDING = 0x00000103

# Which (command, is_response) messages carry each per-command field, once each.
_FID_REQUESTS = {CLOSE, FLUSH, READ, WRITE, LOCK, IOCTL, 14, 15, 16, 17, 18}
CARRIERS = {
    "smb2.fid": lambda cmd, resp, status: (cmd in _FID_REQUESTS and not resp) or (resp and cmd in (CREATE, 18))
    or (resp and cmd == IOCTL and _has_body(status)),
    "smb2.ioctl.function": lambda cmd, resp, status: cmd == IOCTL and (not resp or _has_body(status)),
    "smb.create_options": lambda cmd, resp, status: cmd == CREATE and not resp,
    "smb2.nt_status": lambda cmd, resp, status: resp,
    "smb2.file_offset": lambda cmd, resp, status: cmd in (READ, WRITE) and not resp,
    "smb2.read_length": lambda cmd, resp, status: cmd == READ and not resp,
    "smb2.write_length": lambda cmd, resp, status: cmd == WRITE and not resp,
}


def _has_body(status: Optional[int]) -> bool:
    """An error response (MS-SMB2 2.2.2) has no command body; these statuses keep the body."""
    return status is not None and (status < 0x80000000 and status != STATUS_PENDING or status == 0x80000005)


@dataclass
class Smb2Message:
    frame: int
    time: float
    stream: int
    index: int  # 1-based position in a compound frame
    command: int
    is_response: bool
    msg_id: int
    session_id: int
    tree_id: Optional[int]
    status: Optional[int] = None
    file_id: Optional[str] = None
    function: Optional[int] = None
    dialect: Optional[int] = None
    filename: Optional[str] = None
    tree: Optional[str] = None
    create_options: Optional[int] = None
    client_guid: Optional[str] = None  # a NEGOTIATE request's ClientGuid: the client across its channels
    raw: List[bytes] = field(default_factory=list)  # RSVD messages and create contexts, as exported
    create_contexts: Optional[bytes] = None  # a shared-disk CREATE request's create contexts (the export's first bytes)
    bare_name: Optional[str] = None  # a CREATE request named ...:SharedVirtualDisk that carries no open context
    offset: Optional[int] = None  # a READ or WRITE request's file offset and length, in bytes
    length: Optional[int] = None


@dataclass
class RpcPdu:
    """A DCE/RPC PDU the clusprep plugin did not name: binds, acks, and requests on unknown contexts."""

    frame: int
    time: float
    stream: int
    ptype: int
    call_id: int
    ctx_ids: List[int]
    auth_level: Optional[int]
    opnum: Optional[int] = None  # a request's
    status: Optional[int] = None  # a fault's
    last_fragment: bool = True  # PFC_LAST_FRAG (MS-RPCE 2.2.2.3)
    auth_type: Optional[int] = None  # a bind's security provider (MS-RPCE 2.2.1.1.7)
    object_id: Optional[str] = None  # a request's object UUID (the IPID it calls), when the frame holds one PDU
    interfaces: List[str] = field(default_factory=list)  # a bind's or alter_context's interface UUID per context


@dataclass
class RpcCall:
    """A ClusPrep PDU the plugin named: request, response or fault."""

    frame: int
    time: float
    stream: int
    interface: str
    method: str
    opnum: int
    context_id: int
    call_id: int
    direction: str  # request, response, fault
    auth_level: int
    encrypted: bool
    object_id: Optional[str]
    fault_status: Optional[int] = None
    stub: Optional[bytes] = None


DIRECTIONS = {"0": "request", "1": "response", "2": "fault"}
PFC_LAST_FRAG = 0x02
BINDS = (11, 14)  # bind, alter_context: they name each context's interface


def _split(text: str) -> List[str]:
    return text.split(AGGREGATOR) if text else []


def _int(text: str) -> int:
    return int(text, 0)


@dataclass
class Frame:
    number: int
    time: float
    stream: Optional[int]
    src: str
    dst: str
    # each a list, or () for none (most frames carry only SMB2): read, never added to
    smb2: Sequence[Smb2Message]
    rpc: Sequence[RpcPdu]
    calls: Sequence[RpcCall]
    encrypted_smb3: Sequence[int] = ()  # session ids of messages left encrypted


# Column positions, looked up once: frame_of runs for every frame.
_CMD, _PTYPE, _TRANSFORM, _STREAM = COL["smb2.cmd"], COL["dcerpc.pkt_type"], COL["smb2.header.transform.msg_size"], COL["tcp.stream"]
_IP_SRC, _IPV6_SRC, _SRCPORT = COL["ip.src"], COL["ipv6.src"], COL["tcp.srcport"]
_IP_DST, _IPV6_DST, _DSTPORT = COL["ip.dst"], COL["ipv6.dst"], COL["tcp.dstport"]
_RESP, _MSG_ID, _SESID, _TID, _NT_STATUS = (COL["smb2.flags.response"], COL["smb2.msg_id"], COL["smb2.sesid"],
                                            COL["smb2.tid"], COL["smb2.nt_status"])
_CARRIED = [(COL[name], name, attr, conv) for name, attr, conv in (
    ("smb2.fid", "file_id", str), ("smb2.ioctl.function", "function", _int), ("smb.create_options", "create_options", _int),
    ("smb2.file_offset", "offset", _int), ("smb2.read_length", "length", _int), ("smb2.write_length", "length", _int))]
_FID, _FUNCTION, _CREATE_OPTIONS, _OFFSET, _READ_LENGTH, _WRITE_LENGTH = (c[0] for c in _CARRIED)  # _lone's, unrolled
_DIALECT, _CLIENT_GUID, _TREE = COL["smb2.dialect"], COL["smb2.client_guid"], COL["smb2.tree"]
_RAW, _RAW_INDEX, _RAW_OPEN_NAME = COL[RSVD.raw], COL[RSVD.raw_smb2_index], COL[RSVD.raw_open_name]
_RAW_CONTEXTS, _RAW_BARE_NAME = COL[RSVD.raw_create_contexts], COL[RSVD.raw_bare_name]


def frame_of(cols: List[str], time: Optional[float] = None) -> Optional[Frame]:
    """The events of one tshark line; None for a frame with neither SMB2 nor DCE/RPC. time: its
    frame.time_epoch as a float, when the caller has read it already."""
    cmds = cols[_CMD]
    ptypes = cols[_PTYPE]
    transforms = cols[_TRANSFORM]
    if not cmds and not ptypes and not transforms:
        return None
    stream = cols[_STREAM]
    src = (cols[_IP_SRC] or cols[_IPV6_SRC]) + ":" + cols[_SRCPORT]
    dst = (cols[_IP_DST] or cols[_IPV6_DST]) + ":" + cols[_DSTPORT]
    f = Frame(int(cols[0]), float(cols[1]) if time is None else time, int(stream) if stream else None, src, dst,
              (), (), ())
    if cmds:
        if AGGREGATOR not in cmds:  # one message (most frames): what _smb2 does for it, without the split
            f.smb2 = _lone_names_and_buffers(_lone(f, cols, cmds), cols)
        else:
            f.smb2 = _smb2(f, cols, cmds.split(AGGREGATOR))
    elif transforms:  # no key decrypted them: what the headers say is all there is
        sids = _split(cols[_SESID])
        f.encrypted_smb3 = [_int(sids[i]) if i < len(sids) else 0 for i in range(len(_split(transforms)))]
    if ptypes:
        f.calls = _calls(f, cols)
        if len(f.calls) < len(_split(ptypes)):
            f.rpc = _rpc(f, cols, [int(p) for p in _split(ptypes)])
    return f


def _lone(f: Frame, cols: List[str], cmd: str) -> Smb2Message:
    """A frame's only SMB2 message (most frames): what _smb2 gives for n == 1, without its lists
    (a column's first value is text.partition(AGGREGATOR)[0])."""
    text = cols[_RESP]
    is_response = text != "" and text.partition(AGGREGATOR)[0] in ("1", "True")
    text = cols[_MSG_ID]
    mid = int(text.partition(AGGREGATOR)[0]) if text else -1
    text = cols[_SESID]
    sid = int(text.partition(AGGREGATOR)[0], 0) if text else 0
    text = cols[_TID]
    m = Smb2Message(f.number, f.time, f.stream, 1, int(cmd), is_response, mid, sid,
                    int(text, 0) if text and AGGREGATOR not in text else None)
    text = cols[_NT_STATUS]
    if text and is_response and AGGREGATOR not in text:
        m.status = int(text, 0)
    # _CARRIED in its order, unrolled: a lone message takes the first value whichever carries it
    text = cols[_FID]
    if text:
        m.file_id = text.partition(AGGREGATOR)[0]  # str(...) of a str
    text = cols[_FUNCTION]
    if text:
        m.function = int(text.partition(AGGREGATOR)[0], 0)
    text = cols[_CREATE_OPTIONS]
    if text:
        m.create_options = int(text.partition(AGGREGATOR)[0], 0)
    text = cols[_OFFSET]
    if text:
        m.offset = int(text.partition(AGGREGATOR)[0], 0)
    text = cols[_READ_LENGTH]
    if text:
        m.length = int(text.partition(AGGREGATOR)[0], 0)
    text = cols[_WRITE_LENGTH]
    if text:
        m.length = int(text.partition(AGGREGATOR)[0], 0)
    return m


def _smb2(f: Frame, cols: List[str], cmds: List[str]) -> List[Smb2Message]:
    # Empty columns (most of them, in most frames) are skipped before any splitting; a lone
    # message (most frames) is _lone's.
    n = len(cmds)
    if n == 1:
        return _lone_names_and_buffers(_lone(f, cols, cmds[0]), cols)
    text = cols[_RESP]
    resp = text.split(AGGREGATOR) if text else []
    text = cols[_MSG_ID]
    mids = text.split(AGGREGATOR) if text else []
    text = cols[_SESID]
    sids = text.split(AGGREGATOR) if text else []
    text = cols[_TID]
    tids = text.split(AGGREGATOR) if text else []
    nresp, nmids, nsids, has_tids = len(resp), len(mids), len(sids), len(tids) == n
    number, time, stream = f.number, f.time, f.stream
    out = []
    for i in range(n):
        out.append(Smb2Message(
            number, time, stream, i + 1, int(cmds[i]),
            i < nresp and resp[i] in ("1", "True"),
            int(mids[i]) if i < nmids else -1,
            int(sids[i], 0) if i < nsids else 0,
            int(tids[i], 0) if has_tids else None))
    text = cols[_NT_STATUS]
    if text:
        statuses = text.split(AGGREGATOR)
        responses = [m for m in out if m.is_response]
        if len(statuses) == len(responses):
            for m, s in zip(responses, statuses):
                m.status = int(s, 0)
    for col, name, attr, conv in _CARRIED:
        text = cols[col]
        if not text:
            continue
        values = text.split(AGGREGATOR)
        carrier = CARRIERS[name]
        carriers = [m for m in out if carrier(m.command, m.is_response, m.status)]
        if len(carriers) == len(values):
            for m, v in zip(carriers, values):
                setattr(m, attr, conv(v))
    return _names_and_buffers(out, cols)


def _lone_names_and_buffers(m: Smb2Message, cols: List[str]) -> List[Smb2Message]:
    """_names_and_buffers([m], cols) for a frame's only message, without its lists: the buffers
    (whichever targets they have: m) and CREATE names are m's when it is the one they name."""
    command = m.command
    if command == NEGOTIATE or command == TREE_CONNECT:
        return _names_and_buffers([m], cols)
    text = cols[_RAW]
    if text and AGGREGATOR not in text:  # one buffer (most frames): the loop below for it, without lists
        i = cols[_RAW_INDEX]
        if not i or AGGREGATOR in i or int(i) == 1:  # not one index for it, or it names m
            m.raw.append(bytes.fromhex(text))
    elif text:
        raws = text.split(AGGREGATOR)
        idx = _split(cols[_RAW_INDEX])
        if len(idx) == len(raws):
            for hexbytes, i in zip(raws, idx):
                if int(i) == 1:  # 1 <= int(i) <= n
                    m.raw.append(bytes.fromhex(hexbytes))
        else:  # the frame's IOCTL, or CREATE, or first message: m, which takes the first buffer
            m.raw.append(bytes.fromhex(raws[0]))
    if command != CREATE or m.is_response:
        return [m]  # only a CREATE request takes names (and then only the first of each)
    text = cols[_RAW_OPEN_NAME]
    if text:
        names = text.split(AGGREGATOR)
        if m.raw and len(names) == 1:
            m.filename = bytes.fromhex(names[0]).decode("utf-16-le", "replace")
        contexts = _split(cols[_RAW_CONTEXTS])
        if m.raw and len(contexts) == 1:
            m.create_contexts = bytes.fromhex(contexts[0])
    text = cols[_RAW_BARE_NAME]
    if text:
        bare = text.split(AGGREGATOR)
        if not m.raw and len(bare) == 1:
            m.bare_name = bytes.fromhex(bare[0]).decode("utf-16-le", "replace")
    return [m]


def _names_and_buffers(out: List[Smb2Message], cols: List[str]) -> List[Smb2Message]:
    """A dialect, a client or a tree named, and the plugin's exported buffers handed to their messages."""
    n = len(out)
    if n == 1:  # the commands that name a dialect, a client or a tree travel alone
        m = out[0]
        if m.command == NEGOTIATE:
            if m.is_response:
                dialects = _split(cols[_DIALECT])
                if dialects:
                    m.dialect = _int(dialects[-1])
            else:
                guids = _split(cols[_CLIENT_GUID])
                if len(guids) == 1:
                    m.client_guid = guids[0]
        elif m.command == TREE_CONNECT and not m.is_response:
            trees = _split(cols[_TREE])
            if trees:
                m.tree = trees[0]
    text = cols[_RAW]
    if text:
        raws = text.split(AGGREGATOR)
        idx = _split(cols[_RAW_INDEX])
        if len(idx) == len(raws):
            for hexbytes, i in zip(raws, idx):
                if 1 <= int(i) <= n:
                    out[int(i) - 1].raw.append(bytes.fromhex(hexbytes))
        else:
            # The plugin numbers messages only where a frame may hold several; otherwise the
            # buffers belong to the frame's IOCTLs (or, without one, its CREATEs), in order.
            targets = [m for m in out if m.command == IOCTL] or [m for m in out if m.command == CREATE] or out[:1]
            for m, hexbytes in zip(targets, raws):
                m.raw.append(bytes.fromhex(hexbytes))
    text = cols[_RAW_OPEN_NAME]
    if text:  # one per CREATE request that carries an open context, in order
        names = text.split(AGGREGATOR)
        creates = [m for m in out if m.command == CREATE and not m.is_response and m.raw]
        for m, name in zip(creates, names) if len(creates) == len(names) else ():
            m.filename = bytes.fromhex(name).decode("utf-16-le", "replace")
        contexts = _split(cols[_RAW_CONTEXTS])
        for m, ctx in zip(creates, contexts) if len(creates) == len(contexts) else ():
            m.create_contexts = bytes.fromhex(ctx)
    text = cols[_RAW_BARE_NAME]
    if text:  # one per CREATE request named as a shared disk without the context, in order
        bare = text.split(AGGREGATOR)
        plain = [m for m in out if m.command == CREATE and not m.is_response and not m.raw]
        for m, name in zip(plain, bare) if len(plain) == len(bare) else ():
            m.bare_name = bytes.fromhex(name).decode("utf-16-le", "replace")
    return out


def _calls(f: Frame, cols: List[str]) -> List[RpcCall]:
    methods = _split(cols[COL[CLUSPREP.method]])
    if not methods:
        return []
    n = len(methods)

    def column(name):
        v = _split(cols[COL[name]])
        return v if len(v) == n else [None] * n

    itfs, opnums, ctxs = column(CLUSPREP.interface), column(CLUSPREP.opnum), column(CLUSPREP.context_id)
    levels, sealed = column(CLUSPREP.auth_level), column(CLUSPREP.encrypted)
    call_ids, dirs = column(CLUSPREP.call_id), column(CLUSPREP.direction)
    objects = _split(cols[COL["dcerpc.obj_id"]])
    calls = []
    for i in range(n):
        calls.append(RpcCall(
            frame=f.number, time=f.time, stream=f.stream, interface=itfs[i] or "", method=methods[i],
            opnum=int(opnums[i] or -1), context_id=int(ctxs[i] or -1), call_id=int(call_ids[i] or -1),
            direction=DIRECTIONS.get(dirs[i], "request"), auth_level=int(levels[i] or 0),
            encrypted=sealed[i] in ("1", "True"), object_id=objects[0] if len(objects) == 1 else None))
    faults = _split(cols[COL[CLUSPREP.fault_status]])
    for c, s in zip([c for c in calls if c.direction == "fault"], faults):
        c.fault_status = _int(s)
    stubs = _split(cols[COL[CLUSPREP.stub]])
    for c, s in zip([c for c in calls if c.direction != "fault" and not c.encrypted], stubs):
        c.stub = bytes.fromhex(s)
    return calls


def _rpc(f: Frame, cols: List[str], ptypes: List[int]) -> List[RpcPdu]:
    """Binds and acks travel alone (a bind names several contexts); requests, responses and faults
    may share a frame (fragments of one call, or several calls), each with its own call id and
    context. A column that does not hold one value per PDU is left unset rather than guessed."""
    n = len(ptypes)
    call_ids = [int(x) for x in _split(cols[COL["dcerpc.cn_call_id"]])]
    ctxs = [int(x) for x in _split(cols[COL["dcerpc.cn_ctx_id"]])]
    if n > 1 and (len(call_ids) != n or any(p not in (0, 2, 3) for p in ptypes)):
        return []

    def each(name, conv):
        values = [conv(x) for x in _split(cols[COL[name]])]
        return values if len(values) == n else [None] * n

    levels, opnums = each("dcerpc.auth_level", int), each("dcerpc.opnum", int)
    flags, auth_types = each("dcerpc.cn_flags", _int), each("dcerpc.auth_type", _int)
    statuses = [_int(x) for x in _split(cols[COL["dcerpc.cn_status"]])]
    faults = [i for i, p in enumerate(ptypes) if p == 3]
    uuids = [u.lower() for u in _split(cols[COL["dcerpc.cn_bind_to_uuid"]])] if n == 1 and ptypes[0] in BINDS else []
    out = []
    for i in range(n):
        if out and (out[-1].ptype, out[-1].call_id) == (ptypes[i], call_ids[i]):
            out.pop()  # an earlier fragment of the same call: the last one speaks for it
        out.append(RpcPdu(
            frame=f.number, time=f.time, stream=f.stream, ptype=ptypes[i],
            call_id=call_ids[i] if i < len(call_ids) else -1,
            ctx_ids=ctxs if n == 1 else ([ctxs[i]] if len(ctxs) == n else []),
            auth_level=levels[i], opnum=opnums[i], auth_type=auth_types[i],
            object_id=(_split(cols[COL["dcerpc.obj_id"]]) or [None])[0] if n == 1 and ptypes[i] == 0 else None,
            status=statuses[faults.index(i)] if i in faults and len(statuses) == len(faults) else None,
            last_fragment=bool(flags[i] & PFC_LAST_FRAG) if flags[i] is not None else True,
            interfaces=uuids if len(uuids) == len(ctxs) else []))
    return out
