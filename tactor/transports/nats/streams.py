"""The JetStream streams, consumers and KV buckets a namespace needs, made where missing;
appending to the streams, and the mailbox stream's consumers.

Everything is made with the same configuration by every node of a namespace;
one that exists already (made by another node, or before a restart) is used
as it is.

The mailbox stream keeps one message of its own, the *keeper*, on a subject no
consumer reads (``Names.keeper``). A work queue is empty most of the time under
light load (each message goes once it is acknowledged), and a JetStream file
store closes the file of its newest block each time that block empties and opens
it again at the next message (nats-server 2.9 deletes it and makes a new one):
with a message left in the newest block, a call costs the server no file to
close, make or open. A node that appended to a stream since its last heartbeat
drops the keeper and writes it again at the beat (the store starts a new block
every few MiB); a closing node that wrote it drops it (a running one writes it
again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nats.errors import NoRespondersError

from ...errors import TransportError
from .connection import NOT_FOUND, ApiError, api, translated
from .consumer import ATTEMPTED

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

    from .appends import Appends
    from .names import Names

__all__ = ["Streams"]

#: "stream name already in use", "consumer already exists", "consumer name already in use".
_EXISTS = (10058, 10148, 10013, 10105)
#: "subjects overlap with an existing stream": also what the server answers the second of
#: two nodes that make the same stream at the same moment (nodes starting together).
_OVERLAP = 10065


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class Streams:
    """Making the namespace's streams (a mixin: the transport provides the attributes below)."""

    names: Names
    mailbox_size: int
    ttl: float
    block: float
    replicas: int
    storage: str
    appends: Appends

    appended = False  # to a stream since the keeper was last written (it is due again)
    kept = False  # this node wrote the keeper (it drops it when it closes)

    if TYPE_CHECKING:

        @property
        def nc(self) -> Client: ...

    async def _stream(self, name: str, subjects: list[str], **config: Any) -> None:
        body: dict[str, Any] = {"name": name, "subjects": subjects, "storage": self.storage}
        body.update(num_replicas=self.replicas, **config)
        try:
            await api(self.nc, f"STREAM.CREATE.{name}", body)
        except ApiError as exc:
            if exc.code in _EXISTS or (exc.code == _OVERLAP and await self._exists(name)):
                return
            raise

    async def _exists(self, stream: str) -> bool:
        """Whether ``stream`` exists (made by another node as this one tried to)."""
        try:
            await api(self.nc, f"STREAM.INFO.{stream}")
        except ApiError as exc:
            if exc.code in NOT_FOUND:
                return False
            raise
        return True

    async def ensure_streams(self) -> None:
        names = self.names
        await self._stream(
            names.mailboxes,
            [names.all_of("mb")],
            retention="workqueue",
            max_msgs_per_subject=self.mailbox_size,
            discard="new",
            discard_new_per_subject=True,
        )
        await self._stream(names.dead, [names.all_of("dl")], retention="limits")
        await self._stream(names.queues, [names.all_of("q")], retention="workqueue")

    def pull_subject(self, mailbox: str) -> str:
        durable = self.names.durable("mb", mailbox)
        return f"$JS.API.CONSUMER.MSG.NEXT.{self.names.mailboxes}.{durable}"

    async def ensure_mailbox_consumer(self, mailbox: str, private: bool) -> None:
        durable = self.names.durable("mb", mailbox)
        # A dead node's private mailbox consumer goes by itself; an endpoint's once unused.
        idle = (20 if private else 100) * max(self.ttl, self.block)
        await self.ensure_consumer(
            self.names.mailboxes, durable, self.names.every_subject_of(mailbox), inactive=idle
        )

    async def publish_to_stream(self, subject: str, payload: bytes, attempted: int = 0) -> int:
        """Append to a stream; the message's stream sequence. :class:`ApiError` (code
        ``FULL``) when the subject is full."""
        headers = {ATTEMPTED: str(attempted)} if attempted else None
        self.appended = True
        for again in (True, False):
            try:
                with translated("deliver to", subject):
                    answer = await self.appends.append(self.nc, subject, payload, headers)
                return int(answer.get("seq", 0))
            except TransportError as exc:
                if not again or not isinstance(exc.__context__, NoRespondersError):
                    raise
            await self.ensure_streams()  # no stream answered: a server that lost its state
        raise AssertionError("unreachable")  # the second attempt returned or raised

    async def mailbox_depth(self, mailbox: str) -> int:
        """Messages not yet delivered to a consumer: the mailbox consumer's ``num_pending``
        (before there is one, the stream's count of the mailbox's subject)."""
        durable = self.names.durable("mb", mailbox)
        try:
            info = await api(self.nc, f"CONSUMER.INFO.{self.names.mailboxes}.{durable}")
            return int(info.get("num_pending", 0))
        except ApiError:
            subjects = self.names.every_subject_of(mailbox)
            info = await api(
                self.nc, f"STREAM.INFO.{self.names.mailboxes}", {"subjects_filter": subjects}
            )
            return sum((info.get("state", {}).get("subjects") or {}).values())

    async def renew_keeper(self) -> None:
        """Write the mailbox stream's keeper anew (into its newest block) in place of the
        older ones, if this node appended to a stream since the last call (see above)."""
        if not self.appended:
            return
        with contextlib.suppress(TransportError):  # only speed depends on it
            # Drop first: the keeper's subject is bound like a mailbox (mailbox_size).
            await self.drop_keeper()
            await self.publish_to_stream(self.names.keeper, b"")
            self.kept = True
        self.appended = False

    async def drop_keeper(self) -> None:
        await api(self.nc, f"STREAM.PURGE.{self.names.mailboxes}", {"filter": self.names.keeper})

    async def ensure_consumer(
        self, stream: str, durable: str, subject: str, *, inactive: float | None = None
    ) -> None:
        config: dict[str, Any] = {
            "durable_name": durable,
            "filter_subject": subject,
            "ack_policy": "explicit",
            "ack_wait": _ns(self.ttl),
            "deliver_policy": "all",
            "max_deliver": -1,
            "max_waiting": 4096,
            "num_replicas": self.replicas,
        }
        if inactive is not None:
            config["inactive_threshold"] = _ns(inactive)
        try:
            await api(
                self.nc,
                f"CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                {"stream_name": stream, "config": config},
            )
        except ApiError as exc:
            if exc.code not in _EXISTS:
                raise

    async def drop_unused(self, consumers: Iterable[tuple[str, str]]) -> None:
        """Delete each consumer ``(stream, durable)`` that nobody uses now: no pull request
        waits on it, nothing handed out is unacknowledged and nothing is left to hand out
        (a later node makes it again; one whose pull meets it gone makes it again at once)."""
        for stream, durable in consumers:
            try:
                info = await api(self.nc, f"CONSUMER.INFO.{stream}.{durable}")
                if not any(info.get(n) for n in ("num_waiting", "num_ack_pending", "num_pending")):
                    await api(self.nc, f"CONSUMER.DELETE.{stream}.{durable}")
            except ApiError as exc:
                if exc.code not in NOT_FOUND:
                    raise

    async def registry_buckets(self, js: JetStreamContext) -> tuple[KeyValue, KeyValue]:
        """The registry's buckets (see :mod:`.registry`): nodes' beats, providers' keys."""
        beats = await self.key_value(js, self.names.registry, self.ttl)
        return beats, await self.key_value(js, self.names.registered, None)

    async def purge_registered(self, node: str) -> None:
        """Remove every key of ``node`` from the providers' bucket, markers too."""
        bucket = self.names.registered
        await api(self.nc, f"STREAM.PURGE.KV_{bucket}", {"filter": f"$KV.{bucket}.{node}.>"})

    async def key_value(self, js: JetStreamContext, bucket: str, ttl: float | None) -> KeyValue:
        from nats.js.api import KeyValueConfig
        from nats.js.errors import APIError, BucketNotFoundError

        with translated("open the bucket", bucket):
            try:
                return await js.key_value(bucket)
            except BucketNotFoundError:
                pass
            config = KeyValueConfig(bucket=bucket, ttl=ttl, history=1, replicas=self.replicas)
            try:
                return await js.create_key_value(config)
            except APIError as exc:
                if exc.err_code not in (*_EXISTS, _OVERLAP):
                    raise
                try:  # made by another node at the same moment
                    return await js.key_value(bucket)
                except BucketNotFoundError:
                    raise exc from None
