"""Independent pieces of a step's work (a range's detection chunks, its weekly pages) done in
worker processes, results in the pieces' order.

Workers are spawned, not forked: the caller is usually a Dagster step, which has threads of
its own, and a forked copy of a lock one of them held would never be released. Spawning
re-imports the caller's ``__main__`` module, so a script that calls the pipeline must guard
its entry point with ``if __name__ == "__main__":`` (the CLI and Dagster's processes do).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")


def worker_processes(configured: int) -> int:
    """A step's ``processes`` config: the number given, or 0 for one per CPU this process may
    run on (its affinity, which a container's cpuset limits)."""
    return configured or len(os.sched_getaffinity(0))


def map_in_processes(
    work: Callable[..., Result], arguments: Iterable[tuple], processes: int
) -> Iterator[Result]:
    """``work(*args)`` for each of ``arguments``, in ``processes`` worker processes, yielded in
    the arguments' order.

    ``arguments`` is consumed lazily, two pieces per worker ahead of the results, so a caller
    that builds large pieces on demand, or writes each result as it comes, keeps only a few
    in memory. An exception raised by a piece is raised here.
    """
    ahead = 2 * processes
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        pending: deque = deque()
        for args in arguments:
            pending.append(pool.submit(work, *args))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
