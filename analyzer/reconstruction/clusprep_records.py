"""What the ClusPrep reconstruction (analyzer.reconstruction.clusprep_sequences) records: a
conversation (one TCP connection), a call from request to answer, and what the calls so far did
to a disk of one DCOM object (MS-CSVP 3.2.1); the result codes and Prepare States they are read
with, and how a CPREP_DISKID is written. The rules read these records; the tracker fills them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from . import decoding

PKT_PRIVACY = 6
COCLASS = {"IClusterStorage2": "ClusterStorage2", "IClusterStorage3": "ClusterStorage2",
           "IClusterNetwork2": "ClusterNetwork2", "IClusterCleanup": "ClusterCleanup",
           "IClusterSetup": "ClusterSetup", "IClusterLog": "ClusterLog", "IClusterFirewall": "ClusterFirewall",
           "IClusterUpdate": "ClusterUpdate"}


@dataclass
class Conversation:
    stream: int
    client: str
    server: str
    interfaces: List[str] = field(default_factory=list)
    sequence: List[tuple] = field(default_factory=list)  # (frame, interface, method, result, latency ms, outcome)
    calls: int = 0
    sealed: bool = False
    bind_levels: List[Tuple[int, Optional[int]]] = field(default_factory=list)  # (frame, auth level)
    started: Optional[bool] = None  # its first PDU in the capture is a bind: the capture holds its start
    unbound_calls: int = 0  # calls on contexts whose bind the capture lacks
    auth_type: Optional[int] = None  # the security provider its bind named (10 NTLM, 16 Kerberos, 9 SPNEGO)
    inherited: bool = False  # carries calls of an object first seen on a conversation begun before the capture
    outcomes: Dict[str, int] = field(default_factory=dict)  # Call.outcome -> calls

    @property
    def id(self) -> str:
        return "%s -> %s (stream %d)" % (self.client, self.server, self.stream)


MAX_PARTITIONS = 128  # partitions remembered per disk (file system names, IsNtfs answers)
_H = decoding.HRESULT_CODE  # codes by the names of MS-CSVP's tables (dissectors/definitions/csvp.py)
ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND = _H["ERROR_FILE_NOT_FOUND"], _H["ERROR_NOT_FOUND"]
ERROR_WRONG_DISK, ERROR_NOT_READY = _H["ERROR_WRONG_DISK"], _H["ERROR_NOT_READY"]
ERROR_INVALID_STATE, ERROR_INVALID_SERVER_STATE = _H["ERROR_INVALID_STATE"], _H["ERROR_INVALID_SERVER_STATE"]
# a call refused for its authentication: ERROR_ACCESS_DENIED as a fault status, or E_ACCESSDENIED
ACCESS_DENIED = {_H["ERROR_ACCESS_DENIED"], _H["E_ACCESSDENIED"]}
UNKNOWN = "unknown"  # a Prepare State the capture does not show
STORAGE = ("IClusterStorage2", "IClusterStorage3")


@dataclass
class DiskState:
    """What the calls so far did to one ClusPrepDisk of one object (§3.2.1). The client rules
    read it as the client sees it (SetOnline counts as online); the server rules read the
    server's side: `online_pending` after a SetOnline whose transition no answer confirmed yet."""

    attached: bool = False
    owned: bool = False
    online: bool = False
    online_pending: bool = False  # a CprepDiskSetOnline started it; no IsOnline or Online confirmed it
    online_called: bool = False  # a CprepDiskOnline since the last CprepDiskOffline (3.3.4.4)
    partitions: Optional[int] = None  # MaxPartitionNumber from the last CprepDiskOnline
    verified: set = field(default_factory=set)  # partitions found NTFS by IsNtfs or GetFSName
    seen: set = field(default_factory=set)  # methods that succeeded on it (PR*3 as PR*)
    offline_since_arbitrate: bool = False  # a CprepDiskOffline after the last CprepDiskPRArbitrate
    registered: bool = False  # persistent reservations now (§3.3.4.6): a key registered ...
    reserved: bool = False  # ... and the reservation held
    cleared: bool = False  # a PRClear since the last PRRegister: the next Register starts a sequence (C37/C40)
    register_cleared: bool = False  # the registration in effect followed a PRClear
    missing: Optional[int] = None  # frame of the answer that said no such disk (ERROR_FILE_NOT_FOUND / NOT_FOUND)
    fs: Dict[int, Tuple[str, int]] = field(default_factory=dict)  # partition -> (GetFSName answer, frame)
    ntfs: Dict[int, Tuple[bool, int]] = field(default_factory=dict)  # partition -> (IsNtfs said NTFS, frame)
    arb_sectors: Optional[Tuple[int, int, int]] = None  # (SectorX, SectorY, frame) of the last GetArbSectors
    # whether the server's Owned and Online states are what the calls above made them: a failure
    # with ERROR_INVALID_STATE or ERROR_NOT_READY says a local event (3.2.6) may have changed them
    owned_known: bool = True
    online_known: bool = True

    def copy(self) -> "DiskState":
        return dataclasses.replace(self, verified=set(self.verified), seen=set(self.seen), fs=dict(self.fs),
                                   ntfs=dict(self.ntfs))

    def after(self, c: "Call") -> None:
        m = base_method(c.method)
        self.seen.add(m)
        self.missing = None
        if m == "CprepDiskAttach":
            self.attached = True
        elif m == "CprepDiskPRArbitrate":
            self.owned, self.offline_since_arbitrate, self.owned_known = True, False, True
        elif m == "CprepDiskStopDefense":
            self.owned, self.owned_known = False, True
        elif m in ("CprepDiskOnline", "CprepDiskSetOnline"):
            self.online = True
            if m == "CprepDiskOnline":
                self.partitions, self.online_pending, self.online_called = c.param("MaxPartitionNumber"), False, True
            elif not self.online_pending and c.disk_state is not None and not (
                    c.disk_state.online and c.disk_state.online_known):
                self.online_pending = True  # started, not finished (3.2.4.26)
            self.online_known = True
        elif m == "CprepDiskIsOnline":
            self.online_pending, self.online_known = False, True  # S_OK: the transition is over, it is Online
        elif m == "CprepDiskOffline":
            self.online, self.online_pending, self.online_called, self.offline_since_arbitrate = False, False, False, True
            self.online_known = True
        elif m == "CprepDiskDiskPartitionIsNtfs":  # S_OK means NTFS; another file system is ERROR_WRONG_DISK
            self.verified.add(c.param("ulPartition"))
            self._remember(self.ntfs, c.param("ulPartition"), (True, c.request_frame))
        elif m == "CprepDiskGetFSName":
            name = str(c.param("FsName", "")).rstrip("\x00")
            if name.upper() == "NTFS":
                self.verified.add(c.param("Partition"))
            self._remember(self.fs, c.param("Partition"), (name, c.request_frame))
        elif m == "CprepDiskGetArbSectors":
            self.arb_sectors = (c.param("SectorX"), c.param("SectorY"), c.request_frame)
        elif m == "CprepDiskPRRegister":
            self.registered, self.register_cleared, self.cleared = True, self.cleared, False
        elif m == "CprepDiskPRUnRegister":
            self.registered = self.reserved = False
        elif m in ("CprepDiskPRReserve", "CprepDiskPRPreempt"):
            self.reserved = True
        elif m == "CprepDiskPRRelease":
            self.reserved = False
        elif m == "CprepDiskPRClear":
            self.registered = self.reserved = False
            self.cleared = True

    def failed(self, c: "Call") -> None:
        """What a refusal tells: the server has no such disk; IsNtfs found another file system; the
        disk's Owned and Online states may have changed through local events (3.2.6)."""
        if c.hresult in (ERROR_INVALID_STATE, ERROR_NOT_READY):
            self.owned_known = self.online_known = False
        if c.hresult == ERROR_FILE_NOT_FOUND and c.method in ("CprepDiskGetProps", "CprepDiskGetProps3") or (
                c.hresult == ERROR_NOT_FOUND and c.method == "CprepDiskAttach"):
            self.missing = c.response_frame
        elif c.hresult == ERROR_WRONG_DISK and c.method == "CprepDiskDiskPartitionIsNtfs":
            self._remember(self.ntfs, c.param("ulPartition"), (False, c.request_frame))

    @staticmethod
    def _remember(d: dict, key, value) -> None:
        if key in d or len(d) < MAX_PARTITIONS:
            d[key] = value


def base_method(method: str) -> str:
    """CprepDiskPRRegister3 -> CprepDiskPRRegister: the PR calls of both interfaces go together."""
    return method[:-1] if method.endswith("3") and method.startswith("CprepDiskPR") else method


@dataclass
class Call:
    conversation: Conversation
    interface: str
    method: str
    opnum: int
    call_id: int
    request_frame: int
    time: float
    auth_level: int
    encrypted: bool
    request: object = None  # decoded [in] parameters, or None (sealed, or not decodable)
    response: object = None  # decoded [out] parameters and ReturnValue
    response_frame: Optional[int] = None
    response_time: Optional[float] = None
    fault_status: Optional[int] = None
    used_on_wire: bool = True
    disk_state: Optional[DiskState] = None  # the state of its disk before it, when its stub names one
    unbound: bool = False  # on a context whose bind the capture lacks: interface and method unknown
    object_id: Optional[str] = None  # the request's object UUID: the IPID of the interface it calls
    obj: Optional[Tuple] = None  # its DCOM object (DcomObjects), set by the tracker
    prepare_state: str = UNKNOWN  # the object's Prepare State before the call (§3.2.1), storage calls
    disks_known: bool = False  # its disks' states come from the capture (a Phase2 or the object's start in it)
    shares_created: Optional[bool] = None  # ConnectToNewSmbShares3: a CreateNewSmbShares3 answer, anywhere
    # in the capture before it, returned one of its paths (3.5.4.7: Create on one node, Connect on another)

    @property
    def dcom_object(self) -> Tuple:
        """The key of the DCOM object called (see analyzer.reconstruction.clusprep_identities); a call
        the tracker did not place (a test's) is its connection's object of that coclass."""
        if self.obj is not None:
            return self.obj
        return (self.conversation.stream, COCLASS.get(self.interface, self.interface))

    @property
    def hresult(self) -> Optional[int]:
        return int(self.response.ReturnValue) if self.response is not None else None

    @property
    def succeeded(self) -> Optional[bool]:
        """True or False when the result is known; for a sealed answer, None."""
        if self.fault_status is not None:
            return False
        if self.hresult is not None:
            return self.hresult < 0x80000000
        return None

    @property
    def answered_ok(self) -> bool:
        """What sequence rules assume: known success, or an answer they cannot read that is no fault."""
        return self.succeeded is True or (self.succeeded is None and self.response_frame is not None)

    @property
    def readable(self) -> bool:
        return self.request is not None

    @property
    def disk(self) -> Optional[str]:
        if self.request is None or "DiskId" not in self.request:
            return None
        return disk_form(self.request.DiskId)

    def param(self, name: str, default=None):
        for v in (self.request, self.response):
            if v is not None and name in v:
                return v[name]
        return default

    @property
    def result_text(self) -> str:
        if self.fault_status is not None:
            return "fault %s" % decoding.HRESULTS.get(self.fault_status, "0x%08X" % self.fault_status)
        if self.hresult is not None:
            return decoding.HRESULTS.get(self.hresult, "0x%08X" % self.hresult)
        if self.response_frame is None:
            return "unanswered"
        if self.unbound:
            return "answered (bind not captured)"
        return "sealed" if self.encrypted else "answer not decoded (malformed stub)"

    @property
    def outcome(self) -> str:
        """succeeded, failed, sealed (answered, the result unreadable without the key), unanswered,
        unbound (answered, on a context whose bind the capture lacks) or not decoded."""
        if self.succeeded is not None:
            return "succeeded" if self.succeeded else "failed"
        if self.response_frame is None:
            return "unanswered"
        if self.unbound:
            return "unbound"
        return "sealed" if self.encrypted else "not decoded"

    @property
    def latency_ms(self) -> Optional[float]:
        return None if self.response_time is None else (self.response_time - self.time) * 1000.0

    @property
    def subject(self) -> str:
        return self.conversation.id


def host_of(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


def disk_form(d) -> Optional[str]:
    """A CPREP_DISKID as text, the way findings name it."""
    if d is None:
        return None
    try:
        kind = int(d.DiskIdType)
        if kind == 0:
            return "signature 0x%08X" % d.DiskSignature
        if kind == 1:
            return "GUID %s" % str(d.DiskGuid).lower()
        if kind == 0xFA0:
            return "device %d" % d.DeviceNumber
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return "unknown id"
