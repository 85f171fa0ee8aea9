"""Draw the README's "Explore in Jupyter" figure: the reservation timeline of the bundled sample
rsvd_cluster_events, as notebooks/explore_capture.ipynb draws it (python notebooks/draw_readme_figure.py [OUT])."""
import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import analyzer  # noqa: E402
import samples  # noqa: E402
from analyzer.output import notebook as nb  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "reservation_timeline.png"


def figure():
    """The figure: rsvd_cluster_events's reservations, as the notebook draws them."""
    cap = analyzer.load(samples.path("rsvd_cluster_events"))
    return nb.reservation_figure(cap.reservations)


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="notebooks/draw_readme_figure.py", description=__doc__)
    ap.add_argument("out", nargs="?", type=Path, default=OUT, help="the PNG to write (default: %s)"
                    % OUT.relative_to(OUT.parent.parent))
    out = ap.parse_args(argv[1:]).out
    fig = figure()
    matplotlib.rcParams["svg.hashsalt"] = "readme"
    fig.savefig(out, dpi=100, metadata={"Software": None})
    print(out)
    return 0


if __name__ == "__main__":
    from dissectors import interrupt  # noqa: E402

    sys.exit(interrupt.run(main, "notebooks/draw_readme_figure.py", sys.argv))
