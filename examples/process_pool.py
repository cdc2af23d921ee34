"""CPU-bound work over every core: providers in child processes, supervised.

    python examples/process_pool.py

Starts a pool of two provider processes (nothing to install, no server: this
process's hub serves them over a socketpair), spreads prime counting over
them, shows that each runs in a process of its own, kills one with SIGKILL and
watches it come back under the same provider id.
"""

from __future__ import annotations

import asyncio
import os
import signal

from tactor import Actor, ActorSystem


class Primes(Actor, name="primes"):
    def __init__(self, method: str) -> None:
        self.method = method  # constructor arguments travel through the codec: type them

    async def count(self, start: int, stop: int) -> int:
        """Pure Python, so it holds its process's GIL: one call per core at a time."""
        return sum(1 for n in range(max(start, 2), stop) if _is_prime(n))

    async def pid(self) -> int:
        return os.getpid()


def _is_prime(n: int) -> bool:
    return all(n % d for d in range(2, int(n**0.5) + 1))


async def main() -> None:
    async with ActorSystem() as system:
        pool = system.processes(restart="on-failure")  # also "always", "never"
        refs = await pool.spawn_many(2, Primes, "trial division")
        primes = system.proxy(Primes, timeout=60)
        chunks = [(n, n + 25_000) for n in range(0, 200_000, 25_000)]
        counts = await asyncio.gather(*(primes.count(a, b) for a, b in chunks))
        print("primes below 200,000:", sum(counts))

        pids = [o.value for o in (await system.broadcast(Primes.pid)).outcomes]
        print("providers:", len(refs), "in processes of their own:", os.getpid() not in pids)

        os.kill(await system.call(Primes.pid, provider=refs[0]), signal.SIGKILL)
        while True:  # the supervisor restarts it (after 0.1 s), under the same id
            try:
                new_pid = await system.call(Primes.pid, provider=refs[0], timeout=1)
            except Exception:  # NoProvider until it is back, at once
                await asyncio.sleep(0.05)
                continue
            if new_pid not in pids:
                break
        print("restarted:", sorted(await system.providers(Primes)) == sorted(r.id for r in refs))


if __name__ == "__main__":  # a child imports this file to find Primes: guard the work
    asyncio.run(main())
