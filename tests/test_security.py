"""What a hostile capture could use to run code, checked in the code that reads captures:
no shell, no eval/exec, no pickle or YAML on input, and a Lua that never loads code. (The tshark
that runs is the one named or on the PATH: tests/test_analyzer.py tries a hostile config.ini.)"""
import re
from pathlib import Path

from dissectors import generate, plugin_paths

ROOT = generate.REPO_DIR
PYTHON = [p for d in ("analyzer", "dissectors") for p in sorted((ROOT / d).rglob("*.py"))]
RISKY_PY = re.compile(r"shell\s*=\s*True|\bos\.system\(|\bos\.popen\(|\beval\(|\bexec\(|\bpickle\b|\byaml\b|"
                      r"\bmarshal\b|\bshelve\b|__import__\(")
RISKY_LUA = re.compile(r"\b(loadstring|loadfile|dofile|require|load)\s*\(|\bio\.(popen|open)\b|\bos\.(execute|remove)\b")


def test_python_that_reads_captures_runs_no_code_from_them():
    assert PYTHON
    hits = ["%s:%d: %s" % (p.relative_to(ROOT), i, line.strip()) for p in PYTHON
            for i, line in enumerate(p.read_text().splitlines(), 1) if RISKY_PY.search(line)]
    assert not hits, "\n".join(hits)


def test_generated_lua_loads_no_code_and_touches_no_file():
    for p in plugin_paths.lua_paths():
        hits = ["%d: %s" % (i, line.strip()) for i, line in enumerate(p.read_text().splitlines(), 1)
                if RISKY_LUA.search(line) and not line.lstrip().startswith("--")]
        assert not hits, (p.name, hits)


def test_the_checker_would_catch_them():
    assert RISKY_PY.search("subprocess.run(cmd, shell=True)") and RISKY_PY.search("x = eval(text)")
    assert RISKY_LUA.search("local f = loadstring(s)") and RISKY_LUA.search("io.popen('x')")
    assert not RISKY_PY.search("evaluate(x)") and not RISKY_LUA.search("local function download(x)")
