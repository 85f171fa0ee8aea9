"""The row tables the analyzer produces, kept in memory (for pandas) or streamed to CSV
files (for --output), so a long capture never has to fit in memory twice."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional

COLUMNS = {
    "sessions": ["open_id", "stream", "channels", "client", "server", "session_id", "tree", "file_name",
                 "opened_before_capture", "create_frame", "first_frame", "close_frame", "context_layout", "context_version", "initiator_host", "initiator_id",
                 "operations", "scsi_commands", "reads", "writes", "errors", "latency_p50_ms", "latency_p99_ms"],
    "rsvd_operations": ["open_id", "stream", "request_frame", "response_frame", "time", "operation", "request_id",
                        "status", "latency_ms"],
    "scsi_commands": ["open_id", "stream", "request_frame", "response_frame", "time", "opcode", "service_action",
                      "lba", "blocks", "data_in", "transfer_length", "srb_status", "scsi_status", "sense_key",
                      "additional_sense", "latency_ms"],
    "clusprep_calls": ["conversation", "stream", "request_frame", "response_frame", "time", "interface", "method",
                       "opnum", "call_id", "auth_level", "encrypted", "result", "hresult", "fault_status", "disk",
                       "latency_ms"],
}


class Tables:
    """Rows per table: kept in memory (keep=True, for pandas), written to CSV as they come
    (a directory), or neither (the CLI without --output needs only the summaries)."""

    def __init__(self, directory: Optional[Path] = None, keep: bool = True):
        self.directory = directory
        self.keep = keep
        self.rows: Dict[str, List[dict]] = {name: [] for name in COLUMNS}
        self._files = {}
        self._writers = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            for name, cols in COLUMNS.items():
                f = open(directory / (name + ".csv"), "w", newline="", encoding="utf-8")
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                self._files[name], self._writers[name] = f, w

    def add(self, table: str, row: dict) -> None:
        if self._writers:
            self._writers[table].writerow(row)
        elif self.keep:
            self.rows[table].append(row)

    def close(self) -> None:
        """Finish the CSV files and write each as Parquet too (streamed, in batches)."""
        for f in self._files.values():
            f.close()
        if self.directory is None:
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        for name, cols in COLUMNS.items():
            src = self.directory / (name + ".csv")
            # every column as text first: a column may be empty in one capture and numeric in another
            opts = pacsv.ConvertOptions(strings_can_be_null=True)
            reader = pacsv.open_csv(src, convert_options=opts)
            writer = None
            try:
                for batch in reader:
                    if writer is None:
                        writer = pq.ParquetWriter(self.directory / (name + ".parquet"), batch.schema)
                    writer.write_table(pa.Table.from_batches([batch]))
            except pa.ArrowInvalid:
                # a column whose type changed mid-file: read whole (these are summary-sized)
                table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in cols}))
                if writer is not None:
                    writer.close()
                    writer = None
                pq.write_table(table, self.directory / (name + ".parquet"))
            if writer is None and not (self.directory / (name + ".parquet")).exists():
                pq.write_table(pa.table({c: pa.array([], pa.string()) for c in cols}),
                               self.directory / (name + ".parquet"))
            elif writer is not None:
                writer.close()

    def frame(self, table: str):
        import pandas as pd

        return pd.DataFrame(self.rows[table], columns=COLUMNS[table])
