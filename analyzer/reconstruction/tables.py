"""The row tables the analyzer produces, with one typed schema whatever the output: pandas
DataFrames (kept in memory), or CSV, JSON Lines and Parquet files (streamed, for --output), so
a long capture never has to fit in memory twice.

Every table has `capture` (the file it came from) and `uid` (its TCP connection, Zeek-style:
the same uid joins a connection's rows across tables and findings). Times are UTC instants,
frame numbers, LBAs, block counts, statuses and ids integers; a value the capture does not
show is null, never "". The columns are the same whether a table is empty or not and however
many captures were analyzed.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import json
from pathlib import Path
from typing import Dict, List, Optional

from .response_times import ResponseTimes

# column -> type: string, int (nullable 64-bit), uint (nullable unsigned 64-bit), float,
# bool (nullable), time (UTC instant; epoch seconds in the rows)
S, I, U, F, B, T = "string", "int", "uint", "float", "bool", "time"
KEYS = [("capture", S), ("uid", S)]
SCHEMA: Dict[str, List[tuple]] = {
    "sessions": KEYS + [
        ("open_id", S), ("stream", I), ("channels", S), ("client", S), ("server", S), ("session_id", U), ("tree", S),
        ("file_name", S), ("opened_before_capture", B), ("time", T), ("create_frame", I), ("first_frame", I),
        ("close_frame", I), ("context_layout", S), ("context_version", I), ("initiator_host", S), ("initiator_id", S),
        ("operations", I), ("scsi_commands", I), ("reads", I), ("writes", I), ("errors", I),
        ("check_conditions", I), ("reservation_conflicts", I), ("unit_attentions", I),
        ("latency_p50_ms", F), ("latency_p99_ms", F)],
    "rsvd_operations": KEYS + [
        ("open_id", S), ("stream", I), ("request_frame", I), ("response_frame", I), ("time", T), ("operation", S),
        ("request_id", U), ("status", S), ("status_code", U), ("latency_ms", F)],
    "scsi_commands": KEYS + [
        ("open_id", S), ("stream", I), ("request_frame", I), ("response_frame", I), ("time", T), ("opcode", S),
        ("service_action", S), ("lba", U), ("blocks", I), ("data_in", S), ("transfer_length", I), ("srb_status", S),
        ("scsi_status", S), ("sense_key", S), ("additional_sense", S), ("latency_ms", F)],
    "clusprep_calls": KEYS + [
        ("conversation", S), ("stream", I), ("request_frame", I), ("response_frame", I), ("time", T),
        ("interface", S), ("method", S), ("opnum", I), ("call_id", I), ("auth_level", I), ("encrypted", B),
        ("result", S), ("hresult", U), ("fault_status", U), ("disk", S), ("latency_ms", F)],
    "io_errors": KEYS + [
        ("open_id", S), ("stream", I), ("time", T), ("initiator_host", S), ("initiator_id", S), ("disk", S),
        ("server", S), ("command", S), ("operation", S), ("lba", U), ("blocks", I), ("offset", U), ("length", I),
        ("kind", S), ("path", S), ("status", S), ("status_code", U), ("status_key", U), ("srb_status", S),
        ("scsi_status", S), ("sense_key", S), ("additional_sense", S), ("asc", I), ("ascq", I),
        ("request_frame", I), ("response_frame", I), ("retrieval_frame", I), ("sense_frame", I), ("retrieval", S),
        ("latency_ms", F)],
    "reservations": KEYS + [
        ("stream", I), ("time", T), ("frame", I), ("response_frame", I), ("source", S), ("host", S), ("disk", S),
        ("event", S), ("command", S), ("key", S), ("sa_key", S), ("type", S), ("scope", S), ("registered", S),
        ("holder", S), ("detail", S), ("result", S), ("sense", S), ("holder_after", S), ("holder_host", S)],
    "findings": KEYS + [
        ("rule", S), ("severity", S), ("side", S), ("check", S), ("spec", S), ("time", T), ("first_frame", I),
        ("frames", S), ("message", S), ("subject", S)],
}
COLUMNS = {name: [c for c, _ in cols] for name, cols in SCHEMA.items()}
PANDAS = {S: "string", I: "Int64", U: "UInt64", F: "Float64", B: "boolean"}
# where a table's latency goes in the per-capture statistics: table -> the column that groups it
LATENCY_BY = {"rsvd_operations": "operation", "scsi_commands": "opcode", "clusprep_calls": "method"}


def uid(capture: str, stream) -> Optional[str]:
    """A connection's uid: stable for a capture file and TCP stream, as Zeek's joins its logs."""
    if stream is None or stream == "":
        return None
    return "C" + hashlib.sha1(("%s|%s" % (capture, stream)).encode()).hexdigest()[:15]


def _typed(kind: str, v):
    """One value as its column's type: None for what the capture does not show."""
    if v is None or v == "":
        return None
    if kind in (I, U):
        if hasattr(v, "intvalue"):  # an enum value: its number
            return int(v.intvalue)
        if isinstance(v, str):
            return int(v, 0)
        return int(v)
    if kind in (F, T):
        return float(v)
    if kind == B:
        return bool(v)
    return str(v)


def iso(t: Optional[float]) -> Optional[str]:
    if t is None:
        return None
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


class Tables:
    """Rows per table: kept in memory (keep=True, for pandas), streamed to CSV and JSON Lines
    as they come (a directory; Parquet is written from the CSV at close), or neither (the CLI
    without --output). One Tables serves every capture of a run: `capture` names the current."""

    def __init__(self, directory: Optional[Path] = None, keep: bool = True):
        self.directory = directory
        self.keep = keep
        self.capture = ""
        self.rows: Dict[str, List[dict]] = {name: [] for name in SCHEMA}
        # (table, group) -> latencies (ms), this capture's: every one kept for exact percentiles, in
        # memory that does not grow with the capture (analyzer.reconstruction.response_times)
        self.latency: Dict[tuple, ResponseTimes] = {}
        self._files = []
        self._csv = {}
        self._jsonl = {}
        self._raw = {}  # table -> (CSV file, JSON Lines file), for absorb()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            for name, cols in COLUMNS.items():
                f = open(directory / (name + ".csv"), "w", newline="", encoding="utf-8")
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                j = open(directory / (name + ".jsonl"), "w", encoding="utf-8")
                self._files += [f, j]
                self._csv[name], self._jsonl[name] = w, j
                self._raw[name] = (f, j)

    def start_capture(self, name: str) -> None:
        self.capture = name
        self.latency = {}

    @property
    def wants_rows(self) -> bool:
        """Whether rows are kept or written; if not (the CLI without --output), a row need only hold
        its latency and the column that groups it (LATENCY_BY): the statistics are all that is made."""
        return self.keep or bool(self._csv)

    def add(self, table: str, row: dict) -> None:
        group = LATENCY_BY.get(table)
        if not self._csv and not self.keep:  # the CLI without --output: only the statistics
            if group:
                self.add_latency(table, row.get(group), row.get("latency_ms"))
            return
        kinds = SCHEMA[table]
        row = dict(row, capture=self.capture, uid=uid(self.capture, row.get("stream")))
        typed = {c: _typed(k, row.get(c)) for c, k in kinds}
        if group and typed["latency_ms"] is not None:
            key = (table, typed[group] or "(unknown)")
            times = self.latency.get(key)
            if times is None:
                times = self.latency[key] = ResponseTimes()
            times.append(typed["latency_ms"])
        if self._csv:
            self._csv[table].writerow({c: (iso(typed[c]) if k == T else typed[c]) for c, k in kinds})
            record = {"ts": iso(typed.get("time"))}
            record.update((c, iso(v) if k == T else v) for (c, k), v in zip(kinds, typed.values()) if c != "time")
            self._jsonl[table].write(json.dumps(record) + "\n")
        elif self.keep:
            self.rows[table].append(typed)

    def add_latency(self, table: str, group, ms) -> None:
        """What add(table, row) does when no rows are wanted (not wants_rows), from the row's LATENCY_BY
        column (group) and latency_ms alone: a caller need not make the row."""
        if ms is not None and ms != "":
            key = (table, str(group or "") or "(unknown)")
            times = self.latency.get(key)
            if times is None:  # not setdefault(key, ResponseTimes()): one made per row
                times = self.latency[key] = ResponseTimes()
            times.append(float(ms))

    def absorb(self, other: Path) -> None:
        """Append the rows another Tables wrote to `other` (a worker's, for one capture), as if they
        had been added here: the files come out as a serial run writes them."""
        for name in SCHEMA:
            csv_f, jsonl_f = self._raw[name]
            with open(other / (name + ".csv"), newline="", encoding="utf-8") as f:
                f.readline()  # its header
                csv_f.write(f.read())
            with open(other / (name + ".jsonl"), encoding="utf-8") as f:
                jsonl_f.write(f.read())

    def close(self, parquet: bool = True) -> None:
        """Finish the CSV and JSON Lines files and write each table as Parquet too, typed."""
        for f in self._files:
            f.close()
        self._files = []
        if self.directory is None or not parquet:
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for name, kinds in SCHEMA.items():
            schema = arrow_schema(name)
            src = self.directory / (name + ".csv")
            opts = pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False)
            reader = pacsv.open_csv(src, convert_options=opts)
            with pq.ParquetWriter(self.directory / (name + ".parquet"), schema) as writer:
                for batch in reader:
                    writer.write_table(pa.Table.from_batches([batch]).cast(schema))

    def frame(self, table: str):
        return frame_of(table, self.rows[table])


def arrow_schema(table: str):
    import pyarrow as pa

    types = {S: pa.string(), I: pa.int64(), U: pa.uint64(), F: pa.float64(), B: pa.bool_(),
             T: pa.timestamp("us", tz="UTC")}
    return pa.schema([(c, types[k]) for c, k in SCHEMA[table]])


def frame_of(table: str, rows: List[dict]):
    """A DataFrame of `rows` with the table's documented dtypes, empty or not."""
    import pandas as pd

    kinds = SCHEMA[table]
    data = {}
    for c, k in kinds:
        values = [r.get(c) for r in rows]
        if k == T:  # to the microsecond, as the capture's timestamps are
            us = pd.array([None if v is None else round(v * 1e6) for v in values], dtype="Int64")
            data[c] = pd.to_datetime(pd.Series(us, dtype="Int64"), unit="us", utc=True).astype("datetime64[ns, UTC]")
        else:
            data[c] = pd.array(values, dtype=PANDAS[k])
    return pd.DataFrame(data, columns=[c for c, _ in kinds])
