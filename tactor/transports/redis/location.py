"""Where the Redis transport connects: one server by URL, or the primary that Sentinels name.

``redis://`` and ``rediss://`` URLs go to redis-py as they are. A Sentinel URL,

    redis+sentinel://[user:password@]host[:port][,host[:port]...]/SERVICE[/DB][?options]

lists Sentinels (port 26379 unless given) that watch the primary named
SERVICE; ``rediss+sentinel://`` speaks TLS to the Sentinels and the servers
alike, with the URL's ``ssl_*`` options (``ssl_ca_certs``, ``ssl_certfile``,
…) for both, as a ``rediss://`` URL takes them. Every connection the transport
opens asks the Sentinels for the current primary when it connects — the
asyncio client, the connections its readers and pipeliner hold, pub/sub, the
heartbeat thread's client — so a connection that a failover broke reconnects
to the new primary. As with redis-py's ``Sentinel(sentinels,
sentinel_kwargs=..., **connection_kwargs)``, the URL's ``user:password`` and
redis-py options are for the Redis servers, and ``sentinel_username`` /
``sentinel_password`` for Sentinels that ask for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.connection import parse_url

from ...errors import ConfigError
from ..options import TEXT, split_options, unknown
from .connection import described, text

__all__ = [
    "SENTINEL_SCHEME",
    "TLS_SENTINEL_SCHEME",
    "Location",
    "Sentinels",
    "Server",
    "location_of",
]

log = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
TLS_SENTINEL_SCHEME = "rediss+sentinel"
SENTINEL_PORT = 26379
#: A node asks the Sentinel it listens to for the primary this often (seconds) without news.
CHECK_EVERY = 1.0
_SHAPE = f"{SENTINEL_SCHEME}://[user:password@]host[:port][,host[:port]...]/SERVICE[/DB]"
_SENTINEL_OPTIONS = {"sentinel_username": TEXT, "sentinel_password": TEXT}
_HOST = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")

#: Probe an idle connection after 5 s, every 1 s, give up after 3 misses; and give up on
#: data the peer has not acknowledged for 10 s (where the OS has these options).
KEEPALIVE = {
    option: value
    for option, value in (
        (getattr(socket, "TCP_KEEPIDLE", None), 5),
        (getattr(socket, "TCP_KEEPINTVL", None), 1),
        (getattr(socket, "TCP_KEEPCNT", None), 3),
        (getattr(socket, "TCP_USER_TIMEOUT", None), 10_000),
    )
    if option is not None
}
#: Every connection's options (a URL's redis-py options win).
CONNECTION: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_keepalive": True,
    "socket_keepalive_options": KEEPALIVE,
}


class Location(ABC):
    """How to make the transport's clients; ``str()`` says where, without credentials."""

    #: Whether its connections speak TLS (``rediss://``, ``rediss+sentinel://``).
    tls = False

    @abstractmethod
    def async_client(self, socket_timeout: float | None) -> aioredis.Redis: ...

    @abstractmethod
    def sync_client(self, socket_timeout: float) -> redis.Redis: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Close what the clients made share (their own ``close`` does not)."""

    async def watch(self, moved: Callable[[str], Awaitable[None]], first: object = None) -> None:
        """Await ``moved`` (with a line saying where to) whenever the primary moves from
        ``first`` (the host and port the clients connected to first, if known) and on;
        return at once where it cannot move (one server)."""
        return None


def location_of(url: str, ours: Iterable[str]) -> Location:
    """The location a transport URL names (its tactor options already split off).

    Raises :class:`ConfigError` for a URL or a redis-py option that is bad, naming it
    (and, for an unknown option, ``ours``: tactor's options) — before any connection.
    """
    if urlsplit(url).scheme in (SENTINEL_SCHEME, TLS_SENTINEL_SCHEME):
        return Sentinels(url, ours)
    return Server(url, ours)


class Server(Location):
    """One Redis server, by a ``redis://`` or ``rediss://`` URL that redis-py reads."""

    def __init__(self, url: str, ours: Iterable[str]) -> None:
        self.url = url
        try:
            pool = aioredis.ConnectionPool.from_url(url)
        except ValueError as exc:
            raise ConfigError(f"{urlsplit(url).scheme}:// URL option: {exc}") from None
        make = lambda: pool.connection_class(**pool.connection_kwargs)  # noqa: E731
        scheme = urlsplit(url).scheme
        _check(scheme, url, make, ours)
        self.tls = scheme == "rediss"

    def __str__(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or '?'}:{parts.port or 6379}"

    def async_client(self, socket_timeout: float | None) -> aioredis.Redis:
        client: aioredis.Redis = aioredis.Redis.from_url(
            self.url, socket_timeout=socket_timeout, **CONNECTION
        )
        return client

    def sync_client(self, socket_timeout: float) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=socket_timeout, **CONNECTION)

    async def aclose(self) -> None:
        return None  # each client owns its pool


class Sentinels(Location):
    """The primary of service ``service``, as the Sentinels at ``hosts`` name it."""

    def __init__(self, url: str, ours: Iterable[str]) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.tls = tls = self.scheme == TLS_SENTINEL_SCHEME
        userinfo, _, netloc = parts.netloc.rpartition("@")
        self.hosts = [_host(part, self.scheme) for part in netloc.split(",")]
        self.service, db = _path(parts.path, self.scheme)
        options, theirs = split_options(url, _SENTINEL_OPTIONS, others=True)
        # redis-py reads the servers' options (user, password, db, query) as from a redis://
        # (or rediss://) URL.
        at = f"{userinfo}@" if userinfo else ""
        server_url = f"{'rediss' if tls else 'redis'}://{at}localhost/{db}?{urlencode(theirs)}"
        try:
            self.kwargs: dict[str, Any] = dict(parse_url(server_url))
        except ValueError as exc:
            raise ConfigError(f"{self.scheme}:// URL option: {exc}") from None
        for name in ("host", "port", "connection_class"):  # the pool picks its own class:
            self.kwargs.pop(name, None)
        ssl = {name: value for name, value in self.kwargs.items() if name.startswith("ssl_")}
        if tls:
            self.kwargs["ssl"] = True  # ... SentinelManagedSSLConnection
        self._sentinel_kwargs: dict[str, Any] = {
            **CONNECTION,
            "socket_timeout": 2.0,  # a Sentinel is asked only when a connection is made
            **({"ssl": True, **ssl} if tls else {}),
            **{name.removeprefix("sentinel_"): value for name, value in options.items()},
        }
        # Untyped in redis-py before 8, typed since: called as what it is.
        make_pool: Callable[..., Any] = aiosentinel.SentinelConnectionPool
        pool = make_pool(self.service, None, **self.kwargs)
        _check(self.scheme, url, lambda: pool.connection_class(**pool.connection_kwargs), ours)
        self._made: list[Any] = []  # the clients of the Sentinels, closed with us

    def __str__(self) -> str:
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        return f"{self.scheme}://{hosts}/{self.service}"

    def async_client(self, socket_timeout: float | None) -> aioredis.Redis:
        client: aioredis.Redis = self._primary(_AskedInTurn, socket_timeout)
        return client

    def sync_client(self, socket_timeout: float) -> redis.Redis:
        client: redis.Redis = self._primary(redis.sentinel.Sentinel, socket_timeout)
        return client

    def _primary(self, sentinel_class: Callable[..., Any], socket_timeout: float | None) -> Any:
        options = {**CONNECTION, "socket_timeout": socket_timeout, **self.kwargs}
        manager = sentinel_class(self.hosts, sentinel_kwargs=self._sentinel_kwargs, **options)
        self._made += manager.sentinels  # its list is reordered as it is used
        return manager.master_for(self.service)

    async def watch(self, moved: Callable[[str], Awaitable[None]], first: object = None) -> None:
        """Follow the Sentinels' ``+switch-master`` announcements of the service.

        A connection asks the Sentinels for the primary only when it connects, and
        after a switchover the old primary goes on taking writes until the Sentinels
        demote it (~10 s later, measured): connections made before the switch would
        write there meanwhile, and what they wrote is lost with its demotion. So each
        switch is announced to ``moved``, which drops them. Listens on one Sentinel at
        a time, and asks it for the primary on subscribing and every ``CHECK_EVERY``
        seconds without news: that catches a switch announced while it listened
        elsewhere, and a Sentinel that hangs (no answer within its socket timeout)
        sends it to the next one.
        """
        known = _address(first)  # a switch before the first question counts too
        failures = 0
        answer_within = self._sentinel_kwargs["socket_timeout"]
        while True:
            for host, port in list(self.hosts):
                # No socket timeout: it waits for announcements; each ask has its own.
                options = {**self._sentinel_kwargs, "socket_timeout": None}
                client = aioredis.Redis(host=host, port=port, **options)
                pubsub = client.pubsub()
                # Untyped in some redis-py versions, typed in others: called as what it is.
                execute: Callable[..., Awaitable[Any]] = client.execute_command
                try:
                    async with asyncio.timeout(answer_within):
                        await pubsub.subscribe("+switch-master")
                    failures = 0
                    while True:
                        async with asyncio.timeout(answer_within):
                            answer = await execute(
                                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                            )
                        now = _address(answer)
                        if known is not None and now is not None and now != known:
                            await moved(f"{self.service} is now at {now[0]}:{now[1]}")
                        known = now or known
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=CHECK_EVERY
                        )
                        fields = text(message["data"]).split() if message else []
                        if len(fields) == 5 and fields[0] == self.service:
                            told = (fields[3], int(fields[4]))
                            if told != known:  # (not found by asking already)
                                known = told
                                await moved(f"{self.service} moved to {told[0]}:{told[1]}")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # that Sentinel is away (or hangs): the next one
                    failures += 1
                    if failures == len(self.hosts):
                        log.debug("no Sentinel of %s answers (%s)", self, described(exc))
                finally:
                    closing: Callable[[], Awaitable[None]] = pubsub.aclose  # (untyped in 5.3)
                    with contextlib.suppress(Exception):
                        await closing()
                    with contextlib.suppress(Exception):
                        await client.aclose()
                await asyncio.sleep(min(5.0, 0.2 * max(1, failures)))

    async def aclose(self) -> None:
        made, self._made = self._made, []
        for client in made:
            if isinstance(client, aioredis.Redis):
                await client.aclose()
            else:
                client.close()


class _AskedInTurn(aiosentinel.Sentinel):
    """redis-py's Sentinel manager, asked for the primary by one connection at a time.

    ``discover_master`` moves the Sentinel that answered to the front of its list,
    across an await: connections reconnecting together (after a failover) swapped
    entries under each other, so that one Sentinel was listed twice and another
    dropped for good (and its connections were never closed). In turn, the first
    answer also puts a live Sentinel first for the connections waiting behind it.
    """

    _turn: asyncio.Lock | None = None

    async def discover_master(self, service_name: str) -> Any:
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            return await super().discover_master(service_name)


def _address(answer: Any) -> tuple[str, int] | None:
    """The host and port in a ``SENTINEL GET-MASTER-ADDR-BY-NAME`` answer (or a pool's
    ``master_address``), if any."""
    if not isinstance(answer, list | tuple) or len(answer) != 2:
        return None
    return text(answer[0]), int(answer[1])


def _host(part: str, scheme: str) -> tuple[str, int]:
    match = _HOST.match(part)
    port = int(match["port"] or SENTINEL_PORT) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigError(f"{scheme}:// URL: bad Sentinel address {part!r}; {_SHAPE}")
    return match["v6"] or match["host"], port


def _path(path: str, scheme: str) -> tuple[str, int]:
    service, _, db = path.strip("/").partition("/")
    if not service or not (db == "" or db.isdigit()):
        raise ConfigError(
            f"{scheme}:// URL: expected the service name, then maybe the database "
            f"number, as its path (not {path!r}); {_SHAPE}"
        )
    return service, int(db or 0)


def _check(scheme: str, url: str, make: Callable[[], object], ours: Iterable[str] = ()) -> None:
    """Make one connection object (no connection is opened) to check redis-py's options.

    Without this a typo (``mailboxsize``) would surface at start as redis-py's
    ``TypeError`` about a keyword argument, naming neither the URL nor tactor's options.
    """
    try:
        make()
    except TypeError as exc:
        names = [name for name, _ in _query(url)] or ["?"]
        bad = next((n for n in names if repr(n) in str(exc)), names[0])
        sentinels = scheme in (SENTINEL_SCHEME, TLS_SENTINEL_SCHEME)
        known = [*ours, *(_SENTINEL_OPTIONS if sentinels else ())]
        raise unknown(scheme, bad, known, also=", and redis-py's connection options") from None
    except ValueError as exc:
        raise ConfigError(f"{scheme}:// URL option: {exc}") from None


def _query(url: str) -> list[tuple[str, str]]:
    return split_options(url, {}, others=True)[1]
