"""Write the README's generated parts: the analyzer's text report on bundled samples, and the
tables' schema, between their markers. `--check` exits 1 when the README is stale.

    python docs/readme_examples.py [--check]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# sample -> (the sections kept, the most lines kept of each, analyze's options) for each report shown
REPORTS = {
    "rsvd_shared_disk": (None, None, ()),
    "clusprep_rule_violations": (("Capture", "ClusPrep conversations", "Findings"), 14, ()),
    "rsvd_guest_validation": (("Persistent reservations",), 20, ("--nt-password", "Clu5ter-Sample")),
}
TYPES = {"string": "text", "int": "integer (nullable Int64)", "uint": "unsigned integer (nullable UInt64)",
         "float": "number (Float64)", "bool": "true/false (nullable boolean)", "time": "UTC time (datetime64[ns, UTC])"}


def report(sample: str) -> str:
    sections, most, options = REPORTS[sample]
    res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", *options,
                          "samples/%s.pcapng" % sample], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise SystemExit("analyze %s: %s" % (sample, res.stderr.strip()))
    text = res.stdout.rstrip("\n")
    if sections is None:
        return text
    kept = []
    for block in text.split("\n\n"):
        if block.split(":", 1)[0].split(" ", 1)[0] in {s.split(" ", 1)[0] for s in sections} and \
                any(block.startswith(s) for s in sections):
            lines = block.splitlines()
            kept.append("\n".join(lines[:most] + (["  [...]"] if len(lines) > most else [])))
    return "\n\n".join(kept)


def schema() -> str:
    from analyzer.reconstruction.tables import SCHEMA

    lines = ["| Table | Columns (type) |", "|---|---|"]
    for table, cols in SCHEMA.items():
        lines.append("| `%s` | %s |" % (table, ", ".join("`%s` %s" % (c, TYPES[k].split(" (")[0]) for c, k in cols)))
    lines += ["", "Types: " + "; ".join("%s: %s" % (k, v) for k, v in TYPES.items()) + "."]
    return "\n".join(lines)


def render(text: str) -> str:
    for sample in REPORTS:
        text = re.sub(r"(<!-- report %s -->\n```\n)(?:[^`]*?\n)?(```\n<!-- /report -->)" % sample,
                      lambda m: m.group(1) + report(sample) + "\n" + m.group(2), text, flags=re.S)
    return re.sub(r"(<!-- schema -->\n)(?:.*?\n)?(<!-- /schema -->)", lambda m: m.group(1) + schema() + "\n" + m.group(2),
                  text, flags=re.S)


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="docs/readme_examples.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the README is stale, writing nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    old = README.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md is stale: run python docs/readme_examples.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "docs/readme_examples.py", sys.argv[1:]))
