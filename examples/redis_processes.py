"""The quick start across processes: providers in child processes, a caller here, over Redis.

    python examples/redis_processes.py [redis://127.0.0.1:6379/0]

Starts two provider processes (regions eu and us), broadcasts to them, calls
one, tells one, publishes an event, and stops them. Needs a Redis server.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from tactor import ActorSystem

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from quickstart import Item, PriceChanged, Pricing


async def serve(url: str, region: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, region)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes


async def quotes_once_changed(system: ActorSystem, price: Decimal) -> list[Decimal]:
    """Both providers' quotes for one item, asked until the event has reached both."""
    # The event travels by pub/sub, calls by mailbox: a call may overtake it. Ask again.
    async with asyncio.timeout(2.0):
        while True:
            quotes = list(await system.broadcast(Pricing.quote, [Item("a", 1)]))
            if quotes == [price, price]:
                return quotes
            await asyncio.sleep(0.01)


async def main(url: str) -> None:
    children = []
    for region in ("eu", "us"):
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, url, region,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert child.stdout is not None
        await child.stdout.readline()  # "ready"
        children.append(child)
    try:
        async with ActorSystem(url) as system:
            print("providers:", await system.providers(Pricing))
            totals = await system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
            print("broadcast:", list(totals), "complete:", totals.complete)
            print("one call:", await system.proxy(Pricing, timeout=2.0).quote([Item("a", 4)]))
            await system.tell(Pricing.restock, "a", 10)
            await system.publish(PriceChanged("a", Decimal("2.00")))
            print("after the event:", await quotes_once_changed(system, Decimal("2.00")))
    finally:
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
            await child.wait()


if __name__ == "__main__":
    if len(sys.argv) == 3:
        asyncio.run(serve(sys.argv[1], sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
