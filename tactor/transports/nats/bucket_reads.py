"""A KV bucket's keys as they are now, read with a pull consumer of tactor's own.

nats-py's watcher (``KeyValue.watch``, ``keys``) marks the end of what a bucket held with
a None that can come too early (when the server had sent every entry before the watcher
asked how many were pending, the None comes first and the read finds nothing) or never
(when what was pending is purged meanwhile: a live node sweeping a dead one's keys). A
consumer pulled with ``no_wait`` has a clear end instead: the entry with nothing pending
after it, or the server's status once nothing is left. The consumer is deleted once read,
and the server drops it a moment later if that delete is lost.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from .connection import api, translated
from .direct import subscribe_direct

__all__ = ["read_keys"]

#: Entries a pull asks for at most: a bucket with more is read in several pulls.
_BATCH = 4096
#: The server drops a read's consumer this long after it was last used.
_LINGER_NS = 5 * 10**9
#: How long a pull may wait at the server when nothing is left to deliver. A pull with
#: ``no_wait`` is answered at once once it has delivered what there is, but a NATS 2.9
#: server that still counts as pending entries that aged out meanwhile (a bucket with an
#: age limit) may hold it, unanswered, for ever: with an expiry it answers by then.
_PULL_EXPIRES_NS = 250 * 10**6


def _pull_body(batch: int) -> bytes:
    return orjson.dumps({"batch": batch, "no_wait": True, "expires": _PULL_EXPIRES_NS})


async def read_keys(
    nc: Client, bucket: str, keys: str = ">", timeout: float = 5.0
) -> dict[str, KeyValue.Entry]:
    """The keys of ``bucket`` that match ``keys`` with their latest entries, deleted ones
    (``DEL``, ``PURGE`` markers) included: a key -> entry map as a watch would build it.
    Raises TransportError when NATS fails or the read takes longer than ``timeout``."""
    stream, prefix = f"KV_{bucket}", f"$KV.{bucket}."
    got: asyncio.Queue[Msg] = asyncio.Queue()
    inbox = nc.new_inbox()
    with translated("read the bucket", bucket):
        sub = await subscribe_direct(nc, inbox, got.put_nowait)
    consumer = None
    try:
        with translated("read the bucket", bucket):
            async with asyncio.timeout(timeout):
                config = {
                    "deliver_policy": "last_per_subject",
                    "ack_policy": "none",
                    "filter_subject": prefix + keys,
                    "inactive_threshold": _LINGER_NS,
                    "mem_storage": True,
                    "num_replicas": 1,
                }
                body = {"stream_name": stream, "config": config}
                created = await api(nc, f"CONSUMER.CREATE.{stream}", body, timeout)
                consumer = str(created["name"])
                pull = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
                return await _pull_all(nc, pull, inbox, got, int(created["num_pending"]), bucket)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if consumer is not None:
            with contextlib.suppress(Exception):  # no answer awaited: it lingers at worst
                await nc.publish(f"$JS.API.CONSUMER.DELETE.{stream}.{consumer}", b"")


async def _pull_all(
    nc: Client, pull: str, inbox: str, got: asyncio.Queue[Msg], pending: int, bucket: str
) -> dict[str, KeyValue.Entry]:
    found: dict[str, KeyValue.Entry] = {}
    skip = len(f"$KV.{bucket}.")
    while pending > 0:
        batch = min(pending, _BATCH)
        await nc.publish(pull, _pull_body(batch), reply=inbox)
        for _ in range(batch):
            msg = await got.get()
            headers = msg.headers or {}
            if headers.get("Status"):  # nothing left: the rest went meanwhile
                return found
            meta, key = msg.metadata, msg.subject[skip:]
            pending = meta.num_pending
            found[key] = KeyValue.Entry(
                bucket=bucket,
                key=key,
                value=msg.data,
                revision=meta.sequence.stream,
                delta=pending,
                created=None,
                operation=_operation(headers),
            )
            if pending == 0:
                break
    return found


def _operation(headers: dict[str, str]) -> str | None:
    """``DEL``, ``PURGE`` or None (a value), as nats-py's watcher reads it: NATS 2.11+ may
    mark a key removed by the server with ``Nats-Marker-Reason`` instead."""
    operation = headers.get("KV-Operation")
    if operation is None and "Nats-Marker-Reason" in headers:
        return "DEL" if headers["Nats-Marker-Reason"] == "Remove" else "PURGE"
    return operation
