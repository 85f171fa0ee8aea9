"""The pandas view: analyzer.load(path) runs the CLI's pipeline and keeps its tables."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..pipeline import CaptureResult, analyze_capture
from ..capture.keys import Keys
from ..capture.merge import Merged
from ..capture.shards import Sharding
from ..capture.source import find_tshark
from ..reconstruction.tables import Tables


class Capture:
    """One analyzed capture: DataFrames of its sessions, operations, SCSI commands, ClusPrep
    calls, I/O errors, reservation events and findings, with the dtypes of analyzer.reconstruction.tables.SCHEMA (README: "Tables"), plus the
    raw result (`result`) the reports are made from."""

    def __init__(self, result: CaptureResult, tables: Tables):
        self.result = result
        self._tables = tables

    @property
    def sessions(self):
        return self._tables.frame("sessions")

    @property
    def rsvd_operations(self):
        return self._tables.frame("rsvd_operations")

    @property
    def scsi_commands(self):
        return self._tables.frame("scsi_commands")

    @property
    def clusprep_calls(self):
        return self._tables.frame("clusprep_calls")

    @property
    def io_errors(self):
        """One row per failed I/O on a shared-disk open, whatever path its failure took (SCSI
        status and sense, STATUS_SVHDX_*, a stored error and its SRB_STATUS retrieval, SMB2
        errors): analyzer.reconstruction.io_errors."""
        return self._tables.frame("io_errors")

    @property
    def reservations(self):
        """One row per persistent-reservation event (RSVD's PR commands, conflicts and PR unit
        attentions; ClusPrep's PR calls): analyzer.reconstruction.reservations."""
        return self._tables.frame("reservations")

    @property
    def findings(self):
        return self._tables.frame("findings")

    def __repr__(self) -> str:
        return "<Capture %s: %d packets, %d findings>" % (self.result.path.name, self.result.packets,
                                                          len(self.result.findings))


def load(path, tshark: Optional[str] = None, *, smb_keys: Sequence[str] = (), nt_password: Optional[str] = None,
         keytab: Optional[str] = None, options: Sequence[str] = (), dask=None, split_above_mb: float = 0,
         work_dir=None) -> Capture:
    """Analyze one capture. `path` may also be a directory or a list of files, analyzed as one
    capture merged by time (analyze --merge). The keys are analyze's options: smb_keys
    ["SESSION_ID:KEY", ...], nt_password, keytab, and options ["NAME:VALUE", ...] for tshark's -o.
    dask: a distributed.Client; a capture of at least split_above_mb MB is split by connection
    over its worker threads (analyze --dask), in shards under work_dir (default: the system temp
    folder; a folder every worker sees). The tables are the same as without."""
    tables = Tables()
    keys = Keys(smb_keys=list(smb_keys), nt_password=nt_password, keytab=keytab, options=list(options))
    t = find_tshark(tshark)
    if isinstance(path, (list, tuple)) or Path(path).is_dir():
        merged = Merged.prepare(t, [str(p) for p in path] if isinstance(path, (list, tuple)) else [str(path)],
                                str(work_dir) if work_dir else None)
        try:
            result = analyze_capture(Path(merged.name), t, tables, keys=keys, merged=merged)
        finally:
            merged.close()
    elif dask is not None:
        from ..capture.distributed import Executor, threads

        # split here, dissected by the workers: they read the shards by path, so an absolute one
        sharding = Sharding(threads(dask), split_above_mb, Path(work_dir).absolute() if work_dir else None,
                            Executor(dask))
        result = analyze_capture(Path(path), t, tables, keys=keys, sharding=sharding)
    else:
        result = analyze_capture(Path(path), t, tables, keys=keys)
    return Capture(result, tables)
