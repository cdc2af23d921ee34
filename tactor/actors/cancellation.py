"""Cancellation: a handler stops when its call's deadline passes or its caller gives up.

The deadline travels with every call, so a provider needs no word from the
caller to stop at it: a :class:`Watch` follows each request being handled
and, at its deadline, cancels the task running the handler (the handler
sees ``asyncio.CancelledError`` at its next ``await``; its ``finally`` blocks
run). The node keeps one timer for all its watches, so a call that finishes in
time pays for a small record made and dropped, and nothing on the wire.

A caller that gives up before the deadline (its task was cancelled) says so on
the reserved topic :data:`CANCEL_TOPIC`: a small message with the request ids
and their deadline. Every node that hosts providers subscribes to it; the node
running one of those requests cancels its handler, and remembers the ids it
is not running (until their deadline) so that a provider that takes one later
drops it. Nested calls need nothing more: a cancelled handler's pending calls
are cancelled with it, and their caller — that handler — says so in turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..codecs import Codec
from ..errors import DecodeError, TactorError, TransportClosed
from ..transports import Subscription, Transport
from .deadline import DeadlineTimer
from .tasks import TaskSet

__all__ = ["CANCEL_TOPIC", "Cancellations", "Watch"]

log = logging.getLogger(__name__)

#: Reserved: wildcard subscriptions never match topics under ``_tactor.``.
CANCEL_TOPIC = "_tactor.cancel"
#: How many cancelled-but-not-running ids a node remembers at most.
_REMEMBERED = 10_000


class Watch:
    """Cancels the task that handles one request, at its deadline or on a signal."""

    __slots__ = ("_node", "_settled", "_task", "deadline", "fired", "request_id")

    def __init__(
        self,
        node: Cancellations,
        request_id: str,
        task: asyncio.Task[Any],
        deadline: float | None,
    ) -> None:
        self._node = node
        self._task = task
        self._settled = False  # its cancellation of the task was taken back
        self.request_id = request_id
        self.deadline = deadline
        self.fired = ""  # why it cancelled the handler: "deadline" or "caller"

    def fire(self, why: str) -> None:
        if not self.fired:
            self.fired = why
            self._task.cancel()

    def absorb(self) -> bool:
        """After a CancelledError: True if this watch caused it and nobody else cancels.

        (False: the task is being cancelled from outside — its runner stopping —
        and the CancelledError must go on.)
        """
        if not self.fired or self._settled:
            return False
        self._settled = True
        return self._task.uncancel() == 0

    def close(self) -> None:
        """Stop watching; a cancellation that the handler swallowed is taken back."""
        self._node._forget(self)
        if self.fired and not self._settled:
            self._settled = True
            self._task.uncancel()


class Cancellations:
    """One node's cancellations: the requests it is handling, and those called off.

    Deadlines cost no timer per request: one timer, armed for the nearest
    deadline of the requests being handled, sweeps the expired ones and
    re-arms (requests usually share a timeout, so a new one rarely moves it).
    """

    def __init__(self, transport: Transport, codec: Codec, tasks: TaskSet) -> None:
        self._transport = transport
        self._codec = codec
        self._tasks = tasks
        # A broadcast's one id is handled by each of this node's providers: then a list.
        self._running: dict[str, Watch | list[Watch]] = {}
        self._called_off: dict[str, float] = {}  # id -> its deadline (then forgotten)
        self._subscription: Subscription | None = None
        self._timer = DeadlineTimer(self._expire)

    # -- the provider's side ---------------------------------------------------

    def watch(self, request_id: str, deadline: float | None, task: asyncio.Task[Any]) -> Watch:
        """Watch ``task`` (the current one) while it handles ``request_id``; close it after."""
        watch = Watch(self, request_id, task, deadline)
        if deadline is not None:
            self._timer.track(deadline)
        known = self._running.get(request_id)
        if known is None:
            self._running[request_id] = watch
        elif isinstance(known, Watch):
            self._running[request_id] = [known, watch]
        else:
            known.append(watch)
        return watch

    def _forget(self, watch: Watch) -> None:
        known = self._running.get(watch.request_id)
        if known is watch:
            del self._running[watch.request_id]
        elif isinstance(known, list):
            known.remove(watch)
            if not known:
                del self._running[watch.request_id]

    def _expire(self, now: float) -> float | None:
        """Cancel the handlers whose deadline passed; the nearest deadline ahead."""
        nearest: float | None = None
        for running in list(self._running.values()):
            for watch in running if isinstance(running, list) else [running]:
                if watch.deadline is None or watch.fired:
                    continue
                if watch.deadline <= now:
                    watch.fire("deadline")
                elif nearest is None or watch.deadline < nearest:
                    nearest = watch.deadline
        return nearest

    def called_off(self, request_id: str) -> bool:
        """Whether the caller gave up on ``request_id`` before a provider took it."""
        return bool(self._called_off) and self._called_off.pop(request_id, None) is not None

    async def listen(self) -> None:
        """Subscribe to the callers' signals (once; for nodes that host providers)."""
        if self._subscription is None:
            self._subscription = await self._transport.subscribe(CANCEL_TOPIC)
            self._tasks.spawn(self._read(self._subscription), "tactor-cancellations")

    async def close(self) -> None:
        self._timer.cancel()
        if self._subscription is not None:
            await self._subscription.close()

    async def _read(self, subscription: Subscription) -> None:
        while True:
            try:
                _, payload = await subscription.receive()
            except TransportClosed:
                return
            try:
                ids, deadline = self._parse(payload)
            except DecodeError as exc:
                log.warning("dropped a malformed cancellation: %s", exc)
                continue
            self._call_off(ids, deadline)

    def _parse(self, payload: bytes) -> tuple[list[str], float]:
        data = self._codec.loads(payload)
        if not isinstance(data, dict):
            raise DecodeError("a cancellation is a JSON object")
        ids, deadline = data.get("ids"), data.get("d")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DecodeError("a cancellation's 'ids' is a list of strings")
        if not isinstance(deadline, int | float):
            raise DecodeError("a cancellation's 'd' is a number")
        return ids, float(deadline)

    def _call_off(self, ids: list[str], deadline: float) -> None:
        now = time.time()
        for request_id in ids:
            running = self._running.get(request_id)
            if running is not None:
                for watch in running if isinstance(running, list) else [running]:
                    watch.fire("caller")
            elif deadline > now:
                self._called_off[request_id] = deadline
        if self._called_off:
            self._forget_expired(now)

    def _forget_expired(self, now: float) -> None:
        # Signals are rare (a caller gave up): a scan of what is remembered is fine.
        expired = [i for i, d in self._called_off.items() if d <= now]
        for request_id in expired:
            del self._called_off[request_id]
        while len(self._called_off) > _REMEMBERED:  # oldest first (insertion order)
            del self._called_off[next(iter(self._called_off))]

    # -- the caller's side -----------------------------------------------------

    def give_up(self, request_id: str, deadline: float) -> None:
        """Tell every provider node that nobody waits for ``request_id`` any more."""
        payload = self._codec.dumps({"v": 1, "ids": [request_id], "d": deadline})
        self._tasks.spawn(self._send(payload), "tactor-cancel")

    async def _send(self, payload: bytes) -> None:
        try:
            await self._transport.publish(CANCEL_TOPIC, payload)
        except TactorError as exc:
            # Not fatal: the provider still stops at the deadline.
            log.info("could not send a cancellation: %s", exc)
