"""analyze --dask: the captures, or one capture's shards, run on a dask.distributed cluster.

`connect("local")` starts a LocalCluster on this machine (one process a worker, one thread
each); `connect("tcp://host:8786")` joins a running scheduler. Either gives `executor` (what
analyze's pools are: submit(fn, *args) -> a future with done() and result()) and `threads`
(how many tsharks run at once). The workers read the captures and write their rows into a
work folder by path, so both must be at the same paths on every machine; `check` proves it
before any work. dask is imported here only, so a plain install does not need it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from typing import Iterable, Optional
from urllib.parse import urlsplit

from . import progress, work_folders
from .source import CaptureError, tshark_env

INSTALL = ".venv/bin/pip install -e '.[dask]' in the checkout"  # the extra, as README says
TIMEOUT = 10  # seconds to reach a scheduler, and for it to have a worker


def _distributed():
    try:
        import distributed
    except ImportError:
        raise CaptureError("--dask needs dask.distributed, which is not installed; %s" % INSTALL) from None
    return distributed


class Executor:
    """A distributed.Client as analyze's pools: every submit is a new task (pure=False: the same
    function and paths twice are two runs, not one cached result)."""

    def __init__(self, client):
        self.client = client

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)


TOPIC = "analyze-progress"  # one topic: a scheduler keeps each topic's recent events, so not one a run


def reporting(run: Optional[str], name: str, path: str):
    """In a task: while it runs, how far its tshark has read `path`, sent to the client as events
    of TOPIC naming the `run` and `name` (the analyzing process's bar follows them: `following`).
    Nothing outside a Dask worker, or without a run."""
    if run is None:
        return contextlib.nullcontext()
    try:
        worker = _distributed().get_worker()
    except (ValueError, CaptureError):  # not in a Dask task
        return contextlib.nullcontext()
    return progress.Reporter({path: name}, lambda n, pos: worker.log_event(TOPIC, (run, n, pos)))


@contextlib.contextmanager
def following(client, bar: "progress.Progress"):
    """A run id for `reporting`: each event of this run moves `bar` (nothing when it is off)."""
    if not bar.enabled or client is None:
        yield None
        return
    run = uuid.uuid4().hex

    def moved(event):
        msg = event[1]
        if isinstance(msg, (tuple, list)) and len(msg) == 3 and msg[0] == run:
            bar.reached(msg[1], msg[2])

    client.subscribe_topic(TOPIC, moved)
    try:
        yield run
    finally:
        try:
            client.unsubscribe_topic(TOPIC)
        except Exception:  # noqa: BLE001 - a cluster already gone
            pass


def threads(client) -> int:
    """The worker threads of the cluster: how many tasks it runs at once."""
    return sum(client.nthreads().values())


def _seen(paths):
    """On a worker: which of `paths` it cannot see (an executable for the first, tshark)."""
    missing = [p for p in paths[1:] if not os.path.exists(p)]
    if not os.access(paths[0], os.X_OK):
        missing.insert(0, paths[0])
    return missing


class Cluster:
    """A connection to a Dask cluster, and the LocalCluster behind it when it started one."""

    def __init__(self, client, local=None, scratch: Optional[str] = None):
        self.client = client
        self.local = local
        self.scratch = scratch
        self.executor = Executor(client)
        self.threads = threads(client)

    def check(self, tshark: str, work_dir: Optional[str], files: Iterable[str] = ()) -> None:
        """Every worker can run `tshark` and see `files` (absolute: captures, a keytab) and the work
        folder (a file made there now, so a folder of the same name on another disk does not pass)."""
        with tempfile.NamedTemporaryFile(dir=work_dir, prefix="analyze-probe-") as probe:
            try:
                seen = self.client.run(_seen, [tshark, probe.name, *files])
            except Exception as e:  # noqa: BLE001 - a worker that died or cannot unpickle: say which
                raise CaptureError("the Dask workers could not be asked what they see: %s: %s"
                                   % (type(e).__name__, e)) from None
        for worker, missing in sorted(seen.items()):
            if missing:
                what = {tshark: "tshark %s" % tshark,
                        probe.name: "the work folder %s (--work-dir)" % (work_dir or tempfile.gettempdir())
                        }.get(missing[0], missing[0])
                raise CaptureError("the Dask worker %s cannot see %s; every worker needs tshark, the captures and "
                                   "the keytab at the same paths, and --work-dir on storage they share" % (worker, what))

    def close(self) -> None:
        try:
            self.client.close()
            if self.local is not None:
                self.local.close()
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(address: str, workers: int) -> Cluster:
    """`local`: a LocalCluster of `workers` processes of one thread; else a scheduler's address."""
    distributed = _distributed()
    import logging

    if address == "local":
        # The workers inherit this process's empty home for their tsharks, and keep their scratch
        # files in a work folder of this run: a stopped run's workers are killed, not ended.
        tshark_env()
        scratch = work_folders.make("dask")
        # one thread a worker: each task waits on one tshark, and tshark is single-threaded;
        # ":0": the scheduler's HTTP server on a free port, not 8787 (another cluster may hold it)
        try:
            import dask

            with dask.config.set({"temporary-directory": scratch}):  # the scheduler's and nannies' too
                local = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=":0", silence_logs=logging.ERROR,
                                                 local_directory=scratch)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        try:
            return Cluster(distributed.Client(local), local, scratch)
        except BaseException:
            local.close()
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    _reachable(address)
    try:
        client = distributed.Client(address, timeout=TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise CaptureError("cannot reach the Dask scheduler at %s (%s); start one with `dask scheduler`"
                           % (address, e)) from None
    try:
        client.wait_for_workers(1, timeout=TIMEOUT)
        return Cluster(client)
    except (TimeoutError, OSError):
        client.close()
        raise CaptureError("the Dask scheduler at %s has no workers after %d s; start some with "
                           "`dask worker %s --nthreads 1`" % (address, TIMEOUT, address)) from None
    except BaseException:
        client.close()
        raise


def _reachable(address: str) -> None:
    """A TCP scheduler that refuses or does not answer is said at once, not after the client's retries."""
    parts = urlsplit(address if "://" in address else "tcp://" + address)
    if parts.scheme != "tcp":
        return  # tls://, ucx://, ...: the client's own connect says why
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:  # not a number
        port = None
    if not host or not port:
        raise CaptureError("--dask %s: give a scheduler address, tcp://HOST:PORT (`dask scheduler` listens on 8786), "
                           "or local" % address)
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
    except OSError as e:
        raise CaptureError("cannot reach the Dask scheduler at %s (%s); start one with `dask scheduler`"
                           % (address, e.strerror or e)) from None
