"""Actor classes and events shared by the tests (and by provider subprocesses)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from tactor import Actor, subscribe, topic


@dataclass
class Item:
    sku: str
    qty: int


@dataclass
class PriceChanged:
    sku: str
    price: Decimal


@topic("stock.eu.changed")
@dataclass
class StockChanged:
    sku: str
    qty: int


@topic("stock.us.changed")
@dataclass
class UsStockChanged:
    sku: str
    qty: int


@dataclass
class OutOfStock(Exception):
    sku: str
    wanted: int


class Refused(Exception):
    pass


class Pricing(Actor, name="pricing", errors=(OutOfStock, Refused)):
    def __init__(self, region: str) -> None:
        self.region = region
        self.prices: dict[str, Decimal] = {"a": Decimal("1.50"), "b": Decimal("2.25")}
        self.stock: dict[str, int] = {}
        self.seen: list[str] = []

    async def quote(self, items: list[Item], coupon: str | None = None) -> Decimal:
        total = sum((self.prices[i.sku] * i.qty for i in items), Decimal(0))
        return total / 2 if coupon == "HALF" else total

    async def restock(self, sku: str, qty: int) -> None:
        self.stock[sku] = self.stock.get(sku, 0) + qty

    async def stock_of(self, sku: str) -> int:
        return self.stock.get(sku, 0)

    async def where(self) -> str:
        return self.region

    async def reserve(self, sku: str, qty: int) -> int:
        have = self.stock.get(sku, 0)
        if have < qty:
            raise OutOfStock(sku, qty)
        self.stock[sku] = have - qty
        return have - qty

    async def refuse(self, why: str) -> None:
        raise Refused(why)

    async def crash(self, message: str) -> None:
        raise ValueError(message)

    async def sleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return self.region

    async def remaining(self) -> float | None:
        """How much of the inherited deadline is left, as seen from inside a handler."""
        import time

        from tactor.actors.deadline import current_deadline

        d = current_deadline()
        return None if d is None else d - time.time()

    @subscribe
    async def on_price(self, event: PriceChanged) -> None:
        self.prices[event.sku] = event.price
        self.seen.append(f"price:{event.sku}")

    @subscribe("stock.#")
    async def on_stock(self, event: StockChanged | UsStockChanged) -> None:
        self.seen.append(f"{type(event).__name__}:{event.sku}")

    async def events_seen(self) -> list[str]:
        return list(self.seen)


@dataclass
class Order:
    id: int
    lines: list[Item] = field(default_factory=list)


@dataclass
class StallStarted:
    provider: str


class Stalling(Actor, name="stalling"):
    """A handler that waits; counts how often it started, finished and ran its clean-up."""

    def __init__(self) -> None:
        self.started = self.finished = self.cleaned = 0

    async def stall(self, seconds: float) -> str:
        self.started += 1
        await self.system.publish(StallStarted(self.ref.id))
        try:
            await asyncio.sleep(seconds)
            self.finished += 1
            return "finished"
        finally:
            self.cleaned += 1

    async def counts(self) -> list[int]:
        return [self.started, self.finished, self.cleaned]


class Relay(Actor, name="relay"):
    """Calls Stalling while handling its own call: a nested call."""

    async def relay(self, seconds: float) -> str:
        return await self.system.call(Stalling.stall, seconds)
