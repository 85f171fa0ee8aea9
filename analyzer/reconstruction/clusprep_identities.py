"""Identities in a ClusPrep capture: which DCOM object a call is on (DcomObjects, from the IPIDs
the requests carry) and which disk a CPREP_DISKID names (DiskAliases, whatever form names it).

State belongs to the DCOM object, not the connection (MS-CSVP 3.2.1: the server object holds
the Prepare State and the ClusPrepDiskList). MS-DCOM names an object by OXID and OID, but those
travel only in the activation (ISystemActivator on port 135) and IRemUnknown answers, which
the capture of a ClusPrep port does not hold; what every request carries is the IPID of the
interface it calls (the object UUID of the request header, `dcerpc.obj_id`), and each
interface of an object has its own IPID. So an object is the set of IPIDs joined thus
(DcomObjects): an IPID seen before is its object again, on whatever connection (a reconnect
keeps the state); a new IPID on a connection joins the object of its coclass last called
there when that object has no IPID for this interface yet (IClusterStorage3 after
IClusterStorage2: one CLSID, one object), else it starts a new object (a second
ClusterStorage2 on the same connection). Keys include the server host, so equal IPIDs of
two servers stay apart. A request with no object UUID falls back to its connection's
object of that coclass.

Disks are keyed by identity, whatever CPREP_DISKID form names them: a DISK_PROPS answer
(CprepDiskGetProps, CprepDiskGetProps3) joins the id asked with the id and device number it
reports (DiskAliases, per server host), so a disk attached by GUID is the same disk when
named by device number.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .clusprep_records import COCLASS, Conversation, host_of

MAX_DISKS = 4096  # disk identities per object and aliases per server: a hostile capture stays bounded
MAX_OBJECTS = 65536  # IPIDs remembered


class DcomObjects:
    """IPIDs joined into objects (the rule is in the module docstring)."""

    def __init__(self):
        self.by_ipid: Dict[Tuple[str, str, str], Tuple] = {}  # (server host, coclass, IPID) -> object key
        self.last: Dict[Tuple[int, str], Tuple] = {}  # (stream, coclass) -> the object last called there
        self.interfaces: Dict[Tuple, set] = {}  # object key -> interfaces it has IPIDs for
        self.from_start: Dict[Tuple, bool] = {}  # object key -> first seen on a connection the capture has from its bind
        self.pre_capture: set = set()  # (server host, IPID) called on a context whose bind the capture lacks

    def key(self, conv: Conversation, interface: str, ipid: Optional[str]) -> Tuple:
        coclass = COCLASS.get(interface, interface)
        host = host_of(conv.server)
        here = self.last.get((conv.stream, coclass))
        if not ipid:
            k = here or (host, coclass, "stream %d" % conv.stream)
        else:
            k = self.by_ipid.get((host, coclass, ipid.lower()))
            if k is None:
                if here is not None and interface not in self.interfaces.get(here, ()):
                    k = here  # another interface of the object this connection is using
                else:
                    k = (host, coclass, ipid.lower())
                if len(self.by_ipid) < MAX_OBJECTS:
                    self.by_ipid[(host, coclass, ipid.lower())] = k
        if k not in self.from_start:
            self.from_start[k] = bool(conv.started) and (host, (ipid or "").lower()) not in self.pre_capture
        self.interfaces.setdefault(k, set()).add(interface)
        self.last[(conv.stream, coclass)] = k
        return k


class DiskAliases:
    """The CPREP_DISKID forms of the disks joined into identities (union-find). A device number
    is one server's name for a disk; a GUID or an MBR signature is written on the disk itself, so
    every node that sees the LUN names it alike: those forms are keyed by no host, and one
    shared disk is one identity across the nodes (its persistent reservations are the disk's)."""

    def __init__(self):
        self.parent: Dict[Tuple[str, str], Tuple[str, str]] = {}

    def find(self, host: str, form: str) -> Tuple[str, str]:
        x = (host if form.startswith("device ") else "", form)
        for _ in range(64):  # paths are halved as they are walked: short, but never trusted to end
            p = self.parent.get(x)
            if p is None or p == x:
                return x
            gp = self.parent.get(p, p)
            self.parent[x] = gp
            x = gp
        return x

    def join(self, host: str, forms: List[str]) -> List[Tuple[Tuple[str, str], Tuple[str, str]]]:
        """Join the forms; returns the (old root, new root) pairs merged."""
        roots = [self.find(host, f) for f in forms]
        merged = []
        for r in roots[1:]:
            r0 = self.find(*roots[0])
            if r != r0 and len(self.parent) < MAX_DISKS * 4:
                self.parent[r] = r0
                merged.append((r, r0))
        return merged
