"""Issue 15 item 1: the folder tree is the pipeline. Definitions are written in the vocabulary;
the model knows the vocabulary, never a protocol; targets render the model; the driver ties
them together; the analyzer reads definitions and model names but no target's syntax. Nothing
runs back up, and there is no import cycle."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {  # package -> the dissectors packages it may import
    "dissectors.vocabulary": {"dissectors.vocabulary"},
    "dissectors.definitions": {"dissectors.vocabulary", "dissectors.definitions"},
    "dissectors.model": {"dissectors.vocabulary", "dissectors.model"},
    "dissectors.targets": {"dissectors.vocabulary", "dissectors.model", "dissectors.targets"},
}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p) for p in ROOT.rglob("*.py") if ".venv" not in p.parts}


def imports(path: Path):
    """What a module imports: `from pkg import sub` names the submodule, not the package."""
    here = module_of(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here.split(".")[: len(here.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(pkg + ([node.module] if node.module else []))
            subs = ["%s.%s" % (base, a.name) for a in node.names if "%s.%s" % (base, a.name) in MODULES]
            yield from subs or [base]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name


def graph():
    mods = {module_of(p): p for p in (ROOT / "dissectors").rglob("*.py")}
    return {m: {i for i in imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_each_layer_imports_only_the_layers_beneath_it():
    bad = []
    for m, deps in graph().items():
        layer = next((l for l in LAYER if m == l or m.startswith(l + ".")), None)
        if layer is None:
            continue
        for d in deps:
            if not any(d == ok or d.startswith(ok + ".") for ok in LAYER[layer]):
                bad.append((m, d))
    assert bad == []


def assert_no_cycle(g) -> None:
    """No module of `g` (module -> the modules it imports) reaches itself."""
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for d in g.get(m, ()):
            if state.get(d) == "open":
                raise AssertionError("cycle: " + " -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = "done"

    for m in g:
        if m not in state:
            visit(m, [])


def test_no_import_cycle():
    assert_no_cycle(graph())


def test_the_analyzer_names_no_target():
    for path in (ROOT / "analyzer").rglob("*.py"):
        assert not [i for i in imports(path) if i.startswith("dissectors.targets")], path.name
