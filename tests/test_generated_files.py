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


def test_a_field_no_target_could_render_is_refused(monkeypatch):
    """Issue 26, model item 4: display, bool width, encoding and frame type are separate settings,
    each valid on one kind of field; a field that mixes them stops the generator."""
    from dissectors.model import bindings
    from dissectors.model.structs import FieldDef

    good = [FieldDef("toy.a", "A", "uint16", display="HEX"), FieldDef("toy.b", "B", "bool", bool_width=16, mask=0x4),
            FieldDef("toy.c", "C", "string", encoding="utf-16le"), FieldDef("toy.d", "D", "guid", encoding="le"),
            FieldDef("toy.e", "E", "framenum", frametype="REQUEST"), FieldDef("toy.f", "F", "bool")]
    assert [p for f in good for p in f.problems()] == []
    bad = [FieldDef("toy.a", "A", "string", display="HEX"), FieldDef("toy.b", "B", "bool", bool_width=8, mask=0x100),
           FieldDef("toy.c", "C", "uint8", display="DEC", encoding="ascii"), FieldDef("toy.d", "D", "framenum"),
           FieldDef("toy.e", "E", "uint32", display="NONE"), FieldDef("toy.f", "F", "uint8", display="DEC", only_set=True),
           FieldDef("toy.g", "G", "bool", mask=0x1)]
    assert [len(f.problems()) for f in bad] == [1] * len(bad)
    p = next(p for p in generate.protocols() if p.binding == "dcerpc")
    with_bad = dict(bindings.BINDING_FIELDS, dcerpc=lambda p: [FieldDef("clusprep.toy", "Toy", "guid")])
    monkeypatch.setattr("dissectors.model.BINDING_FIELDS", with_bad)
    with pytest.raises(ValueError, match="clusprep.toy: encoding '' on a guid"):
        build_model(p)


def test_a_bit_shown_when_clear_is_the_models_choice(monkeypatch):
    """Issue 26, model item 4: "set bits only" is a display setting of each bit (FieldDef.only_set),
    which the oracle follows and the Lua renders, not a rule the oracle hard-codes."""
    from construct import BitStruct, Flag, Int8ul, Padding

    from dissectors.model.oracle import flatten
    from dissectors.model.structs import Model
    from dissectors.targets import lua
    from dissectors.vocabulary.wire import message

    msg = message("Toy", "toy", "2.2.1", "Bits" / BitStruct("High" / Flag, Padding(6), "Low" / Flag) * "Two flags.",
                  "Tail" / Int8ul * "A byte after them.")
    model = Model("toy", "MS-TOY", [msg])
    value = dict(Bits=dict(High=False, Low=True), Tail=7)
    assert [n for n, _ in flatten(model, msg, value)] == ["toy.toy", "toy.toy.bits", "toy.toy.bits.low", "toy.toy.tail"]
    model.fields["toy.toy.bits.high"].only_set = False
    assert ("toy.toy.bits.high", False) in flatten(model, msg, value)
    # the Lua adds a shown-when-clear bit whatever its value; a set-only one behind a test
    from dissectors.vocabulary.protocol import PortEntry, Protocol

    toy = Protocol(name="toybits", title="Toy bits (test only)", spec="MS-TOY", module=__name__, structures=[msg],
                   messages=[msg], binding="port", ports=[PortEntry("udp", 40405, msg)])
    built = lua.build_model

    def clear_high_shown(p):
        m = built(p)
        m.fields["toybits.toy.bits.high"].only_set = False
        return m

    text = lua.render_lua(toy)
    assert "then b:add(F.toy__bits__high, r) end" in text and "then b:add(F.toy__bits__low, r) end" in text
    monkeypatch.setattr(lua, "build_model", clear_high_shown)
    text = lua.render_lua(toy)
    assert "; b:add(F.toy__bits__high, r);" in text and "then b:add(F.toy__bits__low, r) end" in text


def test_what_a_binding_reads_and_owes_is_the_models():
    """Issue 26, model item 3: the Wireshark fields a binding reads, its features, its transaction
    ids and the analyzer's fields are model data; templates name none of them by literal."""
    from dissectors.model.bindings import binding
    from dissectors.vocabulary.protocol import Option, TrackExchanges
    from analyzer.capture.source import FIELDS

    for path in sorted((ROOT / "templates").rglob("*.j2")):
        assert not re.search(r"Field\.new\(\s*\"", path.read_text()), path.name
    by_name = {p.name: p for p in generate.protocols()}
    rsvd, csvp = binding(by_name["msrsvd"]), binding(by_name["clusprep"])
    assert (rsvd.exchanges.name, rsvd.export.name) == ("exchanges", "export")
    # MS-RSVD 2.2.4.1 SVHDX_TUNNEL_OPERATION_HEADER: OperationCode (4), Status (4), then RequestId (8)
    assert rsvd.transactions["FSCTL_SVHDX_SYNC_TUNNEL_REQUEST"] == (8, 8, "MS-RSVD 3.1.4.1")
    assert rsvd.reads["fid"] == "smb2.fid" and "dcerpc.opnum" in csvp.reads.values()
    ours = [f for f in FIELDS if f.split(".")[0] in by_name]
    assert sorted(ours) == sorted(rsvd.exported + csvp.exported)  # analyze reads the contract, all of it
    # a preference is a feature by its type, not by its name
    plain = dict(vars(by_name["msrsvd"]))
    plain["options"] = [Option("exchanges", "Track", "as a plain preference")]
    toy = type(by_name["msrsvd"])(**plain)
    text = __import__("dissectors.targets.lua", fromlist=["render_lua"]).render_lua(toy)
    assert binding(toy).exchanges is None and "OPT.exchanges = proto.prefs.exchanges" in text  # registered ...
    assert not re.search(r"OPT\.exchanges (then|and|~=)", text)  # ... and switches nothing
    plain["options"] = [TrackExchanges("a", "A", "one"), TrackExchanges("b", "B", "two")]
    with pytest.raises(ValueError, match="one preference a feature"):
        binding(type(by_name["msrsvd"])(**plain))


def test_captured_values_and_expressions_are_typed():
    """Issue 26, model item 1: each decoder's captured values have static types, every expression
    over them is typed where it is used, and a mismatch stops the generator with what and where."""
    from construct import Bytes, Int8ul, Int32ul, Struct, Switch, this

    from dissectors.model.captures import CaptureTypeError, Int, Record, schemas
    from dissectors.model.structs import Model
    from dissectors.vocabulary.wire import Guid, message

    by_name = {p.name: p for p in generate.protocols()}
    rsvd = build_model(by_name["msrsvd"])
    assert rsvd.captures.lookup("d_header", ("OperationCode",)) == Int(32)
    assert rsvd.captures.of["d_header"]["Status"] == Int(32)
    payload = rsvd.captures.lookup("d_tunnel_request", ("Payload",))
    assert isinstance(payload, Record)  # the operation's body, whichever the switch chose
    cdb = rsvd.captures.record_names(payload)["Cdb"]
    assert rsvd.captures.record_names(cdb)["OperationCode"] == Int(8)

    def model_of(*subcons):
        return Model("toy", "MS-TOY", [message("Toy", "toy", "2.2.1", *subcons)])

    ok = schemas(model_of("Length" / Int8ul * "A length.", "Data" / Bytes(this.Length * 2) * "Bytes."))
    assert ok.of["d_toy"] == {"Length": Int(8)}
    # a GUID (like bytes and text) is never kept, so nothing may compute with it
    with pytest.raises(CaptureTypeError, match=r"d_toy: Id is not a value it keeps \(has: none\)"):
        schemas(model_of("Id" / Guid() * "A GUID.", "Data" / Bytes(this.Id) * "Bytes."))
    inner = Struct("A" / Int8ul * "A byte.")
    with pytest.raises(CaptureTypeError, match=r"d_toy: the length `Inner` is a structure"):
        schemas(model_of("Inner" / inner * "A structure.", "Data" / Bytes(this.Inner) * "Bytes."))
    with pytest.raises(CaptureTypeError, match=r"`\(Inner \+ 1\)` needs integers, not a structure"):
        schemas(model_of("Inner" / inner * "A structure.", "Data" / Bytes(this.Inner + 1) * "Bytes."))
    with pytest.raises(CaptureTypeError, match=r"the switch key `Inner` is a structure"):
        schemas(model_of("Inner" / inner * "A structure.", "Body" / Switch(this.Inner, {1: Int8ul}) * "A body."))
    with pytest.raises(CaptureTypeError, match=r"Missing is not a value it keeps \(has: none\)"):
        schemas(model_of("Length" / Int32ul * "A length.", "Data" / Bytes(this.Missing) * "Bytes."))
    assert schemas(model_of("Inner" / inner * "A structure.", "Data" / Bytes(this.Inner.A) * "Bytes.")).lookup(
        "d_toy", ("Inner", "A")) == Int(8)
    # the Info column's values are typed too: a summary naming a value its message does not keep
    import dataclasses

    import toy_udp
    from dissectors.vocabulary.protocol import Summary

    assert build_model(toy_udp.PROTOCOL).captures.lookup("d_message", ("Kind",)) == Int(8)
    wrong = dataclasses.replace(toy_udp.PROTOCOL, summaries={"message": Summary("Kinds", "toyudp.message.kind")})
    with pytest.raises(CaptureTypeError, match=r"d_message: Kinds is not a value it keeps \(has: Length\)"):
        build_model(wrong)
