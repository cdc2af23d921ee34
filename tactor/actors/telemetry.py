"""The one interface through which the runtime reports what it does: metrics and traces.

``actors/`` calls a :class:`Telemetry` at four places of a message's life: a
caller sends a call, tell or broadcast (:meth:`~Telemetry.sending`, ended by
:meth:`~Telemetry.sent`); a provider handles a request (:meth:`~Telemetry.handling`,
:meth:`~Telemetry.handled`); a node publishes an event; a subscriber handles one.
Each start returns a token that its end gets back. The base class does nothing;
:class:`~tactor.actors.stats.Stats` counts (``system.stats()``), and the
OpenTelemetry tracing of :mod:`tactor.actors.tracing` wraps it when
``opentelemetry-api`` is installed. Nothing optional is imported here: only a
system made while it is installed imports it.

The trace context a tracer adds to a message travels in the envelope's ``"tc"``
field (``{"traceparent": ..., "tracestate": ...}``, W3C Trace Context); a
message without one costs nothing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..errors import ConfigError
from .envelope import Request

__all__ = ["Carrier", "Telemetry", "with_tracing"]

#: The W3C trace context headers a traced message carries (the envelope's ``"tc"``).
Carrier = dict[str, str]


class Telemetry:
    """Hooks called by the runtime for every message; this base does nothing and costs
    one method call per hook. Tokens are whatever a start returns, given to its end."""

    __slots__ = ()

    def sending(
        self, kind: str, endpoint: str, method: str, msg_id: str
    ) -> tuple[Any, Carrier | None]:
        """A call, tell or broadcast (``kind``) is about to be sent: a token, and the trace
        context to send with it (or None)."""
        return None, None

    def sent(self, token: Any, error: BaseException | None) -> None:
        """The call (its reply in), tell (accepted) or broadcast (gathered) ended; ``error``
        is what it raised to its caller."""

    def handling(self, request: Request, provider: str) -> Any:
        """``provider`` starts handling ``request`` (the handler runs after this returns)."""

    def handled(self, token: Any, error: str | None) -> None:
        """The request was handled; ``error`` is the failure's type name, if it failed."""

    def publishing(self, topic: str, type_name: str) -> tuple[Any, Carrier | None]:
        """An event is about to be published: a token, and the trace context to send with it."""
        return None, None

    def published(self, token: Any, error: BaseException | None) -> None:
        """The event was published (or publishing raised ``error``)."""

    def receiving(self, topic: str, subscriber: str, carrier: Carrier | None) -> Any:
        """``subscriber`` starts handling an event on ``topic``."""

    def received(self, token: Any, error: BaseException | None) -> None:
        """The event handler returned (or raised ``error``)."""


def otel_installed() -> bool:
    """Whether ``opentelemetry-api`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except ModuleNotFoundError:
        return False


def with_tracing(inner: Telemetry, wanted: bool | None) -> Telemetry:
    """``inner``, wrapped in OpenTelemetry tracing if ``wanted`` (None: if installed)."""
    if wanted is False or (wanted is None and not otel_installed()):
        return inner
    try:
        from .tracing import Tracing
    except ImportError as exc:
        raise ConfigError(
            f"ActorSystem(tracing=True) needs opentelemetry-api ({exc}): pip install 'tactor[otel]'"
        ) from None
    return Tracing(inner)
