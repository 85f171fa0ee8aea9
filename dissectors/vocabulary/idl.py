"""IDL interfaces and methods over the NDR vocabulary: what an RPC interface declares.

A method's request stub is its [in] parameters and its response stub its [out]
parameters then the HRESULT, each a top-level construction (`ndr.Params`). A DCOM
interface (`object` in the IDL) prefixes ORPCTHIS and ORPCTHAT.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from dissectors.vocabulary.ndr import Params, Prim

HRESULT = Prim("I", "HRESULT")


@dataclass
class Method:
    opnum: int
    name: str
    spec: str  # the section that defines it
    in_: Sequence = ()
    out: Sequence = ()
    used_on_wire: bool = True  # the OpnumNNNotUsedOnWire and Reserved slots are False

    def request(self, orpcthis=None) -> Params:
        return Params(*((["ORPCthis" / orpcthis] if orpcthis is not None else []) + list(self.in_)))

    def response(self, orpcthat=None, hresult: Prim = HRESULT) -> Params:
        return Params(*((["ORPCthat" / orpcthat] if orpcthat is not None else []) + list(self.out)
                        + ["ReturnValue" / hresult]))


@dataclass
class Interface:
    name: str
    uuid: str
    spec: str  # the server-details section
    methods: List[Method]
    version: tuple = (0, 0)
    dcom: bool = True  # an `object` interface: stubs carry ORPCTHIS/ORPCTHAT

    def method(self, opnum: int) -> Optional[Method]:
        return next((m for m in self.methods if m.opnum == opnum), None)
