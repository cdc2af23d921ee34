"""Row 5: encode + decode of a typical 8-field payload, against plain orjson and msgspec."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import orjson

from tactor import JsonCodec

from .harness import Figure, Row, Settings, sync_latency


class Status(enum.Enum):
    NEW = "new"
    PAID = "paid"


@dataclass
class Line:
    sku: str
    qty: int
    price: Decimal


@dataclass
class Order:
    id: int
    customer: str
    lines: list[Line]
    tags: dict[str, int]
    placed: dt.datetime
    status: Status
    total: Decimal
    note: str | None


def sample() -> Order:
    return Order(
        id=42,
        customer="c-1001",
        lines=[Line(f"sku-{i}", i + 1, Decimal("9.99")) for i in range(3)],
        tags={"priority": 1, "gift": 0},
        placed=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC),
        status=Status.PAID,
        total=Decimal("59.94"),
        note=None,
    )


def _figure(name: str, roundtrip: Any, settings: Settings) -> Figure:
    fig = Figure(name, "us")
    for _ in range(settings.repeats):
        median, p99 = sync_latency(roundtrip, settings)
        fig.medians.append(median)
        fig.p99s.append(p99)
    return fig


def _msgspec_figure(settings: Settings) -> Figure | None:
    try:
        import msgspec
    except ImportError:
        return None
    order = sample()
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder(Order)
    assert decoder.decode(encoder.encode(order)) == order
    return _figure("msgspec (reference)", lambda: decoder.decode(encoder.encode(order)), settings)


async def run(settings: Settings) -> list[Row]:
    codec = JsonCodec()
    order = sample()
    assert codec.decode(codec.encode(order, Order), Order) == order
    ours = _figure(
        "tactor JsonCodec", lambda: codec.decode(codec.encode(order, Order), Order), settings
    )
    plain = asdict(order)
    plain.update(placed=order.placed.isoformat(), status=order.status.value, total=str(order.total))
    plain["lines"] = [{**line, "price": str(line["price"])} for line in plain["lines"]]
    figures = [
        ours,
        _figure(
            "orjson of the equivalent dict (no types)",
            lambda: orjson.loads(orjson.dumps(plain)),
            settings,
        ),
    ]
    reference = _msgspec_figure(settings)
    if reference is not None:
        figures.append(reference)
    row = Row("codec encode + decode, 8-field payload", figures, target="≤ 2× msgspec")
    if reference is not None:
        row.met = row.ratios()[reference.name] <= 2
    return [row]
