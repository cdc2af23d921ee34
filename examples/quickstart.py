"""The quick start: two providers, a typed proxy, a broadcast, a tell and an event.

Run it with ``./dev demo`` (or ``python examples/quickstart.py`` with tactor installed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from tactor import Actor, ActorSystem, subscribe


@dataclass
class Item:
    sku: str
    qty: int


@dataclass
class PriceChanged:
    sku: str
    price: Decimal


class Pricing(Actor, name="pricing"):
    def __init__(self, region: str) -> None:
        self.region = region
        self.prices: dict[str, Decimal] = {"a": Decimal("1.25")}
        self.stock: dict[str, int] = {}

    async def quote(self, items: list[Item], coupon: str | None = None) -> Decimal:
        total = sum((self.prices[i.sku] * i.qty for i in items), Decimal(0))
        return total * Decimal("0.9") if coupon == "TEN" else total

    async def restock(self, sku: str, qty: int) -> None:
        self.stock[sku] = self.stock.get(sku, 0) + qty

    @subscribe
    async def on_price(self, event: PriceChanged) -> None:
        self.prices[event.sku] = event.price


async def main() -> None:
    async with ActorSystem() as system:  # memory:// is the default
        await system.spawn(Pricing, "eu")  # two providers of the endpoint "pricing"
        await system.spawn(Pricing, "us")
        pricing = system.proxy(Pricing, timeout=2.0)  # typed as Pricing for mypy

        total = await pricing.quote([Item("a", 2)])  # one provider answers -> Decimal
        print("quote:", total)

        totals = await system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
        print("broadcast:", list(totals), "complete:", totals.complete)

        await system.tell(Pricing.restock, "a", 10)  # fire-and-forget into a mailbox
        reached = await system.publish(PriceChanged("a", Decimal("9.99")))
        print("event reached", reached, "subscribers")

        # Events and calls share each actor's mailbox; give the event a moment to land.
        await asyncio.sleep(0.05)
        print("new quote:", await pricing.quote([Item("a", 2)], coupon="TEN"))


if __name__ == "__main__":
    asyncio.run(main())
