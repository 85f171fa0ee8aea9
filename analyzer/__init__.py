"""Offline analyzer for RSVD (shared VHDX) and ClusPrep (MS-CSVP) captures.

    import analyzer
    cap = analyzer.load("trace.pcapng")
    cap.findings, cap.sessions, cap.rsvd_operations, cap.scsi_commands, cap.clusprep_calls  # DataFrames

The command line (`analyze`, or `python -m analyzer`) runs the same pipeline (analyzer.pipeline),
a folder per stage: capture (tshark with the generated plugins) -> reconstruction (typed events,
RSVD sessions, ClusPrep call sequences) -> rules (the specs' rules, by topic) -> output (reports,
the CLI, this load()).
"""
from .output.api import Capture, load

__all__ = ["Capture", "load"]
