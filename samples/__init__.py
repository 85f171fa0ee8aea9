"""Deterministic sample captures built from the protocol definitions.

`python -m samples` writes samples/<name>.pcapng for every scenario, and the files beside them
that are not captures (ARTIFACTS: the Kerberos sample's keytab); `python -m samples --check`
fails when a committed file differs from a rebuild.
"""
from pathlib import Path

from . import csvp_rule_scenarios as _csvp_rule_scenarios
from . import csvp_storage_rules as _csvp_storage_rules
from . import csvp_node_rules as _csvp_node_rules
from . import rsvd_conformance as _rsvd_conformance
from . import rsvd_rule_scenarios as _rsvd_rule_scenarios
from .csvp_node_rules import SCENARIOS as _CLUSPREP_NODE
from .csvp_rule_scenarios import SCENARIOS as _CLUSPREP_RULES
from .csvp_scenarios import SCENARIOS as _CLUSPREP
from .csvp_storage_rules import SCENARIOS as _CLUSPREP_STORAGE
from .rsvd_cluster import SCENARIOS as _CLUSTER
from .rsvd_conformance import SCENARIOS as _RSVD_CONFORMANCE
from .rsvd_guest_validation import SCENARIOS as _GUEST_VALIDATION
from .rsvd_multichannel import SCENARIOS as _MULTICHANNEL
from .rsvd_rule_scenarios import SCENARIOS as _RSVD_RULES
from .rsvd_scenarios import SCENARIOS as _RSVD
from .rsvd_scenarios import SESSION_KEYS
from . import ntlmssp

SAMPLES_DIR = Path(__file__).resolve().parent
SCENARIOS = {**_RSVD, **_CLUSTER, **_GUEST_VALIDATION, **_MULTICHANNEL, **_RSVD_RULES, **_RSVD_CONFORMANCE, **_CLUSPREP, **_CLUSPREP_RULES,
             **_CLUSPREP_NODE, **_CLUSPREP_STORAGE}

# The near misses each sample holds: sample -> {inventory check id: what comes close without breaking
# it}. tests/test_rules_reference.py requires one for every check, and no finding of it there.
NEAR_MISSES = {}
for _module in (_rsvd_rule_scenarios, _rsvd_conformance, _csvp_rule_scenarios, _csvp_node_rules, _csvp_storage_rules):
    for _name, _misses in getattr(_module, "NEAR_MISSES", {}).items():
        NEAR_MISSES.setdefault(_name, {}).update(_misses)


# The keys of a sample whose every message is encrypted, as analyzer.keys.Keys arguments
# (analyze --smb-key ...): the tests that decode every sample pass them, so it is checked
# decrypted like the others. (clusprep_sealed is tested both ways, with ntlmssp.ACCOUNT.)
KEYS = {
    "rsvd_encrypted": dict(smb_keys=["0x%016X:%s" % (sid, key.hex()) for sid, key in sorted(SESSION_KEYS.items())]),
    "rsvd_guest_validation": dict(nt_password=ntlmssp.ACCOUNT.password),  # its sealed ClusPrep calls
}


def _keytab() -> bytes:
    from .kerberos import keytab
    return keytab()


# Files beside the captures that are not captures: name -> builder (python -m samples writes them too).
ARTIFACTS = {"clusprep_kerberos.keytab": _keytab}


def path(name: str) -> Path:
    return SAMPLES_DIR / (name + ".pcapng")
