"""The fault soak's throwaway Redis: a primary the soak kills and restarts, and the READONLY flip.

:class:`RedisProcess` is a ``redis-server`` on a free loopback port that keeps
every write (AOF, fsync always; unless ``aof`` is False) in a directory of its
own, so it can be SIGKILLed and started again on it. :class:`SoakRedis` is the
primary the soak's traffic rides, with a replica beside it for the flip: the
primary hands over to its replica (``FAILOVER``: writes paused until the
replica has them all, then the roles swap), so for a moment it is a replica
that refuses writes (``READONLY``) and unblocks its blocked readers
(``UNBLOCKED``); then ``REPLICAOF NO ONE`` makes it the primary again, on the
same data, and the replica follows it again. Nothing Redis acknowledged is lost
by the flip itself.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

__all__ = ["RedisProcess", "SoakRedis"]


class RedisProcess:
    """A throwaway redis-server on a free loopback port (see the module's docstring)."""

    def __init__(self, aof: bool = True, replica_of: int | None = None) -> None:
        self.aof = aof
        self.replica_of = replica_of
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="tactor-soak-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always",
            "--dir", str(self.dir),
        ]  # fmt: skip
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start listening")

    def kill(self) -> None:
        """SIGKILL, by pid."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True
        )


class SoakRedis:
    """The soak's primary (restarted on its files) and the replica the flip hands over to."""

    def __init__(self, aof: bool = True) -> None:
        self.primary = RedisProcess(aof)
        self.replica = RedisProcess(aof=False, replica_of=self.primary.port)

    @property
    def url(self) -> str:
        return self.primary.url

    def start(self) -> None:
        self.primary.start()
        self.replica.start()

    def restart(self, downtime: float) -> None:
        """SIGKILL the primary, and start it again on its files after ``downtime`` seconds."""
        self.primary.kill()
        time.sleep(downtime)
        self.primary.start()

    def flip(self, readonly: float) -> bool:
        """Make the primary a replica for ``readonly`` seconds, then the primary again.

        False if the hand-over did not happen (the replica was not in step in time).
        """
        with self.primary.client() as primary, self.replica.client() as replica:
            if not _until(lambda: _replica_online(primary), 10):
                return False
            primary.execute_command("FAILOVER", "TIMEOUT", 5000)
            if not _until(lambda: _role(primary) == "slave", 10):
                primary.execute_command("FAILOVER", "ABORT")
                return False
            time.sleep(readonly)  # a replica: writes refused (READONLY)
            primary.execute_command("REPLICAOF", "NO", "ONE")
            replica.execute_command("REPLICAOF", "127.0.0.1", self.primary.port)
            return True

    def remove(self) -> None:
        self.replica.remove()
        self.primary.remove()


def _role(client: redis.Redis) -> str:
    return str(client.info("replication")["role"])


def _replica_online(primary: redis.Redis) -> bool:
    """Whether the primary's replica is connected and synchronised (FAILOVER then waits for
    it to have every write, with writes paused)."""
    replica = primary.info("replication").get("slave0")
    return isinstance(replica, dict) and replica.get("state") == "online"


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
