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


# -- every figure readable at a glance (tests/figure_checks.py) --------------------------------

FIGURE_SAMPLES = ["rsvd_shared_disk", "rsvd_cluster_events", "rsvd_multichannel", "rsvd_rule_violations",
                  "clusprep_storage", "clusprep_storage_violations", "clusprep_rule_violations",
                  "clusprep_node_violations", "clusprep_setup"]


def _matplotlib():
    promised.module("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _problems(fig, what):
    import figure_checks

    found = figure_checks.problems(fig)
    return ["%s is not readable:\n  %s" % (what, "\n  ".join(found))] if found else []


def _readable(fig, what):
    found = _problems(fig, what)
    assert not found, found[0]


@pytest.mark.parametrize("name", FIGURE_SAMPLES)
def test_helper_figures_are_readable(name):
    """Each figure of analyzer.output.notebook, on the bundled samples: no label over another or off the
    figure, frame and time axes in order, units and legends spelled out."""
    plt = _matplotlib()
    import analyzer
    import samples
    from analyzer.output import notebook as nb

    cap = analyzer.load(samples.path(name))
    figures = [("latency_figure", lambda: nb.latency_figure(cap.scsi_commands, cap.clusprep_calls))]
    if len(cap.rsvd_operations):
        figures.append(("operations_figure", lambda: nb.operations_figure(cap)))
    if len(cap.reservations):
        figures += [("reservation_figure", lambda: nb.reservation_figure(cap.reservations)),
                    ("reservation_figure(by_time=True)", lambda: nb.reservation_figure(cap.reservations, by_time=True))]
    if len(cap.clusprep_calls):
        figures += [("swimlane_figure", lambda: nb.swimlane_figure(cap)),
                    ("swimlane_figure(by_time=True)", lambda: nb.swimlane_figure(cap, by_time=True))]
    found = []
    for what, draw in figures:
        fig = draw()
        try:
            found += _problems(fig, "%s of %s" % (what, name))
        finally:
            plt.close(fig)
    assert not found, "\n".join(found)


def test_concatenated_captures_are_not_one_axis():
    """Two captures' reservations in one table (the cluster_validation notebook's good and broken
    runs, one disk): each capture its own panel, its frames in order."""
    plt = _matplotlib()
    import pandas as pd

    import analyzer
    import samples
    from analyzer.output import notebook as nb

    good, broken = analyzer.load(samples.path("clusprep_storage")), analyzer.load(samples.path("clusprep_storage_violations"))
    fig = nb.reservation_figure(pd.concat([good.reservations, broken.reservations]), title="ClusPrep PR calls")
    try:
        _readable(fig, "reservation_figure of two captures")
    finally:
        plt.close(fig)


@pytest.mark.parametrize("path", [HERE / "explore_capture.ipynb", HERE / "cluster_validation.ipynb"], ids=lambda p: p.stem)
def test_notebook_figures_are_readable(path, monkeypatch):
    """Every figure the notebooks' cells draw, drawn here by their own code (Agg, no kernel)."""
    plt = _matplotlib()
    monkeypatch.chdir(path.parent)
    env = {}
    drawn, found = 0, []
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] != "code":
            continue
        before = set(plt.get_fignums())
        exec(compile("".join(c["source"]), "%s cell" % path.name, "exec"), env)
        for num in sorted(set(plt.get_fignums()) - before):
            fig = plt.figure(num)
            try:
                found += _problems(fig, "the figure of %s cell:\n%s\n" % (path.name, "".join(c["source"])))
            finally:
                plt.close(fig)
            drawn += 1
    assert drawn >= 2
    assert not found, "\n".join(found)
    if path.stem == "cluster_validation":  # its text after the good run's findings says what they are
        good = env["good_findings"]
        assert not good["order rule"].any()
        assert set(good.rule) == {"clusprep.low_auth_accepted", "clusprep.insufficient_auth_level",
                                  "clusprep.opnum_not_used_on_wire"}


def test_readme_figure_is_readable():
    plt = _matplotlib()
    import importlib.util

    spec = importlib.util.spec_from_file_location("draw_readme_figure", HERE / "draw_readme_figure.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = mod.figure()
    try:
        _readable(fig, "docs/reservation_timeline.png")
    finally:
        plt.close(fig)


def test_open_packet_lets_tshark_end(caplog):
    """pyshark read the whole file, so its tshark ends on its own: it is waited for, never killed.
    (pyshark's kill polls the process with waitpid, racing asyncio's child watcher thread, whose
    loss Jupyter showed as "Unknown child process pid N, will report returncode 255".)"""
    import asyncio.subprocess
    import logging

    import samples
    from analyzer.output import notebook as nb

    killed = []
    kill = asyncio.subprocess.Process.kill

    def recorded(self):
        killed.append(self.pid)
        return kill(self)

    asyncio.subprocess.Process.kill = recorded
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for frame in (6, 8, 10):
                packet = nb.open_packet(samples.path("clusprep_storage_violations"), frame)
                assert int(packet.number) == frame
    finally:
        asyncio.subprocess.Process.kill = kill
    assert not killed, "tsharks killed after reading the whole file: %s" % killed
    assert not [r for r in caplog.records if "child process" in r.getMessage()], caplog.text
