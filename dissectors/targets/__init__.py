"""Targets: what the model is rendered into. `lua` (Wireshark Lua plugins, the only place
that knows Lua syntax) and `docs` (the field reference)."""
