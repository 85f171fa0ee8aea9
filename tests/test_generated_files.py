"""Committed outputs are what the definitions generate, and the reference lists every field."""
import os
import re
import subprocess
import sys

import pytest

from dissectors.model import build_model
from dissectors import generate, plugin_paths

ROOT = generate.REPO_DIR


def test_generated_lua_and_docs_are_fresh():
    res = subprocess.run([sys.executable, "-m", "dissectors", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_samples_rebuild_to_the_same_bytes():
    res = subprocess.run([sys.executable, "-m", "samples", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_check_notices_a_stale_file(tmp_path, monkeypatch):
    lua = plugin_paths.lua_paths()[0]
    monkeypatch.setattr(generate, "LUA_DIR", tmp_path)
    (tmp_path / lua.name).write_text(lua.read_text() + "-- edited by hand\n")
    assert tmp_path / lua.name in generate.stale()


def test_reference_lists_every_field():
    text = generate.DOCS_PATH.read_text()
    for p in generate.protocols():
        for name in build_model(p).fields:
            assert "`%s`" % name in text, name


def test_install_copies_plugins(tmp_path):
    """(tests/test_install.py tests install and uninstall in full.)"""
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("WIRESHARK_CONFIG_DIR", None)  # never the real profile
    res = subprocess.run([sys.executable, "-m", "dissectors", "install", "--dest", str(tmp_path / "plugins")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    for p in plugin_paths.lua_paths():
        assert (tmp_path / "plugins" / p.name).read_text() == p.read_text()
    assert (tmp_path / "config" / "wireshark" / "disabled_protos").read_text().endswith("\nrsvd\n")


def test_the_field_reference_covers_every_field():
    text = generate.DOCS_PATH.read_text()
    for p in generate.protocols():
        missing = [f for f in build_model(p).fields if "`%s`" % f not in text]
        assert not missing, (p.name, missing[:5])


@pytest.mark.parametrize("module", ["rsvd", "csvp"])
def test_adding_an_enum_changes_only_the_lines_it_adds(module):
    """Value tables and decoders are named from what they hold, not numbered by position: a new
    structure with a new enum adds its lines and renames nothing (only the build digest changes)."""
    import dataclasses
    import difflib
    import importlib

    from construct import Enum, Int8ul

    from dissectors.targets.lua import render_lua
    from dissectors.vocabulary.wire import message

    p = importlib.import_module("dissectors.definitions." + module).PROTOCOL
    toy = message("TOY_HOLDER", "toy_holder", "2.2.5.1", "Kind" / Enum(Int8ul, TOY_A=0x41, TOY_B=0x42) * "A toy enum.")
    before = render_lua(p).splitlines()
    after = render_lua(dataclasses.replace(p, messages=[toy] + list(p.messages))).splitlines()
    diff = [x for x in difflib.unified_diff(before, after, lineterm="", n=0) if not x.startswith(("---", "+++", "@@"))]
    removed = [x for x in diff if x.startswith("-")]
    added = [x for x in diff if x.startswith("+")]
    assert [x.split("=")[0] for x in removed] == ["-local BUILD "], removed
    assert any("TOY_A" in x for x in added) and any("toy_holder.kind" in x for x in added)


def test_every_field_says_more_than_its_name():
    """Issue 15 item 4: a description on every field that says more than its label, never two
    descriptions glued together ("A / B")."""
    for p in generate.protocols():
        for f in build_model(p).fields.values():
            assert f.desc.strip(" .").lower() != f.label.lower(), f.abbrev
            assert " / " not in f.desc, (f.abbrev, f.desc)


def test_one_name_two_meanings_is_refused():
    """A field name shared by two structures must mean one thing: two written descriptions, or one
    value given two names, stop the generator instead of being merged."""
    from construct import Enum, Int8ul

    from dissectors.model.structs import Model
    from dissectors.vocabulary.wire import message

    a = message("A", "a", "2.2.1", "Kind" / Int8ul * "One meaning.", prefix="shared")
    b = message("B", "b", "2.2.2", "Kind" / Int8ul * "Another meaning.", prefix="shared")
    with pytest.raises(ValueError, match="shared.kind described as"):
        Model("toy", "MS-TOY", [a, b])
    c = message("C", "c", "2.2.3", "Kind" / Enum(Int8ul, ONE=1) * "One meaning.", prefix="shared")
    d = message("D", "d", "2.2.4", "Kind" / Enum(Int8ul, UNO=1) * "One meaning.", prefix="shared")
    with pytest.raises(ValueError, match="value 1 named 'ONE' and 'UNO'"):
        Model("toy", "MS-TOY", [c, d])


def test_every_registered_target_is_rendered_and_checked(tmp_path, monkeypatch):
    """The driver knows targets only through the registry: one more is written and checked."""
    from dissectors.targets.registry import Target

    extra = Target("names", lambda ps: {"names.txt": " ".join(p.name for p in ps)}, shipped=True)
    monkeypatch.setattr(generate, "TARGETS", [extra])
    monkeypatch.setattr(generate, "places", lambda: dict(names=tmp_path))
    assert generate.outputs()[tmp_path / "names.txt"] == "clusprep msrsvd"
    assert tmp_path / "names.txt" in generate.stale()
    generate.write()
    assert tmp_path / "names.txt" not in generate.stale()


def test_no_template_names_a_protocol_or_its_types():
    """Templates are shared by every protocol: names, specs and types come from the model."""
    words = set()
    for p in generate.protocols():
        words |= {p.name, p.spec, *p.type_names}
        words |= {n.split(".")[0] for n in p.type_names.values()}
    words |= {"rsvd", "svhdx", "cprep", "scsi", "sense"}
    for path in sorted((ROOT / "templates").rglob("*.j2")):
        text = path.read_text().lower()
        found = sorted(w for w in words if re.search(r"\b%s\b" % re.escape(w.lower()), text))
        assert found == [], path.name
