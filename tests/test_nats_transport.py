"""What is particular to the NATS transport: names, topic patterns onto subjects, its URL,
and a replay that JetStream's per-subject limit refuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tactor import ConfigError, TransportError
from tactor.transports import open_transport
from tactor.transports.nats import NatsTransport
from tactor.transports.nats.events import subjects_of
from tactor.transports.nats.names import token
from tactor.transports.topics import topic_matches
from tests.conftest import drop_nats, require_nats, with_query


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
    with pytest.raises(ConfigError, match="tls_ca"):
        open_transport("tls://h1:4222?tls_ca=/no/such/ca.pem")


@pytest.fixture
def tiny_url() -> Iterator[str]:
    """A NATS namespace of this test's own whose mailboxes hold one message."""
    base = require_nats()
    prefix = f"tactor-test-{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, mailbox_size="1")
    drop_nats(base, prefix)


async def test_a_replay_into_a_full_mailbox_keeps_the_letter(tiny_url: str) -> None:
    transport = open_transport(tiny_url)
    assert isinstance(transport, NatsTransport)
    transport.replay_patience = 0.2
    await transport.start()
    try:
        consumer = await transport.consume(["ep:svc"], "c")
        await transport.deliver("ep:svc", b"bad")
        delivery = await consumer.receive()
        await delivery.dead_letter("r", attempts=2, into="ep:svc", keep=10)
        await transport.deliver("ep:svc", b"filler")  # the mailbox (size 1) is full now
        (letter,) = await transport.dead_letters("ep:svc")
        with pytest.raises(TransportError, match="kept among the dead letters"):
            await transport.replay_dead_letter("ep:svc", letter.id)
        (kept,) = await transport.dead_letters("ep:svc")
        assert (kept.payload, kept.attempts, kept.reason) == (b"bad", 2, "r")
        assert kept.id != letter.id
        await consumer.close()
    finally:
        await transport.close()
