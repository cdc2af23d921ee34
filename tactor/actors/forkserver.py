"""The fork server: one clean interpreter per parent process that forks provider processes.

Starting a fresh interpreter for each child costs about 0.3 s, mostly imports.
The fork server is such an interpreter, started on the first spawn and living
as long as its parent: it imports tactor, runs no event loop and no thread,
and forks one child per request — multiprocessing's ``forkserver`` method: the
parent itself, with its threads, loop and sockets, is never forked.

A request is one message on a ``SOCK_SEQPACKET`` socketpair, ``fork``, with
two sockets attached (``SCM_RIGHTS``): the child's end of its channel, and a
status socket on which the server writes the child's pid, then, once it
ended, its return code (as ``Popen.returncode``: negative for a signal). The
parent reads each child's status in its own event loop: no thread. The
server dies with its parent (``PR_SET_PDEATHSIG``, and EOF on the socket),
and each child with the server.

:func:`main` runs the server.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback

from ..errors import SpawnError

__all__ = ["ChildProcess", "ForkServer", "fork_server", "stop_fork_server"]

_MESSAGE = 256
_MAIN = "from tactor.actors.forkserver import main; main()"


class ForkServer:
    """The parent's handle on its fork server: it only sends requests (no thread reads)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _MAIN, str(os.getpid()), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
            )
        self._socket = ours
        self._lock = threading.Lock()  # systems in several threads may fork at once

    def close(self, grace: float = 5.0) -> None:
        """End the server: EOF on its socket ends it; SIGKILL if it has not within ``grace``."""
        self._socket.close()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def fork(self, fd: int) -> ChildProcess:
        """Fork a child that serves the channel end ``fd`` (the caller closes ``fd``).

        The child's status comes back on a socketpair of its own: its pid, then its
        return code once it ended (EOF: the fork server died, and the child with it).
        """
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                with self._lock:
                    socket.send_fds(self._socket, [b"fork"], [fd, theirs.fileno()])
            except OSError as exc:
                ours.close()
                raise SpawnError(f"the fork server is gone ({exc})") from None
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        line = await reader.readline()
        if not line:
            writer.close()
            raise SpawnError("the fork server is gone")
        return ChildProcess(int(line), reader, writer)


class ChildProcess:
    """A forked child: its pid, how to wait for it and signal it (like asyncio's Process)."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.pid = pid
        self.returncode: int | None = None
        self._reader, self._writer = reader, writer
        self._exit: asyncio.Task[int] | None = None

    async def wait(self) -> int:
        """The return code, once the process ended; cancelling the wait leaves it be."""
        if self._exit is None:
            self._exit = asyncio.ensure_future(self._read_exit())
        return await asyncio.shield(self._exit)

    async def _read_exit(self) -> int:
        line = await self._reader.readline()
        self.returncode = int(line) if line else -signal.SIGKILL
        self._writer.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # never a pid that may have been reused
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_servers: dict[int, ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server, started on first use (again after a fork, or its death)."""
    with _servers_lock:
        server = _servers.get(os.getpid())
        if server is None or server.process.poll() is not None:
            if server is not None:
                server.close()
            server = _servers[os.getpid()] = ForkServer()
        return server


@atexit.register
def stop_fork_server() -> None:
    """End this process's fork server, if it runs (its children, if any, end with it).

    Called at exit; a program (or a test session) may call it sooner, once no
    system of it has children: the next spawn starts a new one.
    """
    with _servers_lock:
        server = _servers.pop(os.getpid(), None)
    if server is not None:
        server.close()


# -- the server ------------------------------------------------------------------------


def _serve(parent: int, control: socket.socket) -> None:
    from . import child  # imported here, before any fork: every child starts with it

    child.die_with_parent(parent)
    # A terminal's Ctrl-C reaches the whole process group. The server and its children (who
    # inherit this) leave stopping to the parent: it drains them, then SIGTERM, then
    # SIGKILL, and they die with it. Without this, each of them died of the SIGINT at once,
    # printing a KeyboardInterrupt traceback, while the parent was draining them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    statuses: dict[int, int] = {}  # child pid -> the socket its status goes to
    server = os.getpid()
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _, _ = socket.recv_fds(control, _MESSAGE, 2)
                if not message:
                    return  # the parent is gone
                pid = os.fork()
                if pid == 0:
                    keep = fds[0]
                    shut = [*fds[1:], *statuses.values(), wake_read, wake_write]
                    _run_child(keep, shut, control, selector, server)
                os.close(fds[0])
                os.write(fds[1], f"{pid}\n".encode())
                statuses[pid] = fds[1]
            else:
                os.read(wake_read, 4096)
                _reap(statuses)


def _reap(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = statuses.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):  # the parent stopped listening
                os.write(fd, f"{os.waitstatus_to_exitcode(status)}\n".encode())
            os.close(fd)


def _run_child(
    fd: int,
    shut: list[int],
    control: socket.socket,
    selector: selectors.BaseSelector,
    server: int,
) -> None:
    """In the forked child: forget the server's state, then serve; never returns."""
    from . import child

    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        selector.close()
        control.close()
        for other in shut:  # others' status sockets must see EOF when the server dies
            os.close(other)
        child.die_with_parent(server)
        child.run(socket.socket(fileno=fd))
    except SystemExit as exc:  # sys.exit() in a handler: the child exits as it says
        # (as Python does: None is 0, and a message is 1; its caller got the message)
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    """The server's entry: ``python -c "from tactor.actors.forkserver import main; main()"
    PARENT_PID FD``."""
    _serve(int(sys.argv[1]), socket.socket(fileno=int(sys.argv[2])))
