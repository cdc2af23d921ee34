"""Replies awaited for one message id, under its deadline: the caller's side of a request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from .envelope import Reply

__all__ = ["Pending"]


class Pending:
    """Replies awaited for one message id: one for a call, one per provider for a broadcast.

    ``done`` completes when every expected reply is in. A broadcast's set of
    providers is known only once it was delivered (``settle``); replies that
    come earlier are kept. At ``deadline`` the node's timer fails ``done`` with
    ``TimeoutError`` — or, while the request is still being delivered (waiting
    for room in a full mailbox), cancels the sending task and marks the entry
    ``expired``.
    """

    __slots__ = ("deadline", "done", "expected", "expired", "replies", "sender", "settled")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: float, *, broadcast: bool = False
    ) -> None:
        self.deadline = deadline
        self.expected: frozenset[str] | None = frozenset() if broadcast else None
        self.settled = not broadcast
        self.replies: dict[str, Reply] = {}
        self.done: asyncio.Future[None] = loop.create_future()
        self.sender: asyncio.Task[Any] | None = None
        self.expired = False

    def add(self, reply: Reply) -> None:
        if self.expected is None and self.replies:
            return  # a call answered twice (handled again after a fault): the first counts
        if self.settled and self.expected is not None and reply.provider not in self.expected:
            return
        self.replies.setdefault(reply.provider, reply)
        self._check()

    def settle(self, providers: Iterable[str]) -> None:
        """The providers a broadcast reached: wait for these, and only these."""
        self.expected = frozenset(providers)
        self.settled = True
        for provider in [p for p in self.replies if p not in self.expected]:
            del self.replies[provider]
        self._check()

    def forget(self, providers: Iterable[str]) -> None:
        """Stop waiting for providers the request never reached."""
        if self.expected is not None:
            self.settle(self.expected.difference(providers))

    def expire(self) -> None:
        if self.done.done():
            return
        self.expired = True
        if self.sender is not None:
            self.sender.cancel()
        else:
            self.done.set_exception(TimeoutError())

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def _check(self) -> None:
        if (
            self.settled
            and not self.done.done()
            and (self.expected is None or self.expected.issubset(self.replies))
        ):
            self.done.set_result(None)
