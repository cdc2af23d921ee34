"""The JetStream streams, consumers and KV buckets a namespace needs, made where missing.

Everything is made with the same configuration by every node of a namespace;
one that exists already (made by another node, or before a restart) is used
as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .connection import NOT_FOUND, ApiError, api, translated

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

    from .names import Names

__all__ = ["Streams"]

#: "stream name already in use", "consumer already exists", "consumer name already in use".
_EXISTS = (10058, 10148, 10013, 10105)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class Streams:
    """Making the namespace's streams (a mixin: the transport provides the attributes below)."""

    names: Names
    mailbox_size: int
    ttl: float
    replicas: int

    if TYPE_CHECKING:

        @property
        def nc(self) -> Client: ...

    async def _stream(self, name: str, subjects: list[str], **config: Any) -> None:
        body: dict[str, Any] = {"name": name, "subjects": subjects, "storage": "file"}
        body.update(num_replicas=self.replicas, **config)
        try:
            await api(self.nc, f"STREAM.CREATE.{name}", body)
        except ApiError as exc:
            if exc.code not in _EXISTS:
                raise

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
        from nats.js.errors import BucketNotFoundError

        with translated("open the bucket", bucket):
            try:
                return await js.key_value(bucket)
            except BucketNotFoundError:
                pass
            config = KeyValueConfig(bucket=bucket, ttl=ttl, history=1, replicas=self.replicas)
            return await js.create_key_value(config)
