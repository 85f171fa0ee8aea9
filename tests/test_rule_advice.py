"""Every rule says what to check next (issue 11): one line in plain words, its own, for an engineer
who knows SMB2, SCSI and failover clustering but not the specs' section numbers; docs/rules.md
shows it."""
import re

import pytest

from analyzer.rules.findings import Rule
from analyzer.rules import RULE_CLASSES
from analyzer.output.rules_reference import _line, render

MAX = 200
IDS = [cls.id for cls in RULE_CLASSES]
# what a reader of a report does not know: rule ids, inventory ids, section numbers, internal words
RULE_ID = re.compile(r"\b(rsvd|clusprep|capture|analyzer)\.[a-z_]", re.I)
INVENTORY_ID = re.compile(r"\b[RC]\d\d\b")
SECTION = re.compile(r"\b\d+\.\d+\.\d+")
JARGON = re.compile(r"\b(seed|v1|v2|inventory|needs_\w+)\b", re.I)


def test_the_base_class_has_none():
    assert Rule.advice == ""


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=IDS)
def test_each_rule_has_its_own_short_advice(cls):
    assert "advice" in vars(cls), "%s inherits its advice" % cls.id
    advice = cls.advice
    assert isinstance(advice, str) and advice.strip(), cls.id
    assert advice == advice.strip() and "\n" not in advice, cls.id
    assert len(advice) <= MAX, (cls.id, len(advice))
    assert advice.lower() != cls.title.lower(), cls.id


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=IDS)
def test_advice_is_plain_words(cls):
    advice = cls.advice
    assert not any(i.lower() in advice.lower() for i in IDS), cls.id
    assert not RULE_ID.search(advice), (cls.id, RULE_ID.search(advice).group(0))
    assert not INVENTORY_ID.search(advice), (cls.id, INVENTORY_ID.search(advice).group(0))
    assert not SECTION.search(advice), (cls.id, SECTION.search(advice).group(0))
    assert not JARGON.search(advice), (cls.id, JARGON.search(advice).group(0))


def test_advice_is_distinct():
    seen = {}
    for cls in RULE_CLASSES:
        key = " ".join(cls.advice.lower().split())
        assert key not in seen, "%s repeats the advice of %s" % (cls.id, seen[key])
        seen[key] = cls.id
    titles = {cls.title.lower() for cls in RULE_CLASSES}
    assert not titles & set(seen), "an advice repeats a title"


def test_docs_show_each_rules_advice():
    text = render()
    section = text.split("## What to check next", 1)[1].split("\n## ", 1)[0]
    for cls in RULE_CLASSES:
        assert "- `%s`: %s\n" % (cls.id, _line(cls.advice)) in section, cls.id
    assert section.count("\n- `") == len(RULE_CLASSES)


TITLE_MAX = 90


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=IDS)
def test_each_title_names_the_fault_briefly(cls):
    """A title is the heading of a rule's findings: what went wrong on the wire, in a short line of
    plain words (issue 24), not the rule's wording from the spec."""
    title = cls.title
    assert title == title.strip() and "\n" not in title, cls.id
    assert len(title) <= TITLE_MAX, (cls.id, len(title))
    assert title[0].isupper(), cls.id
    assert not RULE_ID.search(title) and not INVENTORY_ID.search(title), cls.id
    assert not re.search(r"\b(MUST|SHOULD)\b", title), cls.id


def test_titles_are_distinct():
    titles = [" ".join(cls.title.lower().split()) for cls in RULE_CLASSES]
    assert len(set(titles)) == len(titles)
