import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import samples  # noqa: E402
from decoded import TSHARK  # noqa: E402

SAMPLES = sorted(samples.path(n) for n in samples.SCENARIOS)
RSVD_SAMPLES = [p for p in SAMPLES if p.stem.startswith("rsvd_")]
CLUSPREP_SAMPLES = [p for p in SAMPLES if p.stem.startswith("clusprep_")]


@pytest.fixture(scope="session", autouse=True)
def require_tshark():
    if TSHARK is None:
        pytest.fail("tshark is not installed; the tests decode with real tshark "
                    "(DEBIAN_FRONTEND=noninteractive apt-get install -y tshark)")


def pytest_generate_tests(metafunc):
    for name, paths in (("sample", SAMPLES), ("rsvd_sample", RSVD_SAMPLES), ("clusprep_sample", CLUSPREP_SAMPLES)):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, paths, ids=[p.stem for p in paths])
