"""Throwaway redis-server processes for fault tests: start, kill, restart on the same port;
replicas, and Sentinels watching them."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sentinel_command() -> list[str]:
    """How to start a Sentinel: ``redis-sentinel``, else ``redis-server ... --sentinel``
    (the same program); skip without either, but fail under CI=true."""
    binary = shutil.which("redis-sentinel")
    return [binary] if binary is not None else [redis_server_binary(), "--sentinel"]


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

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

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
        _wait_until_listening(self.process, self.port)
        return self

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


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{process.args!r} did not start listening")


@contextmanager
def redis_server(extra: Sequence[str] = (), *, tls: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(extra, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


class SentinelServer:
    """A Sentinel this test owns, on a free loopback port, watching the primary ``service``.

    Quick to act: the primary is down after ``down_after`` ms without an answer, and a
    quorum of 2 Sentinels starts a failover.
    """

    def __init__(
        self,
        service: str,
        primary: RedisServer,
        down_after: int = 1000,
        tls: TlsFiles | None = None,
    ) -> None:
        self.command = sentinel_command()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tactor-sentinel-"))
        self.tls = tls
        config = self.dir / "sentinel.conf"  # Sentinel rewrites its configuration file
        args = tls.server_args if tls is not None else []
        pairs = zip(args[::2], args[1::2], strict=True)
        options = "".join(f"{name.removeprefix('--')} {value}\n" for name, value in pairs)
        listen = f"port 0\ntls-port {self.port}\n{options}" if tls else f"port {self.port}\n"
        config.write_text(
            listen + "bind 127.0.0.1\n"
            f"dir {self.dir}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {service} {down_after}\n"
            f"sentinel failover-timeout {service} 5000\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        self.service = service
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelServer:
        command = [self.command[0], str(self.dir / "sentinel.conf"), *self.command[1:]]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )
        _wait_until_listening(self.process, self.port)
        return self

    def client(self) -> redis.Redis:
        tls = self.tls.client_args if self.tls is not None else {}
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **tls)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL the Sentinel, by pid."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class SentinelCluster:
    """A primary, its replica and three Sentinels watching it as ``service``."""

    service: str
    primary: RedisServer
    replica: RedisServer
    sentinels: list[SentinelServer]
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the service (``rediss+sentinel://``, verifying
        the servers' certificates, for a cluster that speaks TLS)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        if self.tls is None:
            return f"redis+sentinel://{hosts}/{self.service}/0"
        ca = quote(str(self.tls.ca), safe="")
        return (
            f"rediss+sentinel://{hosts}/{self.service}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
        )

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        with contextlib.closing(self.sentinels[0].client()) as client:
            _, port = client.sentinel_get_master_addr_by_name(self.service)
        return int(port)


@contextmanager
def sentinel_cluster(
    service: str = "tactor-primary", tls: TlsFiles | None = None
) -> Iterator[SentinelCluster]:
    """Start a primary, a replica of it and three Sentinels (all speaking TLS only, with
    ``tls``); yield once the Sentinels know each other and the replica (a failover can
    happen); end every process, by pid."""
    started: list[RedisServer | SentinelServer] = []
    args = tls.server_args if tls is not None else []
    client_args = tls.client_args if tls is not None else {}
    try:
        primary = RedisServer(args, tls=tls is not None).start()
        started.append(primary)
        replicaof = ["--replicaof", "127.0.0.1", str(primary.port)]
        replica = RedisServer([*args, *replicaof], tls=tls is not None).start()
        started.append(replica)

        # The Sentinels learn of the replica from the primary's INFO, which they ask for at
        # once and then every 10 s: start them once the replica is connected.
        def replicating() -> bool:
            with contextlib.closing(replica.client(**client_args)) as client:
                return bool(client.info("replication")["master_link_status"] == "up")

        _wait_for(replicating)
        sentinels = [SentinelServer(service, primary, tls=tls) for _ in range(3)]
        for sentinel in sentinels:
            started.append(sentinel.start())

        seen: list[tuple[int, int]] = []  # (other Sentinels, replicas) each one knows

        def ready() -> bool:
            seen.clear()
            for sentinel in sentinels:
                with contextlib.closing(sentinel.client()) as client:
                    state = client.sentinel_master(service)
                seen.append((state["num-other-sentinels"], state["num-slaves"]))
            return all(others >= 2 and replicas >= 1 for others, replicas in seen)

        # Sentinels hear of each other every 2 s and ask the primary for its replicas
        # every 10 s: on a loaded machine a round can be missed, so allow several.
        _wait_for(ready, 60.0, lambda: f"(other Sentinels, replicas) each knows: {seen}")
        yield SentinelCluster(service, primary, replica, sentinels, tls)
    finally:
        for process in reversed(started):
            process.stop()


def _wait_for(
    condition: Callable[[], bool],
    timeout: float = 20.0,
    state: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the throwaway Redis servers did not get ready within {timeout:g} s {state()}"
            )
        time.sleep(0.05)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=tactor test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


@dataclass
class TlsFiles:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path

    @property
    def server_args(self) -> list[str]:
        """redis-server's (and Sentinel's) options to serve TLS with these, and to speak it
        to the servers it replicates from (or watches); no client certificates asked."""
        return [
            "--tls-cert-file", str(self.cert),
            "--tls-key-file", str(self.key),
            "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip

    @property
    def client_args(self) -> dict[str, object]:
        """redis-py's options to verify such a server."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA, a server certificate it signed (127.0.0.1, localhost), and another CA,
    made with the ``openssl`` program in ``directory``."""
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(
        directory / "ca.pem",
        directory / "other-ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
