"""Every error tactor raises, in one tree under :class:`TactorError`.

```
TactorError
├── SchemaError            an actor class or a type cannot be marshalled (raised at definition)
├── CodecError             a value could not be turned into bytes or back
│   ├── EncodeError        a value does not fit the type it is sent as
│   └── DecodeError        bytes are not valid JSON, or do not fit the expected type
│       ├── InvalidArguments   the provider rejected a call's arguments
│       └── UnreadableItem     a typed queue's get took an item it cannot read (.payload)
├── CallError              a call, tell or broadcast did not succeed
│   ├── CallTimeout        (also a TimeoutError) no reply before the deadline
│   │   └── MailboxFull    the mailbox stayed full until the deadline
│   ├── NoProvider         nobody serves the endpoint (or the addressed provider is gone)
│   ├── UnknownMethod      the provider has no such method (interface versions differ)
│   ├── PayloadTooLarge    a message is over the system's ``max_payload``
│   ├── DeadLettered       the call was moved to the dead letters instead of being handled
│   └── RemoteError        the actor method raised; carries type name, message, traceback
├── TransportError         the transport failed (connection lost or refused)
│   └── TransportClosed    the transport or system is closed
├── ConfigError            (also a ValueError) a URL, option, setting, topic or name is invalid
├── NotRunning             the system was used before start() or after close()
├── SpawnError             a provider process could not be started
└── WouldBlock             a blocking call was made from inside an event loop
```

Exception types that an actor class lists in ``errors=`` are part of its
interface: when its methods raise them, callers get the same type back instead
of :class:`RemoteError`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CallError",
    "CallTimeout",
    "CodecError",
    "ConfigError",
    "DeadLettered",
    "DecodeError",
    "EncodeError",
    "InvalidArguments",
    "MailboxFull",
    "NoProvider",
    "NotRunning",
    "PayloadTooLarge",
    "RemoteError",
    "SchemaError",
    "SpawnError",
    "TactorError",
    "TransportClosed",
    "TransportError",
    "UnknownMethod",
    "UnreadableItem",
    "WouldBlock",
]


class TactorError(Exception):
    """Root of every error that tactor raises."""


class SchemaError(TactorError, TypeError):
    """An actor class, method or type hint cannot be used as a marshalling schema.

    Raised when the class is defined (or when a system first meets a type
    that needs a codec it does not have). The message names the class, the
    method and the parameter.
    """


class CodecError(TactorError):
    """A value could not be encoded to bytes or decoded from them."""


class EncodeError(CodecError, TypeError):
    """A value does not fit the type it is being sent as."""


class DecodeError(CodecError, ValueError):
    """Bytes are not valid JSON, or the data does not fit the expected type.

    ``errors`` lists each problem as ``"path: what was wrong"``, for example
    ``"items[0].qty: expected int, got str"``.
    """

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        if self.errors:
            message = f"{message}: " + "; ".join(self.errors)
        super().__init__(message)


class InvalidArguments(DecodeError):
    """The provider could not decode a call's arguments against the method's schema."""


class UnreadableItem(DecodeError):
    """A typed queue's ``get`` took an item that does not fit the queue's item type (put
    by another program or version, or through an untyped handle).

    The item is out of the queue (its task counted done); ``payload`` holds its bytes
    (JSON), to be read another way, kept or put elsewhere: nothing is lost.
    """

    def __init__(self, message: str, errors: Sequence[str] = (), *, payload: bytes) -> None:
        super().__init__(message, errors)
        self.payload = payload


class CallError(TactorError):
    """A call, tell or broadcast did not succeed."""


class CallTimeout(CallError, TimeoutError):
    """No reply arrived before the call's deadline."""


class MailboxFull(CallTimeout):
    """The target mailbox stayed full until the deadline: the providers are overloaded."""


class NoProvider(CallError, LookupError):
    """No live provider serves the endpoint, or the addressed provider is gone."""


class UnknownMethod(CallError, AttributeError):
    """The provider's actor class has no such endpoint method.

    Usually the caller and the provider run different versions of the interface.
    """


class PayloadTooLarge(CallError, ValueError):
    """A request or reply is larger than the system's ``max_payload`` bytes."""


class DeadLettered(CallError):
    """The call was moved to its endpoint's dead letters instead of being handled.

    Its handling was attempted ``max_deliveries`` times and never finished (each
    provider that took it died or was stopped mid-way). The message says how
    often; :meth:`ActorSystem.dead_letters` lists the letter and
    :meth:`ActorSystem.replay` puts it back once the cause is fixed (the replayed
    call's answer then goes nowhere: this caller was already told).
    """


class RemoteError(CallError):
    """An actor method raised an exception that is not part of its interface.

    ``remote_type`` is the qualified name of the remote exception's class,
    ``remote_message`` its message and ``remote_traceback`` the formatted
    traceback from the provider's process.
    """

    def __init__(
        self,
        remote_type: str,
        remote_message: str,
        remote_traceback: str = "",
        *,
        endpoint: str = "",
        method: str = "",
        provider: str = "",
    ) -> None:
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.endpoint = endpoint
        self.method = method
        self.provider = provider
        where = f" in {endpoint}.{method}" if endpoint else ""
        who = f" (provider {provider})" if provider else ""
        super().__init__(f"{remote_type}: {remote_message}{where}{who}")

    def __reduce__(self) -> str | tuple[object, ...]:
        return (type(self), (self.remote_type, self.remote_message, self.remote_traceback))


class TransportError(TactorError, ConnectionError):
    """The transport failed: a connection was lost, refused or misconfigured."""


class TransportClosed(TransportError):
    """The transport or the system is closed."""


class ConfigError(TactorError, ValueError):
    """A transport URL, an option, a setting, a topic or a queue name is invalid.

    The message names the option and the value, and says what is accepted.
    """


class NotRunning(TactorError, RuntimeError):
    """The system was used before ``start()`` (or ``async with``) or after ``close()``."""


class SpawnError(TactorError, RuntimeError):
    """A provider process could not be started: its class could not be imported or
    constructed there, or the process exited before it served. The message says which."""


class WouldBlock(TactorError, RuntimeError):
    """A blocking call was made from inside a running event loop.

    It would stall that loop (or deadlock, in the system's own loop thread):
    inside ``async`` code use the async API — ``await system.aio.call(...)``.
    """
