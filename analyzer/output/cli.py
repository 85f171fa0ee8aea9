"""`analyze CAPTURE [CAPTURE...]`: RSVD sessions, ClusPrep call sequences and the spec rules
they break, as text or JSON, with tables for pandas and spreadsheets.

Exit codes: 0 when nothing at or above --fail-on was found, 1 when something was, 2 for a
usage or input error (missing tshark, missing or unreadable file, not a capture, an --output
folder that cannot be written). With several captures, one that cannot be read is named on
stderr and the others are still reported (exit 2). Stopped by a signal, the shell's 128 + its
number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP. Never a traceback.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from dissectors import interrupt

from ..capture import compiled_plugins, stopping, work_folders
from ..rules.findings import SEVERITIES
from ..capture.keys import Keys, nt_password_from, smb_keys_from
from ..capture.merge import Merged
from ..pipeline import analyze_capture
from ..capture.distributed import following, reporting
from ..capture.progress import Progress
from ..capture.shards import SPLIT_ABOVE_MB, Sharding
from .report import to_json, to_text, write_output
from ..capture.source import CaptureError, CommandError, find_tshark, installed_copy_notes, tshark_env
from ..reconstruction.tables import Tables


def version() -> str:
    """This package's version, as installed (pyproject.toml's, through the package metadata)."""
    try:
        return importlib.metadata.version("msrsvd-clusprep")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="analyze", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version="%(prog)s (msrsvd-clusprep) " + version())
    ap.add_argument("captures", nargs="+", metavar="CAPTURE",
                    help="capture files (any format tshark reads); with --merge, also directories")
    ap.add_argument("--merge", action="store_true",
                    help="analyze all CAPTUREs (files, directories, a ring-buffer set) as one capture, merged by "
                         "time; findings cite file and frame")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--output", metavar="DIR", help="write findings.jsonl and the tables as CSV and Parquet here")
    ap.add_argument("--fail-on", choices=("error", "warning", "never"), default="error",
                    help="exit 1 when a finding this severe or worse exists (default: error)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="use N cores (default: all, %(default)s here): several captures are analyzed N at a time, "
                         "one process each (cores to spare split the big ones); a single capture, or a --merge, "
                         "larger than --split-above is split by connection over N-1 tsharks (two cores: two, from "
                         "512 MB) while this process merges their rows and reconstructs. The reports and files are the "
                         "same as with --jobs 1")
    ap.add_argument("--split-above", type=float, default=SPLIT_ABOVE_MB, metavar="MB",
                    help="split a capture over --jobs tsharks when it is at least MB megabytes (default: "
                         "%(default)s; 0 splits every capture that has two connections to split)")
    ap.add_argument("--dask", metavar="ADDRESS|local",
                    help="run on a dask.distributed cluster: the scheduler's address (tcp://HOST:8786), or local for "
                         "a cluster of --jobs processes on this machine. Several captures are one task each; one "
                         "capture is split over the workers' threads (see --split-above); --merge is split over --jobs "
                         "tsharks here. "
                         "The reports and files are the same as with --jobs 1")
    ap.add_argument("--work-dir", metavar="DIR",
                    help="where shards and the workers' rows are written (default: the system temp folder); with "
                         "--dask workers on other machines, a folder they all see at this same path (NFS, SMB)")
    ap.add_argument("--tshark", metavar="PATH", help="the tshark to run (default: tshark on the PATH, else the usual install places)")
    keys = ap.add_argument_group("keys", "what Wireshark needs to decrypt SMB 3 encryption and sealed DCE/RPC")
    keys.add_argument("--smb-key", action="append", default=[], metavar="SESSION_ID:KEY",
                      help="an SMB 3 session's key: the session id as Wireshark shows smb2.sesid (0x...) or as 8 "
                           "wire-order bytes of hex, then the 16-byte session key in hex (repeatable); "
                           "SESSION_ID:KEY:S2C:C2S also gives the derived keys")
    keys.add_argument("--smb-key-file", metavar="FILE",
                      help="SESSION_ID:KEY lines (# comments), so that no key is on the command line; also read "
                           "from $ANALYZE_SMB_KEYS (separated by spaces or commas)")
    keys.add_argument("--nt-password", metavar="PASSWORD", help="the NT password of the NTLM account that sealed DCE/RPC")
    keys.add_argument("--nt-password-file", metavar="FILE",
                      help="a file whose first line is that password; also read from $ANALYZE_NT_PASSWORD")
    keys.add_argument("--keytab", metavar="FILE", help="a Kerberos keytab holding the service's keys")
    keys.add_argument("-o", dest="options", action="append", default=[], metavar="NAME:VALUE",
                      help="any tshark preference, as tshark's -o (repeatable)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be 1 or more")
    if args.split_above < 0:
        ap.error("--split-above must be 0 or more")
    previous = stopping.install()
    try:
        return _run(args)
    except CaptureError as e:
        print("analyze: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: folders gone, the home at exit
        if isinstance(e, stopping.Stopped):
            interrupt.say("analyze: stopped by %s" % e.name)
            return interrupt.exit_code(e.signum)  # 130, 143, 129: the shell's 128 + the signal
        interrupt.say("analyze: interrupted")
        return interrupt.exit_code(signal.SIGINT)
    except Exception as e:  # noqa: BLE001 - never a traceback: one line, and the usage/input code
        print("analyze: internal error, please report it: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 2
    finally:
        stopping.restore(previous)


def _output_dir(path: Optional[str]) -> Optional[Path]:
    """The --output folder, made and proven writable before any work is done."""
    if not path:
        return None
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise CaptureError("--output %s is a file; choose a folder (it is made if missing)" % d)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        raise CaptureError("cannot write to %s (%s); choose another --output folder" % (d, e.strerror or e)) from None
    return d


def _same_names(outdir: Optional[str], captures: List[str]) -> None:
    """Refuse, before any work, several captures with one file name (a/x.pcapng, b/x.pcapng) and --output:
    the tables' rows name their capture by file name, so the two would be one (connection uids too)."""
    if outdir is None or len(captures) < 2:
        return
    seen = {}
    for i, cap in enumerate(captures):
        first = seen.setdefault(Path(cap).name, i)
        if first != i:
            raise CaptureError("%s and %s have the same file name, which names their rows in the --output tables; "
                               "rename (or copy) one, or analyze them in separate runs, each with its own --output"
                               % (captures[first], cap))


def _run(args) -> int:
    tshark = find_tshark(args.tshark)
    for note in installed_copy_notes() + compiled_plugins.notes(tshark):  # stderr: the JSON on stdout stays clean
        print(note, file=sys.stderr)
    if not args.merge:
        _same_names(args.output, args.captures)
    outdir = _output_dir(args.output)
    if args.nt_password is not None and args.nt_password_file:
        raise CaptureError("--nt-password and --nt-password-file: give the password once")
    keys = Keys(smb_keys=args.smb_key + smb_keys_from(args.smb_key_file),
                nt_password=args.nt_password if args.nt_password is not None else nt_password_from(args.nt_password_file),
                keytab=args.keytab, options=args.options)
    keys.args()  # a malformed key is a usage error before any work
    work_dir = _work_dir(args.work_dir)
    work_folders.reap(work_dir)  # what runs killed earlier left there (the temp folder's: at the first folder)
    if keys.keytab is not None:  # checked above as given; a worker elsewhere has another working folder
        keys.keytab = os.path.abspath(keys.keytab)
    if args.dask:
        from ..capture.distributed import connect

        with connect(args.dask, args.jobs) as cluster:
            # several captures are read by the workers; one (or a merge) is split here and they read its shards
            seen = [os.path.abspath(c) for c in args.captures] if len(args.captures) > 1 and not args.merge else []
            cluster.check(tshark.path, work_dir, seen + ([keys.keytab] if keys.keytab else []))
            if args.merge:
                return _merge(args, tshark, keys, outdir, work_dir, cluster.executor, cluster.threads)
            return _analyze(args, tshark, keys, outdir, work_dir, cluster.executor, cluster.threads)
    if args.merge:
        return _merge(args, tshark, keys, outdir, work_dir, None, args.jobs)
    return _analyze(args, tshark, keys, outdir, work_dir, None, args.jobs)


def _merge(args, tshark, keys, outdir, work_dir, executor, jobs: int) -> int:
    """The captures as one (--merge): mergecap feeds it here; split, its shards run on `executor`
    (a Dask cluster's workers) or on this machine's `jobs` cores."""
    merged = Merged.prepare(tshark, args.captures, work_dir)
    tables = Tables(outdir, keep=False)
    results = []
    try:
        with Progress(sys.stderr.isatty(), expect=merged.inputs) as progress:  # mergecap reads them
            results.append(analyze_capture(Path(merged.name), tshark, tables, progress.counter(merged.name), keys,
                                           merged=merged, sharding=Sharding(jobs, args.split_above,
                                                                            Path(work_dir) if work_dir else None,
                                                                            executor)))
    finally:
        tables.close()
        merged.close()
    return _finish(args, results, outdir, tshark, [])


def _work_dir(path: Optional[str]) -> Optional[str]:
    """--work-dir, made and proven writable (absolute: workers elsewhere are in other folders)."""
    if not path:
        return None
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise CaptureError("cannot write to --work-dir %s (%s); choose another folder" % (path, e.strerror or e)) from None
    return os.path.abspath(path)


def _analyze(args, tshark, keys, outdir, work_dir, executor, jobs: int) -> int:
    """The captures, several at once when `jobs` allows, on `executor` (None: processes here)."""
    results, failed = [], []
    # one set of tables for the run, whatever the number of captures: rows name their capture
    tables = Tables(outdir, keep=False)
    if len(args.captures) > 1 and (jobs > 1 or executor is not None):
        try:
            results, failed = _in_parallel(args, tshark, keys, tables, executor, work_dir)
        finally:
            tables.close()
        return _finish(args, results, outdir, tshark, failed)
    sharding = Sharding(jobs, args.split_above, Path(work_dir) if work_dir else None, executor)
    try:
        with Progress(sys.stderr.isatty(), expect=args.captures) as progress:
            for cap in args.captures:
                try:
                    results.append(analyze_capture(Path(cap), tshark, tables, progress.counter(Path(cap).name), keys,
                                                   sharding=sharding))
                except CommandError:  # the same for every capture: said once, below
                    raise
                except CaptureError as e:  # this file only: the others still get their reports
                    print("analyze: %s" % e, file=sys.stderr)
                    failed.append((cap, str(e)))
                finally:
                    progress.finished(cap)
    finally:
        tables.close()
    return _finish(args, results, outdir, tshark, failed)


def _one(cap: str, tshark, keys, part: Optional[str], at: Optional[str] = None, sharding: Optional[Sharding] = None,
         run: Optional[str] = None):
    """A worker's capture: its result and the rows it wrote to `part` (a folder of its own), or
    the one line that says why it could not be read. The worker reads it `at` (absolute: a Dask
    worker runs in another folder); the report names it `cap`, as a serial run does. With
    `sharding`, a big one is split over the cores the other workers leave; with `run`, a Dask
    worker tells the bar how far its tshark has read."""
    at = at or cap
    if stopping.requested():  # queued before the run was stopped: nothing to begin
        raise stopping.Stopped(stopping.requested())
    tables = Tables(Path(part) if part else None, keep=False)
    try:
        with stopping.busy(), reporting(run, cap, at):  # a signal now unwinds the capture (a pool worker)
            result = analyze_capture(Path(at), tshark, tables, None, keys, sharding=sharding)
    except CommandError:
        raise
    except CaptureError as e:
        return None, str(e).replace(at, cap)
    finally:
        tables.close(parquet=False)
    result.path = Path(cap)
    result.tshark_errors = [line.replace(at, cap) for line in result.tshark_errors]
    return result, None


def _in_parallel(args, tshark, keys, tables: Tables, executor=None, work_dir: Optional[str] = None):
    """Up to --jobs captures at once, one process each (or one task each on `executor`, a Dask
    cluster's); results, rows and stderr lines come out in the order of the command line, as a
    serial run gives them. The workers write their rows under `work_dir`, read here."""
    import contextlib

    results, failed = [], []
    parts = work_folders.make("parts", work_dir)
    try:
        dirs = [os.path.join(parts, str(i)) if tables.directory is not None else None
                for i in range(len(args.captures))]
        own = executor is None
        if own:
            tshark_env()  # made here, the workers' tsharks share this process's empty home (workers skip atexit)
        # one bar: it samples the workers' tsharks reading the captures (those on this machine)
        # on a Dask cluster the workers' tsharks are out of its sight: they report (reporting, following)
        with Progress(sys.stderr.isatty(), expect=args.captures) as progress, \
                (_Pool(max_workers=min(args.jobs, len(args.captures)), initializer=stopping.install,
                       initargs=(True,)) if own else contextlib.nullcontext(executor)) as pool, \
                following(None if own else executor.client, progress) as run:
            # cores beyond one per capture split the big ones (2 captures on 16 cores: 8 tsharks each)
            spare = Sharding(args.jobs // len(args.captures), args.split_above, Path(work_dir) if work_dir else None,
                             alone=False) if own and args.jobs > len(args.captures) else None
            futures = [pool.submit(_one, cap, tshark, keys, d, os.path.abspath(cap), spare, run)
                       for cap, d in zip(args.captures, dirs)]
            for cap, fut in zip(args.captures, futures):  # done ones count whole at once, not in order
                fut.add_done_callback(lambda _, cap=cap: progress.finished(cap))
            for cap, d, fut in zip(args.captures, dirs, futures):
                result, why = fut.result()
                if result is None:
                    print("analyze: %s" % why, file=sys.stderr)
                    failed.append((cap, why))
                    continue
                results.append(result)
                if d is not None:
                    tables.absorb(Path(d))
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return results, failed


class _Pool(concurrent.futures.ProcessPoolExecutor):
    """The workers of _in_parallel: when the run stops, the captures not yet begun are dropped."""

    def __exit__(self, *exc):
        self.shutdown(wait=True, cancel_futures=exc[0] is not None)
        return False


def _finish(args, results, outdir, tshark, failed: list) -> int:
    text = (to_json(results, tshark.version_text, failed) if args.format == "json"
            else to_text(results, tshark.version_text))
    if results or args.format == "json":
        sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))
    if outdir is not None:
        try:
            write_output(outdir, results, tshark.version_text)
        except OSError as e:
            raise CaptureError("cannot write to %s (%s)" % (outdir, e.strerror or e)) from None
    if failed:
        return 2
    if args.fail_on == "never":
        return 0
    worst = SEVERITIES.index(args.fail_on)
    found = any(SEVERITIES.index(f.severity) <= worst for r in results for f in r.findings)
    return 1 if found else 0

if __name__ == "__main__":
    sys.exit(main())
