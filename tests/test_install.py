"""`python -m dissectors install` and `uninstall` in a throwaway HOME (never the real ~), checked
against what the system tshark itself reads; and that tests and `analyze` use the checkout's
plugins whatever copy is installed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import samples
from analyzer.capture.source import tshark_env
from decoded import TSHARK
from dissectors import generate, install, plugin_paths

ROOT = generate.REPO_DIR
SAMPLE = samples.path("rsvd_shared_disk")
STALE = 'error("stale installed copy was loaded")\n'


@pytest.fixture
def home(tmp_path):
    """A HOME with no Wireshark folders yet, and the environment that points at it."""
    h = tmp_path / "home"
    h.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("WIRESHARK_CONFIG_DIR", "XDG_CONFIG_HOME", "APPDATA")}
    env.update(HOME=str(h), XDG_CONFIG_HOME=str(h / ".config"))
    return h, env


def plugins_of(h: Path) -> Path:
    return h / ".local" / "lib" / "wireshark" / "plugins"


def dissectors(env, *args):
    return subprocess.run([sys.executable, "-m", "dissectors", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def tshark(env, *args):
    return subprocess.run([*TSHARK.argv, *args], env=env, capture_output=True, text=True, timeout=300)


def folders(env):
    out = tshark(env, "-G", "folders").stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def rsvd_frames(env, *args):
    """Frames the built-in rsvd decodes in the sample (none when a profile disables it)."""
    res = tshark(env, "-n", "-r", str(SAMPLE), *args, "-Y", "rsvd", "-T", "fields", "-e", "frame.number")
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def with_plugins():
    return [a for p in plugin_paths.lua_paths() for a in ("-X", "lua_script:%s" % p)]


def registered(out: str, name: str) -> int:
    return sum(1 for line in out.splitlines() if line.split("\t")[-1] == name)


# --- where the folders are ---------------------------------------------------------------------

def test_folders_are_the_ones_tshark_reads(home):
    h, env = home
    seen = folders(env)
    assert seen["Personal Lua Plugins"] == str(plugin_paths.personal_plugin_dir(env)) == str(plugins_of(h))
    assert seen["Personal configuration"] == str(plugin_paths.personal_config_dir(env)) == str(h / ".config" / "wireshark")
    env = dict(env, XDG_CONFIG_HOME=str(h / "xdg"))
    assert folders(env)["Personal configuration"] == str(plugin_paths.personal_config_dir(env)) == str(h / "xdg" / "wireshark")
    env = dict(env, WIRESHARK_CONFIG_DIR=str(h / "elsewhere"))  # moves the configuration, not the plugins
    seen = folders(env)
    assert seen["Personal configuration"] == str(plugin_paths.personal_config_dir(env)) == str(h / "elsewhere")
    assert seen["Personal Lua Plugins"] == str(plugin_paths.personal_plugin_dir(env)) == str(plugins_of(h))


def test_a_legacy_dot_wireshark_is_the_configuration_when_it_is_the_only_one(home):
    h, env = home
    (h / ".wireshark").mkdir()
    assert folders(env)["Personal configuration"] == str(plugin_paths.personal_config_dir(env)) == str(h / ".wireshark")
    (h / ".config" / "wireshark").mkdir(parents=True)
    assert folders(env)["Personal configuration"] == str(plugin_paths.personal_config_dir(env)) == str(h / ".config" / "wireshark")


# --- install and uninstall -------------------------------------------------------------------

def test_install_copies_the_plugins_and_disables_the_builtin_rsvd(home):
    h, env = home
    assert rsvd_frames(env)  # the built-in decodes the sample before
    res = dissectors(env, "install")
    assert res.returncode == 0, res.stderr
    for p in plugin_paths.lua_paths():
        assert (plugins_of(h) / p.name).read_bytes() == p.read_bytes()
        assert "installed %s" % (plugins_of(h) / p.name) in res.stdout
    protos = h / ".config" / "wireshark" / "disabled_protos"
    assert protos.read_text() == install.MARKER + "\nrsvd\n"
    assert "added `rsvd` to %s" % protos in res.stdout
    assert install.VERIFY in res.stdout
    # What the GUI and a plain tshark now see, run as the README says
    assert registered(tshark(env, "-G", "protocols").stdout, "msrsvd") == 1
    assert registered(tshark(env, "-G", "protocols").stdout, "clusprep") == 1
    assert rsvd_frames(env) == []
    decoded = tshark(env, "-n", "-r", str(SAMPLE), "-Y", "msrsvd", "-T", "fields", "-e", "frame.number")
    assert len(decoded.stdout.split()) >= 10 and decoded.stderr.count("Lua") == 0


def test_uninstall_removes_exactly_what_install_added(home):
    h, env = home
    protos = h / ".config" / "wireshark" / "disabled_protos"
    protos.parent.mkdir(parents=True)
    before = "# my own list\nsnmp\n  ldap   \n\n#rsvd is commented out here\n"
    protos.write_text(before)
    other = plugins_of(h) / "mine.lua"
    other.parent.mkdir(parents=True)
    other.write_text("-- someone else's plugin\n")
    assert dissectors(env, "install").returncode == 0
    assert protos.read_text() == before + install.MARKER + "\nrsvd\n"
    assert rsvd_frames(env) == []
    res = dissectors(env, "uninstall")
    assert res.returncode == 0, res.stderr
    assert protos.read_text() == before
    assert sorted(p.name for p in plugins_of(h).iterdir()) == ["mine.lua"]
    assert "re-enabled the built-in rsvd" in res.stdout
    assert rsvd_frames(env)
    res = dissectors(env, "uninstall")  # again: nothing left to undo
    assert res.returncode == 0 and "not installed" in res.stdout and protos.read_text() == before


def test_uninstall_removes_a_disabled_protos_that_install_created(home):
    h, env = home
    assert dissectors(env, "install").returncode == 0
    assert dissectors(env, "uninstall").returncode == 0
    assert not (h / ".config" / "wireshark" / "disabled_protos").exists()


def test_reinstall_is_safe(home):
    h, env = home
    protos = h / ".config" / "wireshark" / "disabled_protos"
    protos.parent.mkdir(parents=True)
    protos.write_text("snmp")  # no newline at the end: Wireshark would ignore the last line, and ours
    assert dissectors(env, "install").returncode == 0
    once = protos.read_text()
    assert once == "snmp\n" + install.MARKER + "\nrsvd\n"
    (plugins_of(h) / "msrsvd.lua").write_text("-- an old copy\n")
    res = dissectors(env, "install")
    assert res.returncode == 0
    assert protos.read_text() == once
    assert "updated (was stale) %s" % (plugins_of(h) / "msrsvd.lua") in res.stdout
    assert "unchanged %s" % (plugins_of(h) / "clusprep.lua") in res.stdout
    assert all(c.current for c in plugin_paths.installed_copies(plugins_of(h)))


def test_keep_builtin_rsvd(home):
    h, env = home
    protos = h / ".config" / "wireshark" / "disabled_protos"
    res = dissectors(env, "install", "--keep-builtin-rsvd")
    assert res.returncode == 0, res.stderr
    assert not protos.exists() and rsvd_frames(env)
    assert registered(tshark(env, "-G", "protocols").stdout, "msrsvd") == 1
    assert dissectors(env, "install").returncode == 0 and rsvd_frames(env) == []
    assert dissectors(env, "install", "--keep-builtin-rsvd").returncode == 0  # takes its own line out again
    assert not protos.exists() and rsvd_frames(env)


def test_a_users_own_rsvd_line_stays(home):
    h, env = home
    protos = h / ".config" / "wireshark" / "disabled_protos"
    protos.parent.mkdir(parents=True)
    protos.write_text("rsvd\n")
    assert dissectors(env, "install").returncode == 0
    assert protos.read_text() == "rsvd\n"
    res = dissectors(env, "uninstall")
    assert protos.read_text() == "rsvd\n" and "stays disabled" in res.stdout


def test_a_legacy_dot_wireshark_gets_the_line(home):
    h, env = home
    (h / ".wireshark").mkdir()
    assert dissectors(env, "install").returncode == 0
    assert (h / ".wireshark" / "disabled_protos").read_text() == install.MARKER + "\nrsvd\n"
    assert not (h / ".config" / "wireshark").exists()  # that would hide ~/.wireshark from Wireshark
    assert rsvd_frames(env) == []


def test_dest_and_config_dir_flags(home, tmp_path):
    h, env = home
    res = dissectors(env, "install", "--dest", str(tmp_path / "p"), "--config-dir", str(tmp_path / "c"))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == sorted(p.name for p in plugin_paths.lua_paths())
    assert (tmp_path / "c" / "disabled_protos").read_text().endswith("\nrsvd\n")
    assert not (h / ".local").exists() and not (h / ".config").exists()
    assert dissectors(env, "uninstall", "--dest", str(tmp_path / "p"), "--config-dir", str(tmp_path / "c")).returncode == 0
    assert list((tmp_path / "p").iterdir()) == [] and not (tmp_path / "c" / "disabled_protos").exists()


def one_line_error(res, start):
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith(start), res.stderr


@pytest.mark.parametrize("flag", ["--dest", "--config-dir"])
def test_install_into_an_unwritable_folder_is_one_line_and_exit_2(home, tmp_path, flag):
    h, env = home
    (tmp_path / "file").write_text("")
    res = dissectors(env, "install", flag, str(tmp_path / "file" / "sub"))
    one_line_error(res, "install: cannot write %s" % (tmp_path / "file"))


def test_uninstall_errors_are_one_line_and_exit_2(home, tmp_path):
    h, env = home
    (tmp_path / "p" / "msrsvd.lua").mkdir(parents=True)
    one_line_error(dissectors(env, "uninstall", "--dest", str(tmp_path / "p")), "uninstall: cannot remove")
    (tmp_path / "c" / "disabled_protos").mkdir(parents=True)
    one_line_error(dissectors(env, "uninstall", "--dest", str(tmp_path / "q"), "--config-dir", str(tmp_path / "c")),
                   "uninstall: cannot read %s" % (tmp_path / "c" / "disabled_protos"))


# --- the checkout's plugins, whatever is installed ------------------------------------------------

@pytest.fixture
def stale_home(home):
    """HOME with both plugins installed, msrsvd.lua then edited: it raises an error if it loads."""
    h, env = home
    assert dissectors(env, "install").returncode == 0
    copy = plugins_of(h) / "msrsvd.lua"
    copy.write_text(STALE + copy.read_text())
    return h, env


def test_installed_copies_tells_stale_from_current(stale_home):
    h, env = stale_home
    copies = {c.path.name: c for c in plugin_paths.installed_copies(plugins_of(h))}
    assert copies["msrsvd.lua"].stale and copies["clusprep.lua"].current
    assert plugin_paths.installed_copies(h / "nothing-here") == []


def test_tshark_env_hides_the_installed_copy(stale_home):
    h, env = stale_home
    plain = tshark(env, "-G", "protocols")
    assert "stale installed copy was loaded" in plain.stderr  # tshark does read that folder
    for config in (True, False):
        isolated = tshark_env(env, config=config)
        assert folders(isolated)["Personal Lua Plugins"] != str(plugins_of(h))
        res = tshark(isolated, "-G", "protocols", *with_plugins())
        assert res.returncode == 0 and "stale" not in res.stderr and "Lua" not in res.stderr, res.stderr
        assert registered(res.stdout, "msrsvd") == 1 and registered(res.stdout, "clusprep") == 1


def test_tshark_env_keeps_the_profile_for_analyze_and_not_for_tests(stale_home):
    h, env = stale_home
    assert folders(tshark_env(env))["Personal configuration"] == str(h / ".config" / "wireshark")
    assert rsvd_frames(tshark_env(env)) == []  # analyze: the user's profile, where install disabled rsvd
    assert rsvd_frames(tshark_env(env, config=False))  # tests: the built-in decodes, whatever the profile says
    (h / ".config" / "wireshark").rename(h / ".wireshark")  # only a legacy folder: still found
    assert folders(tshark_env(env))["Personal configuration"] == str(h / ".wireshark")
    assert rsvd_frames(tshark_env(env)) == []


def analyze_json(env):
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never", str(SAMPLE)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    for c in doc["captures"]:
        c.pop("seconds", None)
    return doc, res.stderr


def test_analyze_uses_the_checkout_and_notes_a_stale_copy(stale_home, tmp_path):
    h, env = stale_home
    clean = tmp_path / "clean"
    clean.mkdir()
    expected, quiet = analyze_json(dict(env, HOME=str(clean), XDG_CONFIG_HOME=str(clean / ".config")))
    doc, stderr = analyze_json(env)
    assert doc == expected
    assert doc["findings"] and not any("stale" in m for c in doc["captures"] for m in c.get("tshark_messages", []))
    assert quiet == ""
    assert stderr.splitlines() == [
        "note: the msrsvd.lua installed in %s differs from this checkout's; analyze uses the checkout's; "
        "run `python -m dissectors install` to update the GUI's copy" % plugins_of(h)]


def test_pyshark_packets_use_the_checkout(stale_home):
    """pyshark cannot pass an environment: packets() hands it a `tshark` script that sets it."""
    h, env = stale_home
    code = ("import subprocess, sys\n"
            "from analyzer.capture.source import _for_pyshark, find_tshark, packets\n"
            "script = _for_pyshark(find_tshark().path)\n"
            "out = subprocess.run([script, '-G', 'folders'], capture_output=True, text=True).stdout\n"
            "print([l.split('\\t')[-1] for l in out.splitlines() if l.startswith('Personal Lua Plugins')][0])\n"
            "cap = packets(sys.argv[1], display_filter='msrsvd')\n"
            "print(sum(1 for _ in cap))\n"
            "cap.close()\n")
    res = subprocess.run([sys.executable, "-c", code, str(SAMPLE)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    folder, count = res.stdout.split()
    assert folder != str(plugins_of(h)) and not folder.startswith(str(h))
    assert int(count) >= 10


# --- the README's own commands after an install --------------------------------------------------

README_COMMAND = ["-n", "-2", "-r", str(SAMPLE), "-Y", "msrsvd", "-O", "msrsvd"]


def test_readme_commands_still_work_after_an_install(home):
    """An installed copy and `-X lua_script:` of the same file: the first loaded registers the
    protocol once, the other stands aside (before the load guard: "there cannot be two
    protocols with the same description")."""
    h, env = home
    assert dissectors(env, "install").returncode == 0
    alone = tshark(env, *README_COMMAND)
    both = tshark(env, *with_plugins(), *README_COMMAND)
    assert alone.returncode == 0 and both.returncode == 0, both.stderr
    assert "two protocols" not in both.stderr and "Lua" not in both.stderr, both.stderr
    assert both.stdout == alone.stdout and "RSVD_TUNNEL_SCSI_OPERATION" in both.stdout


def test_a_different_installed_copy_is_named_not_fatal(home):
    h, env = home
    assert dissectors(env, "install").returncode == 0
    copy = plugins_of(h) / "msrsvd.lua"
    copy.write_text(copy.read_text().replace('local BUILD = "', 'local BUILD = "old-', 1))
    res = tshark(env, *with_plugins(), *README_COMMAND)
    assert res.returncode == 0 and "RSVD_TUNNEL_SCSI_OPERATION" in res.stdout
    assert "msrsvd.lua: a different copy (build old-" in res.stderr and "python -m dissectors install" in res.stderr


# --- colouring rules -----------------------------------------------------------------------------

def test_install_colours_our_errors_first_and_keeps_wiresharks_defaults(home):
    """A profile's colorfilters replaces Wireshark's defaults: install writes ours first, then a copy
    of the defaults; tshark --color then names our rule on the failed frames, and Wireshark's own on
    the rest; uninstall removes the file again (it held only the copy)."""
    h, env = home
    assert dissectors(env, "install").returncode == 0
    path = h / ".config" / "wireshark" / install.COLORFILTERS
    lines = path.read_text().splitlines()
    assert lines[1:1 + len(install.color_rules())] == install.color_rules()
    assert any(line.startswith("@Bad TCP@") for line in lines)  # the defaults follow
    res = tshark(env, "-n", "-2", "-r", str(SAMPLE), *with_plugins(), "--color", "-T", "fields", "-e", "frame.number",
                 "-e", "frame.coloring_rule.name", "-Y", "frame.number in {99,100,101,102,182}")
    assert res.returncode == 0, res.stderr
    rules = dict(line.split("\t") for line in res.stdout.splitlines())
    assert rules == {"99": "SMB", "100": "MS-RSVD error", "101": "SMB", "102": "MS-RSVD error", "182": "MS-RSVD error"}
    res = tshark(env, "-n", "-r", str(samples.path("clusprep_storage")), *with_plugins(), "--color", "-T", "fields",
                 "-e", "frame.coloring_rule.name", "-Y", "frame.number in {71,72,74}")
    assert res.stdout.split("\n")[:3] == ["DCERPC", "ClusPrep failure", "ClusPrep failure"], res.stderr
    assert dissectors(env, "install").returncode == 0  # again: our rules once
    assert path.read_text().count("@MS-RSVD error@") == 1
    assert dissectors(env, "uninstall").returncode == 0
    assert not path.exists()


def test_uninstall_keeps_the_users_own_colouring_rules(home):
    h, env = home
    path = h / ".config" / "wireshark" / install.COLORFILTERS
    path.parent.mkdir(parents=True)
    path.write_text("@Mine@tcp.port == 1@[0,0,0][1,1,1]\n")
    assert dissectors(env, "install").returncode == 0
    assert path.read_text().splitlines() == install.color_rules() + ["@Mine@tcp.port == 1@[0,0,0][1,1,1]"]
    assert dissectors(env, "uninstall").returncode == 0
    assert path.read_text() == "@Mine@tcp.port == 1@[0,0,0][1,1,1]\n"
