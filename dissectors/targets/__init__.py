"""Targets: what the model is rendered into, each from its own templates/<target>/: `lua`
(Wireshark Lua plugins, the only place that knows Lua syntax) and `docs` (the field reference).
`registry` lists them for the driver."""
