"""Generate the Lua dissectors and docs/fields.md from the definitions.

  python -m dissectors                 write dissectors/lua/*.lua and docs/fields.md
  python -m dissectors --check         exit 1 if a committed file is stale
  python -m dissectors install [--dest DIR] [--config-dir DIR] [--keep-builtin-rsvd]
                                       copy the plugins into Wireshark's personal Lua
                                       plugin folder (or DIR) and disable the built-in
                                       rsvd in the personal profile's disabled_protos
  python -m dissectors uninstall [--dest DIR] [--config-dir DIR]
                                       remove the plugins, and the disabled_protos line
                                       install added
  python -m dissectors build [--module MODULE] [--dest DIR] [--sanitize] [--export-only]
                                       compile the C target against the installed
                                       Wireshark's development files into its personal
                                       plugin folder (or DIR); port bindings only so far;
                                       --export-only: the plugins analyze loads instead of
                                       the Lua ones, into a folder of its own
"""
import argparse
import sys
from pathlib import Path

from dissectors import build, generate, install, interrupt, plugin_paths


def _install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", metavar="DIR",
                   help="the plugin folder (default: %s)" % plugin_paths.personal_plugin_dir())
    p.add_argument("--config-dir", metavar="DIR",
                   help="the profile whose disabled_protos to change (default: %s)" % plugin_paths.personal_config_dir())


def _run_install(args) -> int:
    try:
        if args.command == "install":
            actions = install.install(args.dest, args.config_dir, args.keep_builtin_rsvd)
        else:
            actions = install.uninstall(args.dest, args.config_dir)
    except install.InstallError as e:
        print("%s: %s" % (args.command, e), file=sys.stderr)
        return 2
    for a in actions:
        print(a)
    if args.command == "install":
        if args.dest and Path(args.dest).resolve() != plugin_paths.personal_plugin_dir().resolve():
            print("note: %s is not Wireshark's personal Lua plugin folder (%s); Wireshark loads plugins from "
                  "there only through -X lua_script:FILE" % (args.dest, plugin_paths.personal_plugin_dir()))
        print("verify: %s" % install.VERIFY)
    return 0


def main(argv=None) -> int:
    return interrupt.run(_main, "python -m dissectors", argv)


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dissectors", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed output is stale")
    sub = ap.add_subparsers(dest="command")
    inst = sub.add_parser("install", help="copy the generated plugins into Wireshark's plugin folder "
                          "and disable the built-in rsvd")
    _install_args(inst)
    inst.add_argument("--keep-builtin-rsvd", action="store_true",
                      help="leave Wireshark's own rsvd dissector enabled")
    uninst = sub.add_parser("uninstall", help="remove what install added")
    _install_args(uninst)
    comp = sub.add_parser("build", help="compile the C target into Wireshark's personal plugin folder")
    comp.add_argument("--module", metavar="MODULE",
                      help="a protocol module (import path or .py file) exporting PROTOCOL; default: the shipped ones")
    comp.add_argument("--dest", metavar="DIR", help="where the .so goes (default: the personal plugin folder)")
    comp.add_argument("--sanitize", action="store_true", help="with AddressSanitizer and UndefinedBehaviorSanitizer")
    comp.add_argument("--export-only", action="store_true",
                      help="the plugins analyze loads instead of the Lua ones (its fields only), into its own folder")
    args = ap.parse_args(argv)
    if args.command in ("install", "uninstall"):
        return _run_install(args)
    if args.command == "build":
        notes = []
        try:
            built = build.build(build.load_protocols(args.module), args.dest, args.sanitize, args.export_only, notes)
        except build.BuildError as e:
            print("build: %s" % e, file=sys.stderr)
            return 2
        for path in built:
            print("built %s" % path)
        for note in notes:
            print("note: %s" % note)
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
