"""Issue 24 part 6: every command and script of the repository answers --help with its usage and
exit 0, and does nothing else: no capture built, no file written or touched, no tshark (or any other
tool) started. Each runs in a copy of the working tree, with its own HOME and TMPDIR and, first on
the PATH, stand-ins for the tools a script could start, which leave a mark when run; after each
command nothing in the copy, HOME or TMPDIR differs (contents and modification times) and no mark
is there. `analyze --version` likewise prints the package's version and starts nothing."""
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SCRIPTS = ("bench/*.py", "notebooks/*.py", "docs/readme_examples.py", "tests/refresh_expected.py",
           "tests/wireshark/*.py", "tests/fuzz/fuzz.py", "tests/fuzz/split_fuzz.py")
# what a script might start: each stand-in leaves a mark and fails
TOOLS = ("tshark", "dumpcap", "mergecap", "editcap", "capinfos", "wireshark", "text2pcap", "sudo", "apt-get",
         "debootstrap", "chroot", "Xvfb", "xvfb-run", "jupyter", "pip", "luac", "lua5.2", "lua5.3", "lua5.4")


def commands():
    analyze = Path(PY).with_name("analyze")
    out = [([str(analyze)], "analyze")] if analyze.exists() else []
    out += [([PY, "-m", "analyzer"], "python -m analyzer"),
            ([PY, "-m", "dissectors"], "python -m dissectors"),
            ([PY, "-m", "dissectors", "install"], "python -m dissectors install"),
            ([PY, "-m", "dissectors", "uninstall"], "python -m dissectors uninstall"),
            ([PY, "-m", "samples"], "python -m samples"),
            ([PY, "-m", "analyzer.output.rules_reference"], "python -m analyzer.output.rules_reference"),
            ([PY, "-m", "dissectors.scsi_asc_table"], "python -m dissectors.scsi_asc_table"),
            ([PY, "-m", "dissectors.windows_codes_table"], "python -m dissectors.windows_codes_table")]
    for pattern in SCRIPTS:
        out += [([PY, str(p.relative_to(ROOT))], str(p.relative_to(ROOT))) for p in sorted(ROOT.glob(pattern))]
    return out


COMMANDS = commands()


def tracked_files():
    """The checkout's files as git sees them (committed or not, ignored ones left out)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        res = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True)
        return [f for f in res.stdout.decode().split("\0") if f and (ROOT / f).is_file()]
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
            and not {".git", ".venv", "__pycache__"} & set(p.relative_to(ROOT).parts)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """(the tree's copy, its environment, the folders to watch, the folder of marks)."""
    base = tmp_path_factory.mktemp("help")
    tree, home, tmp, bin_, marks = (base / n for n in ("tree", "home", "tmp", "bin", "marks"))
    for f in tracked_files():
        (tree / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, tree / f)
    for d in (home, tmp, bin_, marks):
        d.mkdir()
    for tool in TOOLS:
        (bin_ / tool).write_text('#!/bin/sh\ntouch "%s/%s"\nexit 1\n' % (marks, tool))
        (bin_ / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYZE_", "WIRESHARK_", "PYTEST_"))}
    env.update(PYTHONPATH=str(tree), HOME=str(home), TMPDIR=str(tmp), PATH="%s:%s" % (bin_, env.get("PATH", "")),
               PYTHONDONTWRITEBYTECODE="1")
    return tree, env, (tree, home, tmp), marks


def state(folders):
    """Every file under the folders: its contents' hash and modification time."""
    out = {}
    for folder in folders:
        for p in folder.rglob("*"):
            if "__pycache__" in p.parts or p.is_dir():
                continue
            st = p.lstat()
            out[str(p)] = (hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None, st.st_mtime_ns)
    return out


def run_quietly(sandbox, cmd):
    tree, env, folders, marks = sandbox
    before = state(folders)
    res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    after = state(folders)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    started = sorted(p.name for p in marks.iterdir())
    for p in marks.iterdir():
        p.unlink()
    return res, changed, started


@pytest.mark.parametrize("cmd", [c for c, _ in COMMANDS], ids=[n for _, n in COMMANDS])
def test_help_prints_usage_and_does_nothing_else(cmd, sandbox):
    res, changed, started = run_quietly(sandbox, cmd + ["--help"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "usage" in res.stdout.lower(), res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert not started, "--help started %s" % ", ".join(started)
    assert not changed, "--help wrote or touched %s" % ", ".join(changed)


def test_the_list_covers_every_script():
    """Every module or script with a main block is in the list."""
    names = {n for _, n in COMMANDS}
    for p in sorted(ROOT.glob("*/**/*.py")):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in (".venv", ".git") or p.name.startswith("test_") or "__main__" not in p.read_text(
                encoding="utf-8", errors="replace"):
            continue
        if p.name == "__main__.py":
            name = "python -m %s" % rel.parent.as_posix().replace("/", ".")
        elif 'if __name__ == "__main__"' not in p.read_text(encoding="utf-8"):
            continue
        elif rel.parts[0] in ("analyzer", "dissectors", "samples"):
            name = "python -m %s" % rel.with_suffix("").as_posix().replace("/", ".")
        else:
            name = rel.as_posix()
        assert name in names or (name == "python -m analyzer.output.cli"), name
    assert {"bench/scale.py", "notebooks/make_notebooks.py", "docs/readme_examples.py", "tests/refresh_expected.py",
            "tests/wireshark/chroot_tshark.py", "python -m samples"} <= names
    assert len([n for n in names if n.startswith("bench/")]) >= 5


def test_version_says_the_package_version_and_starts_nothing(sandbox):
    res, changed, started = run_quietly(sandbox, [PY, "-m", "analyzer", "--version"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "analyze (msrsvd-clusprep) %s" % importlib.metadata.version("msrsvd-clusprep")
    assert not started and not changed, (started, changed)
