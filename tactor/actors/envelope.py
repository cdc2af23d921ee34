"""The wire envelopes: requests, replies and events, as JSON objects.

Arguments, results and event bodies are already in wire form (see
:meth:`tactor.codecs.Codec.to_wire`), so a whole message is serialised with
one ``dumps`` and parsed with one ``loads``. Parsing validates the envelope
itself; anything that does not fit raises :class:`~tactor.errors.DecodeError`.

Request: ``{"v":1, "k":"call"|"tell", "id", "ep", "m", "a":{...}, "r":reply-to|null,
"d":deadline-epoch-seconds|null, "s":sender}``, plus ``"pa":[...]`` positional
arguments from callers that know the endpoint only by name, and ``"tc":{"traceparent",
"tracestate"}`` (W3C Trace Context) from a traced caller (see :mod:`tactor.actors.telemetry`)
Reply:   ``{"v":1, "k":"reply", "id", "p":provider, "ok":true, "r":result}``
         or ``{"v":1, "k":"reply", "id", "p", "ok":false, "e":{"code", "type", "message", ...}}``
Event:   ``{"v":1, "k":"event", "t":topic, "ty":type-name, "b":body}``, plus ``"tc"`` when traced

The optional fields are absent when unused: an untraced message carries no ``"tc"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import DecodeError

__all__ = [
    "VERSION",
    "Event",
    "Reply",
    "Request",
    "parse_event",
    "parse_reply",
    "parse_request",
    "request_wire",
]

VERSION = 1


@dataclass(slots=True)
class Request:
    kind: str  # "call" or "tell"
    id: str
    endpoint: str
    method: str
    args: dict[str, Any]
    reply_to: str | None
    deadline: float | None
    sender: str
    positional: list[Any] | None = None  # from callers that know no parameter names
    trace: dict[str, str] | None = None  # W3C trace context, from a traced caller

    def __str__(self) -> str:
        """How logs name it: ``pricing.quote (message 1a2b.7 from 1a2b)``."""
        return f"{self.endpoint}.{self.method} (message {self.id} from {self.sender})"

    def to_wire(self) -> dict[str, Any]:
        return request_wire(
            self.kind,
            self.id,
            self.endpoint,
            self.method,
            self.args,
            self.reply_to,
            self.deadline,
            self.sender,
            self.positional,
            self.trace,
        )


def request_wire(
    kind: str,
    ident: str,
    endpoint: str,
    method: str,
    args: dict[str, Any],
    reply_to: str | None,
    deadline: float | None,
    sender: str,
    positional: list[Any] | None = None,
    trace: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The wire form of a request (what :meth:`Request.to_wire` returns, without the object)."""
    wire = {
        "v": VERSION,
        "k": kind,
        "id": ident,
        "ep": endpoint,
        "m": method,
        "a": args,
        "r": reply_to,
        "d": deadline,
        "s": sender,
    }
    if positional is not None:
        wire["pa"] = positional
    if trace is not None:
        wire["tc"] = trace
    return wire


@dataclass(slots=True)
class Reply:
    id: str
    provider: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def failure_type(self) -> str | None:
        """None for a result, else the type of its error (``"invalid_arguments"``, a class name)."""
        return None if self.ok else str((self.error or {}).get("type", "remote"))

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": VERSION, "k": "reply", "id": self.id, "p": self.provider}
        if self.ok:
            body["ok"] = True
            body["r"] = self.result
        else:
            body["ok"] = False
            body["e"] = self.error
        return body


@dataclass(slots=True)
class Event:
    topic: str
    type_name: str
    body: Any
    trace: dict[str, str] | None = None  # W3C trace context, from a traced publisher

    def to_wire(self) -> dict[str, Any]:
        wire = {"v": VERSION, "k": "event", "t": self.topic, "ty": self.type_name, "b": self.body}
        if self.trace is not None:
            wire["tc"] = self.trace
        return wire


_REQUEST_KINDS = ("call", "tell")


def _field(data: dict[str, Any], key: str, types: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise DecodeError(f"malformed {what}: field {key!r} is missing or has the wrong type")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _envelope(data: Any, kinds: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise DecodeError(f"malformed {what}: not a JSON object")
    if data.get("v") != VERSION:
        raise DecodeError(f"unsupported {what} version {data.get('v')!r} (expected {VERSION})")
    if data.get("k") not in kinds:
        raise DecodeError(f"malformed {what}: kind {data.get('k')!r} is not one of {kinds}")
    return data


def _is_carrier(trace: Any) -> bool:
    """A trace context: an object of string values (checked only when present)."""
    return type(trace) is dict and all(type(value) is str for value in trace.values())


def parse_request(data: Any) -> Request:
    """Validate a request envelope (already parsed from JSON)."""
    if type(data) is not dict or data.get("v") != VERSION or data.get("k") not in _REQUEST_KINDS:
        _envelope(data, _REQUEST_KINDS, "request")  # raises, saying what is wrong
    d: dict[str, Any] = data
    kind, ident, endpoint, method, args, sender = (
        d["k"],
        d.get("id"),
        d.get("ep"),
        d.get("m"),
        d.get("a"),
        d.get("s"),
    )
    reply_to, deadline, positional, trace = d.get("r"), d.get("d"), d.get("pa"), d.get("tc")
    if not (
        type(ident) is str
        and type(endpoint) is str
        and type(method) is str
        and type(args) is dict
        and type(sender) is str
        and (type(reply_to) is str if kind == "call" else reply_to is None or type(reply_to) is str)
        and (deadline is None or type(deadline) in (int, float))
        and (positional is None or type(positional) is list)
        and (trace is None or _is_carrier(trace))
    ):
        raise DecodeError("malformed request: a field is missing or has the wrong type")
    return Request(
        kind, ident, endpoint, method, args, reply_to, deadline, sender, positional, trace
    )


def parse_reply(data: Any) -> Reply:
    """Validate a reply envelope (already parsed from JSON)."""
    d = _envelope(data, ("reply",), "reply")
    ident, provider, ok = d.get("id"), d.get("p"), d.get("ok")
    if ok is True and type(ident) is str and type(provider) is str:
        return Reply(ident, provider, True, d.get("r"))  # the common case, checked at once
    ok = _field(d, "ok", bool, "reply")
    return Reply(
        id=_field(d, "id", str, "reply"),
        provider=_field(d, "p", str, "reply"),
        ok=ok,
        result=d.get("r") if ok else None,
        error=None if ok else _field(d, "e", dict, "reply"),
    )


def parse_event(data: Any) -> Event:
    """Validate an event envelope (already parsed from JSON)."""
    d = _envelope(data, ("event",), "event")
    trace = d.get("tc")
    if trace is not None and not _is_carrier(trace):
        raise DecodeError("malformed event: field 'tc' is not an object of strings")
    return Event(
        topic=_field(d, "t", str, "event"),
        type_name=_field(d, "ty", str, "event"),
        body=d.get("b"),
        trace=trace,
    )
