"""A third protocol, defined in the tests only, to prove the generator is closed to new
protocols and transports: a toy request/answer protocol on UDP port 40404.

It uses the vocabulary (`message`, `Named`, rules) and a declared port binding, nothing
else; generating it needs no change to the generator or the shared templates.
"""
from construct import Bytes, Enum, Hex, Int8ul, Int16ul, Int32ul, this

from dissectors.vocabulary.protocol import PortEntry, Protocol, Summary
from dissectors.vocabulary.wire import FieldName, Named, message, must_be_at_most, Checked

PORT = 40404
KINDS = dict(PING=1, PONG=2, ERROR=3)
SEQUENCE = FieldName("sequence", "Sequence", "The sender's counter, echoed in the answer")

TOY_MESSAGE = message(
    "TOY_MESSAGE", "message", "2.1",
    "Kind" / Enum(Int8ul, **KINDS) * "What the datagram is.",
    "Flags" / Hex(Int8ul) * "Reserved for later; zero.",
    "Sequence" / Named(SEQUENCE, Int32ul) * "The sender's counter.",
    "Length" / Checked(Int16ul, must_be_at_most(64, "TOY 2.1")) * "Bytes of Payload that follow (64 at most).",
    "Payload" / Bytes(this.Length) * "The echoed bytes.",
)

PROTOCOL = Protocol(
    name="toyudp",
    title="Toy echo protocol (test only)",
    spec="TOY",
    module=__name__,
    structures=[TOY_MESSAGE],
    messages=[TOY_MESSAGE],
    binding="port",
    ports=[PortEntry("udp", PORT, TOY_MESSAGE)],
    summaries={"message": Summary("Kind", "toyudp.message.kind")},
)
