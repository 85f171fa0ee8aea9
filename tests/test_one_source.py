"""Issue 15 item 5: the analyzer takes names and rules from the definitions, once.

Field names come from the model (`dissectors.model.bindings.Names`), the stored-error rule from the
protocol's declaration (`StoredErrors.key_of`), stubs from the IDL definitions; no string literal
in analyzer/ names a generated field, and no second copy of the key arithmetic exists.
"""
import ast
import re
from pathlib import Path

from dissectors import generate, plugin_paths
from dissectors.definitions import rsvd
from dissectors.model import build_model

ROOT = Path(__file__).resolve().parent.parent


def test_no_analyzer_literal_names_a_generated_field():
    fields = {f for p in generate.protocols() for f in build_model(p).fields}
    literals = [(path.name, lit) for path in sorted((ROOT / "analyzer").rglob("*.py"))
                for lit in re.findall(r'"([a-z_]+\.[a-z0-9_.]+)"', path.read_text()) if lit in fields]
    assert literals == []
    # the check can fail: the names the analyzer reads are generated fields
    from analyzer.capture.source import FIELDS
    assert {"msrsvd.raw", "clusprep.stub", "clusprep.method"} <= set(FIELDS) & fields


def test_the_stored_error_rule_is_declared_once():
    from analyzer.reconstruction import rsvd_records

    se = rsvd.PROTOCOL.stored_errors
    assert rsvd_records.STORED is se
    lua = (plugin_paths.LUA_DIR / "msrsvd.lua").read_text()
    assert "local STORED_BASE, STORED_KEYS = 0x%08X, %d" % (se.base, se.keys) in lua
    base = rsvd.ERROR_CODES["STATUS_SVHDX_ERROR_STORED"]
    assert [rsvd_records.stored_key(s) for s in (base - 1, base, base + 0xFF, base + 0x100)] == [None, 0, 0xFF, None]
    source = "".join(p.read_text() for p in sorted((ROOT / "analyzer" / "reconstruction").glob("rsvd_*.py")))
    assert "STATUS_SVHDX_ERROR_STORED_MASK" not in source  # no second copy of the arithmetic


def test_stubs_are_decoded_without_the_model_or_a_target():
    tree = ast.parse((ROOT / "analyzer" / "reconstruction" / "decoding.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    # construct introspection is the vocabulary's, not the model's: allowed
    assert not {m for m in imported if m.startswith(("dissectors.model", "dissectors.targets", "dissectors.generate"))
                and m != "dissectors.model.introspect"}
