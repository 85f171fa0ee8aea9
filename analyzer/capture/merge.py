"""Several capture files as one timeline: a ring-buffer file set (dumpcap -b), or captures taken
on several nodes at once.

mergecap merges them by timestamp and tshark reads the result from a pipe (nothing is written
to disk), so TCP reassembly, SMB 3 decryption and every reconstruction see one capture: an
open whose CREATE is in one file and whose failures are in the next is one open. mergecap runs
with `-I none`, which keeps each file's interfaces apart, so the interface a frame arrived on
names its file; frames of one file keep their order, so counting them gives each frame's
number in its own file. Findings cite file and frame.

mergecap merges pcap and pcapng; a file of another format (Network Monitor's .cap, snoop) has
no interface blocks, and mergecap refuses it ("an interface ID that does not match any IDB"), so
editcap first converts it to pcapng in a work folder of this run (close() removes it), and a
pktmon ETL file analyzer.capture.etl does. A file editcap cannot read whole is named with what it said.
"""
from __future__ import annotations

import bisect
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from . import etl, work_folders
from .source import CaptureError, Tshark, check_capture

_INTERFACES = re.compile(r"Number of interfaces in file:\s*(\d+)")


def _tool(tshark: Tshark, name: str) -> str:
    beside = Path(tshark.path).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise CaptureError("%s not found (it comes with tshark: apt-get install -y tshark); --merge needs it" % name)
    return found


def _interfaces(capinfos: str, f: Path) -> Optional[int]:
    """How many interfaces capinfos says the file has (a file cut short still says); None when it
    says none (a format without interface blocks, or nothing readable)."""
    res = subprocess.run([capinfos, "-I", str(f)], capture_output=True, text=True, timeout=3600)
    m = _INTERFACES.search(res.stdout)
    return int(m.group(1)) if m else None


def expand(paths: Sequence[str]) -> List[Path]:
    """The files named (each checked), with each directory replaced by the capture files in it, by
    name (a ring-buffer set's names sort in order)."""
    out: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for f in sorted(p.iterdir()):
                if f.is_file():
                    try:
                        check_capture(f)
                    except CaptureError:
                        continue  # a README or a checksum beside the captures
                    found.append(f)
            if not found:
                raise CaptureError("%s holds no capture file" % p)
            out += found
        else:
            check_capture(p)
            out.append(p)
    return out


@dataclass
class Merged:
    files: List[Path]  # as the user named them: what reports cite
    first_interface: List[int] = field(default_factory=list)  # per file, its first interface id in the merge
    runs: List[Tuple[int, int, int]] = field(default_factory=list)  # (first merged frame, file, its frame there)
    counts: List[int] = field(default_factory=list)  # frames seen per file
    _starts: List[int] = field(default_factory=list)
    inputs: List[Path] = field(default_factory=list)  # what mergecap reads: each file, or its pcapng conversion
    work: Optional[str] = None  # the folder of the conversions

    @classmethod
    def prepare(cls, tshark: Tshark, paths: Sequence[str], work_dir: Optional[str] = None) -> "Merged":
        files = expand(paths)
        capinfos = _tool(tshark, "capinfos")
        merged = cls(files, counts=[0] * len(files))
        try:
            n = 0
            for f in files:
                source, count = f, None if etl.is_etl(f) else _interfaces(capinfos, f)
                if count is None:  # no interface blocks (NetMon, snoop): mergecap needs pcapng
                    source = merged._converted(tshark, f, work_dir)
                    count = _interfaces(capinfos, source)
                if count is None:
                    raise CaptureError("%s: capinfos cannot read the pcapng editcap made of it" % f)
                merged.inputs.append(source)
                merged.first_interface.append(n)
                n += count
        except BaseException:
            merged.close()
            raise
        return merged

    def _converted(self, tshark: Tshark, f: Path, work_dir: Optional[str]) -> Path:
        if self.work is None:
            self.work = work_folders.make("merge", work_dir)
        out = Path(self.work) / ("%d.pcapng" % len(self.inputs))
        if etl.is_etl(f):
            try:
                etl.write_pcapng(f, out)
            except etl.EtlError as e:
                raise CaptureError(str(e)) from None
            return out
        res = subprocess.run([_tool(tshark, "editcap"), "-F", "pcapng", str(f), str(out)], capture_output=True,
                             text=True, timeout=3600)
        said = " ".join(res.stderr.split())
        if res.returncode != 0 or said:
            raise CaptureError("%s cannot be merged: it is damaged or cut short (editcap, converting it to pcapng "
                               "for mergecap, said: %s)" % (f, said or "exit %d" % res.returncode))
        return out

    def close(self) -> None:
        """Remove the conversions (the merge itself is read from a pipe)."""
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None

    @property
    def name(self) -> str:
        n = len(self.files) - 1
        return "%s (+%d file%s merged)" % (self.files[0], n, "s" if n > 1 else "") if n else str(self.files[0])

    def mergecap(self, tshark: Tshark) -> List[str]:
        return [_tool(tshark, "mergecap"), "-I", "none", "-w", "-", *map(str, self.inputs)]

    def observe(self, frame: int, interface: int) -> None:
        """Frame `frame` of the merge arrived on `interface`: extend the runs."""
        k = bisect.bisect_right(self.first_interface, interface) - 1
        self.counts[k] += 1
        if not self.runs or self.runs[-1][1] != k:
            self.runs.append((frame, k, self.counts[k]))
            self._starts.append(frame)

    def locate(self, frame: int) -> Tuple[str, int]:
        """(file name, frame number in that file) of a frame of the merge."""
        i = bisect.bisect_right(self._starts, frame) - 1
        if i < 0:
            return ("?", frame)
        start, k, first = self.runs[i]
        return (self.files[k].name, first + frame - start)

    def files_summary(self) -> List[dict]:
        return [dict(path=str(f), packets=n) for f, n in zip(self.files, self.counts)]
