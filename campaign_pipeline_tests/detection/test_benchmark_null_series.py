"""The null-series benchmark: the series it judges hold no event, and its weekly share counts
weeks, not points."""

from __future__ import annotations

import numpy as np
import pytest

from campaign_pipeline_tests.detection.script_modules import load_script

bench = load_script("benchmark_null_series")


@pytest.mark.parametrize("kind", bench.KINDS)
def test_null_series_follow_their_kind(kind):
    frame = bench.null_series(kind, seed=1, n_series=3, days=28)
    hourly = kind.endswith("hourly")
    assert len(frame) == 3 * 28 * (24 if hourly else 1)
    assert frame["timestamp"].min().dayofweek == 0  # weeks are whole from the first day
    values = frame["value"].to_numpy()
    if kind != "gauss":
        assert (values >= 0).all()
    if kind in ("poisson", "negbin", "poisson_hourly"):
        assert np.array_equal(values, np.round(values))  # counts
    if kind == "poisson":
        by_day = frame.groupby(frame["timestamp"].dt.dayofweek)["value"].mean()
        assert by_day[6] < 0.6 * by_day[2]  # the weekend dip of the profile


def test_wilson_interval_holds_the_share_and_stays_in_zero_one():
    low, high = bench.wilson(0, 150)
    assert low == pytest.approx(0.0, abs=1e-12) and 0 < high < 0.03
    low, high = bench.wilson(40, 150)
    assert low < 40 / 150 < high and (round(low, 3), round(high, 3)) == (0.202, 0.343)
