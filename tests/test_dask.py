"""Issue 14 item 3: beyond one machine. `analyze --dask ADDRESS|local` and `analyzer.load(...,
dask=client)` run the captures, or one capture's shards, on a dask.distributed cluster and give
exactly what a serial run gives: the same JSON, the same --output files byte for byte, the same
tables. Here the cluster is two worker processes of one thread on this machine."""
import json
import subprocess
import sys
import time

import pytest
from pandas.testing import assert_frame_equal

import analyzer
import promised
import samples
from analyzer.capture.distributed import following
from analyzer.capture.progress import Progress
from analyzer.capture.source import CaptureError
from samples import ntlmssp
from test_jobs import CAPTURES
from test_shards import KEYS, ROOT, SAMPLES, analyze, composite, without_timing  # noqa: F401 - composite: a fixture

distributed = promised.module("distributed")
TABLES = ("sessions", "rsvd_operations", "scsi_commands", "clusprep_calls", "io_errors", "reservations", "findings")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def same_files(one, two):
    for p in sorted(one.iterdir()):
        if p.name != "report.json":  # its seconds differ; the rest is the stdout compared
            assert (two / p.name).read_bytes() == p.read_bytes(), p.name


def serial_and(tmp_path, *args):
    """--jobs 1's run and the one with `args`, each with JSON on stdout and its own --output."""
    one = analyze("--jobs", "1", "--format", "json", "--output", tmp_path / "one", *args[1:])
    two = analyze(*args[0], "--format", "json", "--output", tmp_path / "two", *args[1:])
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stderr == one.stderr
    assert without_timing(json.loads(two.stdout)) == without_timing(json.loads(one.stdout))
    same_files(tmp_path / "one", tmp_path / "two")
    return json.loads(two.stdout)


def test_many_captures_one_task_each(client, tmp_path):
    """Every sample at once, each a task (the keys for the encrypted one)."""
    every = [str(p) for p in SAMPLES]
    doc = serial_and(tmp_path, ("--dask", client.scheduler.address, "--work-dir", tmp_path / "work"), *KEYS, *every)
    assert [c["path"] for c in doc["captures"]] == every and set(CAPTURES) <= set(every)
    assert not list((tmp_path / "work").iterdir())  # the workers' rows were read and removed


def test_captures_named_as_given_are_read_by_absolute_path(client, tmp_path):
    """A worker runs in another folder: it is given the absolute path, the report keeps the one given."""
    names = ["samples/%s" % p.split("/samples/")[1] for p in CAPTURES[:2]]
    res = subprocess.run([sys.executable, "-m", "analyzer", "--fail-on", "never", "--format", "json", "--dask",
                          client.scheduler.address, *names], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert [c["path"] for c in json.loads(res.stdout)["captures"]] == names


def test_one_capture_split_over_both_workers(client, composite, tmp_path):  # noqa: F811
    with distributed.get_task_stream(client) as stream:
        doc = serial_and(tmp_path, ("--dask", client.scheduler.address, "--split-above", "0"), *KEYS, composite)
    assert doc["captures"][0]["encrypted"]["smb3_messages"] == 0  # the keys reached every shard's tshark
    shards = [t for t in stream.data if t["key"].startswith("dissect-")]
    assert len(shards) == 2 and len({t["worker"] for t in shards}) == 2


def test_a_merge_split_over_both_workers(client, tmp_path):
    """--merge with --dask: mergecap feeds it here, its shards are dissected by the workers."""
    caps = [str(samples.path(n)) for n in ("rsvd_cluster_events", "clusprep_storage_violations")]
    with distributed.get_task_stream(client) as stream:
        doc = serial_and(tmp_path, ("--dask", client.scheduler.address, "--split-above", "0"), "--merge", *caps)
    assert [f["path"] for f in doc["captures"][0]["files"]] == caps
    shards = [t for t in stream.data if t["key"].startswith("dissect-")]
    assert len(shards) == 2 and len({t["worker"] for t in shards}) == 2


def test_a_workers_reading_moves_the_bar_here(client, tmp_path):
    """Several captures on Dask: each task's tshark reads on a worker, out of the bar's sight; the
    task reports how far (reporting) and the bar here follows (following), this run's events only."""
    capture = tmp_path / "big.pcapng"
    capture.write_bytes(b"\0" * 50_000)
    bar = Progress(True, expect=[capture])  # not entered: no thread and no bar drawn, only its counts

    def task(run, path):  # pickled by value: the workers need not import this test
        import subprocess
        import sys

        from distributed import get_worker

        from analyzer.capture.distributed import TOPIC, reporting
        get_worker().log_event(TOPIC, ("another run", path, 40_000))  # another analyze's: not this bar's
        with reporting(run, path, path):
            subprocess.run([sys.executable, "-c", "import time; f = open(%r, 'rb', buffering=0); f.read(1000); "
                            "time.sleep(1.5)" % path], check=True)

    with following(client, bar) as run:
        assert run
        client.submit(task, run, str(capture), pure=False).result()
        deadline = time.monotonic() + 10
        while bar.totals()[0] < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert bar.totals() == (1000, 50_000)


def test_a_local_cluster_end_to_end(tmp_path):
    serial_and(tmp_path, ("--dask", "local", "--jobs", "2", "--split-above", "0"), samples.path("rsvd_cluster_events"))


def test_load_with_a_client_gives_the_same_tables(client, composite):  # noqa: F811
    keys = dict(smb_keys=samples.KEYS["rsvd_encrypted"]["smb_keys"], nt_password=ntlmssp.ACCOUNT.password,
                keytab=str(samples.SAMPLES_DIR / "clusprep_kerberos.keytab"))
    with distributed.get_task_stream(client) as stream:
        spread = analyzer.load(composite, dask=client, **keys)
    alone = analyzer.load(composite, **keys)
    assert len([t for t in stream.data if t["key"].startswith("dissect-")]) == 2
    for table in TABLES:
        a, b = getattr(alone, table), getattr(spread, table)
        assert len(a), table
        assert_frame_equal(b, a, obj=table)
    assert spread.result.packets == alone.result.packets


@pytest.mark.parametrize("pcap", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_split_over_the_cluster_gives_the_same_tables(client, pcap):
    keys = dict(smb_keys=samples.KEYS["rsvd_encrypted"]["smb_keys"]) if pcap.stem == "rsvd_encrypted" else {}
    spread, alone = analyzer.load(pcap, dask=client, **keys), analyzer.load(pcap, **keys)
    for table in TABLES:
        assert_frame_equal(getattr(spread, table), getattr(alone, table), obj=table)
    assert (spread.result.packets, spread.result.tshark_errors) == (alone.result.packets, alone.result.tshark_errors)


def test_an_unreachable_scheduler_is_one_line_at_once():
    started = time.monotonic()
    res = analyze("--dask", "tcp://127.0.0.1:1", CAPTURES[0])
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in res.stderr and time.monotonic() - started < 8
    res = analyze("--dask", "nowhere", CAPTURES[0])
    assert res.returncode == 2 and "give a scheduler address, tcp://HOST:PORT" in res.stderr


def test_a_worker_that_cannot_see_a_file_is_named(client, tmp_path):
    from analyzer.capture.distributed import Cluster

    cluster = Cluster(client)
    assert cluster.threads == 2
    cluster.check(sys.executable, str(tmp_path), [str(CAPTURES[0])])
    with pytest.raises(CaptureError, match="cannot see tshark /nowhere/tshark"):
        cluster.check("/nowhere/tshark", str(tmp_path))
    with pytest.raises(CaptureError, match="cannot see /nowhere/x.pcapng"):
        cluster.check(sys.executable, None, ["/nowhere/x.pcapng"])


def test_a_plain_install_does_not_import_dask():
    res = subprocess.run([sys.executable, "-c", "import sys, analyzer.output.cli, analyzer.output.api; "
                          "print([m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')])"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "[]", res.stderr
