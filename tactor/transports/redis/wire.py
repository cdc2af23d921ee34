"""Commands on the wire without redis-py's per-command machinery.

redis-py's ``execute_command`` checks a connection out of the pool, packs the
command in Python, wraps I/O in timeouts and runs response callbacks: on the
2-core benchmark machine that is a large share of a provider's CPU per
message (profiled). The hot paths — pipelined commands and the blocking reads
of mailboxes and inboxes — pack their commands here and read the raw replies
(hiredis-parsed lists and bytes) on a connection they hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

__all__ = ["SKIP_REPLY", "HeldConnection", "pack", "quiet_allowed", "quietly", "replies_due"]

#: Redis answers neither this command nor the one after it. Commands whose reply
#: nobody reads (a reply sent to a caller, an acknowledgement) go after it: an
#: answer that arrives while a process waits in its event loop wakes it, and on
#: the 2-core benchmark machine that wake-up was a quarter of a provider's CPU
#: per message (measured).
SKIP_REPLY = ("CLIENT", "REPLY", "SKIP")


def quietly(command: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """``command`` sent without a reply: its errors are not seen either."""
    return [SKIP_REPLY, command]


def replies_due(commands: list[tuple[Any, ...]]) -> int:
    """How many replies Redis sends for ``commands``."""
    return len(commands) - 2 * sum(1 for command in commands if command is SKIP_REPLY)


def pack(commands: list[tuple[Any, ...]]) -> bytes:
    """Commands in RESP, the way Redis reads them (arguments: bytes, str, int or float).

    Byte for byte what redis-py's packer makes. Strings and integers repeat
    from message to message (command names, keys, scripts, counts), so their
    packed forms are kept: packing a provider's read, acknowledgement and
    reply costs half as much (measured, ~7 → ~3.5 µs per message).
    """
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = type(arg)
            if kind is bytes:  # payloads: never the same twice
                out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
                continue
            known = kind is str or kind is int  # exactly: True must not find 1's packed form
            packed = _PACKED.get(arg) if known else None
            if packed is None:
                packed = _bulk(arg)
                if known:
                    if len(_PACKED) >= _MAX_PACKED:  # entry ids come and go: start over
                        _PACKED.clear()
                    _PACKED[arg] = packed
            out.append(packed)
    return b"".join(out)


_PACKED: dict[str | int, bytes] = {}
_MAX_PACKED = 4096


def _bulk(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        data = arg
    elif isinstance(arg, str):
        data = arg.encode()
    elif isinstance(arg, int | float) and not isinstance(arg, bool):
        data = repr(arg).encode()
    else:
        raise TypeError(f"cannot send {type(arg).__name__} to Redis")
    return b"$%d\r\n%b\r\n" % (len(data), data)


class HeldConnection:
    """One connection of a client's pool, held by one reader for its blocking commands.

    A command cut short (cancelled, or the connection failed) leaves the
    connection disconnected; the next command reconnects.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._pool = client.connection_pool
        self._connection: AbstractConnection | None = None

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its raw reply; an error reply raises ResponseError."""
        reply = (await self.execute_many([args]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def execute_many(self, commands: list[tuple[Any, ...]], *, written: int = 0) -> list[Any]:
        """Send commands in one write; their raw replies in order, error replies as values.

        ``written``: that many replies are due for commands already written by
        :meth:`write_now`; they come first. Commands sent :func:`quietly` have none.
        """
        connection = self._connection
        if connection is None:
            # Untyped in some redis-py versions, typed in others: called as what it is.
            check_out: Callable[[], Awaitable[AbstractConnection]] = self._pool.get_connection
            connection = await check_out()
            self._connection = connection
        elif not written and _closed_by_server(connection):
            # Redis closed it (a restart) while it sat idle: writing into it would fail the
            # first command, or lose it unseen if it goes without a reply. Connect afresh.
            await connection.disconnect()
        try:
            if not connection.is_connected:
                # connect() itself, not the reconnection inside a write: a Sentinel-managed
                # connection asks for the current primary only there (redis-py 8's writes
                # reconnect to the address the connection had: the old primary).
                connect: Callable[[], Awaitable[None]] = connection.connect
                await connect()
            if commands:
                await connection.send_packed_command(pack(commands), check_health=False)
            replies: list[Any] = []
            for _ in range(written + replies_due(commands)):
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:  # one command's error: the rest still come
                    replies.append(exc)
            return replies
        except BaseException:
            await connection.disconnect()  # cut short: what is still unread is garbage
            raise

    def write_now(self, commands: list[tuple[Any, ...]]) -> bool:
        """Write at once, without a loop turn, if the connection is up and idle; else False.

        Read the replies with ``execute_many([], written=replies_due(commands))``.
        """
        connection = self._connection
        # redis-py keeps the connection's asyncio writer in ``_writer``; without it, no shortcut.
        writer = getattr(connection, "_writer", None) if connection is not None else None
        if writer is None or writer.transport.is_closing() or _closed_by_server(connection):
            return False
        if writer.transport.get_write_buffer_size():
            return False  # the socket is backed up: let the batch wait for room
        writer.write(pack(commands))
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
            await self._pool.release(connection)


def _closed_by_server(connection: AbstractConnection | None) -> bool:
    """Whether the server closed ``connection``: its reader saw the end of the stream.

    After the server's FIN the writer still looks open (``is_closing()`` stays
    False) and a write succeeds locally — the bytes are lost. The reader knows.
    """
    reader = getattr(connection, "_reader", None)  # redis-py's asyncio StreamReader
    return reader is not None and reader.at_eof()


async def quiet_allowed(client: aioredis.Redis) -> str | None:
    """Why this client may not send commands without a reply, or None if it may.

    Those commands (a reply's RPUSH and PEXPIRE, an acknowledgement's XDEL and
    XACK) go after ``CLIENT REPLY SKIP``. An ACL (or a proxy) that refuses
    ``CLIENT REPLY`` answers it with an error, and then answers the command
    meant to go without a reply: every later reply would be off by two.
    """
    held = HeldConnection(client)
    try:
        replies = await held.execute_many([*quietly(("PING",)), ("PING",)])
    finally:
        await held.close()  # refused, two more replies are due: the connection is dropped
    return str(replies[0]) if isinstance(replies[0], Exception) else None
