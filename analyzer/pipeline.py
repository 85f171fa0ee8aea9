"""One pass over a capture: capture (tshark) -> reconstruction -> rules -> a Result for the
reports (output). The CLI and analyzer.load() both run this."""
from __future__ import annotations

import re
import shutil
import time
import traceback
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .capture import etl, work_folders
from .capture.keys import Keys
from .capture.merge import Merged
from .capture.shards import MergedShardedRun, Sharding, ShardedRun
from .capture.source import AGGREGATOR, CLUSPREP, COL, RSVD, CaptureError, Run, Tshark, check_capture
from .reconstruction import reservations
from .reconstruction.bus import Bus
from .reconstruction.clusprep_sequences import ClusPrepTracker
from .reconstruction.events import SESSION_SETUP, frame_of
from .reconstruction.response_times import ResponseTimes
from .reconstruction.rsvd_sessions import RsvdTracker
from .reconstruction.tables import Tables
from .rules import ALL_RULES, RULE_CLASSES
from .rules.faults import AnalyzerError, CaptureTruncated, PluginError
from .rules.findings import Finding, Findings, NotEvaluated, Rule

# tshark's "Dissector bug, protocol X, in packet N" lines: ours are a PluginError; Wireshark's own
# dissectors' are what Wireshark reported (CaptureResult.wireshark_reported), not rule violations
OUR_PROTOCOLS = re.compile(r"\bprotocol (%s)\b" % "|".join(n.proto.upper() for n in (RSVD, CLUSPREP)))
ERROR_COLUMNS = [(n.proto, COL[n.dissector_error]) for n in (RSVD, CLUSPREP)]


@dataclass
class CaptureResult:
    path: Path
    packets: int = 0
    truncated: bool = False
    smb2_messages: int = 0
    dcerpc_pdus: int = 0
    other_dcerpc_calls: int = 0  # calls of interfaces other than ClusPrep's: counted, not analyzed ...
    unknown_dcerpc_calls: int = 0  # ... of them, on contexts whose bind the capture lacks
    seconds: float = 0.0
    tshark_errors: List[str] = field(default_factory=list)
    wireshark_reported: List[dict] = field(default_factory=list)  # its dissectors' bugs: {frame, message}
    converted: Optional[dict] = None  # a pktmon ETL read as pcapng: what was kept and left out
    rsvd_sessions: List[dict] = field(default_factory=list)
    clusprep_sequences: List[dict] = field(default_factory=list)
    findings: List[Finding] = field(default_factory=list)
    not_evaluated: List[NotEvaluated] = field(default_factory=list)
    encrypted: dict = field(default_factory=dict)  # what stayed encrypted: SMB3 messages, sealed ClusPrep PDUs
    files: List[dict] = field(default_factory=list)  # merged: each file and its packets, in merge order
    first_time: Optional[float] = None  # the capture's first and last packet (epoch seconds)
    last_time: Optional[float] = None
    latency: Dict[tuple, dict] = field(default_factory=dict)  # (table, group) -> count, min, p50, p99, max (ms)
    suppressed: Dict[str, int] = field(default_factory=dict)  # rule -> findings counted but not listed
    io_errors: List[dict] = field(default_factory=list)  # failed I/Os per disk and kind (IoErrors.summary)
    io_error_count: int = 0
    disks: List[dict] = field(default_factory=list)  # each disk's reservation story (reservations.History)


class FrameIndex:
    """Time and TCP stream of each frame that carried SMB2 or DCE/RPC, by frame number, so
    findings can say when they happened and on which connection: 16 bytes a frame, the recent
    ones in memory and the older ones in a temporary file (memory stays flat whatever the
    capture's size; only findings' frames are read back)."""

    KEPT = 1 << 16  # frames held in memory before the older half goes to the file

    def __init__(self):
        self.base = 0  # the frame number of times[0]
        self.times, self.streams = array("d"), array("q")
        self._file = None  # earlier frames: all their times, then (at the end) all their streams
        self._spilled_streams = None

    def add(self, number: int, t: float, stream: Optional[int]) -> None:
        at = number - self.base
        if at == len(self.times):  # the next frame: appended (what growing by one, then setting, does)
            self.times.append(t)
            self.streams.append(-1 if stream is None else stream)
            if len(self.times) > 2 * self.KEPT:
                self._spill(len(self.times) - self.KEPT)
            return
        if at >= len(self.times):
            grow = at + 1 - len(self.times)
            self.times.extend([float("nan")] * grow)
            self.streams.extend([-1] * grow)
            if len(self.times) > 2 * self.KEPT:
                self._spill(len(self.times) - self.KEPT)
            at = number - self.base
        if at >= 0:
            self.times[at], self.streams[at] = t, -1 if stream is None else stream

    def _spill(self, n: int) -> None:
        import tempfile

        if self._file is None:
            self._file, self._spilled_streams = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.times[:n].tofile(self._file)
        self.streams[:n].tofile(self._spilled_streams)
        del self.times[:n], self.streams[:n]
        self.base += n

    def _value(self, number: int, kept: array, spilled):
        at = number - self.base
        if at >= 0:
            return kept[at] if at < len(kept) else None
        if number < 0 or spilled is None:
            return None
        spilled.seek(number * kept.itemsize)
        one = array(kept.typecode)
        one.frombytes(spilled.read(kept.itemsize))
        return one[0]

    def time(self, number: int) -> Optional[float]:
        t = self._value(number, self.times, self._file)
        return None if t is None or t != t else t

    def stream(self, number: int) -> Optional[int]:
        s = self._value(number, self.streams, self._spilled_streams)
        return None if s is None or s < 0 else s

    def close(self) -> None:
        for f in (self._file, self._spilled_streams):
            if f is not None:
                f.close()


def latency_summary(latency: Dict[tuple, ResponseTimes]) -> Dict[tuple, dict]:
    out = {}
    for key, values in sorted(latency.items()):
        out[key] = values.summary()
        values.close()
    return out


def analyze_capture(path: Path, tshark: Tshark, tables: Tables,
                    progress: Optional[Callable[[int], None]] = None, keys: Optional[Keys] = None,
                    merged: Optional[Merged] = None, sharding: Optional[Sharding] = None,
                    shown: Optional[Path] = None) -> CaptureResult:
    """One capture file, or (merged) several read as one timeline; `path` names it in reports
    (`shown` does, when `path` is a conversion of it). With `sharding`, a big capture is dissected
    by several tsharks at once (analyzer.capture.shards). A pktmon ETL file is converted first (analyzer.capture.etl)."""
    if merged is None:
        check_capture(path)
    if merged is None and shown is None and etl.is_etl(path):
        return _from_etl(path, tshark, tables, progress, keys, sharding)
    decrypt = keys.args() if keys else []
    started = time.monotonic()
    tables.start_capture((shown or path).name)
    index = FrameIndex()
    first_time = last_time = None
    time_col = COL["frame.time_epoch"]
    sink = Findings()
    rules = [cls(sink) for cls in ALL_RULES]
    bus = Bus(rules)
    history = reservations.History(tables)
    rsvd_tracker = RsvdTracker(bus, tables, history)
    clusprep_tracker = ClusPrepTracker(bus, tables, history)
    if merged is None and sharding is not None and sharding.applies(path):
        run = ShardedRun(tshark, path, decrypt, sharding.tsharks_for(path), sharding.directory, sharding.executor)
    elif merged is not None and sharding is not None and sharding.applies(*merged.files):
        run = MergedShardedRun(tshark, path, decrypt, sharding.tsharks_for(*merged.files), sharding.directory,
                               sharding.executor,
                               feed=merged.mergecap(tshark))
    else:
        run = Run(tshark, path, decrypt, feed=merged.mergecap(tshark) if merged else None)
    interface = COL["frame.interface_id"]
    encrypted = Encrypted()
    plugin_error, analyzer_error = PluginError(sink), AnalyzerError(sink)
    n = smb2_messages = dcerpc_pdus = 0
    (_, error_a), (_, error_b) = ERROR_COLUMNS
    # FrameIndex.add's commonest case (a later frame, no spill due), inline: one call a frame fewer
    times, streams, spill_at = index.times, index.streams, 2 * index.KEPT
    for cols in run.rows():
        n += 1
        if progress is not None and n % 4096 == 0:
            progress(n)
        if merged is not None:
            merged.observe(int(cols[0]), int(cols[interface] or 0))
        t = None  # the frame's time, handed to frame_of: read once
        if cols[time_col]:
            t = float(cols[time_col])
            if first_time is None:
                first_time = last_time = t
            else:
                if t < first_time:
                    first_time = t
                if t > last_time:
                    last_time = t
        if cols[error_a] or cols[error_b]:
            for proto, col in ERROR_COLUMNS:
                if cols[col]:
                    for text in filter(None, cols[col].split(AGGREGATOR)):
                        plugin_error.report([int(cols[0])], "the %s plugin: %s" % (proto, text), "frame %s" % cols[0])
        try:
            f = frame_of(cols, t)
            if f is None:
                continue
            at = f.number - index.base
            if len(times) <= at < spill_at:  # a later frame, no spill due: as add() would
                if at > len(times):  # the frames between carried neither SMB2 nor DCE/RPC
                    grow = at - len(times)
                    times.extend([float("nan")] * grow)
                    streams.extend([-1] * grow)
                times.append(f.time)
                streams.append(-1 if f.stream is None else f.stream)
            else:
                index.add(f.number, f.time, f.stream)
            smb2 = f.smb2
            smb2_messages += len(smb2)
            dcerpc_pdus += len(f.rpc) + len(f.calls)
            if f.encrypted_smb3 or f.calls or len(smb2) > 1 or smb2 and smb2[0].command == SESSION_SETUP:
                encrypted.frame(f)  # nothing for it to count in the others
            for m in smb2:
                rsvd_tracker.message(m, f.src, f.dst)
            for p in f.rpc:
                clusprep_tracker.pdu(p, f.src, f.dst)
            for c in f.calls:
                clusprep_tracker.call(c, f.src, f.dst)
        except Exception as e:  # noqa: BLE001 - a bug or an input no one foresaw: a finding, not a lost report
            analyzer_error.report([int(cols[0])], _fault(e), "frame %s" % cols[0])
    if progress is not None:
        progress(n)
    sessions = []
    try:
        sessions = rsvd_tracker.finish_capture()
        clusprep_tracker.finish_capture()
        bus.emit("finish")
    except Exception as e:  # noqa: BLE001 - as above
        analyzer_error.report([], "at the end of the capture: " + _fault(e), path.name)
    reported = []
    for frame, line in run.dissector_bugs:
        if OUR_PROTOCOLS.search(line):
            plugin_error.report([frame] if frame else [], line, "frame %s" % frame if frame else path.name)
        else:
            reported.append(dict(frame=frame, message=line))
    result = CaptureResult(path=path, packets=run.frames, truncated=run.truncated, tshark_errors=run.errors,
                           smb2_messages=smb2_messages, dcerpc_pdus=dcerpc_pdus,
                           other_dcerpc_calls=clusprep_tracker.other_calls,
                           unknown_dcerpc_calls=clusprep_tracker.unknown_calls, wireshark_reported=reported)
    if run.truncated:
        CaptureTruncated(sink).report([run.frames] if run.frames else [], "%s ends in the middle of a packet; it was "
                                      "analyzed as far as it goes (%d packets)" % (path.name, run.frames), path.name)
    result.findings = sink.sorted()
    result.suppressed = dict(sink.suppressed)
    result.first_time, result.last_time = first_time, last_time
    result.latency = latency_summary(tables.latency)
    for f in result.findings:
        times = [t for t in (index.time(x) for x in f.frames) if t is not None]
        f.first_time, f.last_time = (min(times), max(times)) if times else (None, None)
        streams = [s for s in (index.stream(x) for x in f.frames) if s is not None]
        f.stream = streams[0] if streams else None
        tables.add("findings", dict(rule=f.rule, severity=f.severity, side=f.side, check=f.check, spec=f.spec,
                                    time=f.first_time, first_frame=f.frames[0] if f.frames else None,
                                    frames=",".join(str(x) for x in f.frames), message=f.message,
                                    subject=f.subject, stream=f.stream))
    index.close()
    if merged is not None:
        for f in result.findings:
            f.where = [merged.locate(x) for x in f.frames]
        result.files = merged.files_summary()
    result.rsvd_sessions = sessions
    result.io_errors, result.io_error_count = rsvd_tracker.io_errors.summary(), rsvd_tracker.io_errors.total
    result.disks = history.stories()
    result.clusprep_sequences = [dict(conversation=c.id, stream=c.stream, client=c.client, server=c.server,
                                      interfaces=c.interfaces, sealed=c.sealed, calls=c.calls,
                                      outcomes=dict(sorted(c.outcomes.items())),
                                      sequence=[dict(frame=s[0], interface=s[1], method=s[2], result=s[3],
                                                     latency_ms=s[4], outcome=s[5]) for s in c.sequence])
                                 for c in clusprep_tracker.conversations.values() if c.calls or c.bind_levels]
    result.not_evaluated = not_evaluated(rules, sink, rsvd_tracker, clusprep_tracker, keys) + encrypted.not_evaluated(rules, keys)
    result.encrypted = encrypted.summary()
    result.seconds = time.monotonic() - started
    return result


def _from_etl(path: Path, tshark: Tshark, tables: Tables, progress, keys, sharding) -> CaptureResult:
    """A pktmon ETL file: its packets as pcapng in a work folder of this run, analyzed under its name."""
    folder = work_folders.make("etl", str(sharding.directory) if sharding and sharding.directory else None)
    try:
        pcapng = Path(folder) / (path.stem + ".pcapng")
        try:
            done = etl.write_pcapng(path, pcapng)
        except etl.EtlError as e:
            raise CaptureError(str(e)) from None
        result = analyze_capture(pcapng, tshark, tables, progress, keys, sharding=sharding, shown=path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result.path = path
    result.tshark_errors = [line.replace(str(pcapng), str(path)) for line in result.tshark_errors]
    result.converted = dict(format="pktmon ETL", packets=done.packets, logged_short=done.short,
                            later_appearances=done.appearances, left_out=dict(sorted(done.skipped.items())))
    return result


SEALED = "the stubs are sealed (PKT_PRIVACY) and no key decrypted them"
SEALED_TRIED = (SEALED + "; a password or keytab was given but did not decrypt them (wrong password, another "
                "account, or the handshake is not in the capture)")
SEALED_UNLOCK = {  # by the bind's auth_type (MS-RPCE 2.2.1.1.7)
    10: "--nt-password PASSWORD (the conversation authenticated with NTLM)",
    16: "--keytab FILE holding the server's keys (the conversation authenticated with Kerberos)",
    None: "--nt-password PASSWORD (NTLM), or --keytab FILE (Kerberos)",
}
MID_CONVERSATION = ("the conversation's bind is not in the capture (it started mid-conversation): the calls "
                    "before it set the state these rules judge")
INHERITED = ("its calls go to a DCOM object (by IPID) first seen on a conversation whose bind is not in the "
             "capture: the calls before it set the state these rules judge")
UNBOUND = ("%d calls on contexts whose bind or alter_context is not in the capture: their interface, method and "
           "parameters are unknown, listed by opnum")
CREATE_NOT_CAPTURED = "the open's CREATE is not in the capture (opened before the capture started)"


def not_evaluated(rules: List[Rule], sink: Findings, rsvd_tracker: RsvdTracker,
                  clusprep_tracker: ClusPrepTracker, keys: Optional[Keys] = None) -> List[NotEvaluated]:
    """Each subject the capture could not judge fully: which rules, why, and what would help."""
    out = []
    needs_create = sorted(r.id for r in rules if r.needs_create)
    for o in rsvd_tracker.pre_capture:
        out.append(NotEvaluated(o.label, needs_create, CREATE_NOT_CAPTURED))
    needs_start = sorted(r.id for r in rules if r.needs_start)
    out += [NotEvaluated(c.id, needs_start, MID_CONVERSATION)
            for c in clusprep_tracker.conversations.values() if not c.started and (c.calls or c.bind_levels)]
    out += [NotEvaluated(c.id, needs_start, INHERITED)
            for c in clusprep_tracker.conversations.values() if c.started and c.inherited]
    needs_stub = sorted(r.id for r in rules if r.needs_stub)
    needs_bind = sorted(r.id for r in rules if r.needs_stub or r.needs_bind)
    out += [NotEvaluated(c.id, needs_bind, UNBOUND % c.unbound_calls)
            for c in clusprep_tracker.conversations.values() if c.unbound_calls]
    sealed = SEALED_TRIED if keys and (keys.nt_password is not None or keys.keytab) else SEALED
    out += [NotEvaluated(c.id, needs_stub, sealed, SEALED_UNLOCK.get(c.auth_type, SEALED_UNLOCK[None]))
            for c in clusprep_tracker.conversations.values() if c.sealed]
    return out + sink.not_evaluated()


SMB3_UNLOCK = "--smb-key %s:SESSION_KEY (the session's key, 16 bytes of hex; see README, Keys)"
SMB3_SETUP_UNLOCK = "a capture that holds the session's SESSION_SETUP (e.g. --merge with the earlier ring-buffer file)"
SMB3_WRONG_KEY = ("the right session key for %s: the 16-byte key of that session, from the client or server that made "
                  "it (README, Keys); a key of another session, or one printed in another byte order, does not fit")
MAX_SESSIONS = 1 << 16  # SESSION_SETUP answers remembered


class Encrypted:
    """What the capture held that no key decrypted: SMB 3 messages per session, sealed ClusPrep PDUs."""

    def __init__(self):
        self.smb3: Dict[int, List[int]] = {}  # session id -> [messages, first frame, last frame]
        self.setups: Dict[int, int] = {}  # session id -> the frame of its last SESSION_SETUP answer
        self.sealed_pdus = 0

    def frame(self, f) -> None:
        for m in f.smb2:
            if m.command == SESSION_SETUP and m.is_response and m.session_id and (
                    m.session_id in self.setups or len(self.setups) < MAX_SESSIONS):
                self.setups[m.session_id] = f.number
        for sid in f.encrypted_smb3:
            s = self.smb3.setdefault(sid, [0, f.number, f.number])
            s[0] += 1
            s[2] = f.number
        if f.calls:
            self.sealed_pdus += sum(1 for c in f.calls if c.encrypted and c.stub is None)

    def summary(self) -> dict:
        return dict(smb3_messages=sum(s[0] for s in self.smb3.values()),
                    smb3_sessions=["0x%016X" % sid for sid in sorted(self.smb3)], sealed_dcerpc_pdus=self.sealed_pdus)

    def not_evaluated(self, rules: List[Rule], keys: Optional[Keys]) -> List[NotEvaluated]:
        rsvd = sorted(r.id for r in rules if r.id.startswith("rsvd."))
        given = keys.smb_session_ids() if keys else set()
        out = []
        for sid, (n, first, last) in sorted(self.smb3.items()):
            what = "%d encrypted SMB 3 messages (frames %d-%d) that no key decrypted: RSVD inside them is invisible" % (
                n, first, last)
            setup = self.setups.get(sid)
            if sid in given and setup is not None:  # Wireshark had all it needs but the right key
                out.append(NotEvaluated("SMB 3 session 0x%016X" % sid, rsvd, what + "; the key given for it does not "
                                        "decrypt them, although its SESSION_SETUP is in the capture (frame %d)"
                                        % setup, SMB3_WRONG_KEY % ("0x%016X" % sid)))
            elif setup is None:  # measured on 4.0, 4.4 and 4.6: no key decrypts a session without it
                out.append(NotEvaluated("SMB 3 session 0x%016X" % sid, rsvd, what + "; %sWireshark decrypts a session "
                                        "only once it has seen its SESSION_SETUP, which is not in the capture"
                                        % ("its key was given, but " if sid in given else ""), SMB3_SETUP_UNLOCK))
            else:
                out.append(NotEvaluated("SMB 3 session 0x%016X" % sid, rsvd, what, SMB3_UNLOCK % ("0x%016X" % sid)))
        return out


def _fault(e: Exception) -> str:
    """One line naming the exception and where it was raised, for a bug report."""
    tb = traceback.extract_tb(e.__traceback__)
    where = ("%s:%d" % (Path(tb[-1].filename).name, tb[-1].lineno)) if tb else "?"
    return "%s: %s (at %s; the rest of the capture was analyzed)" % (type(e).__name__, str(e)[:200], where)


__all__ = ["analyze_capture", "CaptureResult", "CaptureError", "RULE_CLASSES"]
