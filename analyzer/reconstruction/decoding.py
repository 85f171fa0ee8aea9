"""Message bytes to values, with the definitions the dissectors were generated from.

RSVD messages are parsed with construct's compiled parsers (about four times faster than
the interpreted ones, and identical on every sample message: tests/test_analyzer_decoding.py);
ClusPrep stubs with the NDR vocabulary. Nothing here knows a byte offset.
"""
from __future__ import annotations

import re
import struct
from typing import Any, Dict, Optional, Tuple

from io import BytesIO

from construct import Bytes, Container

from dissectors.definitions import csvp, rsvd, windows_codes
from dissectors.model.introspect import iter_constructs, unwrap
from dissectors.vocabulary.ndr import NdrError, Prim
from dissectors.vocabulary.wire import Utf16String

from .flat_parsers import ShortRead, compile_flat

_IOCTLS = {e.function: e for e in rsvd.PROTOCOL.ioctls}
_CONTEXT = rsvd.PROTOCOL.create_contexts[0].message
_compiled: Dict[int, Any] = {}


def first_line(err: Exception, most: int) -> str:
    """An exception as one short line for a finding (construct's messages run over several)."""
    return (str(err).splitlines() or [type(err).__name__])[0][:most]


_SHORT = re.compile(r"expected (\d+), found (\d+)")


def _variable(msg, field: str) -> bool:
    """Whether `field` of `msg` takes its size from another field (a length the bytes state)."""
    for sc in iter_constructs([msg.struct]):
        if getattr(sc, "name", None) == field:
            inner = unwrap(sc)[2]
            return isinstance(inner, Utf16String) or (isinstance(inner, Bytes) and not isinstance(inner.length, int))
    return False


def why_not(msg, raw: bytes, err: Exception, **kw) -> str:
    """Why bytes do not parse as `msg`, in the words of the plugin's expert items: the structure, its
    section, the field, and how many bytes it wanted. The compiled parser cannot name the field
    (struct.error, "(???)"), so the interpreted one runs again on the failure alone."""
    try:
        msg.struct.parse(raw, **kw)
    except Exception as e:  # noqa: BLE001 - the error to describe
        err = e
    path = [p for p in str(getattr(err, "path", "") or "").split(" -> ") if p and not p.startswith("(")]
    field = path[-1] if path else ""
    name = "%s (%s)" % (msg.name, msg.citation(rsvd.SPEC)) if hasattr(msg, "citation") else type(msg).__name__
    where = name + ("." + field if field else "")
    short = _SHORT.search(str(err))
    if short and field:
        need, have = int(short.group(1)), int(short.group(2))
        if _variable(msg, field):
            return "%s: length %d exceeds the %d bytes left" % (where, need, have)
        return "%s: %d byte%s needed, %d present" % (where, need, "" if need == 1 else "s", have)
    lines = [x for x in str(err).splitlines() if not x.startswith("Error in path")]
    return "%s does not parse: %s" % (where, (lines or [type(err).__name__])[0][:160])


def _parser(msg):
    p = _compiled.get(id(msg))
    if p is None:
        try:
            p = msg.struct.compile()
        except Exception:  # noqa: BLE001 - a construct the compiler cannot emit: parse interpreted
            p = msg.struct
        _compiled[id(msg)] = p
    return p


def is_rsvd_ioctl(function: Optional[int]) -> bool:
    return function in _IOCTLS


def ioctl_name(function: int) -> str:
    e = _IOCTLS.get(function)
    return e.name if e else "0x%08X" % function


def has_transaction(function: int) -> bool:
    e = _IOCTLS.get(function)
    return bool(e and e.transaction)


# the RSVD IOCTLs with a transaction (the tunnel): is_rsvd_ioctl(f) and has_transaction(f), one lookup
TUNNELS = frozenset(f for f in _IOCTLS if has_transaction(f))


# The hot path: most tunnel operations are SCSI READ/WRITE. Their overlays (the SCSI data
# read by the CDB) are what the analyzer never needs, so these are parsed with views of
# the same definitions minus the overlays, compiled, and the CDB and sense bytes with
# the SCSI definitions. The result has the shape of a full parse.
_SCSI_OP = rsvd.OPERATION_CODES["RSVD_TUNNEL_SCSI_OPERATION"]
# the header's OperationCode (its first field, an Int32ul) as bytes: other operations skip _scsi_fast unparsed
_SCSI_OP_BYTES = _SCSI_OP.to_bytes(4, "little")
_FULL_CDBS = {"PERSISTENT_RESERVE_IN", "PERSISTENT_RESERVE_OUT"}  # their data feeds the reservation rule
_views: Dict[str, Any] = {}


def _layout(name: str):
    """The struct the analyzer reads on every message of a kind, without the overlays it skips."""
    from construct import Struct

    from dissectors.definitions import scsi

    def without(msg, *names):
        return Struct(*[sc for sc in msg.struct.subcons if getattr(sc, "name", None) not in names])

    return {
        "header": lambda: rsvd.SVHDX_TUNNEL_OPERATION_HEADER.struct,
        "scsi_request": lambda: without(rsvd.SVHDX_TUNNEL_SCSI_REQUEST, "Cdb", "Data", "DataBuffer"),
        "scsi_response": lambda: without(rsvd.SVHDX_TUNNEL_SCSI_RESPONSE, "Sense", "Data", "DataBuffer"),
        "cdb": lambda: scsi.SCSI_CDB.struct,
        "sense": lambda: scsi.SENSE_DATA.struct,
    }[name]()


def _view(name: str):
    v = _views.get(name)
    if v is None:
        v = _views[name] = _layout(name).compile()
    return v


def _run(name: str, raw: bytes, at: int = 0):
    """view.parse(raw[at:]): the flat parser (reconstruction.flat_parsers) where the layout has one and
    the bytes hold it whole, else construct's compiled function on a root context as parse_stream
    builds it, without construct's four wrapper calls (a compiled parser has no `parsed` hook).
    One root serves every call: compiled code only reads it (each struct writes its own child
    context)."""
    f = _flat_at.get(name, _NO_FLAT)
    if f is _NO_FLAT:
        f = _flat_of(name)
        f = f.at if f is not None else None
    if f is not None:
        try:
            return f(raw, at)[0]
        except (ShortRead, struct.error):
            pass  # construct decides what short bytes give
    return (_funcs.get(name) or _func(name))(BytesIO(raw[at:] if at else raw), _ROOT)


_NO_FLAT = object()
_flat: Dict[str, Any] = {}
_flat_at: Dict[str, Any] = {}  # name -> its flat parser's parse(buf, at), or None


def _flat_of(name: str):
    try:
        _flat[name] = compile_flat(_layout(name))
    except Exception:  # noqa: BLE001 - NotImplementedError, or a layout it trips on: construct parses it
        _flat[name] = None
    _flat_at[name] = _flat[name].at if _flat[name] is not None else None
    return _flat[name]


_ROOT = Container(_parsing=True, _building=False, _sizing=False)
_ROOT._params = _ROOT


_funcs: Dict[str, Any] = {}


def _func(name: str):
    _funcs[name] = f = _view(name).parsefunc
    return f


def _scsi_fast(is_response: bool, raw: bytes, request: Any):
    """A SCSI tunnel message without its data overlay, or None when it needs the full parse."""
    # Containers are dicts: items, not attributes (construct's __getattr__ is a Python call each)
    # An enum value is an EnumIntegerString (with intvalue) or an unnamed EnumInteger: int_of, inline.
    # A CDB's OperationCode is looked up in _FULL_CDBS as it is (a str subclass hashes as its name; an
    # unnamed one, an int, is no name there), not as str(...) of it.
    header = _run("header", raw)
    code = header["OperationCode"]
    if getattr(code, "intvalue", code) != _SCSI_OP:
        return None
    if not is_response:
        payload = _run("scsi_request", raw, 16)
        cdb = payload["Cdb"] = _run("cdb", payload["CDBBuffer"])
        if cdb["OperationCode"] in _FULL_CDBS:
            return None
        payload["Data"] = None
    else:
        status = header["Status"]
        if getattr(status, "intvalue", status) != 0:
            return None  # a failure's payload is not a SCSI response
        cdb = request["Payload"].get("Cdb") if request is not None else None
        if cdb is None or cdb["OperationCode"] in _FULL_CDBS:
            return None
        payload = _run("scsi_response", raw, 16)
        payload["Sense"] = _run("sense", payload["SenseDataEx"]) if payload["SenseInfoExLength"] > 0 else None
        payload["Data"] = None
    return Container(Header=header, Payload=payload)


def rsvd_header(raw: bytes):
    """The tunnel header alone (operation, status, RequestId) of a message whose payload does not
    parse, or None when even the header is cut short."""
    if len(raw) < rsvd.SVHDX_TUNNEL_OPERATION_HEADER.sizeof():
        return None
    return _run("header", raw)


def rsvd_message(function: int, is_response: bool, raw: bytes, request: Any = None) -> Tuple[Any, Optional[str]]:
    """(value, None), or (None, why it does not parse)."""
    e = _IOCTLS[function]
    if e.transaction is not None and len(raw) >= 16 and raw[:4] == _SCSI_OP_BYTES:
        try:
            fast = _scsi_fast(is_response, raw, request)
        except Exception:  # noqa: BLE001 - malformed: the full parse below says why
            fast = None
        if fast is not None:
            return fast, None
    msg = e.response if is_response else e.request
    if msg is None:
        return None, None
    flat = _whole.get(id(msg), _NO_FLAT)
    if flat is _NO_FLAT:
        flat = _whole_of(msg)
    if flat is not None:
        try:
            return flat(raw), None
        except ShortRead:
            pass  # short bytes, or a branch it does not know: construct parses them
    try:
        if request is not None:
            return _parser(msg).parse(raw, request=request), None
        return _parser(msg).parse(raw), None
    except Exception as err:  # noqa: BLE001 - compiled parsers raise struct.error and friends on bad bytes
        return None, why_not(msg, raw, err, **({"request": request} if request is not None else {}))


_whole: Dict[int, Any] = {}


def _whole_of(msg):
    """A whole message's flat parser (reconstruction.flat_parsers), where construct compiles the message
    (an interpreted parse, the fallback, makes Containers of another shape), else None."""
    f = None
    if _parser(msg) is not msg.struct:
        try:
            f = compile_flat(msg.struct)
        except Exception:  # noqa: BLE001 - NotImplementedError, or a layout it trips on: construct parses it
            f = None
    _whole[id(msg)] = f
    return f


def open_context(raw: bytes) -> Tuple[Any, Optional[str]]:
    try:
        return _parser(_CONTEXT).parse(raw), None
    except Exception as err:  # noqa: BLE001 - as above
        return None, why_not(_CONTEXT, raw, err)


MAX_CONTEXTS = MAX_EAS = 32  # a CREATE's create contexts and EAs: what a Next/NextEntryOffset chain may walk


def create_context_data(raw: bytes, tag: bytes) -> Tuple[Optional[bytes], Optional[str]]:
    """The data of the create context named `tag` among a CREATE's create contexts: (data, None),
    (None, None) when there is none, or (None, why) when the bytes (perhaps cut at the export's
    cap) do not say."""
    try:
        pos, seen = 0, 0
        while seen < MAX_CONTEXTS:
            seen += 1
            c = rsvd.SMB2_CREATE_CONTEXT.parse(raw[pos:])
            name = raw[pos + c.NameOffset:pos + c.NameOffset + c.NameLength]
            if name == tag:
                data = raw[pos + c.DataOffset:pos + c.DataOffset + c.DataLength]
                if len(data) < c.DataLength:
                    return None, "the %s create context runs past the bytes exported" % (
                        tag.decode("latin-1") if tag.isalpha() else tag.hex().upper())
                return data, None
            if c.Next == 0:
                return None, None
            pos += c.Next
        return None, "more than %d create contexts" % MAX_CONTEXTS
    except Exception as err:  # noqa: BLE001 - construct raises StreamError and friends on short bytes
        return None, "the create contexts do not parse: %s" % first_line(err, 120)


def create_eas(raw: bytes) -> Tuple[Optional[list], Optional[str]]:
    """The FILE_FULL_EA_INFORMATION entries of a CREATE's "ExtA" context, from its create
    contexts: ([(NextEntryOffset, Flags, EaName, EaValue)], None), ([], None) when it has no
    ExtA, or (None, why) when the bytes (perhaps cut at the export's cap) do not say."""
    data, err = create_context_data(raw, rsvd.EA_CONTEXT_NAME)
    if data is None:
        return (None, err) if err else ([], None)
    try:
        return _eas(data)
    except Exception as err:  # noqa: BLE001 - as above
        return None, "the create contexts do not parse: %s" % first_line(err, 120)


def app_instance_id(raw: bytes) -> Tuple[Optional[str], Optional[str]]:
    """The AppInstanceId of a CREATE's SMB2_CREATE_APP_INSTANCE_ID context (MS-SMB2 2.2.13.2.13), as a
    GUID string: (id, None), (None, None) without one, (None, why) when the bytes do not say."""
    data, err = create_context_data(raw, rsvd.SMB2_CREATE_APP_INSTANCE_ID_TAG)
    if data is None:
        return None, err
    try:
        return str(rsvd.SMB2_CREATE_APP_INSTANCE_ID.parse(data).AppInstanceId), None
    except Exception as err:  # noqa: BLE001 - as above
        return None, "SMB2_CREATE_APP_INSTANCE_ID does not parse: %s" % first_line(err, 120)


def _eas(data: bytes) -> Tuple[Optional[list], Optional[str]]:
    out, pos = [], 0
    for _ in range(MAX_EAS):
        e = rsvd.FILE_FULL_EA_INFORMATION.parse(data[pos:])
        start = pos + 8 + e.EaNameLength + 1
        value = data[start:start + e.EaValueLength]
        if len(value) < e.EaValueLength:
            return None, "an EA runs past the ExtA context"
        out.append((e.NextEntryOffset, e.Flags, bytes(e.EaName).decode("latin-1"), value))
        if e.NextEntryOffset == 0:
            return out, None
        pos += e.NextEntryOffset
    return None, "more than %d EAs" % MAX_EAS


def int_of(value) -> int:
    """An Enum value (EnumIntegerString) or a plain integer, as an int."""
    if value.__class__ is int:  # most are: no attribute probe
        return value
    return int(getattr(value, "intvalue", value))


# -- ClusPrep --------------------------------------------------------------------------------
_ndr = None


def _stubs():
    """Each method's request and response parameters, straight from the IDL definitions (DCOM's
    ORPCTHIS/ORPCTHAT first where the interface is DCOM's): no target is involved."""
    global _ndr
    if _ndr is None:
        p = csvp.PROTOCOL
        orpcthis, orpcthat = p.orpc or (None, None)
        hresult = Prim("I", "HRESULT", values=p.hresults)
        _ndr = {}
        for itf in p.interfaces:
            for m in itf.methods:
                if not m.used_on_wire:  # the plugin decodes none of these either
                    continue
                _ndr[(itf.name, m.name, "request")] = m.request(orpcthis if itf.dcom else None)
                _ndr[(itf.name, m.name, "response")] = m.response(orpcthat if itf.dcom else None, hresult)
    return _ndr


def clusprep_stub(interface: str, method: str, direction: str, raw: bytes) -> Tuple[Any, Optional[str]]:
    params = _stubs().get((interface, method, direction))
    if params is None:
        return None, None
    try:
        return params.parse(raw), None
    except (NdrError, ValueError, IndexError, KeyError, TypeError) as err:
        return None, "%s %s stub does not parse: %s" % (method, direction, str(err).splitlines()[0][:160])


INTERFACES = {i.name: i for i in csvp.INTERFACES}
HRESULT_CODE = {name: value for value, name in csvp.HRESULTS.items()}  # the rules name codes as the spec does
# names of results: the spec's, then any Win32 error as HRESULT_FROM_WIN32 (0x8007xxxx) by its MS-ERREF name
HRESULTS = {**{0x80070000 | c: n for c, n in windows_codes.WIN32.items() if c}, **csvp.HRESULTS}
