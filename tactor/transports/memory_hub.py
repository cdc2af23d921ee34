"""The state a ``memory://`` hub holds: bounded mailboxes, queues, registry, topics.

One hub is shared by every :class:`~tactor.transports.memory.MemoryTransport`
opened on it (``memory://NAME`` in one process); the transport module holds
the verbs, this one the data and its hand-over rules.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from collections import deque
from typing import Protocol

from .consumer import DeadLetterEntry
from .inbox import InboxHandler
from .subscription import BufferedSubscription

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "DEFAULT_SUBSCRIPTION_BUFFER",
    "NAMED_HUBS",
    "DeadLetters",
    "Getter",
    "HubQueue",
    "Mailbox",
    "MemoryHub",
    "Waiter",
]

DEFAULT_MAILBOX_SIZE = 1024
DEFAULT_SUBSCRIPTION_BUFFER = 1024

#: A payload in a mailbox, with how many times it was delivered and not acknowledged.
Message = tuple[bytes, int]


class Waiter(Protocol):
    """A consumer waiting for a message: a future, or anything handed the message at once.

    One waiter may wait on several mailboxes: the first to hand it a message
    makes it ``done``, and the others pass it by.
    """

    def done(self) -> bool: ...

    def set_result(self, result: tuple[str, Message], /) -> None: ...


class Mailbox:
    """A bounded FIFO whose consumers wait on futures shared across mailboxes."""

    __slots__ = ("items", "maxsize", "name", "putters", "waiters")

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self.maxsize = maxsize
        self.items: deque[Message] = deque()
        # Lists, not deques: an empty deque takes 760 bytes, and every provider has a
        # mailbox of its own; they hold a waiter or two (the shared ones, their consumers).
        self.waiters: list[Waiter] = []
        self.putters: list[asyncio.Future[None]] = []

    def hand_over(self, payload: bytes, *, front: bool = False, attempted: int = 0) -> bool:
        """Give ``payload`` (delivered ``attempted`` times before) to a waiting consumer,
        else queue it; True if handed over."""
        message = (payload, attempted)
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result((self.name, message))
                return True
        if front:
            self.items.appendleft(message)
        else:
            self.items.append(message)
        return False

    def take(self) -> Message | None:
        if not self.items:
            return None
        message = self.items.popleft()
        self.wake_putter()
        return message

    def wake_putter(self) -> None:
        while self.putters:
            putter = self.putters.pop(0)
            if not putter.done():
                putter.set_result(None)
                return

    def has_waiter(self) -> bool:
        while self.waiters and self.waiters[0].done():
            self.waiters.pop(0)
        return bool(self.waiters)

    def full(self) -> bool:
        return len(self.items) >= self.maxsize


class DeadLetters:
    """The dead letters of one mailbox, oldest first."""

    __slots__ = ("letters",)

    def __init__(self) -> None:
        self.letters: dict[str, DeadLetterEntry] = {}

    def add(self, ident: str, payload: bytes, attempts: int, reason: str, keep: int) -> int:
        """Keep a letter, then drop the oldest beyond ``keep``; return how many were dropped."""
        self.letters[ident] = DeadLetterEntry(ident, payload, attempts, reason, time.time())
        dropped = max(len(self.letters) - keep, 0)
        for old in list(itertools.islice(self.letters, dropped)):
            del self.letters[old]
        return dropped

    def entries(self) -> list[DeadLetterEntry]:
        return list(self.letters.values())


Getter = asyncio.Future[bytes | None]


class HubQueue:
    """A named FIFO of payloads with waiting getters (served first come, first served)."""

    __slots__ = ("getters", "items", "unfinished")

    def __init__(self) -> None:
        self.items: deque[bytes] = deque()
        self.getters: deque[Getter] = deque()
        self.unfinished = 0

    def hand_over(self, payload: bytes, *, front: bool = False) -> None:
        """Give ``payload`` to the longest-waiting getter, else keep it."""
        while self.getters:
            getter = self.getters.popleft()
            if not getter.done():
                getter.set_result(payload)
                return
        if front:
            self.items.appendleft(payload)
        else:
            self.items.append(payload)

    def unused(self) -> bool:
        return not self.items and not self.getters and self.unfinished == 0


class MemoryHub:
    """The shared state behind ``memory://`` transports: mailboxes, topics, registry, queues."""

    def __init__(self, mailbox_size: int = DEFAULT_MAILBOX_SIZE) -> None:
        self.mailbox_size = mailbox_size
        self.mailboxes: dict[str, Mailbox] = {}
        self.subscriptions: list[BufferedSubscription] = []
        #: endpoint -> provider -> the info it registered with
        self.registry: dict[str, dict[str, bytes]] = {}
        self.inboxes: dict[str, InboxHandler] = {}
        self.queues: dict[str, HubQueue] = {}
        self.dead_letters: dict[str, DeadLetters] = {}
        self._letter_ids = itertools.count(1)

    def dead_letters_of(self, mailbox: str) -> DeadLetters:
        letters = self.dead_letters.get(mailbox)
        if letters is None:
            letters = self.dead_letters[mailbox] = DeadLetters()
        return letters

    def next_letter_id(self) -> str:
        """A dead letter's id: unique in this hub, and rising."""
        return f"{next(self._letter_ids)}"

    def take_dead_letter(self, mailbox: str, ident: str) -> DeadLetterEntry | None:
        """Remove and return one of ``mailbox``'s dead letters (None if there is none)."""
        letters = self.dead_letters.get(mailbox)
        return None if letters is None else letters.letters.pop(ident, None)

    def mailbox(self, name: str) -> Mailbox:
        box = self.mailboxes.get(name)
        if box is None:
            box = self.mailboxes[name] = Mailbox(name, self.mailbox_size)
        return box

    def queue(self, name: str) -> HubQueue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = HubQueue()
        return queue

    def forget_queue(self, name: str) -> None:
        """Drop a queue that holds nothing: it is the same as one never used."""
        queue = self.queues.get(name)
        if queue is not None and queue.unused():
            del self.queues[name]


NAMED_HUBS: weakref.WeakValueDictionary[str, MemoryHub] = weakref.WeakValueDictionary()
