"""Judging a range's weeks in worker processes must give exactly the flags of one process."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.detection import ensemble
from campaign_pipeline.detection.ensemble import (
    MIN_CHUNKS_PER_PROCESS,
    GridFile,
    detect_by_week,
    judge_weeks,
    week_calendar,
)
from campaign_pipeline_tests.detection.synth import add_rates, daily_frame


def _account_with_faults() -> pd.DataFrame:
    """20 campaigns over 20 weeks, a few of them with a spend spike or a lead drop, so the
    range has flags of several kinds in several weeks."""
    df = daily_frame(n_campaigns=20, n_days=140, seed=3)
    for campaign, day, column, factor in (
        ("c1", "2024-04-10", "spend", 4.0),
        ("c7", "2024-04-24", "leads", 0.0),
        ("c12", "2024-05-08", "clicks", 3.0),
    ):
        hit = (df["campaign_id"] == campaign) & (df["date"] >= day)
        df.loc[hit, column] = np.round(df.loc[hit, column] * factor, 2)
    return add_rates(df)


# The range the tests below judge: 11 weeks, and chunks of about one week (a week's stretch is
# 20 campaigns x 63 days, 1,260 cells): 11 chunks, enough to share out to 2 processes.
RANGE = pd.date_range("2024-03-04", "2024-05-13", freq="7D")
CHUNK_CELLS = 1_300


@pytest.fixture(scope="module")
def judged_alone() -> pd.DataFrame:
    """The flags of RANGE judged in this one process (`detect_by_week`, the calendar in
    memory), for the tests that compare another way of judging it with them."""
    return detect_by_week(_account_with_faults(), RANGE, history_weeks=8, chunk_cells=CHUNK_CELLS)


def test_worker_processes_give_the_flags_of_one_process(monkeypatch, judged_alone):
    daily = _account_with_faults()
    weeks, chunk_cells, alone = RANGE, CHUNK_CELLS, judged_alone

    pools, pickled = [], []
    real = ensemble.judge_in_processes

    def recorded(chunks, settings, processes):
        chunks = list(chunks)
        pickled.extend(
            (len(pickle.dumps(chunk)), isinstance(chunk.delivered, GridFile)) for chunk in chunks
        )
        parts = list(real(chunks, settings, processes))
        pools.append((processes, len(parts)))
        return parts

    monkeypatch.setattr(ensemble, "judge_in_processes", recorded)
    shared = detect_by_week(daily, weeks, history_weeks=8, chunk_cells=chunk_cells, processes=2)
    assert pools and pools[0][0] == 2 and pools[0][1] >= MIN_CHUNKS_PER_PROCESS * 2
    assert len(alone) and alone["period_start"].nunique() >= 3
    assert {"c1", "c7", "c12"} <= set(alone["campaign_id"])
    pd.testing.assert_frame_equal(shared, alone)
    # the workers read their cells from the calendar's files: a piece sent to one is a few
    # index arrays, smaller than a single grid of the calendar
    calendar = week_calendar(daily, weeks, history_weeks=8)
    one_grid = calendar.sums["spend"].nbytes
    assert all(in_files and size < one_grid for size, in_files in pickled)


def test_a_calendar_in_files_reads_the_cells_of_the_one_in_memory(tmp_path, judged_alone):
    daily = _account_with_faults()
    calendar = week_calendar(daily, RANGE, history_weeks=8)
    in_files = calendar.to_directory(tmp_path)
    cells = (np.array([[3, 4, 5], [10, 11, 12]]), np.array([[0], [19]]))
    for column, grid in calendar.sums.items():
        for index in (cells, slice(3, 9)):
            read = in_files.sums[column][index]
            assert type(read) is np.ndarray  # a copy: no memory map stays open
            np.testing.assert_array_equal(read, grid[index])
    np.testing.assert_array_equal(in_files.delivered[cells], calendar.delivered[cells])
    # judged from the files: the flags of the calendar in memory (`judged_alone`)
    pd.testing.assert_frame_equal(judge_weeks(in_files, chunk_cells=CHUNK_CELLS), judged_alone)


def test_a_calendar_built_into_a_directory_is_the_one_saved_there_afterwards(tmp_path):
    """`week_calendar(directory=...)` saves each grid as it is filled (the asset builds its
    calendar so, holding one grid at a time): the same cells, read from files."""
    daily = _account_with_faults()
    weeks = pd.date_range("2024-04-29", "2024-05-13", freq="7D")
    calendar = week_calendar(daily, weeks, history_weeks=8)
    built = week_calendar(daily, weeks, history_weeks=8, directory=tmp_path)
    assert built.in_files and all(isinstance(g, GridFile) for g in built.sums.values())
    assert {Path(g.path).parent for g in [built.delivered, *built.sums.values()]} == {tmp_path}
    for column, grid in calendar.sums.items():
        np.testing.assert_array_equal(built.sums[column][slice(None)], grid)
    np.testing.assert_array_equal(built.delivered[slice(None)], calendar.delivered)
    np.testing.assert_array_equal(built.has_row, calendar.has_row)
    pd.testing.assert_frame_equal(
        judge_weeks(built, chunk_cells=3_000), judge_weeks(calendar, chunk_cells=3_000)
    )


def test_a_range_too_small_to_share_stays_in_one_process(monkeypatch):
    daily = _account_with_faults()
    weeks = pd.date_range("2024-04-08", "2024-04-15", freq="7D")  # two weeks: one chunk

    def refuse(*args, **kwargs):
        raise AssertionError("a pool was started for a single chunk")

    monkeypatch.setattr(ensemble, "judge_in_processes", refuse)
    flags = detect_by_week(daily, weeks, history_weeks=8, processes=2)
    pd.testing.assert_frame_equal(flags, detect_by_week(daily, weeks, history_weeks=8))


def test_one_week_scores_its_blocks_in_threads_with_the_flags_of_one_thread(monkeypatch):
    import threading

    daily = _account_with_faults()
    weeks = [pd.Timestamp("2024-04-08")]  # one chunk: too small for worker processes
    # small scoring blocks: each kind's series are scored in several blocks
    monkeypatch.setattr(ensemble, "SCORE_CHUNK_CELLS", 600)
    alone = detect_by_week(daily, weeks, history_weeks=8)

    scored_in = []
    real = ensemble.score_panel

    def recorded(*args, **kwargs):
        scored_in.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(ensemble, "score_panel", recorded)
    threaded = detect_by_week(daily, weeks, history_weeks=8, processes=2)
    assert len(scored_in) > 8 and not any(scored_in)  # many blocks, none in the main thread
    assert {"c1", "c7"} & set(alone["campaign_id"])
    pd.testing.assert_frame_equal(threaded, alone)


def test_judging_a_range_reports_its_progress_in_order_in_one_process_and_in_several(
    tmp_path, judged_alone
):
    daily = _account_with_faults()
    weeks = RANGE
    calendar = week_calendar(daily, weeks, history_weeks=8).to_directory(tmp_path)
    alone = judged_alone  # one process, nobody listening
    for processes in (1, 2):
        seen: list[tuple[int, int]] = []
        flags = judge_weeks(
            calendar,
            chunk_cells=CHUNK_CELLS,
            processes=processes,
            progress=lambda done, total, seen=seen: seen.append((done, total)),
        )
        assert len(seen) > 3  # a call per chunk, several chunks
        done = [d for d, _ in seen]
        assert done == sorted(done) and len(set(done)) == len(done)
        assert {total for _, total in seen} == {len(weeks)} and done[-1] == len(weeks)
        pd.testing.assert_frame_equal(flags, alone)
