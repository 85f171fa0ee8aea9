"""The specs' rules, by topic, and what else the analyzer reports (faults).

ALL_RULES is the order the rules receive each event in and docs/rules.md lists them."""
from typing import List

from . import (clusprep_disk_answers, clusprep_network, clusprep_node_services, clusprep_object_state,
               clusprep_preparation, clusprep_rpc, rsvd_answers, rsvd_handles, rsvd_messages, rsvd_operations,
               rsvd_opens, rsvd_zero_fields)
from .faults import FAULTS, CaptureTruncated

TOPICS = [rsvd_opens, rsvd_operations, rsvd_messages, rsvd_zero_fields, rsvd_handles, rsvd_answers,
          clusprep_preparation, clusprep_disk_answers, clusprep_object_state, clusprep_rpc, clusprep_network,
          clusprep_node_services]
ALL_RULES: List[type] = [rule for topic in TOPICS for rule in topic.RULES]
RULE_CLASSES: List[type] = ALL_RULES + [CaptureTruncated] + FAULTS
