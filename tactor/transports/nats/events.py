"""Events on core NATS subjects: tactor's topic patterns mapped onto ``*`` and ``>``.

A topic ``a.b.c`` is the subject ``P.ev.a.b.c`` (topic segments are valid
subject tokens). A pattern's ``*`` is NATS's ``*``. ``#`` (any number of
segments, none included) has no exact NATS form: ``>`` matches one or more and
only ends a subject. So a pattern is subscribed as its part before the first
``#`` followed by ``>`` — and that part alone too when ``#`` may match nothing
at the end (``a.#`` is ``P.ev.a.>`` and ``P.ev.a``) — and what arrives is
filtered with tactor's own :func:`~tactor.transports.topics.topic_matches`
(which also keeps wildcards off tactor's reserved topics).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from ..subscription import BufferedSubscription
from ..topics import check_pattern, topic_matches
from .connection import translated
from .direct import subscribe_direct

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["NatsSubscriptionBuffer", "subjects_of"]

log = logging.getLogger(__name__)


def subjects_of(root: str, pattern: str) -> list[str]:
    """The NATS subjects that together cover ``pattern`` (under the events' ``root``)."""
    segments = pattern.split(".")
    if "#" not in segments:
        return [".".join([root, *segments])]
    head = segments[: segments.index("#")]
    subjects = [".".join([root, *head, ">"])]
    if all(s == "#" for s in segments[len(head) :]):
        subjects.append(".".join([root, *head]))  # "#" matching no segment at all
    return subjects


class NatsSubscriptionBuffer(BufferedSubscription):
    """A subscription fed by one or two NATS subscriptions, filtered by tactor's matcher."""

    def __init__(
        self, root: str, pattern: str, buffer: int, owner: set[NatsSubscriptionBuffer]
    ) -> None:
        super().__init__(check_pattern(pattern), buffer)
        self._owner = owner  # the transport's open subscriptions: this one until detached
        self._root = root
        self._skip = len(root) + 1
        self._subs: list[NatsSubscription] = []
        self._dropped = 0

    async def attach(self, nc: Client) -> None:
        with translated("subscribe to", self.pattern):
            for subject in subjects_of(self._root, self.pattern):
                self._subs.append(await subscribe_direct(nc, subject, self._on_msg))
            await nc.flush()  # subscribed at the server before this returns
        self._owner.add(self)

    def _on_msg(self, msg: Msg) -> None:
        topic = msg.subject[self._skip :]
        if not topic_matches(self.pattern, topic):
            return
        if not self.offer(topic, msg.data):
            self._dropped += 1
            log.warning(
                "subscription to %r is full: dropped an event on %r (%d so far)",
                self.pattern,
                topic,
                self._dropped,
            )

    async def detach(self) -> None:
        self._owner.discard(self)
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # closed connection: nothing left to undo
                log.debug("unsubscribe %r: %s", self.pattern, exc)
        self._subs.clear()
