"""The notebooks run against the current API: every code cell of rsvd_and_clusprep (no Jupyter
needed), and each notebook executed headless in a real kernel (nbclient, ipykernel: the test
extra), failing on any cell error; each figure cell must have drawn an image, and the notebooks
are committed without outputs."""
import json
import os
from pathlib import Path

import pytest

import promised

HERE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(HERE.glob("*.ipynb"))
FIGURE_CALL = "_figure("  # a cell that draws: fig = nb.reservation_figure(...)


def test_notebook_cells_run(monkeypatch):
    path = HERE / "rsvd_and_clusprep.ipynb"
    monkeypatch.chdir(path.parent)
    env = {}
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    for c in cells:
        exec(compile("".join(c["source"]), "%s cell" % path.name, "exec"), env)
    assert len(env["cap"].sessions) == 2 and len(env["errors"]) >= 2
    assert (env["clus"].findings.severity == "error").sum() >= 10
    assert os.path.basename(os.getcwd()) == "notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] == "code":
            assert not c["outputs"] and c["execution_count"] is None, "clear the outputs of %s" % path.name


def test_notebooks_are_written_by_make_notebooks(tmp_path):
    """notebooks/make_notebooks.py holds the cells of explore_capture and cluster_validation."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", HERE / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.HERE = tmp_path
    mod.write("explore_capture.ipynb", mod.EXPLORE)
    mod.write("cluster_validation.ipynb", mod.VALIDATION)
    for name in ("explore_capture.ipynb", "cluster_validation.ipynb"):
        assert (tmp_path / name).read_text() == (HERE / name).read_text(), "run python notebooks/make_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_a_kernel(path):
    nbformat = promised.module("nbformat")
    nbclient = promised.module("nbclient")
    promised.module("ipykernel")
    promised.module("matplotlib")
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(path.parent)}})  # as Jupyter runs it
    client.execute()  # raises CellExecutionError on the first failing cell
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kinds = {k for o in cell.outputs for k in o.get("data", {})}
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, cell.source
        if FIGURE_CALL in cell.source:
            assert "image/png" in kinds, "no figure drawn by:\n" + cell.source


def test_readme_figure_is_drawn_by_the_script(tmp_path):
    """docs/reservation_timeline.png comes from notebooks/draw_readme_figure.py, and the README shows it."""
    import subprocess
    import sys

    promised.module("matplotlib")
    root = HERE.parent
    out = tmp_path / "figure.png"
    subprocess.run([sys.executable, str(HERE / "draw_readme_figure.py"), str(out)], check=True, cwd=tmp_path,
                   capture_output=True, timeout=300)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    committed = root / "docs" / "reservation_timeline.png"
    assert committed.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](docs/reservation_timeline.png)" in (root / "README.md").read_text()
