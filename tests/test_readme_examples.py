"""The README's reports and table schema are written by docs/readme_examples.py from the bundled
samples and analyzer.reconstruction.tables.SCHEMA, never by hand: stale text fails here."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_examples_are_fresh():
    res = subprocess.run([sys.executable, "docs/readme_examples.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    text = (ROOT / "README.md").read_text()
    assert "<!-- report rsvd_shared_disk -->\n```\nCapture samples/rsvd_shared_disk.pcapng: 201 packets" in text
    assert "| `scsi_commands` | `capture` text, `uid` text," in text
