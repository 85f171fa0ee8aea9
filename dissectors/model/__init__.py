"""The target-neutral model: a protocol's definitions walked into fields, value tables and
decode steps, which every target (dissectors.targets) renders.

  structs   construct structures -> FieldDefs and Decoders
  ndr       NDR interfaces -> FieldDefs and stub decoders
  bindings  what a transport binding adds (fields, expert items) and reads (BindingDef)
  captures  each decoder's captured values typed, and every expression over them
  oracle    the same walk over a Python parse result, for the differential tests
"""
from __future__ import annotations

from dissectors.model.bindings import BINDING_FIELDS, binding, error_field, experts
from dissectors.model.captures import check_summaries, schemas
from dissectors.model.structs import Model
from dissectors.vocabulary.protocol import Protocol


def build_model(p: Protocol) -> Model:
    model = Model(p.name, p.spec, p.messages, captures=p.captures())
    model.experts = experts(p)
    model.binding = binding(p)
    for fd in BINDING_FIELDS[p.binding](p) + [error_field(p)]:
        model.add_field(fd)
    if p.interfaces:
        from dissectors.model.ndr import NdrModel

        orpcthis, orpcthat = p.orpc or (None, None)
        model.ndr = NdrModel(model, list(p.interfaces), orpcthis, orpcthat, p.hresults, p.type_names)
    for abbrev, ranges in p.value_ranges.items():
        model.fields[abbrev].ranges = list(ranges)
    problems = ["%s: read by analyze, never registered" % f for f in model.binding.exported if f not in model.fields]
    problems += [p for fd in model.fields.values() for p in fd.problems()]
    if problems:
        raise ValueError("fields declared so no target can render them: " + "; ".join(problems))
    model.captures = schemas(model)  # every captured value and expression typed, or a CaptureTypeError
    check_summaries(model.captures, p.summaries)
    # what responses' Info columns read of their requests joins what their decoders read: every
    # target keeps these values per request
    for s in p.summaries.values():
        for d in s.details:
            for path in (list(d.paths) + ([d.when[0]] if d.when else [])) if d.request else ():
                if tuple(path.split(".")) not in model.request_paths:
                    model.request_paths.append(tuple(path.split(".")))
    for fd in model.fields.values():  # name every value table before a target lists them
        if fd.values:
            model.value_table(fd.values)
    return model
