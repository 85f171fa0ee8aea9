"""Issue 26, item 1: the generated C passes Wireshark's own checkers, tools/checkhf.pl (every hf_
and ei_ declared is registered and used) and tools/checkAPIs.pl (prohibited and deprecated APIs,
the hf_register_info entries, value_string terminators and constness, ett registration, shadowed
names, preference variables, proto_tree_add_* with encodings), on the sources the C target
renders: msrsvd (the SMB2 binding whole), the two export-only plugins analyze loads (msrsvd's,
clusprep's), and the two test protocols (tests/toy_udp.py, tests/rsvd_on_udp.py). Any line either
prints fails, warnings included, but for the two exceptions below.

The checkers are those of the Wireshark this machine runs (GPL-2.0-or-later), from its Debian
source tarball (wireshark_4.0.17.orig.tar.bz2, SHA-256 checked), kept outside this repository by
tests/wireshark/checkers.sh (run by bash .ci/setup --tests) in
/var/cache/msrsvd-clusprep/wireshark-tools/<version>/ (WIRESHARK_CHECKERS overrides it); the
SHA-256 of each script is pinned below. They need only perl's core modules.

checkAPIs.pl is run with the dissector groups too (-g dissectors-prohibited -g
dissectors-restricted: abort, assert, exit, g_assert, g_error, printf, g_warning), since every
source here is a dissector. Its hf_register_info check only sees an entry whose name and blurb
hold letters, digits and " '.()/_:-?" (Wireshark's pattern): 127 of msrsvd's 407 entries, the rest
carry "[MS-RSVD 2.2.4.12]" or a comma. So it runs a second time on a copy whose hf lines have
every other character of their strings replaced by "_" (one for one, spaces kept): all 407.

The two exceptions, each as narrow as it can be:
- printf (dissectors-restricted) in msrsvd: its statistics' `tshark -z` reports, written by the
  taps' draw callbacks as Wireshark's own command-line taps (ui/cli) write theirs; accepted only
  when every printf of the source lies in a *_tap_draw function.
- checkhf.pl's unused entries in an export-only plugin: it stands in for the Lua plugin under the
  same protocol name for `analyze`, registering the same fields and expert items so that a filter,
  a column or `-e` naming one stays valid, and fills only the analyzer's fields
  (BindingDef.exported). Any of those unused is still reported.
"""
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

import rsvd_on_udp
import toy_udp
from dissectors.definitions import csvp, rsvd
from dissectors.model import build_model
from dissectors.targets.c import render_c

VERSION = "4.0.17"  # the Wireshark whose checkers these are (the system tshark's)
CHECKERS = Path(os.environ.get("WIRESHARK_CHECKERS", "/var/cache/msrsvd-clusprep/wireshark-tools/" + VERSION))
SETUP = "bash tests/wireshark/checkers.sh"
PINNED = {  # the copies these tests were written against (see the docstring)
    "checkhf.pl": "50a4c1b2a39bb7c7c204944696ddc3a2a504106669beabf67fee3c118c5ed801",
    "checkAPIs.pl": "d5622cd8986dd2a39f13f97186c4d40dc301fe5616c2114af2308fcbd300494c",
}
GROUPS = ["-g", "dissectors-prohibited", "-g", "dissectors-restricted"]


def _checkers() -> Path:
    for name, digest in PINNED.items():
        p = CHECKERS / name
        if not p.exists():
            pytest.skip("Wireshark's tools/%s is not in %s (%s)" % (name, CHECKERS, SETUP))
        assert hashlib.sha256(p.read_bytes()).hexdigest() == digest, \
            "%s is not the copy these tests were written against (PINNED)" % p
    return CHECKERS


SOURCES = {
    "msrsvd": lambda: render_c(rsvd.PROTOCOL),
    "msrsvd_export": lambda: render_c(rsvd.PROTOCOL, export_only=True),
    "clusprep_export": lambda: render_c(csvp.PROTOCOL, export_only=True),
    "toyudp": lambda: render_c(toy_udp.PROTOCOL),
    "rsvdudp": lambda: render_c(rsvd_on_udp.PROTOCOL),
}
_KNOWN = re.compile(r"[^A-Za-z0-9 '\./()_:?-]")
_STRING = re.compile(r'"((?:\\.|[^"\\])*)"')


def widened(src: str) -> str:
    """The source with every hf_register_info line's strings made of the characters checkAPIs.pl's
    entry pattern knows (each other character replaced by "_"), so that it checks every entry."""
    return "".join(_STRING.sub(lambda m: '"%s"' % _KNOWN.sub("_", m.group(1)), line)
                   if line.lstrip().startswith("{ &hf_") else line for line in src.splitlines(keepends=True))


def checkhf(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["perl", str(_checkers() / "checkhf.pl"), path.name], capture_output=True, text=True,
                          timeout=120, cwd=str(path.parent))


def check_apis(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["perl", str(_checkers() / "checkAPIs.pl"), *GROUPS, path.name], capture_output=True,
                          text=True, timeout=120, cwd=str(path.parent))


UNUSED = re.compile(r"^Unused (?:href|ei) entry: [^:]*: (\w+)$")
EXPORTED = {"msrsvd_export": rsvd.PROTOCOL, "clusprep_export": csvp.PROTOCOL}


def _ident(abbrev: str) -> str:
    return "hf_" + abbrev.split(".", 1)[1].replace(".", "__")


def checkhf_reports(name: str, src: str, tmp: Path) -> list:
    """checkhf.pl's lines on src, but for an export-only plugin's unused entries other than the
    analyzer's fields (the docstring's exception)."""
    path = tmp / (name + ".c")
    path.write_text(src)
    res = checkhf(path)
    lines = (res.stdout + res.stderr).splitlines()
    if name in EXPORTED:
        owed = {_ident(f) for f in build_model(EXPORTED[name]).binding.exported}
        lines = [line for line in lines if not (UNUSED.match(line) and UNUSED.match(line).group(1) not in owed)]
    return lines + (["exit %d" % res.returncode] if res.returncode else [])


PRINTF = "Warning: Found dissectors-restricted APIs in %s.c: printf"


def _printf_outside_tap_draws(src: str) -> list:
    """The lines that call printf outside a *_tap_draw function."""
    out, where = [], None
    for line in src.splitlines():
        m = re.match(r"^static \w[\w\s\*]*\b(\w+)\(", line)
        if m:
            where = m.group(1)
        if re.search(r"(?<![\w])printf\(", line) and not (where or "").endswith("_tap_draw"):
            out.append(line)
    return out


def check_apis_reports(name: str, src: str, tmp: Path) -> list:
    """checkAPIs.pl's lines on src and on its widened copy (every hf entry), but for printf in the
    statistics' draw callbacks (the docstring's exception)."""
    out = []
    for stem, text in ((name, src), (name + "_widened", widened(src))):
        path = tmp / (stem + ".c")
        path.write_text(text)
        res = check_apis(path)
        lines = (res.stdout + res.stderr).splitlines()
        if not _printf_outside_tap_draws(text):
            lines = [line for line in lines if line != PRINTF % stem]
        out += lines + (["exit %d" % res.returncode] if res.returncode else [])
    return out


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_checkhf_finds_nothing(name, tmp_path):
    assert checkhf_reports(name, SOURCES[name](), tmp_path) == []


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_check_apis_finds_nothing(name, tmp_path):
    src = SOURCES[name]()
    assert src.count("HFILL") == len(re.findall(r"^\s*\{ &hf_", src, re.M)) > 5  # the widened lines are the entries
    assert check_apis_reports(name, src, tmp_path) == []


def test_the_checkers_report_planted_faults(tmp_path):
    """Each check above can fail: a field declared but left out of hf[], one declared and never
    used, a prohibited call, a 64-bit field with a 32-bit value_string in an entry the plain run
    cannot see (its blurb has brackets: only the widened copy finds it), an unterminated
    value_string, an unregistered ett; and the suppression accepts only the full plugin's fields."""
    src = SOURCES["msrsvd"]()
    first = re.search(r"^    \{ &(hf_\w+), ", src, re.M).group(1)
    planted = {
        "no_array": (checkhf_reports, src.replace("{ &%s, " % first, "{ &hf_planted_elsewhere, ", 1),
                     "ERROR: NO ARRAY: no_array.c: %s" % first),
        "unused": (checkhf_reports, src.replace("static int %s = -1;" % first,
                                                "static int %s = -1;\nstatic int hf_planted_unused = -1;" % first, 1),
                   "Unused href entry: unused.c: hf_planted_unused"),
        "prohibited": (check_apis_reports, src.replace("snprintf(closed,", "g_snprintf(closed,", 1),
                       "Error: Found prohibited APIs in prohibited.c: g_snprintf"),
        "exit": (check_apis_reports, src.replace("notes_begin(st);", "notes_begin(st); if (!st) exit(1);", 1),
                 "Error: Found dissectors-prohibited APIs in exit.c: exit"),
        "ett": (check_apis_reports, src.replace("static gint ett_msrsvd = -1;",
                                                "static gint ett_msrsvd = -1;\nstatic gint ett_planted = -1;", 1),
                "Error: found these unused ett variables in ett.c: ett_planted"),
    }
    m = re.search(r'^    \{ &(hf_\w+), \{ ("[^"]*"), ("[^"]*"), FT_UINT32, BASE_HEX, VALS\((\w+)\), 0x0, ("[^"]*\[[^"]*"), HFILL',
                  src, re.M)
    assert m, "no 32-bit entry with a value_string and a bracketed blurb to plant in"
    planted["vals64"] = (check_apis_reports, src.replace(m.group(0), m.group(0).replace("FT_UINT32", "FT_UINT64"), 1),
                         "Error: %s: 64-bit field must use VALS64 instead of VALS in vals64_widened.c" % m.group(1))
    table = re.search(r"^G_GNUC_UNUSED static const value_string (\w+)\[\] = \{\n(?:.*\n)*?  \{ 0, NULL \}\n\};",
                      src, re.M)
    planted["terminator"] = (check_apis_reports, src.replace(table.group(0), table.group(0).replace(
        "  { 0, NULL }\n", "", 1), 1), "{0, NULL} is required as the last value_string array entry")
    for name, (check, text, expected) in planted.items():
        assert text != src, name
        reports = check(name, text, tmp_path)
        assert any(expected in line for line in reports), (name, reports)
    # the plain run does not see the vals64 entry (its blurb has brackets): the widened copy is needed
    _, text, _ = planted["vals64"]
    (tmp_path / "plain.c").write_text(text)
    assert "64-bit field" not in check_apis(tmp_path / "plain.c").stderr
    # the exceptions: an export-only plugin that leaves one of the analyzer's fields unused is
    # reported; so is a printf outside the statistics' draw callbacks
    export = SOURCES["msrsvd_export"]()
    use = "proto_tree_add_item(tree, hf_raw__bare_name,"
    assert export.count(use) == 1
    assert checkhf_reports("msrsvd_export", export.replace(use, "proto_tree_add_item(tree, hf_raw__open_name,"),
                           tmp_path) == ["Unused href entry: msrsvd_export.c: hf_raw__bare_name"]
    stray = src.replace("notes_begin(st);", 'notes_begin(st); printf("x");', 1)
    assert PRINTF % "stray" in check_apis_reports("stray", stray, tmp_path)
    assert PRINTF % "msrsvd" not in check_apis_reports("msrsvd", src, tmp_path)
    assert "printf(" in src  # the exception is taken, not unneeded
