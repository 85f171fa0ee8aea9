"""Every code cell of the notebooks runs against the current API (no Jupyter needed)."""
import json
import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_cells_run(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    env = {}
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    for c in cells:
        exec(compile("".join(c["source"]), "%s cell" % path.name, "exec"), env)
    assert len(env["cap"].sessions) == 2 and len(env["errors"]) >= 2
    assert (env["clus"].findings.severity == "error").sum() >= 10
    assert os.path.basename(os.getcwd()) == "notebooks"
