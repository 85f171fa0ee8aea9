"""Committed outputs are what the definitions generate, and the reference lists every field."""
import os
import subprocess
import sys

from dissectors import generate

ROOT = generate.REPO_DIR


def test_generated_lua_and_docs_are_fresh():
    res = subprocess.run([sys.executable, "-m", "dissectors", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_samples_rebuild_to_the_same_bytes():
    res = subprocess.run([sys.executable, "-m", "samples", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_check_notices_a_stale_file(tmp_path, monkeypatch):
    lua = generate.lua_paths()[0]
    monkeypatch.setattr(generate, "LUA_DIR", tmp_path)
    (tmp_path / lua.name).write_text(lua.read_text() + "-- edited by hand\n")
    assert tmp_path / lua.name in generate.stale()


def test_reference_lists_every_field():
    text = generate.DOCS_PATH.read_text()
    for p in generate.protocols():
        for name in generate.build_model(p).fields:
            assert "`%s`" % name in text, name


def test_install_copies_plugins(tmp_path):
    """(tests/test_install.py tests install and uninstall in full.)"""
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("WIRESHARK_CONFIG_DIR", None)  # never the real profile
    res = subprocess.run([sys.executable, "-m", "dissectors", "install", "--dest", str(tmp_path / "plugins")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    for p in generate.lua_paths():
        assert (tmp_path / "plugins" / p.name).read_text() == p.read_text()
    assert (tmp_path / "config" / "wireshark" / "disabled_protos").read_text().endswith("\nrsvd\n")


def test_the_field_reference_covers_every_field():
    text = generate.DOCS_PATH.read_text()
    for p in generate.protocols():
        missing = [f for f in generate.build_model(p).fields if "`%s`" % f not in text]
        assert not missing, (p.name, missing[:5])
