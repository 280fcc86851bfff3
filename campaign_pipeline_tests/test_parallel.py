"""map_in_processes: every piece's result, in the pieces' order, whoever did the piece."""

from __future__ import annotations

import os

import pytest

from campaign_pipeline.parallel import map_in_processes


def _square_where(x: int, fail_at: int | None = None) -> tuple[int, int]:
    """A piece of work: its result and the process that did it (spawned workers import this
    module by name, so it lives at module level)."""
    if x == fail_at:
        raise ValueError(f"piece {x} failed")
    return x * x, os.getpid()


@pytest.mark.parametrize("processes", [2, 3])
def test_results_come_in_order_and_the_caller_does_its_share(processes):
    pieces = [(x,) for x in range(11)]
    results = list(map_in_processes(_square_where, iter(pieces), processes))
    assert [value for value, _ in results] == [x * x for x in range(11)]
    caller = os.getpid()
    done_here = [i for i, (_, pid) in enumerate(results) if pid == caller]
    # every processes-th piece in the caller, the rest in processes - 1 workers
    assert done_here == list(range(processes - 1, 11, processes))
    workers = {pid for _, pid in results} - {caller}
    assert 1 <= len(workers) <= processes - 1


@pytest.mark.parametrize("fail_at", [0, 1])  # a worker's piece, the caller's piece
def test_a_failed_piece_raises_in_the_caller(fail_at):
    pieces = ((x, fail_at) for x in range(6))
    with pytest.raises(ValueError, match=f"piece {fail_at} failed"):
        list(map_in_processes(_square_where, pieces, 2))
