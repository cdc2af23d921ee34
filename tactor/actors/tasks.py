"""Every background task has an owner: a :class:`TaskSet` of the system."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

log = logging.getLogger(__name__)


class TaskSet:
    """Owns background tasks: logs their crashes and cancels the rest on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tactor task %s crashed", task.get_name(), exc_info=task.exception())

    async def cancel(self, *tasks: asyncio.Task[Any]) -> None:
        """Cancel ``tasks`` (none named: nothing) and wait for them."""
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def cancel_all(self) -> None:
        """Cancel every task this set owns and wait for them."""
        await self.cancel(*self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)
