"""Issue 26, item 1: the generated C passes Wireshark's own checkers, tools/checkhf.pl (every hf_
declared is registered and used) and tools/checkAPIs.pl (prohibited and deprecated APIs, the
hf_register_info entries, value_string terminators and constness, ett registration, preference
variables, proto_tree_add_* with encodings), on the sources the C target renders: msrsvd (the SMB2
binding whole), its export-only plugin, and the two test protocols (tests/toy_udp.py,
tests/rsvd_on_udp.py). Any line either prints fails, warnings included, but for the one flag
that is wrong for a plugin (below).

The checkers are Wireshark's (GPL-2.0-or-later), run from a copy outside this repository, not
committed here: WIRESHARK_CHECKERS (default /var/cache/msrsvd-clusprep/wireshark-tools/) holds
checkhf.pl from wireshark/wireshark at commit bc4084838589dbc0f2d80837b5d059adf88a1be2 and
checkAPIs.pl at commit 02238edf92978091d114041a35c9db16604296d9 (paths tools/checkhf.pl and
tools/checkAPIs.pl; the SHA-256 of each below). Without them the tests skip and say so. They
need only perl's core modules (Getopt::Long, Encode, English, Text::Balanced).

checkAPIs.pl is run with the dissector groups too (-g dissectors-prohibited -g
dissectors-restricted: abort, assert, exit, g_assert, g_error, printf, g_warning), since every
source here is a dissector. Its hf_register_info check only sees an entry whose name and blurb
hold letters, digits and " '.()/_:-?" (Wireshark's pattern): 127 of msrsvd's 407 entries, the rest
carry "[MS-RSVD 2.2.4.12]" or a comma. So it runs a second time on a copy whose hf lines have
every other character of their strings replaced by "_" (one for one, spaces kept): all 407.

The one suppression: checkhf.pl's "Unused entry" on the export-only plugin, for the fields the
full msrsvd plugin adds from its SMB2 binding (request/response links, times, stored errors).
The export-only plugin stands in for msrsvd.lua under the same protocol name for `analyze`, and
registers the same fields as the Lua plugin does with its export preference, so a filter, a
column or `-e` naming one stays valid; it just never adds them. Only those are accepted: a field
neither plugin adds is still reported.
"""
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

import rsvd_on_udp
import toy_udp
from dissectors.definitions import rsvd
from dissectors.targets.c import render_c

CHECKERS = Path(os.environ.get("WIRESHARK_CHECKERS", "/var/cache/msrsvd-clusprep/wireshark-tools"))
PINNED = {  # the copies these tests were written against (see the docstring)
    "checkhf.pl": "72ba490109cc4ffe53278d23decec9083812377619573878ac32cb4286957e70",
    "checkAPIs.pl": "11964e558988696468e4fdead1026bba0b91547a107dbaa5341bb47b36573d81",
}
GROUPS = ["-g", "dissectors-prohibited", "-g", "dissectors-restricted"]


def _checkers() -> Path:
    for name, digest in PINNED.items():
        p = CHECKERS / name
        if not p.exists():
            pytest.skip("Wireshark's tools/%s is not in %s (WIRESHARK_CHECKERS): see this module's docstring"
                        % (name, CHECKERS))
        assert hashlib.sha256(p.read_bytes()).hexdigest() == digest, \
            "%s is not the copy these tests were written against (PINNED)" % p
    return CHECKERS


SOURCES = {
    "msrsvd": lambda: render_c(rsvd.PROTOCOL),
    "msrsvd_export": lambda: render_c(rsvd.PROTOCOL, export_only=True),
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


def _unused(out: str) -> set:
    return {line.rsplit(", ", 1)[1] for line in out.splitlines() if line.startswith("Unused entry: ")}


def checkhf_reports(name: str, src: str, tmp: Path) -> list:
    """checkhf.pl's lines on src, but for the export-only plugin's unused fields that the full
    plugin adds (the docstring's one suppression)."""
    path = tmp / (name + ".c")
    path.write_text(src)
    res = checkhf(path)
    lines = (res.stdout + res.stderr).splitlines()
    if name == "msrsvd_export":
        full = tmp / "msrsvd_full.c"
        full.write_text(SOURCES["msrsvd"]())
        added_by_full = set(re.findall(r"\bhf_\w+", full.read_text())) - _unused(checkhf(full).stdout)
        lines = [line for line in lines if not (line.startswith("Unused entry: ") and
                                                 line.rsplit(", ", 1)[1] in added_by_full)]
    return lines + (["exit %d" % res.returncode] if res.returncode else [])


def check_apis_reports(name: str, src: str, tmp: Path) -> list:
    """checkAPIs.pl's lines on src and on its widened copy (every hf entry)."""
    out = []
    for stem, text in ((name, src), (name + "_widened", widened(src))):
        path = tmp / (stem + ".c")
        path.write_text(text)
        res = check_apis(path)
        out += (res.stdout + res.stderr).splitlines() + (["exit %d" % res.returncode] if res.returncode else [])
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
                     "ERROR: NO ARRAY: no_array.c, %s" % first),
        "unused": (checkhf_reports, src.replace("static int %s = -1;" % first,
                                                "static int %s = -1;\nstatic int hf_planted_unused = -1;" % first, 1),
                   "Unused entry: unused.c, hf_planted_unused"),
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
    # the suppression: the export-only plugin's unused fields are the full plugin's binding fields only
    export = SOURCES["msrsvd_export"]()
    extra = export.replace("static int %s = -1;" % first, "static int %s = -1;\nstatic int hf_planted_unused = -1;"
                           % first, 1)
    assert checkhf_reports("msrsvd_export", extra, tmp_path) == [
        "Unused entry: msrsvd_export.c, hf_planted_unused"]
