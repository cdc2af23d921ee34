"""NATS under real faults: a server SIGKILLed and restarted on its store, a 3-node JetStream
cluster losing a node, and servers that ask for a password, a token or TLS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest

import tactor.transports.nats as nats_module
from tactor import (
    Actor,
    ActorSystem,
    CallTimeout,
    PayloadTooLarge,
    TactorError,
    TransportError,
)
from tactor.transports.nats import NatsTransport
from tactor.transports.nats.connection import api
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing, Refused
from tests.nats_servers import NatsServer, make_certificates, nats_cluster, nats_server

pytestmark = [pytest.mark.slow]

FAST = "ttl=1&block=1"


def ns() -> str:
    return f"prefix=tactor-test-{uuid.uuid4().hex[:12]}"


async def jetstream_ready(url: str) -> None:
    """Wait until the server (or cluster) answers JetStream requests."""
    import nats

    async def ready() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    await eventually(ready, bool, timeout=30)


@asynccontextmanager
async def serving(url: str) -> AsyncIterator[ActorSystem]:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "x")
        yield system


async def test_a_restarted_server_is_served_again_and_calls_in_flight_end(tmp_path: Path) -> None:
    server = NatsServer()
    try:
        server.start()
        url = f"{server.url}?{ns()}&{FAST}"
        async with serving(url) as provider, ActorSystem(url) as caller:
            pricing = caller.proxy(Pricing, timeout=3)
            assert await pricing.where() == "x"
            for _ in range(5):  # accepted (in the stream) before the server dies
                await caller.tell(Pricing.restock, "a", 1)
            in_flight = [asyncio.create_task(pricing.sleep(0.3)) for _ in range(5)]
            await asyncio.sleep(0.05)
            server.kill()
            # Each call in flight completes or fails with a TactorError, by its deadline
            # (3 s; the test's 10 s bound catches one that hangs).
            async with asyncio.timeout(10):
                ended = await asyncio.gather(*in_flight, return_exceptions=True)
            assert all(r is None or isinstance(r, TactorError) for r in ended), ended
            server.start()  # the same port and store directory
            # The system reconnects and serves again; the tells accepted before are kept.
            assert await eventually(_try(pricing.where), lambda r: r == "x", timeout=30) == "x"
            # At least once: a tell whose acknowledgement died with the server runs again.
            stock = await eventually(
                _try(lambda: pricing.stock_of("a")), lambda r: r is not None and r >= 5, timeout=15
            )
            assert stock >= 5
            assert provider.transport is not caller.transport
    finally:
        server.stop()


async def test_memory_storage_serves_again_after_a_restart_with_its_streams_made_anew() -> None:
    """``storage=memory``: the streams are in the server's memory (JetStream forgets them
    at a restart); the system makes them again and serves calls and tells once it is back."""
    server = NatsServer()
    try:
        server.start()
        url = f"{server.url}?{ns()}&{FAST}&storage=memory"
        async with serving(url), ActorSystem(url) as caller:
            transport = caller.transport
            assert isinstance(transport, NatsTransport)
            info = await api(transport.nc, f"STREAM.INFO.{transport.names.mailboxes}")
            assert info["config"]["storage"] == "memory"
            pricing = caller.proxy(Pricing, timeout=3)
            assert await pricing.where() == "x"
            server.kill()
            server.start()
            assert await eventually(_try(pricing.where), lambda r: r == "x", timeout=30) == "x"
            async with asyncio.timeout(15):
                await _until_accepted(lambda: caller.tell(Pricing.restock, "m", 2))
            assert (
                await eventually(
                    _try(lambda: pricing.stock_of("m")), lambda r: r is not None and r >= 2
                )
                >= 2
            )
            info = await api(transport.nc, f"STREAM.INFO.{transport.names.mailboxes}")
            assert info["config"]["storage"] == "memory"
    finally:
        server.stop()


class Gate(Actor, name="nats-gate"):
    """Holds each tell until the test opens it: its mailbox fills the server's storage."""

    opened: asyncio.Event  # made and set by the test (the provider runs in its process)
    handled = 0

    async def hold(self, blob: str) -> None:
        await Gate.opened.wait()
        Gate.handled += 1

    async def ping(self) -> str:
        return "pong"


async def _fill(system: ActorSystem, blob: str, most: int) -> tuple[int, TransportError]:
    """Tell Gate.hold until refused: how many tells were accepted, and the refusal."""
    for accepted in range(most):
        try:
            await system.tell(Gate.hold, blob)
        except TransportError as exc:
            return accepted, exc
    raise AssertionError(f"{most} tells of {len(blob)} bytes were all accepted")


async def test_a_system_whose_server_is_gone_closes_at_once() -> None:
    """Before, each request of the clean-up (unregister, delete the private mailbox, drop
    the node's keys and unused consumers) waited out its timeout: 20 s for one provider."""
    server = NatsServer()
    try:
        server.start()
        system = ActorSystem(f"{server.url}?{ns()}&{FAST}")
        await system.start()
        try:
            await system.spawn(Pricing, "x")
            assert await system.proxy(Pricing).where() == "x"
        finally:
            server.kill()
            await asyncio.sleep(0.3)  # the client sees it go: reconnecting
            closing = asyncio.get_running_loop().time()
            await system.close()
        assert asyncio.get_running_loop().time() - closing < 3
    finally:
        server.stop()


async def test_full_jetstream_storage_refuses_typed_and_loses_nothing_accepted() -> None:
    """A server whose JetStream storage is used up refuses new messages: a tell and a call
    fail at once with a TransportError that says so; every tell accepted before is handled
    once the provider acknowledges what it held, and the storage serves again."""
    Gate.opened, Gate.handled = asyncio.Event(), 0
    server = NatsServer(jetstream="max_file_store: 1MB")
    try:
        server.start()
        async with ActorSystem(f"{server.url}?{ns()}&{FAST}", timeout=5) as system:
            await system.spawn(Gate)
            assert await system.proxy(Gate).ping() == "pong"
            blob = "x" * 100_000
            accepted, refused = await _fill(system, blob, 30)  # 3 MB, in a 1 MB store
            assert accepted >= 1 and "insufficient" in str(refused)
            assert "JetStream storage is full" in str(refused)
            with pytest.raises(TransportError, match="JetStream storage is full"):
                await system.proxy(Gate).ping()
            Gate.opened.set()
            await eventually(_handled, lambda n: n == accepted, timeout=15)
            assert await eventually(_try(system.proxy(Gate).ping), lambda r: r == "pong") == "pong"
            await system.tell(Gate.hold, blob)  # room again
            await eventually(_handled, lambda n: n == accepted + 1, timeout=15)
    finally:
        server.stop()


async def _handled() -> int:
    return Gate.handled


async def test_the_servers_max_payload_bounds_the_systems(caplog: pytest.LogCaptureFixture) -> None:
    """A message over what the NATS server carries fails at once with PayloadTooLarge, as
    one over the system's max_payload does: a request before it is sent, a reply as a
    failure the caller gets at once (before, the server refused the reply and the call
    waited for its deadline)."""
    server = NatsServer("max_payload: 65536")
    try:
        server.start()
        url = f"{server.url}?{ns()}&{FAST}"
        async with (
            ActorSystem(url, timeout=5) as default,
            ActorSystem(url, max_payload=1 << 24) as big,
        ):
            assert default.max_payload == big.max_payload == 65536 - 1024
            await default.spawn(Pricing, "x")
            started = asyncio.get_running_loop().time()
            with pytest.raises(PayloadTooLarge, match=r"the request to pricing\.refuse is"):
                await big.proxy(Pricing).refuse("y" * 70_000)
            # The reply carries the text twice: over the limit, though the request was not.
            with pytest.raises(
                PayloadTooLarge, match=r"the reply is \d+ bytes, over max_payload=64512"
            ):
                await default.proxy(Pricing).refuse("y" * 40_000)
            assert asyncio.get_running_loop().time() - started < 2  # not at a deadline
            with pytest.raises(Refused, match="no"):  # a small one still gets through
                await default.proxy(Pricing).refuse("no")
            assert await big.proxy(Pricing).where() == "x"
        (warned,) = [r for r in caplog.records if "more than" in r.getMessage()]
        assert "ActorSystem(max_payload=16777216)" in warned.getMessage()
        assert "limited to 64512 bytes" in warned.getMessage()
    finally:
        server.stop()


def _try(call):  # type: ignore[no-untyped-def]
    """``call`` whose typed failures (while the server is away) count as no answer yet."""

    async def attempt():  # type: ignore[no-untyped-def]
        try:
            return await call()
        except (TransportError, CallTimeout, TactorError):
            return None

    return attempt


async def test_a_cluster_losing_a_node_keeps_calls_tells_and_events() -> None:
    with nats_cluster(3) as nodes:
        for node in nodes:
            await jetstream_ready(node.url)
        namespace = f"{ns()}&{FAST}&replicas=3"
        # Provider and caller on different nodes; the node killed is a third one.
        provider_url = f"{nodes[1].url}?{namespace}"
        caller_url = f"{nodes[2].url}?{namespace}"
        async with serving(provider_url) as provider, ActorSystem(caller_url) as caller:
            pricing = caller.proxy(Pricing, timeout=5)
            assert await eventually(_try(pricing.where), lambda r: r == "x", timeout=20) == "x"
            for _ in range(10):
                await caller.tell(Pricing.restock, "b", 1)
            nodes[0].kill()
            # Tells while the cluster re-elects the leaders the dead node held: one that
            # failed (typed) may or may not have been stored, one that returned was.
            for _ in range(10):
                await _until_accepted(lambda: caller.tell(Pricing.restock, "b", 1))
            stock = await eventually(
                _try(lambda: pricing.stock_of("b")), lambda r: r is not None and r >= 20, timeout=30
            )
            # Nothing accepted was lost. At least once: a tell whose acknowledgement was lost
            # in the election runs again, and a send that failed typed may have been stored.
            assert stock >= 20
            await caller.publish(PriceChanged("b", Decimal(1)))
            seen = await eventually(
                _try(pricing.events_seen), lambda s: s and "price:b" in s, timeout=30
            )
            assert "price:b" in seen
            # The registry's own stream may have lost its leader too: while it re-elects,
            # beats fail and the 1 s TTL can lapse (the caller then sees no provider for a
            # moment). Once it is back, the next beat lists the provider again, for both.
            [ref] = provider.refs()
            for system in (caller, provider):
                listed = await eventually(
                    _try(lambda s=system: s.providers(Pricing)), lambda p: p == [ref.id], timeout=30
                )
                assert listed == [ref.id]


async def _until_accepted(tell) -> None:  # type: ignore[no-untyped-def]
    """Send a tell until the transport accepts it (a typed failure: send it again)."""
    while True:
        try:
            await tell()
            return
        except TactorError:
            await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("config", "credentials"),
    [
        ('authorization { user: "app", password: "s3cret" }', "app:s3cret@"),
        ('authorization { token: "t0ken" }', "t0ken@"),
    ],
    ids=["password", "token"],
)
async def test_user_password_and_token_from_the_url(config: str, credentials: str) -> None:
    with nats_server(config) as server:
        url = f"nats://{credentials}127.0.0.1:{server.port}?{ns()}"
        async with serving(url), ActorSystem(url) as caller:
            assert await caller.proxy(Pricing).where() == "x"
        # Typed, and saying why: the server's refusal, though nats-py's retry of the
        # connection may then be reset (it said only that reset, once).
        for wrong in ("wrong:wrong@", "wrong@", ""):
            with pytest.raises(TransportError, match="'Authorization Violation'"):
                await ActorSystem(f"nats://{wrong}127.0.0.1:{server.port}?{ns()}").start()


async def test_tls_from_the_url(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    config = f'tls {{ cert_file: "{certs["cert"]}"\n key_file: "{certs["key"]}" }}'
    with nats_server(config) as server:
        url = f"tls://127.0.0.1:{server.port}?{ns()}&tls_ca={certs['ca']}"
        async with serving(url), ActorSystem(url) as caller:
            assert await caller.proxy(Pricing).where() == "x"
        with pytest.raises(TransportError):  # a client that does not trust the server's CA
            await ActorSystem(f"tls://127.0.0.1:{server.port}?{ns()}").start()


async def test_a_tls_url_refuses_a_server_that_does_not_require_tls(tmp_path: Path) -> None:
    """nats-py connects in plain text where the server does not ask for TLS: a tls:// URL
    (or TLS options) to a server without TLS, or to one that takes plain text too, is
    refused before any credentials are sent."""
    certs = make_certificates(tmp_path)
    tls = f'tls {{ cert_file: "{certs["cert"]}"\n key_file: "{certs["key"]}" }}'
    plain_too = f"{tls}\nallow_non_tls: true"
    with nats_server('authorization { token: "t0ken" }') as server:
        url = f"tls://t0ken@127.0.0.1:{server.port}?{ns()}&tls_ca={certs['ca']}"
        with pytest.raises(TransportError, match=r"does not require TLS \(it has no TLS\)"):
            await ActorSystem(url).start()
        url = f"nats://t0ken@127.0.0.1:{server.port}?{ns()}&tls_ca={certs['ca']}"
        with pytest.raises(TransportError, match="the URL asks for TLS"):
            await ActorSystem(url).start()
        async with ActorSystem(f"nats://t0ken@127.0.0.1:{server.port}?{ns()}"):
            pass  # (plain text, asked for)
    with nats_server(plain_too) as server:
        url = f"tls://127.0.0.1:{server.port}?{ns()}&tls_ca={certs['ca']}"
        with pytest.raises(TransportError, match=r"it takes plain text too"):
            await ActorSystem(url).start()


async def test_a_connection_that_fails_or_times_out_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nats-py keeps the socket of a first connect that was cut short; the transport
    closes it (a refused connect, then one to a server that accepts and never answers,
    cut short by the transport's bound on the first connection)."""
    import gc
    import warnings

    monkeypatch.setattr(nats_module, "CONNECT_TIMEOUT", 0.5)

    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, says nothing (no INFO): the connect waits it out
        writer.close()

    silent = await asyncio.start_server(quiet, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    with (
        nats_server('authorization { token: "t0ken" }') as server,
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(TransportError, match="'Authorization Violation'"):
            await ActorSystem(f"nats://wrong@127.0.0.1:{server.port}?{ns()}").start()
        with pytest.raises(TransportError, match=str(port)):
            await ActorSystem(f"nats://127.0.0.1:{port}?{ns()}").start()
        gc.collect()
    silent.close()
    assert [str(w.message) for w in seen if w.category is ResourceWarning] == []
