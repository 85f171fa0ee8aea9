"""The generated Lua loads and runs cleanly: no Lua error on any sample, on Lua 5.2-5.4 syntax."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import samples

import decoded
from decoded import field_values, run
from dissectors.model import build_model
from dissectors import generate, plugin_paths

pytestmark = pytest.mark.tshark_matrix  # every tshark of tests/tsharks.py

TITLES = {"rsvd_": "MS-RSVD Remote Shared Virtual Disk", "clusprep_": "(ClusPrep)"}
ERRORS = re.compile(r"Lua Error|Dissector error \(please report\)|internal_error")


@pytest.mark.parametrize("two_pass", [False, True], ids=["one-pass", "two-pass"])
def test_no_lua_error(sample, two_pass, tshark):
    res = run(sample, *(["-2"] if two_pass else []), "-V")
    # a capture cut short mid-packet is read as far as it goes; tshark says so and exits 2
    # (4.6: WS_EXIT_READ_ERROR, 14)
    truncated = "cut short in the middle of a packet" in res.stderr
    read_error = 14 if tshark.at_least("4.6") else 2
    assert res.returncode == (read_error if sample.stem == "rsvd_truncated" else 0) and truncated == (
        sample.stem == "rsvd_truncated"), res.stderr
    assert not ERRORS.search(res.stdout + res.stderr)
    title = next(t for prefix, t in TITLES.items() if sample.stem.startswith(prefix))
    assert title in res.stdout


@pytest.mark.parametrize("name", ["rsvd_shared_disk", "rsvd_cluster_events", "rsvd_malformed"])
def test_same_messages_with_builtin_rsvd_disabled(name):
    sample = samples.path(name)
    fields = ["msrsvd.header.request_id", "msrsvd.request_in", "msrsvd.sense.status_key", "msrsvd.scsi.opcode"]
    on = field_values(sample, fields, "-Y", "msrsvd")
    off = field_values(sample, fields, "--disable-protocol", "rsvd", "-Y", "msrsvd")
    assert on == off
    assert len(on) >= 10


def test_every_field_is_registered():
    res = subprocess.run(decoded.tshark_argv() + ["-G", "fields"] +
                         [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)],
                         capture_output=True, text=True, timeout=120, env=decoded.tshark_env(config=False))
    registered = {line.split("\t")[2] for line in res.stdout.splitlines() if line.startswith("F\t")}
    for p in generate.protocols():
        missing = [f for f in build_model(p).fields if f not in registered]
        assert not missing, p.name
    assert "rsvd.svhdx_request_id" in registered  # ours did not displace the built-in


def test_every_expert_item_is_the_models():
    """Wireshark lists each registered expert item in -G fields (FT_NONE, its summary as the name):
    exactly the model's catalogue (dissectors.model.bindings.experts), texts included, which
    docs/fields.md lists too; no plugin registers one the model does not name."""
    res = subprocess.run(decoded.tshark_argv() + ["-G", "fields"] +
                         [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)],
                         capture_output=True, text=True, timeout=120, env=decoded.tshark_env(config=False))
    rows = [line.split("\t") for line in res.stdout.splitlines() if line.startswith("F\t")]
    docs = (Path(__file__).resolve().parent.parent / "docs" / "fields.md").read_text()
    for p in generate.protocols():
        model = build_model(p)
        registered = {(r[2], r[1]) for r in rows if r[4] == p.name and r[3] == "FT_NONE" and r[2] not in model.fields}
        catalogue = {("%s.%s" % (p.name, e.name), e.text) for e in model.experts}
        assert registered == catalogue and len(catalogue) >= 10, p.name
        assert all("| `%s` | %s | %s | %s |" % ("%s.%s" % (p.name, e.name), e.group, e.severity, e.text) in docs
                   for e in model.experts), p.name


@pytest.mark.parametrize("version", ["5.2", "5.3", "5.4"])
def test_lua_syntax(version):
    luac = shutil.which("luac" + version)
    if luac is None:
        pytest.skip("luac%s not installed (apt-get install lua%s)" % (version, version))
    for path in plugin_paths.lua_paths():
        res = subprocess.run([luac, "-p", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def test_no_version_specific_lua():
    """No bit32 (gone in 5.4), no global unpack (gone in 5.2), no tonumber on values from the wire."""
    for path in plugin_paths.lua_paths():
        text = path.read_text()
        assert "bit32" not in text
        assert not re.search(r"(?<![.\w])unpack\(", text)
        # tonumber appears once, unpacking the dissector's own history; never on a wire value.
        assert [line.strip() for line in text.splitlines() if "tonumber(" in line] == [
            'for k, v in s:gmatch("(%d+):(-?%d+)") do b[base + tonumber(k)] = tonumber(v) end  '
            '-- our own numbers, not wire values']
        assert not re.search(r"tonumber\([^)]*uint64", text)


def test_wireshark_registers_each_field_as_the_model_declares_it():
    """Display, bool width and mask as Wireshark itself lists them (-G fields: type, display,
    bitmask): what FieldDef.display and bool_width say, so a second target has them to render."""
    res = subprocess.run(decoded.tshark_argv() + ["-G", "fields"] +
                         [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)],
                         capture_output=True, text=True, timeout=120, env=decoded.tshark_env(config=False))
    rows = {r[2]: r for r in (line.split("\t") for line in res.stdout.splitlines() if line.startswith("F\t"))}
    kinds = {"uint": "FT_UINT", "int": "FT_INT", "bool": "FT_BOOLEAN", "string": "FT_STRING", "guid": "FT_GUID",
             "framenum": "FT_FRAMENUM"}
    checked = 0
    for p in generate.protocols():
        for f in build_model(p).fields.values():
            row = rows[f.abbrev]
            kind = next((k for k in kinds if f.ftype.startswith(k)), None)
            if kind is None:
                continue
            assert row[3].startswith(kinds[kind]), (f.abbrev, row[3])
            if kind in ("uint", "int"):
                assert row[5] == "BASE_" + f.display, (f.abbrev, row[5])
            elif kind == "bool":
                assert row[5] == str(f.bool_width), (f.abbrev, row[5])
            assert int(row[6], 16) == f.mask, (f.abbrev, row[6])
            checked += 1
    assert checked > 600


def test_every_field_a_binding_reads_is_wiresharks():
    """The Wireshark fields the bindings read (dissectors.model.bindings: Lua Field.new, and the
    wanted fields of a compiled postdissector) exist in this tshark: a field renamed in a new
    version fails here, not as a silently empty binding."""
    from dissectors.model.bindings import binding

    res = subprocess.run(decoded.tshark_argv() + ["-G", "fields"], capture_output=True, text=True, timeout=120,
                         env=decoded.tshark_env(config=False))
    registered = {line.split("\t")[2] for line in res.stdout.splitlines() if line.startswith("F\t")}
    assert len(registered) > 10000, res.stderr
    for p in generate.protocols():
        missing = sorted(set(binding(p).reads.values()) - registered)
        assert missing == [], p.name
