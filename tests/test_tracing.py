"""OpenTelemetry spans (tactor[otel]): RPC and messaging conventions, and one trace across
processes A -> B -> C on Redis. The SDK (a test-only dependency) records in memory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import Attributes

from tactor import ActorSystem, RemoteError
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing
from tests.tracing_procs import Hop, span_record


class _Switch(Sampler):
    """Samples while a test of this module runs, so the global provider (set once per
    process) records nothing for the rest of the suite."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        *args: object,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP
        return SamplingResult(decision, attributes if self.on else None)

    def get_description(self) -> str:
        return "switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=_SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    _SWITCH.on = True
    yield _EXPORTER
    _SWITCH.on = False
    _EXPORTER.clear()


def named(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


def parent_of(child: ReadableSpan, parent: ReadableSpan) -> bool:
    context = parent.get_span_context()
    return (
        child.parent is not None
        and context is not None
        and (child.parent.span_id == context.span_id)
    )


async def test_a_call_is_a_client_span_and_a_server_span_in_one_trace(
    url: str, spans: InMemorySpanExporter
) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.call(Pricing.stock_of, "a")
        with pytest.raises(RemoteError, match="boom"):
            await system.call(Pricing.crash, "boom")
    finished = spans.get_finished_spans()
    client, server = (
        next(s for s in finished if s.name == "pricing/stock_of" and s.kind == kind)
        for kind in (SpanKind.CLIENT, SpanKind.SERVER)
    )
    assert parent_of(server, client)
    assert client.attributes is not None and server.attributes is not None
    assert client.attributes["rpc.system"] == "tactor"
    assert client.attributes["rpc.service"] == "pricing"
    assert client.attributes["rpc.method"] == "stock_of"
    assert server.attributes["tactor.message.id"] == client.attributes["tactor.message.id"]
    failed = [s for s in finished if s.name == "pricing/crash"]
    assert {s.kind for s in failed} == {SpanKind.CLIENT, SpanKind.SERVER}
    assert all(not s.status.is_ok for s in failed)
    assert {s.attributes["error.type"] for s in failed if s.attributes} == {
        "RemoteError",
        "builtins.ValueError",
    }
    (client_failed,) = [s for s in failed if s.kind == SpanKind.CLIENT]
    assert [e.name for e in client_failed.events] == ["exception"]


async def test_tells_and_events_are_producer_and_consumer_spans(
    url: str, spans: InMemorySpanExporter
) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.tell(Pricing.restock, "a", 1)
        await system.publish(PriceChanged("a", Decimal(2)))
        pricing = system.proxy(Pricing)
        await eventually(pricing.events_seen, lambda seen: seen == ["price:a"])
    finished = spans.get_finished_spans()
    tell, taken = named(finished, "tell pricing"), named(finished, "process pricing")
    publish, handled = (
        named(finished, "publish PriceChanged"),
        named(finished, "process PriceChanged"),
    )
    assert (tell.kind, taken.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert (publish.kind, handled.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert parent_of(taken, tell) and parent_of(handled, publish)
    assert handled.attributes is not None and tell.attributes is not None
    assert handled.attributes["messaging.destination.name"] == "PriceChanged"
    assert tell.attributes["messaging.system"] == "tactor"
    assert tell.attributes["messaging.operation.type"] == "send"
    assert tell.attributes["messaging.message.id"] == taken.attributes["messaging.message.id"]  # type: ignore[index]


WITHOUT_SDK = """
from tactor.actors.envelope import Request
from tactor.actors.stats import Stats
from tactor.actors.tracing import Tracing

tracing = Tracing(Stats())
token, carrier = tracing.sending("call", "e", "m", "id")
tracing.sent(token, None)
assert carrier is None, carrier
token, carrier = tracing.publishing("topic", "T")
assert carrier is None, carrier
# A message that came with a trace context: calls made while handling it pass it on.
parent = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
request = Request("call", "id", "e", "m", {}, "node.x", None, "x", None, parent)
handling = tracing.handling(request, "e@1")
token, carrier = tracing.sending("call", "f", "n", "id2")
tracing.sent(token, None)
tracing.handled(handling, None)
assert carrier == parent, carrier
token, carrier = tracing.sending("call", "f", "n", "id3")
assert carrier is None, carrier
"""


def test_without_a_configured_sdk_no_span_is_made_and_a_trace_is_passed_on() -> None:
    """With the API alone, messages carry no trace context unless the one being handled
    came with one (in a process of its own: this one may have configured the SDK)."""
    subprocess.run([sys.executable, "-c", WITHOUT_SDK], check=True)


async def test_tracing_can_be_switched_off(url: str, spans: InMemorySpanExporter) -> None:
    async with ActorSystem(url, tracing=False) as system:
        await system.spawn(Pricing, "eu")
        assert await system.call(Pricing.stock_of, "a") == 0
    assert spans.get_finished_spans() == ()


@pytest.mark.slow
async def test_a_call_from_process_a_to_b_to_c_is_one_trace(spans: InMemorySpanExporter) -> None:
    base = require_redis()
    prefix = f"tactor-test:t{uuid.uuid4().hex[:12]}"
    url = with_query(base, prefix=prefix)
    leaf = await _start(url, "leaf")
    hop = None
    try:
        hop = await _start(url, "hop")
        async with ActorSystem(url, timeout=10) as system:
            assert await system.call(Hop.forward, "x") == "leaf:x"
        b_spans, c_spans = await _finish(hop), await _finish(leaf)
        hop = leaf = None
    finally:
        for proc in (hop, leaf):
            if proc is not None:
                proc.kill()
                await proc.wait()
        drop_keys(base, prefix)
    a_spans = [span_record(s) for s in spans.get_finished_spans()]
    a_client = _one(a_spans, "trace-hop/forward", "CLIENT")
    b_server = _one(b_spans, "trace-hop/forward", "SERVER")
    b_client = _one(b_spans, "trace-leaf/echo", "CLIENT")
    c_server = _one(c_spans, "trace-leaf/echo", "SERVER")
    assert {s["trace"] for s in (a_client, b_server, b_client, c_server)} == {a_client["trace"]}
    assert b_server["parent"] == a_client["span"]
    assert b_client["parent"] == b_server["span"]
    assert c_server["parent"] == b_client["span"]


def _one(records: list[dict[str, object]], name: str, kind: str) -> dict[str, object]:
    found = [r for r in records if r["name"] == name and r["kind"] == kind]
    assert len(found) == 1, (name, kind, records)
    return found[0]


async def _start(url: str, role: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.tracing_procs", url, role,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if line.strip() != b"ready":
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{role} did not start: {line!r}")
    return proc


async def _finish(proc: asyncio.subprocess.Process) -> list[dict[str, object]]:
    """Close the process's stdin: it stops and prints its spans; they are returned."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    out = await asyncio.wait_for(proc.stdout.read(), 30)
    await asyncio.wait_for(proc.wait(), 30)
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]
