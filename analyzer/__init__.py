"""Offline analyzer for RSVD and ClusPrep captures.

Not built yet: issue 5 ("Analyzer: `analyze trace.pcapng`") fills this package. It
will read captures through tshark with the plugins in dissectors/lua/.
"""
