"""MS-RSVD's structures on UDP ports (test only): what the C target can render today (the port
binding) over the richest structures we have, so both targets decode the same real bytes.
Requests and open contexts only: a response reads its request's values, which a port binding
never matches."""
from dissectors.definitions import rsvd
from dissectors.vocabulary.protocol import PortEntry, Protocol, Summary

TUNNEL_PORT, CONTEXT_PORT = 40406, 40407

PROTOCOL = Protocol(
    name="rsvdudp",
    title="MS-RSVD structures on UDP (test only)",
    spec=rsvd.SPEC,
    module=__name__,
    structures=rsvd.STRUCTURES,
    messages=rsvd.MESSAGES,
    binding="port",
    ports=[PortEntry("udp", TUNNEL_PORT, rsvd.TUNNEL_REQUEST),
           PortEntry("udp", CONTEXT_PORT, rsvd.SVHDX_OPEN_DEVICE_CONTEXT)],
    options=[o for o in rsvd.PROTOCOL.options if o.name == "scsi"],
    # the Info column as the SMB2 binding's: the operation, then the CDB's details (LBA, length, ...)
    summaries={"tunnel_request": Summary("Header.OperationCode", "rsvdudp.header.operation_code",
                                         rsvd.TUNNEL_REQUEST_INFO)},
)
