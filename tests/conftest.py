import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
# analyze's results here never depend on a compiled export plugin someone built on this machine
# (tests/test_c_target.py tests that path, and ANALYZE_PLUGINS=c runs everything with it)
os.environ.setdefault("ANALYZE_PLUGINS", "lua")

import samples  # noqa: E402
import decoded  # noqa: E402
import promised  # noqa: E402
import tsharks  # noqa: E402
from decoded import TSHARK  # noqa: E402

SAMPLES = sorted(samples.path(n) for n in samples.SCENARIOS)
RSVD_SAMPLES = [p for p in SAMPLES if p.stem.startswith("rsvd_")]
CLUSPREP_SAMPLES = [p for p in SAMPLES if p.stem.startswith("clusprep_")]


def pytest_configure(config):
    config.addinivalue_line("markers", "tshark_matrix: run once per tshark version of tests/tsharks.py "
                            "(4.0 system, 4.4 and 4.6 from chroots)")


def pytest_report_header(config):
    lines = ["tshark matrix: " + "; ".join(
        "%s: %s" % (series, t if t else "SKIPPED, " + why) for series, t, why in tsharks.found())]
    if not promised.CI:
        lines += ["missing here, its tests skipped: %s: %s" % m for m in promised.missing()]
    return lines


def pytest_sessionstart(session):
    """Under CI=true a promised piece that is missing stops the run at once, naming it."""
    gone = promised.missing() if promised.CI else []
    if gone:
        pytest.exit("CI=true, and the README promises what is missing here (run %s):\n%s"
                    % (promised.SETUP, "\n".join("  %s: %s" % m for m in gone)), returncode=1)


def _skipped_in_ci(report) -> None:
    """Under CI=true a skip fails, unless the test does not apply here (promised.does_not_apply)."""
    if not (promised.CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    if not reason.startswith(promised.NOT_HERE):
        report.outcome = "failed"
        report.longrepr = "CI=true: skipped, but the README promises it: %s" % reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _skipped_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _skipped_in_ci(outcome.get_result())


@pytest.fixture(scope="session", autouse=True)
def require_tshark():
    if TSHARK is None:
        pytest.fail("tshark is not installed; the tests decode with real tshark "
                    "(DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)")


@pytest.fixture(autouse=True)
def tshark(request):
    """The tshark this test decodes with; run() and friends in decoded.py follow it."""
    t = getattr(request, "param", None) or TSHARK
    decoded.CURRENT = t
    yield t
    decoded.CURRENT = TSHARK


def pytest_generate_tests(metafunc):
    for name, paths in (("sample", SAMPLES), ("rsvd_sample", RSVD_SAMPLES), ("clusprep_sample", CLUSPREP_SAMPLES)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, paths, ids=[p.stem for p in paths])
    if metafunc.definition.get_closest_marker("tshark_matrix"):
        params = [pytest.param(t, id=series) if t else
                  pytest.param(None, id=series, marks=pytest.mark.skip(reason="tshark %s: %s" % (series, why)))
                  for series, t, why in tsharks.found()]
        metafunc.parametrize("tshark", params, indirect=True, scope="function")
