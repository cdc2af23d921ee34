"""Actor classes and a factory that the CLI tests name as ``tests.cli_app:...``.

Run as a program (``python -m tests.cli_app URL``) it serves :class:`Slow` with
:meth:`tactor.ActorSystem.serve`, as a user's own service would.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from tactor import Actor, ActorSystem, subscribe
from tests.model import Item, PriceChanged, StockChanged


class OutOfStock(Exception):
    pass


class Pricing(Actor, name="cli-pricing"):
    def __init__(self, region: str, margin: Decimal = Decimal(1)) -> None:
        self.region = region
        self.margin = margin
        self.prices = {"a": Decimal("1.25")}
        self.stock: dict[str, int] = {}

    async def quote(self, items: list[Item], coupon: str | None = None) -> Decimal:
        total = sum((self.prices[i.sku] * i.qty for i in items), Decimal(0)) * self.margin
        return total / 2 if coupon == "half" else total

    async def where(self) -> str:
        return self.region

    async def restock(self, sku: str, qty: int) -> None:
        self.stock[sku] = self.stock.get(sku, 0) + qty

    async def stock_of(self, sku: str) -> int:
        return self.stock.get(sku, 0)

    async def fail(self, why: str) -> None:
        raise OutOfStock(why)

    async def totals(self, pairs: list[tuple[str, int]]) -> dict[str, int]:
        return {sku: qty for sku, qty in pairs}

    async def hang(self) -> None:
        await asyncio.Event().wait()

    @subscribe
    async def on_price(self, event: PriceChanged) -> None:
        self.prices[event.sku] = event.price

    @subscribe("stock.#")
    async def on_stock(self, event: StockChanged) -> None:
        self.stock[event.sku] = event.qty


class Slow(Actor, name="cli-slow"):
    """Says when it took a message, then waits for a line on stdin before it answers."""

    async def work(self, x: int) -> int:
        print(f"working {x}", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        return x * 2


async def make(url: str) -> ActorSystem:
    """A factory for ``tactor run``: a system of its own, two providers of two regions."""
    system = await ActorSystem(url, timeout=3.0).start()
    await system.spawn(Pricing, "eu")
    await system.spawn(Pricing, "us")
    return system


def not_a_factory() -> int:
    return 1


def broken_factory() -> ActorSystem:
    raise RuntimeError("no config")


class Broken(Actor, name="cli-broken"):
    def __init__(self) -> None:
        raise ValueError("bad setting")

    async def ping(self) -> None:
        pass


async def serve(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Slow)
        received = await system.serve(
            drain_timeout=20, on_serving=lambda: print("ready", flush=True)
        )
    print(f"stopped by {received.name}", flush=True)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
