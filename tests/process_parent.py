"""A parent of process providers for the orphan test: ``python -m tests.process_parent``.

Spawns two Crasher providers in child processes, prints ``ready PID PID PID``
(the children's, then the fork server's) and waits to be killed.
"""

from __future__ import annotations

import asyncio

from tactor import ActorSystem
from tactor.actors.forkserver import fork_server
from tests.process_model import Crasher


async def main() -> None:
    async with ActorSystem() as system:
        refs = await system.processes().spawn_many(2, Crasher, "q")
        pids = [await system.call(Crasher.pid, provider=ref) for ref in refs]
        print("ready", *pids, fork_server().process.pid, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
