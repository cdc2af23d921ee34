"""Many providers in one node on Redis: what an idle provider costs is its node's, not its own.

A node reads the mailboxes of all its providers through one reader (one connection,
one blocking read on its bell and the endpoints somebody waits on), and its liveness
is one heartbeat entry per endpoint, not per provider. Each test runs a throwaway
redis-server, so that CLIENT LIST and INFO commandstats count this node alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis

from tactor import Actor, ActorSystem
from tests.conftest import with_query
from tests.helpers import eventually
from tests.servers import redis_server

pytestmark = [pytest.mark.redis]

FEW, MANY = 3, 300


class Idle(Actor, name="many-idle"):
    def __init__(self, index: int) -> None:
        self.index = index

    async def which(self) -> int:
        return self.index


async def spawn(node: ActorSystem, first: int, count: int) -> None:
    await asyncio.gather(*(node.spawn(Idle, i) for i in range(first, first + count)))


async def exercise(node: ActorSystem, providers: int) -> None:
    """A broadcast, calls to the endpoint and to single providers, all answered."""
    result = await node.broadcast(Idle.which, timeout=10)
    assert result.complete and sorted(result) == list(range(providers))
    await asyncio.gather(*(node.call(Idle.which) for _ in range(50)))
    refs = node.refs()
    for ref in (refs[0], refs[-1]):
        assert await node.call(Idle.which, provider=ref) in range(providers)


def connections(admin: redis.Redis) -> int:
    """The server's client connections, the admin's own left out."""
    own = admin.client_id()
    return sum(1 for client in admin.client_list() if int(client["id"]) != own)


async def test_a_nodes_connections_do_not_grow_with_its_providers() -> None:
    with redis_server() as server:
        admin = server.client()
        try:
            url = with_query(server.url, prefix="conns", ttl="0.6", block="0.2")
            async with ActorSystem(url) as node:
                await spawn(node, 0, FEW)
                await exercise(node, FEW)
                await idle_commands_per_beat(admin, beats=3)  # every idle chore ran once
                with_few = connections(admin)
                await spawn(node, FEW, MANY - FEW)
                await exercise(node, MANY)
                await idle_commands_per_beat(admin, beats=3)
                with_many = connections(admin)
                # Keys a killed node leaves behind expire: its bell and its registry's hash.
                bell = f"conns:bell:{node.transport.node}"  # type: ignore[attr-defined]
                assert admin.pttl(bell) > 0 and admin.pttl("conns:who:many-idle") > 0
            assert with_many <= with_few, (with_few, with_many)
            # The reader, pipeliner, inbox, pub/sub and heartbeat hold one each; the client's
            # pool opens one per command running at once (one or two here): a handful.
            assert with_few <= 8
            assert admin.keys("conns:*") == []  # a clean close leaves nothing
        finally:
            admin.close()


def commands(admin: redis.Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (the admin's own left out)."""
    stats = admin.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}
    for own in ("info", "config|resetstat", "config", "client|id", "client|list"):
        calls.pop(own, None)
    return calls


async def idle_commands_per_beat(admin: redis.Redis, beats: int = 10) -> float:
    """Commands Redis ran while the node was idle, per heartbeat (a beat is the one script
    that reads TIME when nobody calls)."""
    admin.config_resetstat()

    async def counted() -> dict[str, int]:
        return commands(admin)

    seen = await eventually(counted, lambda c: c.get("time", 0) >= beats, timeout=30)
    return sum(seen.values()) / seen["time"]


async def test_idle_providers_cost_redis_the_same_commands_whatever_their_number() -> None:
    """Heartbeats and reads while nobody calls: as many commands with 300 providers as
    with 3 (before: a blocking read and a liveness entry per provider)."""
    with redis_server() as server:
        admin = server.client()
        url = with_query(server.url, prefix="idle", ttl="0.6", block="0.2")
        idle: Callable[[], Awaitable[float]] = lambda: idle_commands_per_beat(admin)  # noqa: E731
        try:
            async with ActorSystem(url) as node:
                await spawn(node, 0, FEW)
                await exercise(node, FEW)
                with_few = await idle()
                await spawn(node, FEW, MANY - FEW)
                await exercise(node, MANY)
                with_many = await idle()
            assert with_many <= with_few * 1.5, (with_few, with_many)
        finally:
            admin.close()


async def test_a_fast_provider_reads_many_entries_per_round_trip_through_its_node() -> None:
    # One provider, many calls in flight: its node's reader reads for it as many entries
    # as it expects to handle within the prefetch window, not one read per message.
    with redis_server() as server:
        admin = server.client()
        try:
            # A wide window: the handler must count as quick on a loaded machine too.
            url = with_query(
                server.url, prefix="prefetch", ttl="0.6", block="0.2", prefetch_window="0.05"
            )
            async with ActorSystem(url) as provider_node, ActorSystem(url) as caller:
                await provider_node.spawn(Idle, 7)
                proxy = caller.proxy(Idle, timeout=10)
                for _ in range(50):  # its handling time settles (a moving average)
                    await proxy.which()
                admin.config_resetstat()
                calls = 2000
                gate = asyncio.Semaphore(64)

                async def one() -> int:
                    async with gate:
                        return await proxy.which()

                assert set(await asyncio.gather(*(one() for _ in range(calls)))) == {7}
                reads = admin.info("commandstats").get("cmdstat_xreadgroup", {}).get("calls", 0)
            # One read per message was the fault (the reader read one entry for the one
            # consumer waiting); at least two per read on average, loaded machines included.
            assert reads < calls / 2, f"{reads} XREADGROUP for {calls} calls"
        finally:
            admin.close()
