"""Calling providers: the typed proxies, ``call``, ``broadcast`` and ``tell`` of
:class:`~tactor.actors.system.ActorSystem`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from ..codecs import Codec
from .actor import Actor, ActorRef, method_of, schema_of
from .broadcast import BroadcastResult
from .calls import Calls, Outgoing
from .deadline import check_timeout, resolve_deadline
from .proxy import proxy_class
from .schema import ActorSchema, MethodSchema

__all__ = ["Messaging"]

A = TypeVar("A", bound=Actor)
R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class Messaging:
    """The calling verbs of :class:`ActorSystem` (a mixin: the system provides the attributes
    below)."""

    codec: Codec
    timeout: float
    _calls: Calls

    if TYPE_CHECKING:

        def _check_running(self) -> None: ...

        def _check_codecs(self, schema: ActorSchema) -> None: ...

    def proxy(
        self,
        cls: type[A],
        *,
        timeout: float | None = None,
        provider: str | ActorRef[A] | None = None,
    ) -> A:
        """A stub typed as ``cls`` whose methods call a provider (any live one, or ``provider``)."""
        schema = schema_of(cls)
        check_timeout(timeout)
        target = None if provider is None else str(provider)
        stub: A = proxy_class(schema)(self._invoke, timeout=timeout, provider=target)  # type: ignore[assignment]
        return stub

    def _outgoing(
        self,
        schema: ActorSchema,
        method: MethodSchema,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Outgoing:
        """Check, encode and give a deadline to a call, tell or broadcast about to be sent."""
        self._check_running()
        self._check_codecs(schema)
        wire, positional = method.encode(self.codec, args, kwargs)
        made = time.time()
        deadline = resolve_deadline(timeout, self.timeout, made)
        return Outgoing(schema, method, wire, positional, deadline, made)

    async def _invoke(
        self,
        schema: ActorSchema,
        method: MethodSchema,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        provider: str | None,
    ) -> Any:
        return await self._calls.call(
            self._outgoing(schema, method, args, kwargs, timeout), provider
        )

    async def _broadcast(
        self,
        schema: ActorSchema,
        method: MethodSchema,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
    ) -> BroadcastResult[Any]:
        return await self._calls.broadcast(self._outgoing(schema, method, args, kwargs, timeout))

    async def call(
        self,
        method: Callable[[Any, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
        timeout: float | None = None,
        provider: str | ActorRef[Any] | None = None,
    ) -> R:
        """Call ``method`` (e.g. ``Pricing.quote``) on one provider and return its result."""
        schema, m = method_of(method)
        target = None if provider is None else str(provider)
        result: R = await self._invoke(schema, m, args, {}, timeout=timeout, provider=target)
        return result

    async def broadcast(
        self,
        method: Callable[[Any, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
        timeout: float | None = None,
    ) -> BroadcastResult[R]:
        """Call ``method`` on every live provider; return when all answered or at the deadline."""
        schema, m = method_of(method)
        return await self._broadcast(schema, m, args, {}, timeout=timeout)

    async def tell(
        self,
        method: Callable[[Any, *Ts], Awaitable[object]],
        /,
        *args: *Ts,
        timeout: float | None = None,
        provider: str | ActorRef[Any] | None = None,
    ) -> None:
        """Put a one-way message into the endpoint's mailbox (or ``provider``'s).

        Returns once the transport accepted it; ``timeout`` bounds the wait
        for room in a full mailbox (then :class:`~tactor.errors.MailboxFull`).
        """
        schema, m = method_of(method)
        target = None if provider is None else str(provider)
        out = self._outgoing(schema, m, args, {}, timeout)
        # read as its provider will read them: refused here rather than lost there
        self.codec.check_wire(out.args, m.args_type, f"tell {m.qualname}: the arguments do not fit")
        await self._calls.tell(out, target)
