"""OpenTelemetry spans for every message (``tactor[otel]``): imported only by a system made
while ``opentelemetry-api`` is installed (see :func:`~tactor.actors.telemetry.with_tracing`).

Spans follow OpenTelemetry's semantic conventions. Calls are RPC: a CLIENT span
``endpoint/method`` on the caller, a SERVER span on the provider, with
``rpc.system="tactor"``, ``rpc.service`` (the endpoint) and ``rpc.method``; a
broadcast is one CLIENT span with a SERVER span per provider. Tells and events
are messaging: a PRODUCER span ``tell endpoint`` / ``publish topic`` and a CONSUMER
span ``process endpoint`` / ``process topic``, with ``messaging.system="tactor"``,
``messaging.destination.name``, ``messaging.operation.type`` and
``messaging.message.id``. A failure sets the span's status to ERROR and
``error.type``. The W3C trace context travels in the envelope (``"tc"``) through the
configured propagator, so calls made while handling a message are children of its
span: a call from process A to B to C is one trace.

With no SDK configured (the API's proxy or no-op provider) no span is made (an SDK
configured later is seen within a second): a
message carries no trace context, unless one came in with the message being
handled, which is passed on (a process without an SDK does not break a trace;
a context attached by other code is not looked for).
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
)

from .envelope import Request
from .telemetry import Carrier, Telemetry

__all__ = ["Tracing"]

_SYSTEM = "tactor"


def _rpc(endpoint: str, method: str, msg_id: str) -> dict[str, Any]:
    return {
        "rpc.system": _SYSTEM,
        "rpc.service": endpoint,
        "rpc.method": method,
        "tactor.message.id": msg_id,
    }


def _messaging(destination: str, operation: str, kind: str, msg_id: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": _SYSTEM,
        "messaging.destination.name": destination,
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
    }
    if msg_id is not None:
        attributes["messaging.message.id"] = msg_id
    return attributes


_NO_SDK = (ProxyTracerProvider, NoOpTracerProvider)
#: Seconds between two looks for an SDK configured after the system was made.
_RECHECK = 1.0


def _end(span: Span, error: str | None, description: str | None = None) -> None:
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, description or error))
    span.end()


def _end_with(span: Span, exc: BaseException | None) -> None:
    """End ``span`` of a caller, publisher or subscriber, which raised ``exc`` (if not None)."""
    if exc is not None:
        if isinstance(exc, Exception):  # not CancelledError (opentelemetry-api 1.20 wants one)
            span.record_exception(exc)
        _end(span, type(exc).__qualname__, str(exc))
    else:
        span.end()


class Tracing(Telemetry):
    """Spans around ``inner``'s hooks (the node's :class:`~tactor.actors.stats.Stats`)."""

    __slots__ = ("_configured", "_inner", "_passing", "_recheck", "_tracer")

    def __init__(self, inner: Telemetry) -> None:
        self._inner = inner
        # A proxy until an SDK is configured, then that SDK's tracer: order does not matter.
        self._tracer = trace.get_tracer("tactor")
        self._configured = False
        self._recheck = 0.0
        self._passing = 0  # no SDK: contexts that came with messages being handled now

    def _off(self) -> bool:
        """No SDK configured: make no spans. Once one is, it stays (the API sets the global
        provider once); until then, asked again at most every second (asking reads
        ``os.environ``, which costs more than the rest of the hook)."""
        if self._configured:
            return False
        now = time.monotonic()
        if now < self._recheck:
            return True
        self._recheck = now + _RECHECK
        self._configured = not isinstance(trace.get_tracer_provider(), _NO_SDK)
        return not self._configured

    def _outgoing(self, span: Span | None) -> Carrier | None:
        """The trace context to send with a message whose span is ``span`` (None: the
        context of the message being handled, if it came with one)."""
        context = trace.set_span_in_context(span) if span is not None else None
        if not (span or trace.get_current_span()).get_span_context().is_valid:
            return None  # nothing to carry
        carrier: Carrier = {}
        propagate.inject(carrier, context=context)
        return carrier or None

    def _incoming(
        self, name: str, kind: SpanKind, carrier: Carrier | None, attributes: dict[str, Any]
    ) -> tuple[Span | None, Any]:
        """A span for a message received with ``carrier``, current until the token ends."""
        if self._off():  # no span; the context that came is passed on by calls it makes
            if not carrier:
                return None, None
            self._passing += 1
            return None, otel_context.attach(propagate.extract(carrier))
        # No carrier: a root span, not a child of whatever started the runner's task.
        parent = propagate.extract(carrier) if carrier else otel_context.Context()
        span = self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        return span, otel_context.attach(trace.set_span_in_context(span))

    # -- callers -----------------------------------------------------------------

    def sending(
        self, kind: str, endpoint: str, method: str, msg_id: str
    ) -> tuple[Any, Carrier | None]:
        inner, _ = self._inner.sending(kind, endpoint, method, msg_id)
        if self._off():
            return (inner, None), self._outgoing(None) if self._passing else None
        if kind == "tell":
            attributes = _messaging(endpoint, "tell", "send", msg_id)
            attributes["rpc.method"] = method
            span = self._tracer.start_span(
                f"tell {endpoint}", kind=SpanKind.PRODUCER, attributes=attributes
            )
        else:
            attributes = _rpc(endpoint, method, msg_id)
            if kind == "broadcast":
                attributes["tactor.broadcast"] = True
            span = self._tracer.start_span(
                f"{endpoint}/{method}", kind=SpanKind.CLIENT, attributes=attributes
            )
        return (inner, span), self._outgoing(span)

    def sent(self, token: Any, error: BaseException | None) -> None:
        inner, span = token
        self._inner.sent(inner, error)
        if span is not None:
            _end_with(span, error)

    # -- providers ---------------------------------------------------------------

    def handling(self, request: Request, provider: str) -> Any:
        inner = self._inner.handling(request, provider)
        if request.trace is None and self._off():
            return inner, None, None
        if request.kind == "call":
            attributes = _rpc(request.endpoint, request.method, request.id)
            name, kind = f"{request.endpoint}/{request.method}", SpanKind.SERVER
        else:
            attributes = _messaging(request.endpoint, "process", "process", request.id)
            attributes["rpc.method"] = request.method
            name, kind = f"process {request.endpoint}", SpanKind.CONSUMER
        attributes["tactor.provider"] = provider
        span, attached = self._incoming(name, kind, request.trace, attributes)
        return inner, span, attached

    def handled(self, token: Any, error: str | None) -> None:
        inner, span, attached = token
        if attached is not None:
            otel_context.detach(attached)
            if span is None:
                self._passing -= 1
        self._inner.handled(inner, error)
        if span is not None:
            _end(span, error)

    # -- events ------------------------------------------------------------------

    def publishing(self, topic: str, type_name: str) -> tuple[Any, Carrier | None]:
        inner, _ = self._inner.publishing(topic, type_name)
        if self._off():
            return (inner, None), self._outgoing(None) if self._passing else None
        attributes = _messaging(topic, "publish", "send", None)
        attributes["tactor.event.type"] = type_name
        span = self._tracer.start_span(
            f"publish {topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        return (inner, span), self._outgoing(span)

    def published(self, token: Any, error: BaseException | None) -> None:
        inner, span = token
        self._inner.published(inner, error)
        if span is not None:
            _end_with(span, error)

    def receiving(self, topic: str, subscriber: str, carrier: Carrier | None) -> Any:
        inner = self._inner.receiving(topic, subscriber, carrier)
        if carrier is None and self._off():
            return inner, None, None
        attributes = _messaging(topic, "process", "process", None)
        attributes["tactor.subscriber"] = subscriber
        span, attached = self._incoming(f"process {topic}", SpanKind.CONSUMER, carrier, attributes)
        return inner, span, attached

    def received(self, token: Any, error: BaseException | None) -> None:
        inner, span, attached = token
        if attached is not None:
            otel_context.detach(attached)
            if span is None:
                self._passing -= 1
        self._inner.received(inner, error)
        if span is not None:
            _end_with(span, error)
