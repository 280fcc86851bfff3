"""An account of many short campaigns: a week's panel grows with the campaigns that can be
judged, not with every short campaign of its history, and the flags stay those of one block."""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaign_pipeline.detection import DetectionSettings, ensemble
from campaign_pipeline.detection.ensemble import (
    judge_weeks,
    rows_to_be_judged,
    stretch_blocks,
    week_calendar,
)
from campaign_pipeline_tests.detection.synth import daily_frame

WEEKS = pd.date_range("2024-03-04", "2024-03-25", freq="7D")
HISTORY_WEEKS = 8


def _account() -> tuple[pd.DataFrame, pd.DataFrame]:
    """12 campaigns over 13 weeks (one with a spend spike), and 240 campaigns of 1-13 days
    each, copied from them: one spends without impressions in the last week, one spends
    above its budget (rules, the only flags a short campaign can get)."""
    long = daily_frame(n_campaigns=12, n_days=91, seed=5)
    hit = (long["campaign_id"] == "c3") & (long["date"] == "2024-03-20")
    long.loc[hit, "spend"] *= 5.0
    rng = np.random.default_rng(9)
    parts = []
    for k in range(240):
        days = int(rng.integers(1, 4)) if k % 8 else int(rng.integers(10, 14))
        first = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 91 - days)))
        source = long[
            (long["campaign_id"] == f"c{k % 12}")
            & (long["date"] >= first)
            & (long["date"] < first + pd.Timedelta(days=days))
        ]
        parts.append(source.assign(campaign_id=f"s{k:03d}"))
    short = pd.concat(parts, ignore_index=True)
    for campaign, day in (("s900", "2024-03-27"), ("s901", "2024-03-28")):
        row = long[(long["campaign_id"] == "c0") & (long["date"] == day)]
        short = pd.concat([short, row.assign(campaign_id=campaign)], ignore_index=True)
    short.loc[short["campaign_id"] == "s900", "impressions"] = 0.0
    campaigns = pd.DataFrame({"campaign_id": ["s901"], "daily_budget": [1.0]})
    return pd.concat([long, short], ignore_index=True), campaigns


def _one_block_flags(calendar, settings: DetectionSettings) -> pd.DataFrame:
    """Each week judged with every campaign that has a row in its stretch in one block."""
    span = 7 * (calendar.history_weeks + 1)
    parts = []
    for week in calendar.weeks:
        first = (week - calendar.first_day).days - 7 * calendar.history_weeks
        row = np.flatnonzero(calendar.has_row[:, first : first + span].any(axis=1))
        chunk = ensemble._Chunk(
            sums=calendar.sums,
            delivered=calendar.delivered,
            row=row,
            first_days=np.full(len(row), first),
            span=span,
            keys=calendar.keys[row],
            times=pd.date_range(week - pd.Timedelta(weeks=calendar.history_weeks), periods=span),
            budget=calendar.budget[row],
            block=len(row),
            judged=(week, week + pd.Timedelta(days=6)),
        )
        parts.append(ensemble._judge_chunk(chunk, settings.effective))
    return ensemble._finish(pd.concat([p for p in parts if len(p)], ignore_index=True))


def test_rows_to_be_judged_is_the_shorter_of_the_daily_and_weekly_history():
    assert rows_to_be_judged(DetectionSettings().effective) == 14
    assert rows_to_be_judged(DetectionSettings(min_history_days=21).effective) == 21
    weekly_short = DetectionSettings(weekly_min_history_weeks=1, weekly_baseline_weeks=8)
    assert rows_to_be_judged(weekly_short.effective) == 7
    no_weekly = DetectionSettings(weekly_min_history_weeks=1, use_weekly=False)
    assert rows_to_be_judged(no_weekly.effective) == 14


def test_a_stretch_keeps_its_judgeable_campaigns_together_and_splits_off_the_short_ones():
    rows_in_stretch = np.array([0, 20, 3, 14, 1, 13, 2, 30, 5, 4])
    rows_in_week = np.array([0, 1, 1, 0, 0, 2, 0, 1, 1, 3])
    blocks = stretch_blocks(rows_in_stretch, rows_in_week, min_rows=14, max_rows=3)
    # the judgeable ones (with or without a row in the week), then the short ones with a row
    # in the week in blocks of about equal size; 4 and 6 (no row in the week) are left out
    assert [b.tolist() for b in blocks] == [[1, 3, 7], [2, 5], [8, 9]]
    every_one = stretch_blocks(rows_in_stretch, rows_in_week, min_rows=1, max_rows=3)
    assert [b.tolist() for b in every_one] == [list(range(1, 10))]
    assert stretch_blocks(np.zeros(3), np.zeros(3), min_rows=14, max_rows=3) == []


def test_short_campaigns_are_judged_in_bounded_blocks_with_the_flags_of_one_block(monkeypatch):
    daily, campaigns = _account()
    calendar = week_calendar(daily, WEEKS, history_weeks=HISTORY_WEEKS, campaigns=campaigns)
    span = 7 * (HISTORY_WEEKS + 1)
    chunk_cells = 40 * span  # at most 40 short campaigns per block
    blocks = []
    real = ensemble._judge_chunk

    def recorded(chunk, settings, threads=1):
        blocks.append(chunk.block)
        return real(chunk, settings, threads)

    monkeypatch.setattr(ensemble, "_judge_chunk", recorded)
    flags = judge_weeks(calendar, chunk_cells=chunk_cells)
    monkeypatch.setattr(ensemble, "_judge_chunk", real)

    present = [
        int(calendar.has_row[:, a : a + span].any(axis=1).sum())
        for a in ((w - calendar.first_day).days - 7 * HISTORY_WEEKS for w in WEEKS)
    ]
    assert min(present) > 150  # one block per week would hold every campaign of its stretch
    # the 12 long campaigns in one block, the short ones (1-13 days) in blocks of at most 40
    assert blocks and max(blocks) <= 40
    # the flags of each week judged with all its campaigns in one block, the short campaigns'
    # rules included
    pd.testing.assert_frame_equal(flags, _one_block_flags(calendar, DetectionSettings()))
    by_campaign = flags.groupby("campaign_id")["anomaly_type"].agg(set)
    assert "tracking_error" in by_campaign["s900"] and "budget_overspend" in by_campaign["s901"]
    assert "c3" in by_campaign.index


def test_heavy_weeks_are_shared_between_the_processes_not_given_to_one():
    """Each week has a block of campaigns that can be judged (heavy) and a block of short ones
    (light). `map_in_processes` gives every second piece to the same process, so the blocks
    are ordered heavy weeks first: interleaved, one process would judge every heavy week."""
    n_weeks, span, min_rows = 6, 63, 14
    n_days = 7 * (n_weeks - 1) + span
    starts = [7 * i for i in range(n_weeks)]
    has_row = np.zeros((300, n_days), dtype=bool)
    has_row[:200] = True  # judgeable in every stretch
    for i, a in enumerate(starts):  # 10 campaigns running only the judged week's 3 days
        has_row[200 + 10 * i : 210 + 10 * i, a + span - 3 : a + span] = True
    blocks = ensemble.week_blocks(has_row, starts, span, min_rows=min_rows, max_rows=1_000)
    heavy = [len(rows) >= 200 for _, rows in blocks]
    assert heavy == [True] * n_weeks + [False] * n_weeks
    plan = ensemble._chunk_plan([len(rows) for _, rows in blocks], span, 20_000)
    cells = [(hi - lo) * size * span for lo, hi, size in plan]
    by_process = [sum(cells[p::2]) for p in range(2)]  # map_in_processes with 2 processes
    assert min(by_process) / max(by_process) > 0.8, by_process
