"""Redis security: ACL users and passwords from the URL, TLS, and hostile data on tactor's keys.

Throwaway servers (``tests.servers``) carry the ACL and TLS set-ups, so the
shared Redis is never reconfigured; the tests that write foreign data use the
shared Redis under a prefix of their own and leave no key behind.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from tactor import ActorSystem, TransportError
from tactor.actors.actor import schema_of
from tactor.actors.cancellation import CANCEL_TOPIC
from tactor.transports.base import endpoint_mailbox
from tactor.transports.redis.events import glob_of
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually
from tests.model import Item, PriceChanged, Pricing, StockChanged
from tests.servers import RedisServer, TlsFiles, free_port, make_tls_files, redis_server

pytestmark = pytest.mark.redis

ADMIN_PASSWORD = "admin-pw"
PASSWORD = "secret"
SEC_PREFIX = "tactor-sec"

# What the ``tactor`` ACL user may do: nothing (-@all) but the commands tactor sends.
# The data-type categories cover mailboxes (streams), inboxes (lists), the registry and
# liveness sets (sorted sets) and what providers registered with (hashes); the rest is
# named one by one: EXISTS, DEL and PEXPIRE on its keys, scripts by EVALSHA (redis-py loads
# a missing one with SCRIPT LOAD), CLIENT REPLY (replies and acknowledgements go without an
# answer), TIME inside the scripts, pub/sub for events, PING on connect. No EVAL. No
# @keyspace or @connection category: they would allow SCAN/RANDOMKEY (key names outside the
# prefix) and CLIENT KILL.
ACL_COMMANDS = [
    "-@all",
    "+@stream",
    "+@list",
    "+@sortedset",
    "+@hash",
    "+exists",
    "+type",
    "+del",
    "+pexpire",
    "+evalsha",
    "+client|reply",
    "+script|load",
    "+time",
    "+publish",
    "+psubscribe",
    "+punsubscribe",
    "+ping",
]


def acl_channels(prefix: str, *actors: type) -> list[str]:
    """Channel rules for ``actors``' events under ``prefix``.

    ``&prefix:*`` lets the user publish. It does not let it subscribe: Redis
    checks a PSUBSCRIBE pattern *literally* against the channel rules, so each
    pattern tactor subscribes to must be listed as sent (``glob_of`` of each
    topic pattern, under ``prefix:ev:``) — or the user needs ``allchannels``.
    """
    # A node that hosts providers listens for callers that give up (cancellation).
    rules = [f"&{prefix}:*", f"&{prefix}:ev:{CANCEL_TOPIC}"]
    for actor in actors:
        for handler in schema_of(actor).handlers:
            rules.extend(f"&{prefix}:ev:{glob_of(p)}" for p in handler.patterns)
    return rules


@pytest.fixture
def acl_server() -> Iterator[tuple[RedisServer, redis.Redis]]:
    """A throwaway server where the default user needs a password and ``tactor`` is confined."""
    with redis_server(["--requirepass", ADMIN_PASSWORD]) as server:
        admin = server.client(password=ADMIN_PASSWORD)
        admin.execute_command(
            "ACL", "SETUSER", "tactor", "reset", "on", f">{PASSWORD}",
            f"~{SEC_PREFIX}:*", *acl_channels(SEC_PREFIX, Pricing), *ACL_COMMANDS,
        )  # fmt: skip
        admin.execute_command("ACL", "LOG", "RESET")
        try:
            yield server, admin
        finally:
            admin.close()


def sec_url(server: RedisServer, password: str = PASSWORD, prefix: str = SEC_PREFIX) -> str:
    return f"redis://tactor:{password}@127.0.0.1:{server.port}/0?prefix={prefix}"


def acl_denials(admin: redis.Redis) -> list[str]:
    # acl_log(), not a raw ACL LOG: redis-py parses the raw reply differently across versions.
    return [f"{e['reason']} {e['object']} ({e['context']})" for e in admin.acl_log()]


def tactor_connections(admin: redis.Redis) -> list[dict[str, Any]]:
    return [c for c in admin.client_list() if c.get("user") == "tactor"]


# -- ACL users -----------------------------------------------------------------


async def test_acl_user_from_the_url_is_enough_for_every_operation(
    acl_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = acl_server
    async with ActorSystem(sec_url(server)) as system:
        assert PASSWORD not in repr(system)
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing, timeout=5)
        assert await pricing.quote([Item("a", 2), Item("b", 1)]) == Decimal("5.25")
        await system.tell(Pricing.restock, "a", 4)
        assert await pricing.stock_of("a") == 4
        result = await system.broadcast(Pricing.where, timeout=5)
        assert result.complete and list(result) == ["eu"]
        await system.publish(PriceChanged("a", Decimal("7")))
        await system.publish(StockChanged("a", 1))
        await eventually(pricing.events_seen, lambda s: {"price:a", "StockChanged:a"} <= set(s))
        # Dead letters: set aside, listed, replayed (and set aside again), discarded.
        await system.transport.deliver(endpoint_mailbox("pricing"), b"\x00 unreadable")
        (letter,) = await eventually(lambda: system.dead_letters(Pricing), lambda ls: len(ls) == 1)
        assert await system.replay(letter)
        (again,) = await eventually(
            lambda: system.dead_letters(Pricing), lambda ls: len(ls) == 1 and ls[0].id != letter.id
        )
        assert await system.discard(again)
        # The registry as operating tools list it (no SCAN: the user has none).
        (listed,) = await system.endpoints()
        assert listed.name == "pricing" and listed.providers[0].node == system.node
        # Every connection tactor opened (commands, pub/sub, the heartbeat thread's) is
        # authenticated as the URL's user.
        await eventually(
            lambda: asyncio.to_thread(tactor_connections, admin), lambda conns: len(conns) >= 3
        )
        own = admin.client_id()
        assert {c["user"] for c in admin.client_list() if int(c["id"]) != own} == {"tactor"}
    assert acl_denials(admin) == [], "tactor needed a command or key the ACL user lacks"
    assert admin.keys(f"{SEC_PREFIX}:*") == [f"{SEC_PREFIX}:dl:ep:pricing".encode()]  # kept


async def test_the_acl_user_is_really_confined(
    acl_server: tuple[RedisServer, redis.Redis],
) -> None:
    """The set-up check: the permissions above are narrow, so the test above means something."""
    server, _ = acl_server
    client = server.client(username="tactor", password=PASSWORD)
    try:
        client.xadd(f"{SEC_PREFIX}:mine", {"p": b"ok"})
        for denied in (
            lambda: client.get("elsewhere"),
            lambda: client.xadd("elsewhere", {"p": b"x"}),
            lambda: client.publish("elsewhere", b"x"),
            lambda: client.execute_command("PSUBSCRIBE", f"{SEC_PREFIX}:ev:*"),
            lambda: client.keys("*"),
            lambda: client.flushall(),
            lambda: client.config_get("*"),
            lambda: client.execute_command("CLIENT", "KILL", "USER", "default"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                denied()
    finally:
        client.close()


async def test_wrong_password_is_a_transport_error_that_says_what_failed(
    acl_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = acl_server
    system = ActorSystem(sec_url(server, password="not-the-password"))
    with pytest.raises(TransportError) as info:
        await system.start()
    await system.close()
    exc = info.value
    assert not isinstance(exc, redis.RedisError)
    message = str(exc)
    assert "connect" in message and f"127.0.0.1:{server.port}" in message
    assert "password" in message  # Redis's own reason: invalid username-password pair
    assert "not-the-password" not in message  # and the credentials are not echoed back
    # The same through ``async with``, and with no credentials at all.
    with pytest.raises(TransportError, match="connect"):
        async with ActorSystem(sec_url(server, password="nope")):
            pass
    anonymous = f"redis://127.0.0.1:{server.port}/0?prefix={SEC_PREFIX}"
    with pytest.raises(TransportError, match="connect") as info:
        async with ActorSystem(anonymous):
            pass
    assert not isinstance(info.value, redis.RedisError)
    assert tactor_connections(admin) == []


async def test_an_acl_without_client_reply_still_serves_and_says_what_to_allow(
    acl_server: tuple[RedisServer, redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    """Replies and acknowledgements go without an answer (CLIENT REPLY SKIP). Where Redis
    refuses that (an ACL, a proxy), the transport sends them with an answer instead:
    everything works, one warning says what to allow, and the refusal was asked only once."""
    server, admin = acl_server
    admin.execute_command("ACL", "SETUSER", "tactor", "-client|reply")
    with caplog.at_level(logging.WARNING, logger="tactor.transports.redis"):
        async with ActorSystem(sec_url(server)) as system:
            assert system.transport.quiet is False  # type: ignore[attr-defined]
            await system.spawn(Pricing, "eu")
            pricing = system.proxy(Pricing, timeout=5)
            for _ in range(3):
                await system.tell(Pricing.restock, "a", 4)
            assert await pricing.stock_of("a") == 12
            result = await system.broadcast(Pricing.where, timeout=5)
            assert result.complete and list(result) == ["eu"]
            stream = f"{SEC_PREFIX}:mb:ep:pricing"
            assert admin.exists(stream)
            # Acknowledged: the entries left the mailbox.
            await eventually(lambda: asyncio.to_thread(admin.xlen, stream), lambda n: n == 0)
    warnings = [r.getMessage() for r in caplog.records if "without a reply" in r.getMessage()]
    assert len(warnings) == 1 and "allow +client|reply" in warnings[0]
    assert len(acl_denials(admin)) == 1  # the check at start, nothing after it
    assert admin.keys(f"{SEC_PREFIX}:*") == []


async def test_a_prefix_outside_the_acl_is_refused_and_nothing_is_left_open(
    acl_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = acl_server
    system = ActorSystem(sec_url(server, prefix="not-tactor-sec"))
    try:
        with pytest.raises(TransportError, match="permission") as info:
            await system.start()
        assert not isinstance(info.value, redis.RedisError)
        # A start that fails half-way (the connection was fine, the inbox key was not) leaves
        # no connection or heartbeat thread behind.
        await eventually(lambda: asyncio.to_thread(tactor_connections, admin), lambda c: c == [])
    finally:
        await system.close()


@pytest.mark.parametrize("taken", ["-@sortedset", "-xgroup"])
async def test_a_command_the_acl_refuses_is_an_error_that_says_where_the_needs_are(
    acl_server: tuple[RedisServer, redis.Redis], taken: str
) -> None:
    """Refused directly (NOPERM) or inside a script (which says neither NOPERM nor which
    command): either way the error points at the list of what tactor needs."""
    server, admin = acl_server
    admin.execute_command("ACL", "SETUSER", "tactor", taken)
    system = ActorSystem(sec_url(server))
    try:
        with pytest.raises(TransportError) as info:
            async with system:
                await system.spawn(Pricing, "eu")
        assert "'Running with a restricted ACL user' in tactor's docs/transports.md" in str(
            info.value
        )
    finally:
        await system.close()


# -- unreachable and TLS servers -----------------------------------------------


async def test_unreachable_server_fails_fast_with_a_transport_error() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        async with ActorSystem(f"redis://127.0.0.1:{port}/0?prefix=tactor-nowhere"):
            pass
    assert time.monotonic() - started < 5
    assert not isinstance(info.value, redis.RedisError)
    assert "connect" in str(info.value) and str(port) in str(info.value)


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A throwaway CA, a server certificate it signed (127.0.0.1, localhost), and another CA."""
    return make_tls_files(tmp_path)


@pytest.fixture
def tls_server(tls_files: TlsFiles) -> Iterator[RedisServer]:
    """A redis-server that speaks TLS only and needs no client certificate."""
    extra = tls_files.server_args
    server = RedisServer(extra, tls=True)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        probe = subprocess.run(
            [server.binary, "--port", "0", "--tls-port", str(free_port()), *extra],
            capture_output=True,
            text=True,
            timeout=10,
        )
        output = (probe.stdout + probe.stderr).strip().splitlines()
        if any("tls" in line.lower() for line in output):
            pytest.skip(f"redis-server cannot serve TLS ({exc}): {output[-1]}")
        raise
    try:
        yield server
    finally:
        server.stop()


def tls_url(server: RedisServer, **params: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"rediss://127.0.0.1:{server.port}/0?prefix=tactor-tls&{query}"


async def test_tls_with_a_verified_server_certificate(
    tls_server: RedisServer, tls_files: TlsFiles
) -> None:
    url = tls_url(tls_server, ssl_ca_certs=str(tls_files.ca), ssl_cert_reqs="required")
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        assert await system.proxy(Pricing, timeout=5).quote([Item("b", 2)]) == Decimal("4.50")
        await system.publish(PriceChanged("b", Decimal("1")))
        await eventually(system.proxy(Pricing).events_seen, lambda s: "price:b" in s)
        assert "rediss://" in repr(system.transport)
    admin = tls_server.client(ssl=True, ssl_ca_certs=str(tls_files.ca))
    try:
        assert admin.keys("tactor-tls:*") == []
    finally:
        admin.close()


async def test_tls_rejects_a_server_certificate_it_cannot_verify(
    tls_server: RedisServer, tls_files: TlsFiles
) -> None:
    # Control: the server is reachable over TLS when verification is turned off...
    insecure = tls_url(tls_server, ssl_cert_reqs="none", ssl_check_hostname="false")
    async with ActorSystem(insecure) as system:
        assert await system.providers(Pricing) == []
    # ...so these fail because the certificate is not trusted, not for another reason.
    for url in (
        tls_url(tls_server, ssl_ca_certs=str(tls_files.other_ca), ssl_cert_reqs="required"),
        tls_url(tls_server, ssl_cert_reqs="required"),  # the system's CAs do not know ours
    ):
        started = time.monotonic()
        with pytest.raises(TransportError, match="certificate verify failed") as info:
            async with ActorSystem(url):
                pass
        assert not isinstance(info.value, redis.RedisError)
        assert time.monotonic() - started < 5
    # Plain-text Redis protocol against the TLS port does not get through either.
    with pytest.raises(TransportError, match=r"if that port serves TLS, the URL is rediss://"):
        async with ActorSystem(f"redis://127.0.0.1:{tls_server.port}/0?prefix=tactor-tls"):
            pass


async def test_tls_to_a_plain_server_says_to_check_the_servers_tls_port() -> None:
    """A rediss:// URL to a server without TLS: the handshake times out; the error says
    that TLS on one side only is what to look at."""
    plain = urlsplit(require_redis())
    host, port = plain.hostname, plain.port or 6379
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"asks for TLS: does the server serve TLS"):
        async with ActorSystem(f"rediss://{host}:{port}/0?prefix=tactor-tls-plain"):
            pass
    assert time.monotonic() - started < 5


# -- foreign data on tactor's keys (shared Redis) -------------------------------


@pytest.fixture
def shared() -> Iterator[tuple[str, str]]:
    """The shared Redis URL and a prefix of this test's own; leftovers are removed at the end."""
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield base, prefix
    drop_keys(base, prefix)


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def keys_with(client: aioredis.Redis, prefix: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{prefix}:*")]


UNPICKLED: list[str] = []


def _unpickled(marker: str) -> str:
    """Runs only if something unpickles :class:`Booby`."""
    UNPICKLED.append(marker)
    return marker


class Booby:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_unpickled, ("a payload was unpickled",))


async def test_foreign_entries_on_tactor_keys_are_dropped_or_set_aside_with_a_log_line(
    shared: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    base, prefix = shared
    stream = f"{prefix}:mb:ep:pricing"
    async with raw_client(base) as raw:
        async with ActorSystem(with_query(base, prefix=prefix)) as system:
            await system.spawn(Pricing, "eu")
            pricing = system.proxy(Pricing, timeout=5)
            assert await pricing.where() == "eu"
            with caplog.at_level(logging.WARNING, logger="tactor"):
                await raw.xadd(stream, {"x": "1"})  # no payload field at all
                await raw.xadd(stream, {"p": b"\xff\x00\x9c garbage"})  # not JSON
                await raw.xadd(stream, {"p": orjson.dumps({"v": 1, "k": "call", "m": 7})})
                await raw.xadd(stream, {"p": pickle.dumps(Booby())})
                await raw.rpush(f"{prefix}:in:node.{system.node}", b"\xff not a reply")
                await raw.publish(f"{prefix}:ev:stock.eu.changed", b"\x80\x04 not an event")
                assert await pricing.where() == "eu"
                assert await pricing.quote([Item("a", 1)]) == Decimal("1.50")

                def messages(name: str, text: str) -> list[str]:
                    return [
                        r.getMessage()
                        for r in caplog.records
                        if r.name.startswith(name) and text in r.getMessage()
                    ]

                async def logged() -> dict[str, int]:
                    return {
                        "foreign": len(messages("tactor.transports.redis", "foreign entries")),
                        "malformed": len(messages("tactor.actors", "dead letters (malformed)")),
                        "reply": len(messages("tactor.actors", "malformed reply")),
                        "event": len(messages("tactor.actors", "dropped an event")),
                    }

                want = {"foreign": 1, "malformed": 3, "reply": 1, "event": 1}
                await eventually(logged, lambda got: got == want)
            assert UNPICKLED == []
            # Every entry, foreign or not, was acknowledged and trimmed away.
            await eventually(lambda: raw.xpending(stream, "tactor"), lambda p: p["pending"] == 0)
            await eventually(lambda: raw.xlen(stream), lambda n: n == 0)
            assert await pricing.where() == "eu"
            # Tactor's entries it could not read are its dead letters; the foreign one is not.
            assert len(await system.dead_letters(Pricing)) == 3
        assert await keys_with(raw, prefix) == [f"{prefix}:dl:ep:pricing".encode()]


async def test_payloads_on_redis_are_plain_json(shared: tuple[str, str]) -> None:
    base, prefix = shared
    stream = f"{prefix}:mb:ep:pricing"
    async with raw_client(base) as raw, raw.pubsub() as events:
        await events.psubscribe(f"{prefix}:ev:*")
        async with ActorSystem(with_query(base, prefix=prefix)) as system:
            await system.spawn(Pricing, "eu")
            pricing = system.proxy(Pricing, timeout=10)
            # The only provider sleeps on a first call, so the second stays in the stream.
            busy = asyncio.create_task(pricing.sleep(0.5))
            quote = asyncio.create_task(pricing.quote([Item("a", 2)], coupon="HALF"))

            async def quote_entries() -> list[Any]:
                return [
                    fields
                    for _, fields in await raw.xrange(stream)
                    if orjson.loads(fields[b"p"]).get("m") == "quote"
                ]

            (fields,) = await eventually(quote_entries, lambda found: len(found) == 1)
            assert set(fields) == {b"p"}
            payload = fields[b"p"]
            assert not payload.startswith(b"\x80")  # no pickle protocol header
            body = orjson.loads(payload.decode("utf-8"))
            assert body["v"] == 1 and body["k"] == "call" and body["ep"] == "pricing"
            assert body["a"] == {"items": [{"sku": "a", "qty": 2}], "coupon": "HALF"}
            assert body["r"] == f"node.{system.node}" and body["s"] == system.node
            assert await quote == Decimal("1.50")
            assert await busy == "eu"

            # Events on the wire are JSON too.
            await system.publish(PriceChanged("a", Decimal("9.99")))
            message = await eventually(
                lambda: events.get_message(ignore_subscribe_messages=True, timeout=0.1),
                lambda m: m is not None,
            )
            assert message["channel"] == f"{prefix}:ev:PriceChanged".encode()
            event = orjson.loads(message["data"])
            assert event["k"] == "event" and event["b"] == {"sku": "a", "price": "9.99"}
        await events.punsubscribe()
        assert await keys_with(raw, prefix) == []
