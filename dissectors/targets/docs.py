"""The docs target: docs/fields.md, every field of every protocol, from the model."""
from __future__ import annotations

from typing import Dict, List, Sequence

from dissectors.model import build_model
from dissectors.model.structs import FieldDef, snake
from dissectors.targets.templates import environment
from dissectors.vocabulary.ndr import MAX_ELEMENTS
from dissectors.vocabulary.protocol import Protocol


def render_docs(ps: Sequence[Protocol]) -> str:
    sections = []
    for p in ps:
        model = build_model(p)
        if p.reference_example and p.reference_example[0] not in model.fields:
            raise ValueError("%s: reference_example names %s, which is no field" % (p.name, p.reference_example[0]))
        by_structure: Dict[str, List[FieldDef]] = {}
        for f in model.fields.values():
            by_structure.setdefault(f.structure, []).append(f)
        sections.append(dict(proto=p, model=model, by_structure=by_structure))
    return environment("docs").get_template("fields.md.j2").render(sections=sections, snake=snake,
                                                                   max_elements=MAX_ELEMENTS)
