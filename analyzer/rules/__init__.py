"""The specs' rules, by topic, and what else the analyzer reports (faults).

ALL_RULES is the order the rules receive each event in and docs/rules.md lists them."""
from typing import List

from . import clusprep, clusprep_node_services, rsvd
from .faults import FAULTS, CaptureTruncated

ALL_RULES: List[type] = rsvd.RULES + clusprep.RULES + clusprep_node_services.RULES
RULE_CLASSES: List[type] = ALL_RULES + [CaptureTruncated] + FAULTS
