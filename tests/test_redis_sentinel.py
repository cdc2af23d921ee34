"""Redis Sentinel: the ``redis+sentinel://`` URL, and a failover the system follows by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tactor import ActorSystem, CallTimeout, ConfigError, NoProvider, TransportError
from tactor.transports import open_transport
from tactor.transports.redis.location import Sentinels
from tests.conftest import with_query
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing
from tests.servers import RedisServer, free_port, make_tls_files, sentinel_cluster

pytest.importorskip("redis")


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    transport = open_transport(
        "redis+sentinel://app:s%40cret@10.0.0.1,10.0.0.2:26380,[::1]:26381/orders/2"
        "?prefix=shop&ttl=2&socket_connect_timeout=1.5&sentinel_password=watch"
    )
    location = transport.location  # type: ignore[attr-defined]
    assert location.hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381)]
    assert location.service == "orders"
    # The user and password are the Redis servers' (as redis-py's connection_kwargs);
    # sentinel_* options the Sentinels' (its sentinel_kwargs).
    assert location.kwargs["username"] == "app" and location.kwargs["password"] == "s@cret"
    assert location.kwargs["db"] == 2 and location.kwargs["socket_connect_timeout"] == 1.5
    assert location._sentinel_kwargs["password"] == "watch"
    assert "username" not in location._sentinel_kwargs
    assert transport.prefix == "shop" and transport.ttl == 2.0  # type: ignore[attr-defined]
    shown = repr(transport)  # where, never the passwords
    assert "10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/orders" in shown
    assert "cret" not in shown and "watch" not in shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1,h2", r"expected the service name"),
        ("redis+sentinel://h1/orders/x", r"expected the service name, then maybe the database"),
        ("redis+sentinel://h1:99999/orders", r"bad Sentinel address 'h1:99999'"),
        ("redis+sentinel://h1,,h2/orders", r"bad Sentinel address ''"),
        (
            "redis+sentinel://h1/orders?sentinel_pasword=x",
            r"unknown redis\+sentinel:// option 'sentinel_pasword' \(did you mean "
            r"'sentinel_password'",
        ),
        ("redis+sentinel://h1/orders?mailboxsize=3", r"did you mean 'mailbox_size'"),
        ("redis+sentinel://h1/orders?ttl=0", r"redis\+sentinel:// option ttl='0'"),
        ("redis+sentinel://h1/orders?socket_timeout=abc", r"URL option: .*socket_timeout"),
        ("redis+sentinel://h1/orders?sentinel_password=", r"sentinel_password='': expected"),
    ],
)
def test_sentinel_url_mistakes_are_config_errors_before_connecting(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_transport(url)


async def test_no_sentinel_answering_is_a_transport_error_that_names_them_briefly() -> None:
    first, second = free_port(), free_port()
    url = f"redis+sentinel://127.0.0.1:{first},127.0.0.1:{second}/nobody?prefix=unreachable"
    with pytest.raises(TransportError, match="No master found for 'nobody'") as raised:
        await ActorSystem(url).start()
    message = str(raised.value)
    # Each Sentinel by its address, with why it failed; not by redis-py's repr of its client
    # (every connection option: some 1,500 characters each on redis-py 8).
    assert f"127.0.0.1:{first} - " in message and f"127.0.0.1:{second} - " in message
    assert "Connect" in message and "ConnectionPool" not in message and "<redis." not in message
    assert len(message) < 600, message


def test_a_sentinel_client_in_an_error_is_cut_to_its_address() -> None:
    from redis.sentinel import MasterNotFoundError, Sentinel

    from tactor.transports.redis.connection import described

    port = free_port()
    sentinels = Sentinel([("127.0.0.1", port)], socket_connect_timeout=0.5)
    with pytest.raises(MasterNotFoundError) as raised:  # the synchronous client's, as in the
        sentinels.discover_master("nobody")  # heartbeat thread
    assert "<redis." in str(raised.value)
    said = described(raised.value)
    assert said.startswith(f"No master found for 'nobody' : 127.0.0.1:{port} - "), said
    assert "<redis." not in said and len(said) < 400
    assert described(ValueError("<redis. but no client")) == "<redis. but no client"


async def answer(caller: ActorSystem) -> object:
    try:
        return await caller.proxy(Pricing, timeout=1.0).where()
    except (TransportError, CallTimeout, NoProvider) as exc:
        return exc


def test_a_tls_sentinel_url_speaks_tls_to_sentinels_and_servers() -> None:
    transport = open_transport(
        "rediss+sentinel://h1,h2:26380/orders?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"
    )
    location = transport.location  # type: ignore[attr-defined]
    assert location.kwargs["ssl"] is True and location.kwargs["ssl_ca_certs"] == "/ca.pem"
    assert location._sentinel_kwargs["ssl"] is True
    assert location._sentinel_kwargs["ssl_ca_certs"] == "/ca.pem"
    assert repr(transport).startswith("<RedisTransport rediss+sentinel://h1:26379,h2:26380/orders")
    plain = open_transport("redis+sentinel://h1/orders").location  # type: ignore[attr-defined]
    assert "ssl" not in plain.kwargs and "ssl" not in plain._sentinel_kwargs
    with pytest.raises(ConfigError, match=r"rediss\+sentinel:// URL: bad Sentinel address"):
        open_transport("rediss+sentinel://h1:0/orders")


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["sigkill", "switchover", "sigkill-tls"])
async def test_a_failover_is_followed_without_user_action(fault: str, tmp_path: Path) -> None:
    """The primary is SIGKILLed (or, alive, handed over: SENTINEL FAILOVER makes it a
    replica); the Sentinels promote its replica; calls, tells and events work again
    within 30 s, on the same systems, through the new primary. With ``-tls``, every
    server and Sentinel speaks TLS only (``rediss+sentinel://``)."""
    tls = make_tls_files(tmp_path) if fault.endswith("-tls") else None
    with sentinel_cluster(tls=tls) as cluster:
        url = with_query(cluster.url, prefix="failover", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            events: list[PriceChanged] = []

            async def on_price(event: PriceChanged) -> None:
                events.append(event)

            await caller.subscribe(on_price)
            assert await caller.proxy(Pricing).where() == "eu"

            if fault.startswith("sigkill"):
                cluster.primary.kill()  # by pid
            else:
                with contextlib.closing(cluster.sentinels[0].client()) as sentinel:
                    sentinel.execute_command("SENTINEL", "FAILOVER", cluster.service)
            killed = time.monotonic()

            async def primary_port() -> int:
                return cluster.primary_port()

            await eventually(primary_port, lambda port: port == cluster.replica.port, 30)
            if fault == "switchover":
                # The old primary takes writes until the Sentinels demote it (~10 s after
                # the switch): no connection of either system may stay there meanwhile.
                await eventually(lambda: ours_on(cluster.primary), lambda n: n == 0, 5)
            await eventually(lambda: answer(caller), lambda r: r == "eu", timeout=30)
            assert time.monotonic() - killed < 30
            await eventually(lambda: caller.providers(Pricing), lambda p: p == [ref.id], 3)

            before = await caller.call(Pricing.stock_of, "a")
            await caller.tell(Pricing.restock, "a", 2)
            await eventually(lambda: caller.call(Pricing.stock_of, "a"), lambda n: n == before + 2)

            async def publish_and_count() -> int:
                await node.publish(PriceChanged("a", Decimal(2)))
                await asyncio.sleep(0.05)
                return len(events)

            await eventually(publish_and_count, lambda n: n > 0, timeout=10)
            assert await node.call(Pricing.where, timeout=2) == "eu"  # its replies, too
            assert time.monotonic() - killed < 30


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_switch_announced_where_nobody_listens_is_found_by_asking() -> None:
    """The Sentinel a node listens to hangs (SIGSTOP) and a switchover happens through
    another: no announcement reaches the node, yet it finds the new primary by asking
    (its question to the hung one times out, the next one answers) and leaves the old
    primary, which takes writes until its demotion, within seconds."""
    with sentinel_cluster() as cluster:
        url = with_query(cluster.url, prefix="asking", ttl="1", block="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            await node.spawn(Pricing, "eu")
            assert await caller.proxy(Pricing).where() == "eu"
            hung = cluster.sentinels[0]  # the first of the URL: the one each node listens to
            assert hung.process is not None
            os.kill(hung.process.pid, signal.SIGSTOP)
            try:
                with contextlib.closing(cluster.sentinels[1].client()) as sentinel:
                    sentinel.execute_command("SENTINEL", "FAILOVER", cluster.service)
                    await eventually(
                        lambda: asyncio.to_thread(
                            sentinel.sentinel_get_master_addr_by_name, cluster.service
                        ),
                        lambda address: int(address[1]) == cluster.replica.port,
                        10,
                    )
                switched = time.monotonic()
                await eventually(lambda: ours_on(cluster.primary), lambda n: n == 0, 6)
                assert time.monotonic() - switched < 8  # the demotion comes ~10 s after
                await eventually(lambda: answer(caller), lambda r: r == "eu", timeout=30)
            finally:
                os.kill(hung.process.pid, signal.SIGCONT)


@pytest.mark.redis
@pytest.mark.slow
async def test_a_service_the_sentinels_do_not_know_is_an_error_that_says_they_answered() -> None:
    with sentinel_cluster() as cluster:
        url = cluster.url.replace(f"/{cluster.service}/", "/no-such-service/")
        with pytest.raises(TransportError) as raised:
            await ActorSystem(with_query(url, prefix="wrong-service")).start()
    message = str(raised.value)
    assert (
        "No master found for 'no-such-service' (the Sentinels answered: is the name right?"
        in message
    )


@pytest.mark.redis
@pytest.mark.slow
async def test_a_primary_other_than_the_first_one_known_is_a_move() -> None:
    """The watcher compares the primary the Sentinels name with the one the clients
    connected to first: a switch between the two (at start) is acted on, and the same
    primary is not taken for a move."""
    with sentinel_cluster() as cluster:
        location = Sentinels(cluster.url, ())
        try:
            for first, moves in (
                (("127.0.0.1", cluster.primary.port), 0),
                (("127.0.0.1", cluster.replica.port), 1),
            ):
                told: list[str] = []

                async def moved(where: str, told: list[str] = told) -> None:
                    told.append(where)

                watching = asyncio.ensure_future(location.watch(moved, first))
                await asyncio.sleep(2.5)  # the first question, and two more
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
                assert len(told) == moves, told
                if moves:
                    assert told[0].endswith(f"127.0.0.1:{cluster.primary.port}")
        finally:
            await location.aclose()


async def ours_on(server: RedisServer) -> int:
    """How many clients of ``server`` are neither Sentinels, nor replicas, nor this probe."""
    with contextlib.closing(server.client()) as probe:
        me = probe.client_id()
        return sum(
            1
            for c in probe.client_list()
            if int(c["id"]) != me and not c["name"].startswith("sentinel") and "S" not in c["flags"]
        )


@pytest.mark.redis
@pytest.mark.slow
async def test_connections_asking_at_once_keep_every_sentinel() -> None:
    """redis-py's manager moves the Sentinel that answered to the front of its list across
    an await: asked by several connections at once (as after a failover) while the first
    Sentinel is down, it listed one twice and lost another — for good, and with it the
    connections to close. tactor's asks in turn."""
    with sentinel_cluster() as cluster:
        down = f"127.0.0.1:{free_port()}"  # nothing listens
        url = cluster.url.replace("redis+sentinel://", f"redis+sentinel://{down},")
        transport = open_transport(with_query(url, prefix="in-turn"))
        await transport.start()  # the first Sentinel that answered is now asked first...
        try:
            cluster.sentinels[0].kill()  # ...and is gone: the next two asked fail
            pool: Any = transport.redis.connection_pool  # type: ignore[attr-defined]
            await asyncio.gather(*(pool.get_master_address() for _ in range(4)))
            assert len({id(client) for client in pool.sentinel_manager.sentinels}) == 4
        finally:
            await transport.close()
