"""What a node's reader shares with its consumers: entries as read, and feeds.

A :class:`Feed` is a mailbox that a node's consumers compete on (an endpoint's):
the reader reads it for those waiting and hands out what it read in turn (see
:mod:`.reader`).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .connection import text

if TYPE_CHECKING:
    from .consumer import RedisConsumer

__all__ = [
    "GROUP",
    "Entry",
    "Feed",
    "acknowledging",
    "entries_of",
    "expected",
    "pairs_of",
    "rings_in",
]

GROUP = "tactor"

#: An entry taken from a stream: its id, its payload, and its attempts so far (this one included).
Entry = tuple[str, bytes, int]


def acknowledging(key: str, ids: list[str]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The commands that acknowledge entries sent without a reply: plain commands, not a
    script (on Redis 7 a script that writes costs several times the commands it runs, and a
    provider acknowledges every message). Deleted first (a stream holds only unfinished work,
    so XLEN is the mailbox's true depth), then acknowledged: a write cut between the two
    leaves an id pending whose entry is gone, which the next claim drops, rather than an
    entry acknowledged and kept. On a stream or group that is gone, both change nothing."""
    return ("XDEL", key, *ids), ("XACK", key, GROUP, *ids)


def expected(exc: ResponseError) -> bool:
    """Whether Redis said the stream or its group is gone, as after a restart or a deletion."""
    return "NOGROUP" in str(exc)[:40] or str(exc).startswith("UNBLOCKED")


def field(fields: Any, name: bytes) -> Any:
    """A field of an entry: fields as redis-py parses them (a dict) or raw (a list)."""
    if isinstance(fields, dict):
        return fields.get(name)
    if isinstance(fields, list):
        for i in range(0, len(fields) - 1, 2):
            if fields[i] == name:
                return fields[i + 1]
    return None


def entries_of(entries: Any, deliveries: int, skip: Any = ()) -> tuple[list[Entry], list[str]]:
    """Tactor's entries among ``entries`` (delivered ``deliveries`` times to the group), and the
    ids of foreign ones (to be acknowledged); those deleted meanwhile or in ``skip`` are left."""
    found: list[Entry] = []
    foreign: list[str] = []
    for entry_id, fields in entries:
        ident = text(entry_id)
        if fields is None or ident in skip:
            continue
        payload = field(fields, b"p")
        if isinstance(payload, bytes):
            found.append((ident, payload, int(field(fields, b"n") or 0) + deliveries))
        else:
            foreign.append(ident)
    return found, foreign


def pairs_of(response: Any) -> Any:
    # RESP3 answers a map of streams, RESP2 a list of pairs; redis-py passes on either.
    return response.items() if isinstance(response, dict) else response or ()


class Feed:
    """A mailbox its node's consumers compete on: read for those waiting, handed out in turn."""

    __slots__ = (
        "buffer", "eager", "held", "key", "mailbox", "redelivered", "seen", "users", "waiters",
        "want",
    )  # fmt: skip

    def __init__(self, key: str, mailbox: str) -> None:
        self.key = key
        self.mailbox = mailbox
        #: Consumers waiting, in the order they started, with how many entries each would
        #: take per read (its prefetch: the reader reads as many for them).
        self.waiters: dict[RedisConsumer, int] = {}
        self.buffer: deque[Entry] = deque()
        #: Ids the node holds: buffered, handed out, or acknowledged and not yet sent.
        self.held: set[str] = set()
        self.redelivered: set[str] = set()  # handed out with attempts > 1, not finished
        self.users = 0
        #: Consumers busy with a message that expect to finish within the prefetch window: the
        #: reader reads on for them (one entry), as a fast consumer prefetches for itself.
        self.eager = 0
        self.want = 0  # the most entries one of them reads per round trip (its prefetch)
        self.seen: set[str] = set()  # ids in the buffer at the last heartbeat

    def take_back_waiting(self, stuck: dict[str, list[str]]) -> None:
        """Add to ``stuck`` the entries that waited in the buffer since the last heartbeat
        (no consumer of this node took them: all busy), and let go of them."""
        waited = [entry for entry in self.buffer if entry[0] in self.seen]
        if waited:
            gone = {entry[0] for entry in waited}
            self.buffer = deque(entry for entry in self.buffer if entry[0] not in gone)
            self.held -= gone
            self.redelivered -= gone
            stuck.setdefault(self.key, []).extend(entry[0] for entry in waited)
        self.seen = {entry[0] for entry in self.buffer}

    def give(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.held.add(entry[0])
            self.put_back(entry, first=False)

    def put_back(self, entry: Entry, *, first: bool = True) -> None:
        """Hand ``entry`` to the first consumer waiting, else keep it (first, or last)."""
        while self.waiters:
            if next(iter(self.waiters)).offer(self, entry):
                return
        if first:
            self.buffer.appendleft(entry)
        else:
            self.buffer.append(entry)


def rings_in(
    fields: list[Any],
    rung: dict[str, RedisConsumer],
    carried: dict[str, list[Any]],
    private: dict[str, RedisConsumer],
) -> None:
    """Read one bell entry: 'k' KEY rings KEY's consumer; each 'r' ID after it, with the
    fields that follow, is an entry of KEY read for this node (kept as XREADGROUP gives it)."""
    key: str | None = None
    entry: list[Any] | None = None
    for i in range(0, len(fields) - 1, 2):
        name, value = fields[i], fields[i + 1]
        if name == b"k":
            key, entry = text(value), None
            if consumer := private.get(key):
                rung[key] = consumer
        elif name == b"r" and key is not None:
            entry = [value, []]
            carried.setdefault(key, []).append(entry)
        elif entry is not None:
            entry[1] += (name, value)
