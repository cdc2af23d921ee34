"""The floor of a call over JetStream: the JetStream work of a tactor call, in plain nats-py.

The caller publishes the request into a work-queue stream made as tactor makes
its mailbox stream (file storage, a per-subject bound, a keeper message on a
subject nobody reads) and waits for the stream's acknowledgement
(``js.publish``) and for the reply on a subject of its own. The server process
(``python -m benchmarks.servers natsjs URL TAG``) keeps one pull request (one
message) waiting on a durable consumer with explicit acknowledgement; for each
message it publishes the reply, acknowledges the message and pulls again. What
tactor's guarantees cost on NATS is the ratio of this to a core request/reply;
what is left beyond this is tactor's own.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson

__all__ = ["FloorCaller", "drop", "prepare", "serve_nats_floor"]

_EXPIRES = 5_000_000_000  # a pull waits 5 s at the server (tactor's ``block``)


def _names(tag: str) -> tuple[str, str, str]:
    """The stream, the request subject and the consumer of ``tag``."""
    return f"{tag}_floor", f"{tag}.floor.calls", "calls"


async def prepare(nc: Any, tag: str) -> None:
    """Make the stream (with its keeper) and the consumer the floor's server reads."""
    from nats.js.api import ConsumerConfig

    stream, subject, durable = _names(tag)
    js = nc.jetstream()
    # By the JetStream API itself: nats-py 2.9's StreamConfig has no discard_new_per_subject.
    config = {
        "name": stream,
        "subjects": [f"{tag}.floor.>"],
        "retention": "workqueue",
        "storage": "file",
        "max_msgs_per_subject": 1024,
        "discard": "new",
        "discard_new_per_subject": True,
    }
    answer = await nc.request(f"$JS.API.STREAM.CREATE.{stream}", orjson.dumps(config), 5.0)
    error = orjson.loads(answer.data).get("error")
    if error is not None:
        raise RuntimeError(f"the floor's stream was not made: {error}")
    await js.publish(f"{tag}.floor.keeper.last-block", b"")
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable, filter_subject=subject, ack_policy="explicit", max_deliver=-1
        ),
    )


async def drop(nc: Any, tag: str) -> None:
    await nc.jetstream().delete_stream(_names(tag)[0])


async def serve_nats_floor(url: str, tag: str) -> None:
    import nats

    from .servers import _exit_when_stdin_closes

    _exit_when_stdin_closes()
    nc = await nats.connect(url)
    stream, _, durable = _names(tag)
    inbox = nc.new_inbox()
    pull = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
    body = orjson.dumps({"batch": 1, "expires": _EXPIRES})

    async def on_msg(msg: Any) -> None:
        if "Status" not in (msg.headers or {}):  # a message, not the pull's expiry (408)
            await nc.publish(msg.headers["Reply-To"], msg.data)
            await msg.ack()
        await nc.publish(pull, body, reply=inbox)

    await nc.subscribe(inbox, cb=on_msg)
    await nc.publish(pull, body, reply=inbox)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


class FloorCaller:
    """Calls the floor's server: a stored request, its acknowledgement, then the reply."""

    def __init__(self, nc: Any, tag: str) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._subject = _names(tag)[1]
        self._inbox = nc.new_inbox()
        self._ids = itertools.count()
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}

    async def start(self) -> None:
        async def on_reply(msg: Any) -> None:
            future = self._waiting.pop(msg.data, None)
            if future is not None and not future.done():
                future.set_result(msg.data)

        await self._nc.subscribe(self._inbox, cb=on_reply)
        await self._nc.flush()

    async def call(self) -> bytes:
        key = str(next(self._ids)).encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            await self._js.publish(self._subject, key, headers={"Reply-To": self._inbox})
            return await future
        finally:
            self._waiting.pop(key, None)
