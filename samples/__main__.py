"""Build the sample captures: `python -m samples [--check] [NAME ...]`."""
import argparse
import sys

from dissectors import interrupt

from . import ARTIFACTS, SAMPLES_DIR, SCENARIOS, path


def main(argv=None) -> int:
    return interrupt.run(_main, "python -m samples", argv)


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samples", description=__doc__)
    ap.add_argument("names", nargs="*", help="scenarios to build (default: all)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed capture differs from a rebuild")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        ap.error("unknown scenario(s): %s (known: %s)" % (", ".join(unknown), ", ".join(SCENARIOS)))
    stale = []
    jobs = [(name, SCENARIOS[name], path(name)) for name in args.names or SCENARIOS]
    if not args.names:
        jobs += [(name, build, SAMPLES_DIR / name) for name, build in ARTIFACTS.items()]
    for name, build, p in jobs:
        data = build()
        if args.check:
            if not p.exists() or p.read_bytes() != data:
                stale.append(str(p))
        else:
            p.write_bytes(data)
            print("wrote %s (%d bytes)" % (p, len(data)))
    if stale:
        print("stale samples (run python -m samples): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
