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
        return sum((self.prices[i.sku] * i.qty for i in items), Decimal(0))

    async def restock(self, sku: str, qty: int) -> None:
        self.stock[sku] = self.stock.get(sku, 0) + qty

    @subscribe
    async def on_price(self, event: PriceChanged) -> None:
        self.prices[event.sku] = event.price


async def main() -> None:
    async with ActorSystem() as system:  # memory:// is the default
        await system.spawn(Pricing, "eu")  # two providers of "pricing"
        await system.spawn(Pricing, "us")
        pricing = system.proxy(Pricing, timeout=2.0)  # typed as Pricing for mypy
        print(await pricing.quote([Item("a", 2)]))  # one provider answers
        totals = await system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
        print(list(totals), totals.complete)  # every provider answers
        await system.tell(Pricing.restock, "a", 10)  # fire-and-forget into a mailbox
        print(await system.publish(PriceChanged("a", Decimal("9.99"))), "subscribers reached")


if __name__ == "__main__":  # other programs import the classes above
    asyncio.run(main())

# Output:
# 2.50
# [Decimal('2.50'), Decimal('2.50')] True
# 2 subscribers reached
