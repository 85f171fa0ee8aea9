"""The protocols' definitions: one module per protocol or shared part, written in the
vocabulary of `dissectors.vocabulary` and nothing else.

A module that exports `PROTOCOL` (a `dissectors.vocabulary.protocol.Protocol`) is a
protocol the generator renders; the others (scsi, dcom, csvp_buffers) are parts those
protocols use. Protocols are found here, not listed by the generator.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import List


def protocols() -> List:
    """Every module of this package that exports PROTOCOL, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module("%s.%s" % (__name__, info.name))
        proto = getattr(module, "PROTOCOL", None)
        if proto is not None:
            found.append(proto)
    return found
