"""Issue 25 item 5: the analyzer's folders are its stages, each importing only the stages beneath
it: capture (tshark and the files it reads) < reconstruction (events, sessions, call sequences,
tables) < rules (findings, the specs' rules, faults) < pipeline.py (the driver: one pass through
them all) < output (reports, the CLI, analyzer.load, notebooks' helpers). Nothing runs back up,
there is no import cycle, and the analyzer learns where the plugins are only from
dissectors.plugin_paths. Modules stay of a size one reads (MAX_LINES), and none reaches into
another's private names."""
import ast
from pathlib import Path

from test_layout import MODULES, ROOT, assert_no_cycle, imports, module_of

STAGES = ["analyzer.capture", "analyzer.reconstruction", "analyzer.rules", "analyzer.pipeline", "analyzer.output"]
PLUGIN_PLACES = {"dissectors.generate", "dissectors.install"}  # they write plugins; plugin_paths says where
MAX_LINES = 520  # the longest modules now: output/report.py (507 lines) and capture/split.py (503)


def stage_of(module: str):
    return next((i for i, s in enumerate(STAGES) if module == s or module.startswith(s + ".")), None)


def graph():
    mods = {module_of(p): p for p in (ROOT / "analyzer").rglob("*.py")}
    return {m: {i for i in imports(p) if i.startswith("analyzer") and i != m} for m, p in mods.items()}


def test_each_stage_imports_only_the_stages_beneath_it():
    bad = []
    for m, deps in graph().items():
        here = stage_of(m)
        if here is None:  # analyzer/__init__.py and __main__.py: the entry points, above every stage
            continue
        bad += [(m, d) for d in deps if d != "analyzer" and (stage_of(d) is None or stage_of(d) > here)]
    assert bad == []


def test_every_module_is_in_a_stage():
    loose = {m for m in graph() if stage_of(m) is None} - {"analyzer", "analyzer.__main__"}
    assert loose == set()


def test_no_import_cycle():
    assert_no_cycle(graph())


def test_plugin_paths_come_from_one_place():
    bad = [(module_of(p), i) for p in (ROOT / "analyzer").rglob("*.py") for i in imports(p)
           if i in PLUGIN_PLACES]
    assert bad == []
    text = (ROOT / "dissectors" / "plugin_paths.py").read_text()
    assert "def lua_paths" in text and "def installed_copies" in text
    for name in ("generate.py", "install.py"):  # they ask it too, and keep no copy of their own
        own = Path(ROOT / "dissectors" / name).read_text()
        assert "dissectors.plugin_paths" in own and "def lua_paths" not in own and "def personal_plugin_dir" not in own


def test_no_module_is_longer_than_max_lines():
    long = {module_of(p): n for p in (ROOT / "analyzer").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_imports_another_modules_private_name():
    """Neither `from .x import _y` nor `x._y` on a module of the project imported as x: a name two
    modules share is public, in the module it belongs to."""
    bad = []
    for p in (ROOT / "analyzer").rglob("*.py"):
        here, tree, modules = module_of(p), ast.parse(p.read_text()), set()  # modules: names bound to our modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = here.split(".")[: len(here.split(".")) - node.level + (p.name == "__init__.py")]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                bad += [(here, "%s.%s" % (base, a.name)) for a in node.names if _private(a.name)]
                modules |= {a.asname or a.name for a in node.names if "%s.%s" % (base, a.name) in MODULES}
            elif isinstance(node, ast.Import):
                modules |= {a.asname for a in node.names if a.asname and a.name in MODULES}
        bad += [(here, "%s.%s" % (n.value.id, n.attr)) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id in modules and _private(n.attr)]
    assert bad == []
