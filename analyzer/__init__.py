"""Offline analyzer for RSVD (shared VHDX) and ClusPrep (MS-CSVP) captures.

    import analyzer
    cap = analyzer.load("trace.pcapng")
    cap.findings, cap.sessions, cap.rsvd_operations, cap.scsi_commands, cap.clusprep_calls  # DataFrames

The command line (`analyze`, or `python -m analyzer`) runs the same pipeline: tshark with
the generated plugins (analyzer.source) -> typed events (analyzer.events) -> RSVD sessions
and ClusPrep call sequences (analyzer.rsvd_sessions, analyzer.clusprep_sequences) -> the
spec rules (analyzer.rules_rsvd, analyzer.rules_clusprep) -> reports (analyzer.report).
"""
from .api import Capture, load

__all__ = ["Capture", "load"]
