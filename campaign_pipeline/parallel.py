"""Independent pieces of a step's work (a range's detection chunks, its weekly pages) shared
between the step's process and spawned worker processes, results in the pieces' order.

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
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from campaign_pipeline.memory import return_free_pages

Result = TypeVar("Result")


def worker_processes(configured: int) -> int:
    """A step's ``processes`` config: the number given, or 0 for one per CPU this process may
    run on (its affinity, which a container's cpuset limits)."""
    return configured or len(os.sched_getaffinity(0))


def map_in_processes(
    work: Callable[..., Result], arguments: Iterable[tuple], processes: int
) -> Iterator[Result]:
    """``work(*args)`` for each of ``arguments``, in ``processes`` processes, yielded in the
    arguments' order.

    The caller's process is one of them: it does every ``processes``-th piece itself while
    ``processes - 1`` spawned workers do the rest. A worker costs a fresh interpreter with
    its imports and its own heap, on top of the caller that would otherwise only wait, so
    this holds one of them fewer for the same CPUs.
    Before the workers start, the caller hands its free pages back (`return_free_pages`):
    what it keeps adds to theirs for as long as they run.

    ``arguments`` is consumed lazily, two pieces per process ahead of the results, so a
    caller that builds large pieces on demand, or writes each result as it comes, keeps only
    a few in memory. An exception raised by a piece is raised here.
    """
    ahead = 2 * processes
    return_free_pages()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes - 1, mp_context=context) as pool:
        pending: deque[Future] = deque()
        for position, args in enumerate(arguments):
            if position % processes == processes - 1:
                pending.append(_done(work(*args)))
            else:
                pending.append(pool.submit(work, *args))
            while pending and (len(pending) >= ahead or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _done(result: Result) -> Future:
    """A piece done in the caller's process, queued in order with the workers' futures."""
    future: Future = Future()
    future.set_result(result)
    return future
