"""Dead letters: messages an endpoint moved aside instead of handling them (again).

A mailbox message whose handling was attempted ``max_deliveries`` times
without an acknowledgement — its provider died, was killed or was stopped
mid-way each time — is moved, at its next delivery, into the endpoint's dead
letters instead of being handled again; so is a message that cannot be read at
all, and a tell its provider rejects (an unknown method, arguments that do not
fit, over ``max_payload``): nobody waits to hear of it. Each transport keeps them
where it keeps its mailboxes (a transport verb,
:meth:`~tactor.transports.consumer.Delivery.dead_letter`); the decision, the bound
on how many are kept and the log lines live here, once, for every transport.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..codecs import Codec
from ..errors import ConfigError, DecodeError, TransportError
from ..transports.base import Transport
from ..transports.consumer import DeadLetterEntry, Delivery
from ..transports.endpoints import endpoint_mailbox
from .envelope import Request, parse_request
from .schema import ActorSchema

__all__ = [
    "DEFAULT_MAX_DEAD_LETTERS",
    "DEFAULT_MAX_DELIVERIES",
    "Aside",
    "DeadLetter",
    "DeadLetterPolicy",
    "dead_letters",
    "letter_of",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_DELIVERIES = 5
DEFAULT_MAX_DEAD_LETTERS = 1000

#: Why a message was moved aside (:attr:`DeadLetter.reason`).
MAX_DELIVERIES = "max_deliveries"
MALFORMED = "malformed"
REJECTED = "rejected"
RAISED = "raised"


@dataclass(frozen=True, slots=True)
class Aside:
    """Why a provider moves the message in hand aside without handling it (again):
    ``reason`` (``MALFORMED``, ``REJECTED``, ``RAISED``) and ``detail``."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in an endpoint's dead letters (see :meth:`ActorSystem.dead_letters`).

    ``id`` names the letter for :meth:`~ActorSystem.replay` and
    :meth:`~ActorSystem.discard`; ``reason`` is ``"max_deliveries"``,
    ``"malformed"``, ``"rejected"`` or ``"raised"`` (a tell whose handler raised) and
    ``detail`` says more; ``attempts`` is how often its
    handling was attempted; ``at`` when it was moved aside (UTC). ``payload``
    is the message's bytes; ``message_id``, ``method``, ``kind`` (``"call"`` or
    ``"tell"``) and ``args`` (the arguments as JSON, by name) are read from it
    where it can be read, else None.
    """

    id: str
    endpoint: str
    reason: str
    detail: str
    attempts: int
    at: datetime
    payload: bytes
    message_id: str | None = None
    method: str | None = None
    kind: str | None = None
    args: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """When a provider moves a message aside, and how many letters an endpoint keeps."""

    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    max_dead_letters: int = DEFAULT_MAX_DEAD_LETTERS

    @classmethod
    def of(
        cls, transport: Transport, max_deliveries: int | None, max_dead_letters: int | None
    ) -> DeadLetterPolicy:
        """The system's arguments, else the transport URL's options, else the defaults."""
        deliveries = _pick("max_deliveries", max_deliveries, transport.max_deliveries)
        letters = _pick("max_dead_letters", max_dead_letters, transport.max_dead_letters)
        return cls(
            DEFAULT_MAX_DELIVERIES if deliveries is None else deliveries,
            DEFAULT_MAX_DEAD_LETTERS if letters is None else letters,
        )

    def exhausted(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` was attempted ``max_deliveries`` times already."""
        return delivery.attempts > self.max_deliveries

    async def set_aside(
        self, delivery: Delivery, endpoint: str, codec: Codec, who: str, aside: Aside | None = None
    ) -> str | None:
        """Move ``delivery`` into ``endpoint``'s dead letters, with a WARNING saying why.

        ``aside`` says why its provider did not handle it (it cannot be read, or
        it is a tell the provider rejected); without one, it is set aside for
        having been attempted ``max_deliveries`` times. Returns the detail
        recorded, or None if the transport could not move it (it stays in the
        mailbox, to be delivered again).
        """
        if aside is None:
            reason, attempts = MAX_DELIVERIES, delivery.attempts - 1
            detail = (
                f"attempted {attempts} times without an acknowledgement "
                f"(max_deliveries={self.max_deliveries})"
            )
        else:
            reason, detail, attempts = aside.reason, aside.detail, delivery.attempts
        into = endpoint_mailbox(endpoint)
        ident, method, _, _ = _read(codec, delivery.payload)
        message = f"{endpoint}.{method or '?'} (message {ident or '?'})"
        try:
            dropped = await delivery.dead_letter(
                f"{reason}: {detail}", attempts=attempts, into=into, keep=self.max_dead_letters
            )
        except TransportError as exc:
            log.warning("%s: could not move %s to the dead letters: %s", who, message, exc)
            return None
        log.warning(
            "%s: moved %s to the dead letters (%s): %s",
            who,
            message,
            reason,
            detail,
        )
        if dropped:
            log.warning(
                "%s: the dead letters of %r are at max_dead_letters=%d: dropped the oldest %d",
                who, endpoint, self.max_dead_letters, dropped,
            )  # fmt: skip
        return detail


def _pick(name: str, given: int | None, from_url: int | None) -> int | None:
    if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 1):
        raise ConfigError(f"ActorSystem({name}={given!r}): expected a whole number >= 1")
    return given if given is not None else from_url


def _read(
    codec: Codec, payload: bytes
) -> tuple[str | None, str | None, str | None, Request | None]:
    """``(message id, method, kind, request)`` of a payload, as far as it can be read."""
    try:
        data = codec.loads(payload)
    except DecodeError:
        return None, None, None, None
    if not isinstance(data, dict):
        return None, None, None, None
    try:
        request = parse_request(data)
    except DecodeError:
        ident, method, kind = data.get("id"), data.get("m"), data.get("k")
        return _str(ident), _str(method), _str(kind), None
    return request.id, request.method, request.kind, request


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _args(schema: ActorSchema, request: Request | None) -> dict[str, Any] | None:
    """A request's arguments by name: positional ones named by the method's schema."""
    if request is None:
        return None
    args: dict[str, Any] = dict(request.args)
    if request.positional:
        method = schema.methods.get(request.method)
        names = [name for name, _ in method.by_position] if method is not None else []
        for index, value in enumerate(request.positional):
            args.setdefault(names[index] if index < len(names) else str(index), value)
    return args


def letter_of(entry: DeadLetterEntry, schema: ActorSchema, codec: Codec) -> DeadLetter:
    """The public view of a transport's dead letter of ``schema``'s endpoint."""
    reason, _, detail = entry.reason.partition(": ")
    ident, method, kind, request = _read(codec, entry.payload)
    return DeadLetter(
        id=entry.id,
        endpoint=schema.endpoint,
        reason=reason,
        detail=detail,
        attempts=entry.attempts,
        at=datetime.fromtimestamp(entry.at, UTC),
        payload=entry.payload,
        message_id=ident,
        method=method,
        kind=kind,
        args=_args(schema, request),
    )


async def dead_letters(transport: Transport, schema: ActorSchema, codec: Codec) -> list[DeadLetter]:
    """``schema``'s endpoint's dead letters, oldest first."""
    entries = await transport.dead_letters(endpoint_mailbox(schema.endpoint))
    return [letter_of(entry, schema, codec) for entry in entries]
