"""Throwaway redis-server processes for fault tests: start, kill, restart on the same port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """The redis-server binary for throwaway servers; skip without one, but fail under CI=true."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed (tests with their own server run under CI)")
        pytest.skip("redis-server is not installed")
    return binary


class RedisServer:
    """A redis-server this test owns, on a free loopback port; nothing is persisted."""

    def __init__(self, extra: Sequence[str] = (), *, tls: bool = False) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.extra = list(extra)
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="tactor-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        port_args = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        args = [
            self.binary,
            *port_args,
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start listening")

    def kill(self) -> None:
        """SIGKILL the server: every connection drops, every key is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, downtime: float = 0.0) -> None:
        self.kill()
        time.sleep(downtime)
        self.start()

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_server(extra: Sequence[str] = (), *, tls: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(extra, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()
