"""What is particular to the NATS transport: names, topic patterns onto subjects, its URL,
and deliveries to a provider that is leaving."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from tactor import ConfigError, NoProvider, TransportError
from tactor.testing.urls import fresh_url
from tactor.transports import open_transport
from tactor.transports.nats import NatsTransport
from tactor.transports.nats.bucket_reads import read_keys
from tactor.transports.nats.connection import api
from tactor.transports.nats.consumer import _counts
from tactor.transports.nats.events import subjects_of
from tactor.transports.nats.names import token
from tactor.transports.nats.registry import Registry
from tactor.transports.topics import topic_matches
from tests.conftest import require_nats, with_query
from tests.helpers import eventually, nats_nodes_one_hanging


def test_every_name_is_one_token_and_no_two_names_share_one() -> None:
    names = ["ep:svc.Counter", "pv:9f", "a b", "a=2Eb", "a.b", "ü", "x>y*", "under_score-dash"]
    tokens = [token(name) for name in names]
    assert len(set(tokens)) == len(names)
    for tok in tokens:
        assert tok and all(ch.isalnum() or ch in "_-=" for ch in tok), tok


@pytest.mark.parametrize(
    ("pattern", "subjects"),
    [
        ("a.b", ["R.a.b"]),
        ("a.*", ["R.a.*"]),
        ("a.#", ["R.a.>", "R.a"]),  # ">" matches one level or more: "a" itself needs its own
        ("#", ["R.>", "R"]),
        ("a.#.b", ["R.a.>"]),  # "#" not at the end: the widest subject, then filtered
        ("*.#.c.#", ["R.*.>"]),
    ],
)
def test_topic_patterns_map_onto_subjects_that_cover_them(
    pattern: str, subjects: list[str]
) -> None:
    assert subjects_of("R", pattern) == subjects


@pytest.mark.parametrize("pattern", ["a.#", "a.#.b", "*.#.c.#", "a.*", "#"])
@pytest.mark.parametrize("topic", ["a", "a.b", "a.x.b", "z.c", "q.r.c.s", "a.b.c"])
def test_the_subjects_cover_every_topic_the_pattern_matches(pattern: str, topic: str) -> None:
    if topic_matches(pattern, topic):
        covered = [s for s in subjects_of("R", pattern) if _nats_matches(s, f"R.{topic}")]
        assert covered, (pattern, topic)


def _nats_matches(subject: str, concrete: str) -> bool:
    want, got = subject.split("."), concrete.split(".")
    for i, token_ in enumerate(want):
        if token_ == ">":
            return len(got) > i
        if i >= len(got) or (token_ != "*" and token_ != got[i]):
            return False
    return len(want) == len(got)


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.ns_mb.mb_ep=3Asvc.1.51.50.1796645254596026939.0",  # a server without domain
        "$JS.ACK.ns_mb.mb_ep=3Asvc.3.52.50.1796645254596026939.17",
        "$JS.ACK._.ACCHASH.ns_mb.mb_pv.2.10.9.1796645254596026939.5.x1",  # with its account
        "$JS.ACK.hub.ACCHASH.ns_mb.mb_pv.4.10.9.1796645254596026939.6.x1",  # and a domain
        "$JS.ACK.hub.ACCHASH.ns_mb.mb_pv.5.10.9.1796645254596026939.8",
    ],
)
def test_a_messages_counts_are_read_from_its_reply_subject_as_nats_py_reads_them(
    reply: str,
) -> None:
    msg = Msg(None, subject="ns.mb.x", reply=reply)  # type: ignore[arg-type]
    assert _counts(msg) == (msg.metadata.num_delivered, msg.metadata.num_pending)


@pytest.mark.parametrize("reply", ["_INBOX.a.b", "", "a.b.c.d.e.f.g.h.i"])
def test_a_message_not_from_jetstream_has_no_counts(reply: str) -> None:
    with pytest.raises(NotJSMessageError):
        _counts(Msg(None, subject="x", reply=reply))  # type: ignore[arg-type]


def test_the_url_carries_servers_credentials_tls_and_options() -> None:
    transport = open_transport("nats://u:p%40ss@h1:4222,h2:4223?prefix=app&ttl=2&replicas=3")
    assert isinstance(transport, NatsTransport)
    assert transport.location.servers == ["nats://h1:4222", "nats://h2:4223"]
    assert transport.location.options == {"user": "u", "password": "p@ss"}
    assert (transport.names.prefix, transport.ttl, transport.replicas) == ("app", 2.0, 3)
    token_url = open_transport("nats://s3cret@h1:4222")
    assert isinstance(token_url, NatsTransport)
    assert token_url.location.options == {"token": "s3cret"}
    secure = open_transport("tls://h1:4222")
    assert isinstance(secure, NatsTransport) and "tls" in secure.location.options
    with pytest.raises(ConfigError, match="did you mean 'prefix'"):
        open_transport("nats://h1:4222?prefx=app")
    with pytest.raises(ConfigError, match="ttl"):
        open_transport("nats://h1:4222?ttl=-1")
    prefetching = open_transport("nats://h1:4222?prefetch=4&prefetch_window=0.01")
    assert isinstance(prefetching, NatsTransport)
    assert (prefetching.prefetch, prefetching.prefetch_window) == (4, 0.01)
    assert (secure.prefetch, secure.prefetch_window) == (32, 0.002)  # Redis's defaults
    with pytest.raises(ConfigError, match="prefetch='0': expected a whole number >= 1"):
        open_transport("nats://h1:4222?prefetch=0")
    with pytest.raises(ConfigError, match="tls_ca"):
        open_transport("tls://h1:4222?tls_ca=/no/such/ca.pem")
    in_memory = open_transport("nats://h1:4222?storage=memory")
    assert isinstance(in_memory, NatsTransport)
    assert (in_memory.storage, secure.storage) == ("memory", "file")
    with pytest.raises(ConfigError, match="storage='disk': expected 'file' or 'memory'"):
        open_transport("nats://h1:4222?storage=disk")
    # A prefix Redis takes, that a NATS bucket's name cannot begin with: said at once, not
    # as the server's refusal at start.
    for prefix in ("my.app", "my:app"):
        with pytest.raises(ConfigError, match=f"NATS prefix '{prefix}': use letters"):
            open_transport(f"nats://h1:4222?prefix={prefix}")


T = TypeVar("T")


@pytest.fixture
def namespace() -> Iterator[str]:
    """A NATS namespace of this test's own."""
    with fresh_url(require_nats()) as url:
        yield url


class Elsewhere:
    """An event loop on a thread of its own: what runs there runs while the test's loop is
    held, so the test's transports hear of it only once the test awaits something."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="elsewhere")
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def test_nodes_starting_together_on_a_new_namespace_all_start() -> None:
    # Each makes the namespace's streams and buckets; the server answers all but the first
    # of identical makes at the same moment with "subjects overlap" (10065). Several
    # rounds: one round of eight failed about one time in four before the fix.
    base = require_nats()
    for _ in range(12):
        with fresh_url(base) as url:
            failed = asyncio.run(_start_together(url, 8))
        assert failed == []


async def _start_together(url: str, nodes: int) -> list[str]:
    """Start ``nodes`` transports on ``url`` at once; the failures, then close them."""
    started = [open_transport(url) for _ in range(nodes)]
    outcomes = await asyncio.gather(*(n.start() for n in started), return_exceptions=True)
    for node in started:
        await node.close()
    return [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]


async def test_a_delivery_to_a_provider_that_just_left_is_refused_and_leaves_nothing(
    namespace: str,
) -> None:
    """As on Redis, whose one script checks and appends: once a provider has left, a delivery
    to it or a broadcast to its endpoint is refused (NoProvider; not reached), even by a
    node whose copy of the registry lists it still; nothing is left in a mailbox nobody
    reads. (A delivery to the endpoint is checked after against the copy alone, which may
    still lag: what gets in waits in the endpoint's mailbox for its next provider.)"""
    here, there = open_transport(namespace), Elsewhere()
    other = open_transport(namespace)

    async def direct(endpoint: str, provider: str) -> None:
        with pytest.raises(NoProvider, match=provider):
            await here.deliver(f"pv:{provider}", b"late", endpoint=endpoint, provider=provider)

    async def broadcast(endpoint: str, provider: str) -> None:
        assert await here.deliver_to_providers(endpoint, b"late") == ([], [])

    await here.start()
    try:
        there.run(other.start())
        for n, deliver in enumerate([direct, broadcast]):
            endpoint, provider = f"svc{n}", f"p{n}"
            mailboxes = [f"pv:{provider}", f"ep:{endpoint}"]
            there.run(other.register(endpoint, provider))
            consumer = there.run(other.consume(mailboxes, provider, private=mailboxes[:1]))
            assert await here.providers(endpoint) == [provider]
            # It leaves as a stopped provider does, while this loop is held: this node's
            # copy of the registry lists it still when the delivery is checked.
            there.run(other.unregister(endpoint, provider))
            there.run(consumer.close())
            there.run(other.delete_mailbox(mailboxes[0]))
            await deliver(endpoint, provider)
            assert [await here.mailbox_depth(m) for m in mailboxes] == [0, 0], deliver
    finally:
        there.run(other.close())
        there.close()
        await here.close()


async def test_readers_whose_consumer_was_deleted_make_it_again(namespace: str) -> None:
    """A node's close deletes the consumers nobody uses (Streams.drop_unused): a provider or
    a queue getter whose waiting pull meets its consumer deleted (409) makes it again."""
    transport = open_transport(namespace)
    assert isinstance(transport, NatsTransport)
    await transport.start()
    try:
        names = transport.names
        mailbox = (names.mailboxes, names.durable("mb", "ep:svc"))
        queue = (names.queues, names.durable("q", "jobs"))
        consumer = await transport.consume(["ep:svc"], "c")
        receiving = asyncio.ensure_future(consumer.receive())
        getting = asyncio.ensure_future(transport.queue_get("jobs", None))
        for stream, durable in (mailbox, queue):
            info = functools.partial(api, transport.nc, f"CONSUMER.INFO.{stream}.{durable}")
            await eventually(info, lambda answer: answer["num_waiting"] == 1)
            await api(transport.nc, f"CONSUMER.DELETE.{stream}.{durable}")
        await transport.deliver("ep:svc", b"call")
        assert await transport.queue_put("jobs", b"job", 0)
        delivery = await receiving
        assert delivery.payload == b"call"
        await delivery.ack()
        assert await getting == b"job"
        await consumer.close()
    finally:
        await transport.close()


async def test_a_beat_stays_the_same_size_however_many_providers_a_node_hosts(
    namespace: str,
) -> None:
    """The beat rewrites the node's key alone; each provider's info is a key of its own,
    written once, so infos that add up past one message's limit (1 MiB) register fine."""
    transport = open_transport(namespace)
    assert isinstance(transport, NatsTransport)
    await transport.start()
    try:
        beats = await transport.nc.jetstream().key_value(transport.names.registry)
        sizes = []
        for n in range(3):
            await transport.register("svc", f"p{n}", b"i" * 600_000)  # 1.8 MB in all
            await transport.registry.beat()
            sizes.append(len((await beats.get(transport.node)).value or b""))
        assert len(set(sizes)) == 1 and sizes[0] < 100, sizes
        other = open_transport(namespace)
        await other.start()
        try:
            # Eventually: nats-py 2.9's watcher may end its first read before big values
            # arrive (its marker of the end races them); later versions do not.
            entries = await eventually(
                lambda: other.provider_entries("svc"), lambda found: len(found) == 3
            )
            assert [(e.provider, len(e.info)) for e in entries] == [
                (f"p{n}", 600_000) for n in range(3)
            ]
        finally:
            await other.close()
    finally:
        await transport.close()


async def test_a_node_dropped_as_dead_writes_its_providers_again(namespace: str) -> None:
    """A node cut off past ``ttl`` is dropped by the others, its providers' keys with it; its
    next beat finds its key gone and writes them again. A node that dies (no close) has
    its providers' keys dropped by a live node once its beat aged out."""
    url = with_query(namespace, ttl="1")
    first, second, dying = (open_transport(url) for _ in range(3))
    for transport in (first, second, dying):
        assert isinstance(transport, NatsTransport)
        await transport.start()
    try:
        assert isinstance(first, NatsTransport) and isinstance(second, NatsTransport)
        await first.register("svc", "p1")
        assert await second.providers("svc") == ["p1"]
        beats = await second.nc.jetstream().key_value(second.names.registry)
        await second.purge_registered(first.node)  # as a live node sweeps a dead one's
        await beats.delete(first.node)
        assert await second.providers("svc") == []
        await first.registry.beat()
        assert await second.providers("svc") == ["p1"]

        assert isinstance(dying, NatsTransport)
        await dying.register("svc", "p2")
        assert await second.providers("svc") == ["p1", "p2"]
        await dying.nc.close()  # gone without a word: its beat ages out
        providers = _keys_of(second, second.names.registered)
        await eventually(providers, lambda keys: keys == [f"{first.node}.svc.p1"])
        # (With a ttl of 1 s, a loaded machine can hold first's beat past it: then first is
        # dropped too, for a moment, until its next beat writes p1 again.)
        assert await eventually(lambda: second.providers("svc"), lambda p: p == ["p1"]) == ["p1"]
    finally:
        for transport in (first, second, dying):
            await transport.close()


async def test_a_sweep_that_could_not_delete_a_dropped_nodes_key_deletes_it_next_time(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node judged dead on a stale read (a replica behind, in a leader election) has its
    providers' keys purged; when deleting its key then fails (the beats' bucket has no
    leader yet), the next sweep deletes it: the node, alive all along, finds its key changed
    at its next beat and writes its providers' keys again. (Seen in a 3-node cluster that
    lost a node: the provider stayed unlisted for good.)"""
    async with nats_nodes_one_hanging(namespace, monkeypatch, "sweep") as (sweeper, alive):
        await alive.register("svc", "p1")
        assert await sweeper.providers("svc") == ["p1"]
        registry, keys = sweeper.registry, _keys_of(sweeper, sweeper.names.registered)
        delete = registry._kv.delete  # type: ignore[union-attr]

        async def no_leader_once(key: str, *args: Any, **kwargs: Any) -> Any:
            monkeypatch.setattr(registry._kv, "delete", delete)
            raise TimeoutError("nats: timeout")

        monkeypatch.setattr(registry._kv, "delete", no_leader_once)
        present = _judged_dead(monkeypatch, registry, alive.node)  # a stale read, an election
        await type(registry).sweep(registry)  # (the instance's own is the one that hangs)
        assert await keys() == []  # purged; its key was not deleted
        await alive.registry.beat()
        assert await keys() == []  # so its beat went through, none the wiser

        monkeypatch.setattr(registry, "_present", present)
        await type(registry).sweep(registry)  # deletes the key it could not delete before
        await alive.registry.beat()  # finds its key changed: writes its providers' keys again
        assert await keys() == [f"{alive.node}.svc.p1"]
        assert await eventually(lambda: sweeper.providers("svc"), lambda p: p == ["p1"])


async def test_a_dead_nodes_private_mailboxes_are_dropped_though_the_watcher_saw_it_go(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping a dead node deletes its beat key, and this node's watcher may take that
    delete (and forget the node's entries) before the drop hands on what the node left: its
    private mailboxes are deleted all the same."""
    async with nats_nodes_one_hanging(namespace, monkeypatch, "sweep") as (sweeper, dying):
        await dying.register("svc", "p1")
        assert await sweeper.providers("svc") == ["p1"]
        await sweeper.deliver("pv:p1", b"left", endpoint="svc", provider="p1")
        assert await sweeper.mailbox_depth("pv:p1") == 1
        registry = sweeper.registry
        kv = registry._kv
        assert kv is not None
        delete = kv.delete

        async def watched(key: str, *args: Any, **kwargs: Any) -> Any:  # the watcher first
            done = await delete(key, *args, **kwargs)
            copy = registry._entries

            async def known() -> bool:
                return key in copy

            await eventually(known, lambda there: not there)
            return done

        monkeypatch.setattr(kv, "delete", watched)
        _judged_dead(monkeypatch, registry, dying.node)
        await type(registry).sweep(registry)  # (the instance's own is the one that hangs)
        assert not registry._unsigned
        assert await sweeper.mailbox_depth("pv:p1") == 0


async def test_a_beat_after_failed_ones_writes_the_nodes_providers_again(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a node's beats fail, another node may drop its providers' keys and not manage
    to say so: the first beat that goes through again writes them all again."""
    async with nats_nodes_one_hanging(namespace, monkeypatch, "sweep") as (other, node):
        await node.register("svc", "p1")
        keys = _keys_of(other, other.names.registered)
        assert await keys() == [f"{node.node}.svc.p1"]
        kv = node.registry._kv
        assert kv is not None
        update, failed = kv.update, asyncio.Event()

        async def no_leader(*args: Any, **kwargs: Any) -> Any:
            failed.set()
            raise TimeoutError("nats: timeout")

        monkeypatch.setattr(kv, "update", no_leader)
        with pytest.raises(TransportError, match="heartbeat"):
            await node.registry.beat()
        await other.purge_registered(node.node)  # dropped meanwhile, and never told
        assert await keys() == []
        monkeypatch.setattr(kv, "update", update)
        await node.registry.beat()  # its key unchanged, but the beats before it failed
        assert await keys() == [f"{node.node}.svc.p1"]
        assert failed.is_set()


def _judged_dead(
    monkeypatch: pytest.MonkeyPatch, registry: Registry, node: str
) -> Callable[[str, str], Awaitable[bool]]:
    """Have ``registry``'s sweeps find ``node`` not heard within its ttl and its beat key
    gone (as a read from a replica behind would); returns the real check, to put back."""
    present = registry._present
    assert present is not None

    async def gone(bucket: str, key: str) -> bool:
        return False if key == node else await present(bucket, key)

    monkeypatch.setattr(registry, "_present", gone)
    registry._beats[node] = float("-inf")
    return present


def _keys_of(transport: NatsTransport, bucket: str) -> Callable[[], Awaitable[list[str]]]:
    async def keys() -> list[str]:
        entries = await read_keys(transport.nc, bucket)
        return sorted(key for key, entry in entries.items() if entry.operation is None)

    return keys


async def test_a_direct_subscription_hands_each_message_over_in_order_and_survives_a_failure(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The subscriptions of the call path are handled in nats-py's read loop (no task per
    subscription): every message reaches the handler, in order; a handler that raises is
    logged and the next message still comes; after unsubscribing nothing does."""
    import nats

    from tactor.transports.nats.direct import subscribe_direct

    nc = await nats.connect(namespace.split("?")[0])
    try:
        seen: list[bytes] = []

        def handle(msg: Any) -> None:
            if msg.data == b"bad":
                raise ValueError("a handler's fault")
            seen.append(msg.data)

        subject = nc.new_inbox()
        sub = await subscribe_direct(nc, subject, handle)
        payloads = [str(i).encode() for i in range(500)]
        for payload in [*payloads[:250], b"bad", *payloads[250:]]:
            await nc.publish(subject, payload)
        await nc.flush()
        await eventually(lambda: asyncio.sleep(0, len(seen)), lambda n: n == 500)
        assert seen == payloads
        assert "handling a message on" in caplog.text and "a handler's fault" in caplog.text
        await sub.unsubscribe()
        await nc.publish(subject, b"late")
        await nc.flush()
        await asyncio.sleep(0.05)
        assert seen == payloads
    finally:
        await nc.close()


async def test_a_sweep_that_takes_long_does_not_hold_back_the_nodes_beat(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping what dead nodes left can take a while (many providers, a slow server); the
    node's own beat does not wait for it: its key ages out ``ttl`` after the last beat, and
    the other nodes would drop its providers as a dead node's."""
    url = with_query(namespace, ttl="0.6")  # a beat every 0.2 s
    async with nats_nodes_one_hanging(url, monkeypatch, "sweep") as (busy, other):
        await busy.register("svc", "p1")
        for _ in range(8):  # 4 ttl
            assert await other.providers("svc") == ["p1"]
            await asyncio.sleep(0.3)
