"""Rewrite samples/<name>.expected.json from what the analyzer finds now, for review with
`git diff` (the committed files are the tests' expectations; never commit one unread).

    .venv/bin/python tests/refresh_expected.py [name ...]
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import samples  # noqa: E402
from dissectors import interrupt  # noqa: E402

KEYS = ("rule", "severity", "side", "check", "frames")


def refresh(name: str) -> None:
    # as tests/test_analyzer.py runs it: without keys
    res = subprocess.run([sys.executable, "-m", "analyzer", "--format", "json", "--fail-on", "never",
                          str(samples.path(name))], cwd=ROOT, capture_output=True, text=True, check=True)
    findings = [{k: f[k] for k in KEYS} for f in json.loads(res.stdout)["findings"]]
    body = ",\n".join("  " + json.dumps(f) for f in findings)
    (samples.SAMPLES_DIR / (name + ".expected.json")).write_text('{"findings": [\n%s\n]}\n' % body)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tests/refresh_expected.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help="samples to refresh (default: all)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in samples.SCENARIOS]
    if unknown:
        ap.error("unknown sample(s): %s" % ", ".join(unknown))
    for n in args.names or sorted(samples.SCENARIOS):
        refresh(n)
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main, "tests/refresh_expected.py"))
