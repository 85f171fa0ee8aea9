"""Deterministic sample captures built from the protocol definitions.

`python -m samples` writes samples/<name>.pcapng for every scenario;
`python -m samples --check` fails when a committed capture differs from a rebuild.
"""
from pathlib import Path

from .csvp_rule_scenarios import SCENARIOS as _CLUSPREP_RULES
from .csvp_scenarios import SCENARIOS as _CLUSPREP
from .rsvd_cluster import SCENARIOS as _CLUSTER
from .rsvd_multichannel import SCENARIOS as _MULTICHANNEL
from .rsvd_rule_scenarios import SCENARIOS as _RSVD_RULES
from .rsvd_scenarios import SCENARIOS as _RSVD

SAMPLES_DIR = Path(__file__).resolve().parent
SCENARIOS = {**_RSVD, **_CLUSTER, **_MULTICHANNEL, **_RSVD_RULES, **_CLUSPREP, **_CLUSPREP_RULES}


def path(name: str) -> Path:
    return SAMPLES_DIR / (name + ".pcapng")
