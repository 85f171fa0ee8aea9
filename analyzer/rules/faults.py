"""What the analyzer reports besides the specs' rules: a capture cut short, and its own faults
(each keeps the rest of the report and names its frame)."""
from __future__ import annotations

from typing import List

from .findings import Rule


class CaptureTruncated(Rule):
    id, severity, spec = "capture.truncated", "observation", "pcapng (IETF draft) 4.3"
    level, side = None, None
    title = "The capture file ends in the middle of a packet"
    advice = ("The file ends mid-packet, usually because it was copied while still being written or the capture was "
              "killed; only its last packet is lost, so act only if the end matters.")


# Faults, not spec rules: each keeps the rest of the report and names its frame.
NO_SPEC = "(none: a fault, not a rule)"


class PluginError(Rule):
    id, severity, spec = "analyzer.plugin_error", "error", NO_SPEC
    level, side = None, None
    title = "The Wireshark plugin failed to decode a frame (a bug: please report it)"
    advice = ("Open the frame in Wireshark with the plugins to see the error; reinstall them (python -m dissectors "
              "install) to match this analyzer, and report the frame if it persists.")


class AnalyzerError(Rule):
    id, severity, spec = "analyzer.internal_error", "error", NO_SPEC
    level, side = None, None
    title = "The analyzer failed on a frame (a bug: please report it)"
    advice = ("Report it with the message and a trimmed capture holding the frame; the rest was analyzed, but rules "
              "that needed that frame may have missed findings there.")


FAULTS: List[type] = [PluginError, AnalyzerError]
