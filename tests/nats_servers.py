"""Throwaway nats-server processes for fault tests: one with JetStream and a store directory
(killed, restarted on the same port and store), a 3-node cluster, auth and TLS set-ups."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port


def nats_server_binary() -> str:
    """The nats-server binary; skip without one, but fail under CI=true."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nats-server is not installed (tests with their own server run under CI)")
        pytest.skip("nats-server is not installed")
    return binary


class NatsServer:
    """A nats-server -js this test owns, on a free loopback port, with its own store dir.

    ``config`` is extra nats-server configuration (auth, TLS, cluster), written to a file;
    ``jetstream`` extra settings of its ``jetstream`` block (limits).
    """

    def __init__(
        self, config: str = "", *, name: str = "n", port: int | None = None, jetstream: str = ""
    ) -> None:
        self.binary = nats_server_binary()
        self.port = port or free_port()
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix="tactor-nats-"))
        self.config = config
        self.jetstream = jetstream
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        conf = self.dir / "server.conf"
        limits = f", {self.jetstream}" if self.jetstream else ""
        conf.write_text(
            f'server_name: "{self.name}"\nlisten: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{self.dir / "js"}"{limits} }}\n{self.config}\n'
        )
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 (the process holds it)
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {(self.dir / 'server.log').read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nats-server on {self.port} did not listen")

    def kill(self) -> None:
        """SIGKILL, by pid; the store stays for a restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def nats_server(config: str = "") -> Iterator[NatsServer]:
    server = NatsServer(config)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def nats_cluster(size: int = 3) -> Iterator[list[NatsServer]]:
    """``size`` nats-servers with JetStream routed into one cluster on loopback."""
    cluster_ports = [free_port() for _ in range(size)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in cluster_ports)
    servers = [
        NatsServer(
            f'cluster {{ name: "tactor"\n listen: "127.0.0.1:{port}"\n routes: [{routes}] }}',
            name=f"n{index}",
        )
        for index, port in enumerate(cluster_ports)
    ]
    try:
        for server in servers:
            server.start(wait=False)
        for server in servers:
            server.wait_listening()
        yield servers
    finally:
        for server in servers:
            server.stop()


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl binary;
    skip without it (fail under CI=true)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is not installed (the TLS test makes its certificates with it)")
        pytest.skip("openssl is not installed")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key")}
    csr, ext = directory / "server.csr", directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tactor-ca",
        "-keyout", str(paths["ca-key"]), "-out", str(paths["ca"]))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(paths["key"]), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(paths["ca"]),
        "-CAkey", str(paths["ca-key"]), "-CAcreateserial", "-days", "1",
        "-extfile", str(ext), "-out", str(paths["cert"]))  # fmt: skip
    return paths
