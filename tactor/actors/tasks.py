"""Every background task has an owner: a :class:`TaskSet` of the system."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["CANCEL_PATIENCE", "TaskSet"]

log = logging.getLogger(__name__)

#: How long a cancelled task is waited for before it is left running (its code caught the
#: cancellation and carried on): a stop or a close must end.
CANCEL_PATIENCE = 5.0


class TaskSet:
    """Owns background tasks: logs their crashes and cancels the rest on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._abandoned: set[asyncio.Task[Any]] = set()  # held: asyncio keeps weak refs

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
        """Cancel ``tasks`` (none named: nothing) and wait for them, at most
        ``CANCEL_PATIENCE`` seconds: one still running then (its code caught the
        cancellation and carried on) is logged and left running, no longer waited for."""
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        patience = CANCEL_PATIENCE
        done, stuck = await asyncio.wait(tasks, timeout=patience)
        for task in done:
            if not task.cancelled():
                task.exception()  # (retrieved: a crash is the done callback's to log)
        for task in stuck:
            log.error(
                "tactor task %s did not end within %.1fs of being cancelled (does a handler "
                "catch asyncio.CancelledError and carry on?); left running",
                task.get_name(), patience,
            )  # fmt: skip
            self._tasks.discard(task)
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)

    async def cancel_all(self) -> None:
        """Cancel every task this set owns and wait for them."""
        await self.cancel(*self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)
