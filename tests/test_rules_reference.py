"""The rules against the specs' inventory of wire-observable rules: every inventory rule is
checked by a rule class or documented as not checkable; each checked one fires in a sample
(its finding names it in `check`) and stays quiet in a sample built as its near miss;
severities follow the convention; docs/rules.md is generated and fresh."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from analyzer.rules.findings import LEVEL_SEVERITY
from analyzer.rules import FAULTS, RULE_CLASSES
from analyzer.rules.spec_inventory import INVENTORY, NOT_CHECKED

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "conformance" / "spec-rules.md"
IDS = [r[0] for r in INVENTORY]
CHECKED = {c: cls.id for cls in RULE_CLASSES for c in cls.checks}


def expected(name):
    return json.loads((samples.SAMPLES_DIR / (name + ".expected.json")).read_text())["findings"]


def test_rules_reference_is_fresh():
    res = subprocess.run([sys.executable, "-m", "analyzer.output.rules_reference", "--check"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/conformance is not beside the clone")
def test_the_inventory_is_the_shared_one():
    rows = re.findall(r"^\| ([RC]\d\d) \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|", SHARED.read_text(), re.M)
    assert [r[0] for r in rows] == IDS
    assert [tuple(r) for r in rows] == [r[:5] for r in INVENTORY]


def test_every_inventory_rule_is_checked_or_says_why_not():
    assert len(IDS) == len(set(IDS)) == 117
    for rid in IDS:
        assert (rid in CHECKED) != (rid in NOT_CHECKED), rid
        assert rid not in NOT_CHECKED or len(NOT_CHECKED[rid]) > 30, rid  # a reason, not a shrug
    assert set(CHECKED) <= set(IDS) and set(NOT_CHECKED) <= set(IDS)
    assert len(CHECKED) == sum(len(cls.checks) for cls in RULE_CLASSES)  # one rule class per inventory rule


def test_severity_follows_the_level_and_side_is_named():
    for cls in RULE_CLASSES:
        if cls in FAULTS:
            continue
        assert cls.severity == LEVEL_SEVERITY[cls.level], cls.id
        assert (cls.side is None) == (cls.level is None) and cls.side in ("client", "server", "both", None), cls.id
        assert re.match(r"(MS-RSVD|MS-VSOD|MS-CSVP|MS-RPCE|pcapng) ", cls.spec), cls.id


def test_every_check_fires_in_a_sample():
    fired = {(f["rule"], f.get("check")) for name in samples.SCENARIOS for f in expected(name)}
    missing = sorted("%s %s" % (rule, c) for c, rule in CHECKED.items() if (rule, c) not in fired)
    assert not missing, "no sample shows: " + ", ".join(missing)


def test_every_check_has_a_near_miss_that_stays_quiet():
    """samples.NEAR_MISSES: sample -> {check: the near miss it holds}; that sample has no finding of it."""
    declared = {}
    for name, misses in samples.NEAR_MISSES.items():
        found = {f.get("check") for f in expected(name)}
        for c, why in misses.items():
            assert c in CHECKED, c
            assert c not in found, "%s fires in %s, its near miss (%s)" % (c, name, why)
            declared[c] = name
    missing = sorted(set(CHECKED) - set(declared))
    assert not missing, "no near miss for: " + ", ".join(missing)


def test_the_contradictions_have_a_reading():
    """The inventory notes two places where the spec contradicts itself: each has its reading."""
    from analyzer.rules.spec_inventory import READINGS

    assert set(READINGS) <= set(IDS)
    assert "R43" in READINGS and "R43" in NOT_CHECKED  # SenseInfoExLength: 3.2.5.5.3 against 2.2.5.7
    assert "1..MaxPartitionNumber" in READINGS["C16"] and "0..N-1" in READINGS["C16"]  # 3.3.4.4 against 3.2.1
