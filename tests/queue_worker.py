"""A queue consumer process for the multi-process tests.

``python -m tests.queue_worker URL NAME OUT_FILE``: opens a system on URL,
prints ``ready``, then gets int items from queue NAME (marking each done)
until it gets ``-1``; then writes the items it got, as a JSON list, to
OUT_FILE and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tactor import ActorSystem


async def drain(url: str, name: str) -> list[int]:
    got: list[int] = []
    async with ActorSystem(url) as system:
        queue = system.queue(name, int)
        print("ready", flush=True)
        while True:
            item = await queue.get(timeout=30)
            await queue.task_done()
            if item == -1:
                return got
            got.append(item)


if __name__ == "__main__":
    items = asyncio.run(drain(sys.argv[1], sys.argv[2]))
    with open(sys.argv[3], "w") as out:
        json.dump(items, out)
