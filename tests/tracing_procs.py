"""A traced provider process: ``python -m tests.tracing_procs URL ROLE``.

It configures the OpenTelemetry SDK with an in-memory exporter, serves ``Leaf``
(ROLE ``leaf``) or ``Hop`` (ROLE ``hop``, which calls ``Leaf`` while handling its
own call), prints ``ready``, and when stdin closes prints its finished spans, one
JSON object a line, and exits.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tactor import Actor, ActorSystem


class Leaf(Actor, name="trace-leaf"):
    async def echo(self, text: str) -> str:
        return f"leaf:{text}"


class Hop(Actor, name="trace-hop"):
    async def forward(self, text: str) -> str:
        return await self.system.call(Leaf.echo, text)


def span_record(span: ReadableSpan) -> dict[str, object]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace": f"{context.trace_id:032x}",
        "span": f"{context.span_id:016x}",
        "parent": None if span.parent is None else f"{span.parent.span_id:016x}",
        "attributes": dict(span.attributes or {}),
    }


async def serve(url: str, role: str, exporter: InMemorySpanExporter) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Leaf if role == "leaf" else Hop)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until stdin closes
    for span in exporter.get_finished_spans():
        print(orjson.dumps(span_record(span)).decode(), flush=True)


if __name__ == "__main__":
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    asyncio.run(serve(sys.argv[1], sys.argv[2], exporter))
