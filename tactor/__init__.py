"""tactor: typed actors with remote interfaces.

Subclass :class:`Actor`; the type hints of its ``async def`` methods are the
marshalling schema. An :class:`ActorSystem` serves every actor as an RPC
endpoint over a pluggable transport (``memory://`` by default, Redis across
processes and machines). Importing tactor starts nothing and connects nothing.
"""

from . import errors
from .actors import (
    Actor,
    ActorRef,
    ActorSystem,
    AsyncQueue,
    BlockingQueue,
    BlockingSystem,
    BroadcastResult,
    EventSubscription,
    Outcome,
    deadline,
    expose,
    init,
    json_schema,
    publish,
    queue,
    remote,
    shutdown,
    stub,
    subscribe,
    subscriber,
    system,
    topic,
)
from .codecs import Codec, JsonCodec, TypeCodec
from .errors import (
    CallError,
    CallTimeout,
    DecodeError,
    EncodeError,
    InvalidArguments,
    MailboxFull,
    NoProvider,
    NotRunning,
    PayloadTooLarge,
    RemoteError,
    SchemaError,
    TactorError,
    TransportClosed,
    TransportError,
    UnknownMethod,
    WouldBlock,
)
from .transports import Transport, open_transport

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "AsyncQueue",
    "BlockingQueue",
    "BlockingSystem",
    "BroadcastResult",
    "CallError",
    "CallTimeout",
    "Codec",
    "DecodeError",
    "EncodeError",
    "EventSubscription",
    "InvalidArguments",
    "JsonCodec",
    "MailboxFull",
    "NoProvider",
    "NotRunning",
    "Outcome",
    "PayloadTooLarge",
    "RemoteError",
    "SchemaError",
    "TactorError",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TypeCodec",
    "UnknownMethod",
    "WouldBlock",
    "__version__",
    "deadline",
    "errors",
    "expose",
    "init",
    "json_schema",
    "open_transport",
    "publish",
    "queue",
    "remote",
    "shutdown",
    "stub",
    "subscribe",
    "subscriber",
    "system",
    "topic",
]
