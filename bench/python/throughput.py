"""Trivial tasks per second through the Python original (etiquette 0.0.3,
uvloop installed by its import), at the same limits as the Rust example.

The original's release() drops whatever is still queued, so this waits for
the last task to run before releasing, and measures up to that point."""

import asyncio
import sys
import time

from etiquette import Decorum, Etiquette

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000


async def measure(limit: int) -> float:
    Etiquette.initiate(max_concurrent_tasks=limit)
    done = 0
    finished = asyncio.Event()

    async def task() -> None:
        nonlocal done
        done += 1
        if done == N:
            finished.set()

    decorum = Decorum()
    start = time.perf_counter()
    for _ in range(N):
        await decorum.add_task(task)
    await finished.wait()
    elapsed = time.perf_counter() - start
    await Etiquette.release()
    return N / elapsed


async def main() -> None:
    for limit in (1, 16, 1024):
        print(f"limit={limit} n={N} python_per_s={await measure(limit):.0f}", flush=True)


asyncio.run(main())
