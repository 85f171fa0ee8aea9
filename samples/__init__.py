"""Deterministic sample captures built from the protocol definitions.

`python -m samples` writes samples/<name>.pcapng for every scenario;
`python -m samples --check` fails when a committed capture differs from a rebuild.
"""
from pathlib import Path

from .csvp_scenarios import SCENARIOS as _CLUSPREP
from .rsvd_cluster import SCENARIOS as _CLUSTER
from .rsvd_scenarios import SCENARIOS as _RSVD

SAMPLES_DIR = Path(__file__).resolve().parent
SCENARIOS = {**_RSVD, **_CLUSTER, **_CLUSPREP}


def path(name: str) -> Path:
    return SAMPLES_DIR / (name + ".pcapng")
