"""A stateful fake of the Slack Web API over real HTTP, for tests and benchmarks."""

from .limits import validate_blocks, validate_view
from .server import FakeSlack
from .state import Call, Channel, EphemeralMessage, Message, MessageEdit, StoredFile

__all__ = [
    "Call",
    "Channel",
    "EphemeralMessage",
    "FakeSlack",
    "Message",
    "MessageEdit",
    "StoredFile",
    "validate_blocks",
    "validate_view",
]
