"""Offline analyzer for RSVD (shared VHDX) and ClusPrep (MS-CSVP) captures.

    import analyzer
    cap = analyzer.load("trace.pcapng")
    cap.findings, cap.sessions, cap.rsvd_operations, cap.scsi_commands, cap.clusprep_calls  # DataFrames

The command line (`analyze`, or `python -m analyzer`) runs the same pipeline: tshark with
the generated plugins (analyzer.capture.source) -> typed events (analyzer.reconstruction.events) -> RSVD sessions
and ClusPrep call sequences (analyzer.reconstruction.rsvd_sessions, analyzer.reconstruction.clusprep_sequences) -> the
spec rules (analyzer.rules.rsvd, analyzer.rules.clusprep) -> reports (analyzer.output.report).
"""
from .output.api import Capture, load

__all__ = ["Capture", "load"]
