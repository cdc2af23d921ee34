"""A rendezvous channel between a runner's sources and the runner."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """A rendezvous channel: ``put`` returns once a ``get`` has taken the item."""

    def __init__(self) -> None:
        self._putters: deque[tuple[T, asyncio.Future[None]]] = deque()
        self._getter: asyncio.Future[T] | None = None
        self._wanted: list[asyncio.Future[None]] = []  # waiting in wanted()

    async def wanted(self) -> None:
        """Return once a ``get`` waits with nothing to take (at once if one does)."""
        while self._getter is None or self._getter.done():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._wanted.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._wanted:
                    self._wanted.remove(waiter)

    async def put(self, item: T) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(item)
            self._getter = None
            return
        taken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (item, taken)
        self._putters.append(entry)
        try:
            await taken
        finally:
            if not taken.done():
                self._putters.remove(entry)

    async def get(self) -> T:
        while self._putters:
            item, taken = self._putters.popleft()
            if not taken.done():
                taken.set_result(None)
                return item
        getter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._getter = getter
        wanted, self._wanted = self._wanted, []
        for waiter in wanted:
            if not waiter.done():
                waiter.set_result(None)
        return await getter
