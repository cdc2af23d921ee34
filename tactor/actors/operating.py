"""What operating tools need from a system: the registry of every endpoint, dead letters,
and calls by name.

:meth:`ActorSystem.endpoints` lists the endpoints that have live providers,
each with its providers (their node, host, pid and start) and the depth of its
shared mailbox; :meth:`ActorSystem.endpoint_info` describes one. The ``*_json``
methods call, tell, broadcast and publish by name with JSON data, for callers
that do not have the interface class (a shell, another language's tooling):
the provider decodes the arguments by its own type hints, exactly as for a
typed call, and results come back as JSON data.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..codecs import Codec
from ..errors import DecodeError, PayloadTooLarge
from ..transports.base import Transport
from ..transports.endpoints import ProviderEntry, endpoint_mailbox
from ..transports.topics import check_topic
from .actor import Actor, actor_name, endpoint_origin, schema_of
from .broadcast import BroadcastResult
from .dead_letters import DeadLetter, dead_letters
from .envelope import Event
from .schema import ActorSchema, MethodSchema, untyped_method

if TYPE_CHECKING:
    from .calls import Calls, Outgoing

__all__ = ["EndpointInfo", "Operating", "ProviderInfo"]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A live provider as the registry knows it.

    ``node`` is the id of the :class:`ActorSystem` that runs it, ``host`` and
    ``pid`` its machine and process, ``since`` when it was registered (UTC),
    ``actor`` what it runs: ``module:Qual.Name`` of its class (or of the
    function it serves). These are None where the registry lost them (a Redis
    restart without persistence: the provider is registered again, without
    them), or a node of an earlier tactor registered it (``actor``).
    """

    endpoint: str
    id: str
    node: str | None = None
    host: str | None = None
    pid: int | None = None
    since: datetime | None = None
    actor: str | None = None

    @property
    def age(self) -> float | None:
        """Seconds since the provider was registered (by this machine's clock), or None."""
        return None if self.since is None else time.time() - self.since.timestamp()


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """An endpoint: its live providers, and how many messages wait in its shared mailbox,
    not yet taken by a provider (None where the transport cannot tell)."""

    name: str
    providers: tuple[ProviderInfo, ...]
    depth: int | None


class Operating:
    """The registry views and the calls by name of :class:`ActorSystem` (a mixin)."""

    transport: Transport
    codec: Codec
    node: str
    max_payload: int
    _calls: Calls

    if TYPE_CHECKING:

        def _check_running(self) -> None: ...

        def _outgoing(
            self,
            schema: ActorSchema,
            method: MethodSchema,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            timeout: float | None,
        ) -> Outgoing: ...

    def _registration(self, cls: type[Actor]) -> bytes:
        """What this node registers a provider of ``cls`` with (see :class:`ProviderInfo`)."""
        info = {"node": self.node, "host": socket.gethostname(), "pid": os.getpid()}
        info["actor"] = actor_name(cls)
        if (origin := endpoint_origin(cls)) is not cls:  # (the class itself, by default)
            info["origin"] = actor_name(origin)
        # A copy: orjson's bytes keep the 4 KiB buffer they were written into, and a
        # transport may keep this for the provider's life (memory:// does).
        return bytes(memoryview(self.codec.dumps({**info, "since": time.time()})))

    # -- the registry ----------------------------------------------------------

    async def endpoints(self) -> list[EndpointInfo]:
        """Every endpoint that has a live provider (on any node), sorted by name."""
        self._check_running()
        return [await self._describe(name) for name in await self.transport.endpoints()]

    async def endpoint_info(self, endpoint: str | type[Actor]) -> EndpointInfo:
        """One endpoint (by name, or by its actor class), with no providers if none is live."""
        self._check_running()
        return await self._describe(_endpoint_name(endpoint))

    async def _describe(self, endpoint: str) -> EndpointInfo:
        entries = await self.transport.provider_entries(endpoint)
        depth = await self.transport.mailbox_depth(endpoint_mailbox(endpoint))
        found = tuple(_provider_info(self.codec, endpoint, entry) for entry in entries)
        return EndpointInfo(endpoint, found, depth)

    # -- dead letters ----------------------------------------------------------

    async def dead_letters(self, endpoint: type[Actor] | str) -> list[DeadLetter]:
        """The dead letters of an endpoint (its actor class, or its name), oldest first
        (see :class:`DeadLetter`)."""
        self._check_running()
        if isinstance(endpoint, str):
            schema = untyped_method(endpoint, "")[0]  # positional arguments named by index
        else:
            schema = schema_of(endpoint)
        return await dead_letters(self.transport, schema, self.codec)

    async def replay(self, letter: DeadLetter) -> bool:
        """Put ``letter`` back into its endpoint's mailbox, to be handled afresh (its
        attempts start again), and out of the dead letters; False if it was gone."""
        self._check_running()
        return await self.transport.replay_dead_letter(endpoint_mailbox(letter.endpoint), letter.id)

    async def discard(self, letter: DeadLetter) -> bool:
        """Remove ``letter`` from its endpoint's dead letters; False if it was gone."""
        self._check_running()
        return await self.transport.discard_dead_letter(
            endpoint_mailbox(letter.endpoint), letter.id
        )

    # -- calls by name ---------------------------------------------------------

    async def call_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        provider: str | None = None,
    ) -> Any:
        """Call ``endpoint``'s ``method`` with JSON data; return its result as JSON data.

        The provider decodes ``args`` (by position) and ``kwargs`` by the method's
        type hints, as for a typed call: wrong data gets ``InvalidArguments``, a
        method it lacks ``UnknownMethod``; every error of :meth:`ActorSystem.call`.
        """
        out = self._by_name(endpoint, method, args, kwargs, timeout)
        return await self._calls.call(out, provider)

    async def tell_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        provider: str | None = None,
    ) -> None:
        """Put a one-way message for ``endpoint``'s ``method``, with JSON data, into its
        mailbox (or ``provider``'s); returns once the transport accepted it."""
        await self._calls.tell(self._by_name(endpoint, method, args, kwargs, timeout), provider)

    async def broadcast_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> BroadcastResult[Any]:
        """Call ``endpoint``'s ``method`` on every live provider, with JSON data (see
        :meth:`ActorSystem.broadcast`); values come back as JSON data."""
        return await self._calls.broadcast(self._by_name(endpoint, method, args, kwargs, timeout))

    def _by_name(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> Outgoing:
        schema, untyped = untyped_method(endpoint, method)
        return self._outgoing(schema, untyped, tuple(args), dict(kwargs or {}), timeout)

    async def publish_json(
        self, topic: str, event: Any, *, type_name: str | None = None
    ) -> int | None:
        """Publish JSON data as an event on ``topic``, named ``type_name`` (default: the
        topic's last segment). Subscribers decode it as the type their handler takes
        (by ``type_name`` where a handler takes a union). Returns what :meth:`publish` does.
        """
        self._check_running()
        check_topic(topic)
        name = type_name if type_name is not None else topic.rpartition(".")[2]
        body = self.codec.to_wire_any(event)
        payload = self.codec.dumps(Event(topic, name, body).to_wire())
        if len(payload) > self.max_payload:
            limit = self.max_payload
            raise PayloadTooLarge(
                f"the event on {topic!r} is {len(payload)} bytes, over max_payload={limit}"
            )
        reached = await self.transport.publish(topic, payload)
        return reached if self.transport.counts_subscribers else None


def _endpoint_name(endpoint: str | type[Actor]) -> str:
    return endpoint if isinstance(endpoint, str) else schema_of(endpoint).endpoint


def _registered(codec: Codec, entry: ProviderEntry) -> dict[str, Any]:
    """What a registry entry's provider registered with (see ``_registration``); {} if
    it cannot be read or was lost."""
    try:
        data = codec.loads(entry.info) if entry.info else {}
    except DecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def registered_origin(codec: Codec, entry: ProviderEntry) -> tuple[str | None, str | None]:
    """The node of a registry entry and the class that names the endpoint its provider
    serves (``module:Qual.Name``; see ``endpoint_origin``); None where unknown."""
    data = _registered(codec, entry)
    origin = _typed(data.get("origin"), str) or _typed(data.get("actor"), str)
    return _typed(data.get("node"), str), origin


def _provider_info(codec: Codec, endpoint: str, entry: ProviderEntry) -> ProviderInfo:
    """The public view of a registry entry; what cannot be read (or was lost) is None."""
    data = _registered(codec, entry)
    since = data.get("since")
    return ProviderInfo(
        endpoint,
        entry.provider,
        node=_typed(data.get("node"), str),
        host=_typed(data.get("host"), str),
        pid=_typed(data.get("pid"), int),
        since=datetime.fromtimestamp(since, UTC) if isinstance(since, int | float) else None,
        actor=_typed(data.get("actor"), str),
    )


def _typed(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) and not isinstance(value, bool) else None
