"""Generate the Lua dissectors and docs/fields.md from the definitions.

  python -m dissectors                 write dissectors/lua/*.lua and docs/fields.md
  python -m dissectors --check         exit 1 if a committed file is stale
  python -m dissectors install [--dest DIR]
                                       copy the plugins into Wireshark's personal
                                       Lua plugin folder, or into DIR
"""
import argparse
import sys

from . import generate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dissectors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed output is stale")
    sub = ap.add_subparsers(dest="command")
    inst = sub.add_parser("install", help="copy the generated plugins into Wireshark's plugin folder")
    inst.add_argument("--dest", help="folder to copy into (default: %s)" % generate.personal_plugin_dir())
    args = ap.parse_args(argv)
    if args.command == "install":
        try:
            for path in generate.install(args.dest):
                print("installed %s" % path)
        except OSError as e:
            print("install failed: %s" % e, file=sys.stderr)
            return 2
        return 0
    if args.check:
        bad = generate.stale()
        if bad:
            print("stale generated files (run python -m dissectors):", file=sys.stderr)
            for p in bad:
                print("  %s" % p, file=sys.stderr)
            return 1
        print("generated files are up to date")
        return 0
    for path in generate.write():
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
