"""Connecting to NATS from a URL, JetStream's API by request, and nats-py's errors translated.

``nats://[user:password@]host[:port][,host[:port]...]`` or ``nats://TOKEN@host``
(as nats-py reads them), ``tls://…`` for TLS (nats-py's scheme for it), with
``tls_ca``, ``tls_cert``, ``tls_key`` and ``tls_hostname`` for the certificates.
Several servers, comma-separated, are one cluster: the client picks one and
moves to another when it fails.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from nats.aio.client import Client
from nats.errors import Error as NatsError

from ...errors import ConfigError, TransportClosed, TransportError

__all__ = ["ApiError", "Location", "answer", "api", "check_tls", "stop_task", "translated"]

#: JetStream's error codes tactor meets on purpose.
FULL = 10077  # maximum messages per subject exceeded (a mailbox at its bound)
WRONG_LAST_SEQUENCE = 10071  # a put raced another (queues)
NOT_FOUND = (10037, 10014, 10059)  # no message, consumer or stream
NOT_DELETED = 10057  # a message to delete is gone (acknowledged, purged)
#: The server's JetStream storage is used up: insufficient resources, storage, memory.
NO_ROOM = (10023, 10047, 10028)
_NO_ROOM_HINT = (
    ": the server's JetStream storage is full (its max_file_store or max_memory_store, "
    "or the account's limits); messages not yet acknowledged hold it"
)


class ApiError(TransportError):
    """JetStream answered a request with an error (``code`` is its ``err_code``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Location:
    """Where and how to connect: the servers, credentials and TLS of a URL."""

    servers: list[str]
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ",".join(s.rsplit("@", 1)[-1] for s in self.servers)


def location_of(url: str, tls_options: dict[str, str]) -> Location:
    """Read ``url`` (its query is tactor's, already parsed off into ``tls_options``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls"):
        raise ConfigError(f"not a nats:// or tls:// URL: {url!r}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {}
    if credentials:
        user, colon, password = credentials.partition(":")
        if colon:
            options.update(user=unquote(user), password=unquote(password))
        else:
            options["token"] = unquote(user)
    servers = [f"{parts.scheme}://{host}" for host in hosts.split(",") if host] or [
        f"{parts.scheme}://127.0.0.1:4222"
    ]
    if parts.scheme == "tls" or tls_options:
        options["tls"] = _tls_context(tls_options)
        if "tls_hostname" in tls_options:
            options["tls_hostname"] = tls_options["tls_hostname"]
    return Location(servers, options)


async def check_tls(location: Location, timeout: float) -> None:
    """Where ``location`` asks for TLS, raise TransportError for a server of its URL that
    does not require TLS, before nats-py connects (and sends its credentials).

    nats-py (2.x) turns a connection into TLS only when the server's first message, its
    INFO, says ``tls_required``: to a server without TLS, or one that also takes plain
    text (``allow_non_tls``), a ``tls://`` URL would connect in plain text, credentials
    and all. So each server of the URL is asked for its INFO first. One that cannot be
    reached, or sends nothing within ``timeout`` (a TLS-first server), is left to
    nats-py, which reports it or uses another.
    """
    if "tls" not in location.options:
        return
    addresses = [_address(server) for server in location.servers]
    infos = await asyncio.gather(*(_info_of(*address, timeout) for address in addresses))
    for (host, port), info in zip(addresses, infos, strict=True):
        if info is not None and not info.get("tls_required"):
            plain = "takes plain text too" if info.get("tls_available") else "has no TLS"
            raise TransportError(
                f"NATS at {host}:{port} does not require TLS (it {plain}), and the URL asks "
                "for TLS: nats-py would connect in plain text, credentials and all. Give the "
                "server a tls block without allow_non_tls, or use nats:// if plain text is meant"
            )


def _address(server: str) -> tuple[str, int]:
    parts = urlsplit(server)
    return parts.hostname or "127.0.0.1", parts.port or 4222


async def _info_of(host: str, port: int, timeout: float) -> dict[str, Any] | None:
    """The INFO a NATS server greets a connection with; None if it cannot be had in time."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return None
    kind, _, body = line.partition(b" ")
    try:
        info = orjson.loads(body) if kind == b"INFO" else None
    except orjson.JSONDecodeError:
        return None
    return info if isinstance(info, dict) else None


def _tls_context(tls_options: dict[str, str]) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=tls_options.get("tls_ca"))
        if "tls_cert" in tls_options:
            context.load_cert_chain(tls_options["tls_cert"], tls_options.get("tls_key"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"nats TLS options {tls_options}: {exc}") from None
    return context


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it to end — again if a cancellation was swallowed
    (nats-py awaits through ``asyncio.wait_for``, which can swallow one on Python 3.11)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)


class translated:  # lower case: used like a function, ``with translated("pull from", m): ...``
    """Raise nats-py's errors (and lost connections) as TransportError, saying what failed.

    A class, not a generator (as Redis's): it wraps each publish, acknowledgement and
    pull on a message's path, where a generator costs ~1 µs more each time.
    """

    __slots__ = ("action", "where")

    def __init__(self, action: str, where: str = "") -> None:
        self.action, self.where = action, where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:  # never swallows: returns (None) to let ``exc`` go on, or raises another
        if exc is None or isinstance(exc, TransportError):
            return
        on = f" {self.where}" if self.where else ""
        if isinstance(exc, NatsError):
            if type(exc).__name__ == "ConnectionClosedError":
                raise TransportClosed(f"NATS {self.action}{on}: the connection is closed") from None
        elif not isinstance(exc, (TimeoutError, OSError)):
            return
        raise TransportError(
            f"NATS {self.action}{on} failed: {type(exc).__name__}: {exc}"
        ) from None


async def request(
    nc: Client,
    subject: str,
    payload: bytes,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A request whose answer is JetStream's JSON; its error raised as :class:`ApiError`."""
    msg = await nc.request(subject, payload, timeout=timeout, headers=headers)
    return answer(msg.data, subject)


def answer(data: bytes, subject: str) -> dict[str, Any]:
    """JetStream's JSON answer to a request on ``subject``; an error raised as :class:`ApiError`."""
    answered: dict[str, Any] = orjson.loads(data) if data else {}
    error = answered.get("error")
    if error is not None:
        code = int(error.get("err_code", 0))
        hint = _NO_ROOM_HINT if code in NO_ROOM else ""
        raise ApiError(f"JetStream: {error.get('description', error)} ({subject}){hint}", code)
    return answered


async def api(
    nc: Client, verb: str, body: dict[str, Any] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Call JetStream's API ``$JS.API.VERB`` with a JSON body."""
    payload = b"" if body is None else orjson.dumps(body)
    with translated(f"JetStream {verb.split('.')[0].lower()}"):
        return await request(nc, f"$JS.API.{verb}", payload, timeout)
