"""Issue 25 item 5: the analyzer's folders are its stages, each importing only the stages beneath
it: capture (tshark and the files it reads) < reconstruction (events, sessions, call sequences,
tables) < rules (findings, the specs' rules, faults) < pipeline.py (the driver: one pass through
them all) < output (reports, the CLI, analyzer.load, notebooks' helpers). Nothing runs back up,
there is no import cycle, and the analyzer learns where the plugins are only from
dissectors.plugin_paths."""
from pathlib import Path

from test_layout import ROOT, assert_no_cycle, imports, module_of

STAGES = ["analyzer.capture", "analyzer.reconstruction", "analyzer.rules", "analyzer.pipeline", "analyzer.output"]
PLUGIN_PLACES = {"dissectors.generate", "dissectors.install"}  # they write plugins; plugin_paths says where


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
