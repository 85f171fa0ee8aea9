#!/usr/bin/env python3
"""tshark from a chroot that tests/wireshark/setup.sh built, usable wherever a tshark path is.

    chroot_tshark.py SUITE [tshark arguments]
    tshark-SUITE [tshark arguments]          (a symlink to this file, as setup.sh makes)

tshark 4.6 refuses Lua as root, so it runs as the chroot's unprivileged user `wstest`.
Files named on the command line (`-r x.pcapng`, `-X lua_script:y.lua`, `-o pref:file`)
are hard-linked (or copied) into a private folder inside the chroot, which that user can
read even when the original sits in a root-only folder such as pytest's tmp_path.
Standard input and output pass straight through. Needs root (chroot).

The environment tshark gets is made, not inherited; three variables change it:
  CHROOT_TSHARK_HOME=DIR        HOME (a folder inside the chroot) instead of /home/wstest:
                                its personal plugins (.local/lib/wireshark/plugins/) and settings
  CHROOT_TSHARK_ENV_NAME=VALUE  NAME=VALUE for tshark alone (such as LD_PRELOAD naming the
                                chroot's libasan, which the host commands on the way must not get)
  CHROOT_TSHARK_PROC=1          /proc mounted inside, in a mount and PID namespace of tshark's
                                own (the chroot is left as it is): AddressSanitizer needs it
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

CHROOTS = os.environ.get("WIRESHARK_CHROOTS", "/var/cache/msrsvd-clusprep/chroots")
USER = "wstest"
ENV = "CHROOT_TSHARK_ENV_"


def _stage(path: str, stage: str, inside: str, n: int) -> str:
    sub = os.path.join(stage, str(n))
    os.mkdir(sub)
    os.chmod(sub, 0o755)
    dest = os.path.join(sub, os.path.basename(path))
    try:
        os.link(path, dest)
        if not os.stat(dest).st_mode & 0o004:
            raise PermissionError  # the same inode: copy instead of widening the original's mode
    except OSError:
        if os.path.exists(dest):
            os.unlink(dest)
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o644)
    return os.path.join(inside, str(n), os.path.basename(path))


def translate(args, stage: str, inside: str):
    """The arguments with every existing file named in them moved into the stage."""
    out = []
    for a in args:
        n = len(out)
        if os.path.isfile(a):
            out.append(_stage(a, stage, inside, n))
            continue
        prefix, sep, rest = a.partition(":")
        if sep and rest and not prefix.startswith("uat") and os.path.isfile(rest):
            out.append(prefix + ":" + _stage(rest, stage, inside, n))
            continue
        out.append(a)
    return out


def main(argv) -> int:
    name = os.path.basename(argv[0])
    if name.startswith("tshark-"):
        suite, args = name[len("tshark-"):], argv[1:]
    elif len(argv) > 1 and argv[1] in ("-h", "--help"):
        usage, rest = __doc__.split("\n\n", 2)[1:]
        print("usage: " + "\n       ".join(line.strip() for line in usage.strip("\n").splitlines()))
        print("\n" + rest.strip("\n"))
        return 0
    elif len(argv) > 1:
        suite, args = argv[1], argv[2:]
    else:
        print("usage: chroot_tshark.py SUITE [tshark arguments]", file=sys.stderr)
        return 2
    root = os.path.join(CHROOTS, suite)
    if not os.path.isfile(os.path.join(root, ".complete")):
        print("no tshark chroot for %s in %s: run bash tests/wireshark/setup.sh %s" % (suite, CHROOTS, suite),
              file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("chroot_tshark.py: needs root to enter %s" % root, file=sys.stderr)
        return 2
    stage = tempfile.mkdtemp(prefix="stage-", dir=os.path.join(root, "tmp"))
    try:
        os.chmod(stage, 0o755)
        inside = "/tmp/" + os.path.basename(stage)
        # AS_ROOT=1 keeps root, to see what tshark does then (4.4+ loads no Lua plugin)
        as_root = os.environ.get("AS_ROOT") == "1"
        home = os.environ.get("CHROOT_TSHARK_HOME") or ("/root" if as_root else "/home/" + USER)
        passed = sorted("%s=%s" % (k[len(ENV):], v) for k, v in os.environ.items() if k.startswith(ENV) and k != ENV)
        cmd = ["chroot", *([] if as_root else ["--userspec=%s:%s" % (USER, USER)]), root,
               "/usr/bin/env", "-i", "HOME=" + home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", *passed,
               "tshark", *translate(args, stage, inside)]
        if os.environ.get("CHROOT_TSHARK_PROC") == "1":
            # the mount lives and dies with the namespace: nothing of it shows outside
            cmd = ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c",
                   'mount -t proc proc "$1/proc" && shift && exec "$@"', "sh", root, *cmd]
        return subprocess.call(cmd)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
