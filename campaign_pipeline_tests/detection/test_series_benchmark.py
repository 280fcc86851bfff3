"""The synthetic series benchmark (scripts/benchmark_series.py): generator and window scorer."""

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline_tests.detection.script_modules import load_script

bench = load_script("benchmark_series")


@pytest.fixture(scope="module", params=["hourly", "daily"])
def pair(request):
    """The same synthetic run with and without the anomalies applied."""
    kw = dict(spacing=request.param, setting="noisy", n_series=24)
    return bench.generate(7, **kw), bench.generate(7, inject=False, **kw)


def test_labels_cover_every_injected_step_and_the_head_is_clean(pair):
    syn, clean = pair
    assert syn.labels.equals(clean.labels) and syn.frame[["series", "timestamp"]].equals(
        clean.frame[["series", "timestamp"]]
    )
    changed = syn.frame[~np.isclose(syn.frame["value"], clean.frame["value"], rtol=1e-12)]
    assert len(changed) > 0
    n = bench.SPACINGS["hourly" if syn.step == pd.Timedelta(hours=1) else "daily"]["n"]
    first_ok = syn.frame["timestamp"].min() + int(np.ceil(bench.HEAD_SHARE * n)) * syn.step
    assert changed["timestamp"].min() >= first_ok
    assert (syn.labels["start"] >= first_ok).all()
    lab = syn.labels
    # every changed point is inside its series' window, or after the onset of a persisting change
    m = changed.merge(lab, on="series")
    inside = m["timestamp"].between(m["start"], m["end"])
    persisted = m["persists"] & (m["timestamp"] >= m["onset"])
    covered = (inside | persisted).groupby([m["series"], m["timestamp"]]).any()
    assert covered.all(), covered[~covered].head()
    # the exact extent lies inside the window, and every event changed at least one value
    assert ((lab["event_start"] >= lab["start"]) & (lab["event_end"] <= lab["end"])).all()
    assert (lab["event_start"] <= lab["event_end"]).all()
    for r in lab.itertuples():
        hit = changed[
            (changed["series"] == r.series)
            & changed["timestamp"].between(r.event_start, r.event_end)
        ]
        assert len(hit) > 0, r
    # windows of one series never overlap
    for _, g in lab.sort_values("start").groupby("series"):
        assert (g["start"].to_numpy()[1:] > g["end"].to_numpy()[:-1]).all()
    assert set(lab["kind"]) == set(bench.KINDS)
    assert lab.groupby("series").size().between(1, 4).all()


def test_gaps_and_a_duplicate_exist_and_spare_the_events(pair):
    syn, _ = pair
    f = syn.frame
    assert (f["value"] > 0).all()
    dup = f[f.duplicated(["series", "timestamp"], keep=False)]
    with_gaps = syn.meta[syn.meta["n_gap_points"] > 0]
    assert 0 < len(with_gaps) < len(syn.meta)
    assert set(dup["series"]) == set(with_gaps["series"]) and len(dup) == 2 * len(with_gaps)
    for s, g in f.drop_duplicates(["series", "timestamp"]).groupby("series"):
        steps = g["timestamp"].diff().dropna() / syn.step
        n_missing = int((steps - 1).sum())
        assert n_missing == syn.meta.set_index("series").loc[s, "n_gap_points"]
        if n_missing:
            assert steps.max() <= 5 and 0.015 <= n_missing / (len(g) + n_missing) <= 0.045
        # the exact extent of every event is complete (a gap cannot hide an injected spike)
        for r in syn.labels[syn.labels["series"] == s].itertuples():
            expected = int((r.event_end - r.event_start) / syn.step) + 1
            assert g["timestamp"].between(r.event_start, r.event_end).sum() == expected


def test_the_generator_is_seeded():
    a = bench.generate(3, spacing="daily", n_series=4)
    b = bench.generate(3, spacing="daily", n_series=4)
    c = bench.generate(4, spacing="daily", n_series=4)
    assert a.frame.equals(b.frame) and a.labels.equals(b.labels)
    assert not a.frame["value"].equals(c.frame["value"])


def test_the_persistent_setting_has_ar1_noise_and_leaves_the_others_unchanged():
    kw = dict(spacing="hourly", n_series=12, inject=False)
    base, pers = (
        bench.generate(5, setting="default", **kw),
        bench.generate(5, setting="persistent", **kw),
    )
    assert (base.meta["noise_ar"] == 0).all()
    assert pers.meta["noise_ar"].between(0.3, 0.8).all()
    # same level, profile and drift and the same innovations e: the log ratio of the two is
    # sd x (p - e) with p the AR(1) filter of e, whose lag-1 autocorrelation is exactly
    # rho (1 - a) / (2 - 2a) = rho / 2 (a = sqrt(1 - rho^2) = cov(p_t, e_t))
    grid = lambda syn: syn.frame.groupby(["series", "timestamp"])["value"].mean().unstack()  # noqa: E731
    diff = np.log(grid(pers) / grid(base)).to_numpy()
    lag1 = np.array([pd.Series(row).autocorr(1) for row in diff])
    assert np.abs(lag1 - pers.meta["noise_ar"].to_numpy() / 2).max() < 0.08
    # the same grid, gaps and duplicate: only the noise differs between the settings
    assert pers.frame["timestamp"].equals(base.frame["timestamp"])


@pytest.mark.parametrize("spacing", ["hourly", "daily"])
def test_the_weekly_setting_adds_the_weekday_pattern_and_nothing_else(spacing):
    kw = dict(spacing=spacing, n_series=12, inject=False)
    base, weekly = (
        bench.generate(5, setting="default", **kw),
        bench.generate(5, setting="weekly", **kw),
    )
    assert (base.meta["weekday_amp"] == 0).all()
    amp = weekly.meta["weekday_amp"].to_numpy()
    assert ((amp >= 0.1) & (amp <= 0.4)).all()
    # the very same series times 1 + amp x the weekday pattern, exactly
    assert weekly.frame["timestamp"].equals(base.frame["timestamp"])
    row = weekly.frame["series"].str[1:].astype(int).to_numpy()
    expected = np.log1p(amp[row] * bench.WEEKDAY[weekly.frame["timestamp"].dt.dayofweek.to_numpy()])
    np.testing.assert_allclose(
        np.log(weekly.frame["value"] / base.frame["value"]), expected, atol=1e-9
    )


def test_the_hetero_setting_makes_the_noise_follow_the_volume_and_changes_nothing_else():
    kw = dict(spacing="hourly", n_series=12, inject=False)
    base, het = (
        bench.generate(5, setting="default", **kw),
        bench.generate(5, setting="hetero", **kw),
    )
    assert (base.meta["volume_range"] == 0).all() and het.meta["volume_range"].between(2, 9).all()
    assert het.frame["timestamp"].equals(base.frame["timestamp"])
    # the same innovations e: log(het / base) = noise_sd x e x (k_h - 1), k_h the hour's noise
    # multiplier (volume ** -0.5, mean square 1), so its spread at hour h is noise_sd |k_h - 1|
    diff = np.log(het.frame["value"] / base.frame["value"]).to_numpy()
    frame = het.frame.assign(diff=diff, hour=het.frame["timestamp"].dt.hour)
    observed = frame.groupby(["series", "hour"])["diff"].std().unstack().to_numpy()
    hours = np.arange(24)
    meta = het.meta
    bump = (
        (1 + np.cos(2 * np.pi * (hours[None, :] - meta["volume_peak"].to_numpy()[:, None]) / 24))
        / 2
    ) ** 2
    k = (1 + meta["volume_range"].to_numpy()[:, None] * bump) ** -0.5
    # normalized over the series' own grid (every hour equally often in 1,608 hourly steps, up to
    # 0.02)
    k = k / np.sqrt(np.mean(k**2, axis=1, keepdims=True))
    expected = meta["noise_sd"].to_numpy()[:, None] * np.abs(k - 1)
    assert np.corrcoef(observed.ravel(), expected.ravel())[0, 1] > 0.95
    # the quietest hour is 1.7-3.2x as noisy as the busiest
    ratio = k.max(axis=1) / k.min(axis=1)
    assert ((ratio > 1.7) & (ratio < 3.2)).all()


def test_the_counts_setting_draws_poisson_readings_of_the_default_series():
    kw = dict(spacing="hourly", n_series=12, inject=False)
    base, counts = (
        bench.generate(5, setting="default", **kw),
        bench.generate(5, setting="counts", **kw),
    )
    assert counts.frame["timestamp"].equals(base.frame["timestamp"])
    assert base.meta["count_mean"].isna().all() and counts.meta["count_mean"].between(0.3, 30).all()
    values = counts.frame["value"].to_numpy()
    assert (values == np.round(values)).all() and (values >= 0).all()
    # the expected count is the default series divided by its base and times the typical mean
    meta = counts.meta.set_index("series")
    expected = (
        base.frame["value"]
        / base.frame["series"].map(meta["base"])
        * base.frame["series"].map(meta["count_mean"])
    )
    ratio = (
        counts.frame.assign(e=expected.to_numpy())
        .groupby("series")
        .apply(lambda g: g["value"].sum() / g["e"].sum(), include_groups=False)
    )
    assert ratio.between(0.85, 1.15).all()
    # the quiet series are mostly zero, the busy ones never
    zeros = counts.frame.groupby("series")["value"].apply(lambda v: (v == 0).mean())
    assert (
        zeros[meta["count_mean"] < 1.1].min() > 0.3 and zeros[meta["count_mean"] > 10].max() < 0.01
    )
    assert "counts" not in bench.DEFAULT_SETTINGS


def _hand_made():
    ts = pd.date_range("2024-01-01", periods=100, freq="h")
    frame = pd.DataFrame({"series": "a", "timestamp": ts, "value": 1.0})
    frame = pd.concat(
        [frame, pd.DataFrame({"series": "b", "timestamp": ts, "value": 1.0})], ignore_index=True
    )
    labels = pd.DataFrame(
        {
            "series": ["a", "a", "b"],
            "kind": ["spike", "drift", "spike"],
            "start": [ts[10], ts[30], ts[60]],
            "end": [ts[20], ts[40], ts[65]],
        }
    )
    flagged = {"a": [12, 15, 50, 51, 70, 80, 82, 21], "b": [66]}
    pred = frame.assign(
        is_anomaly=[i in flagged[s] for s, i in zip(frame["series"], np.tile(np.arange(100), 2))]
    )
    return frame, labels, pred


def test_window_scorer_on_a_hand_made_example():
    frame, labels, pred = _hand_made()
    tot, lab = bench.score(pred, frame, labels, pd.Timedelta(hours=1))
    # a: two flags in [10, 20] -> one TP; [30, 40] missed; 50+51 merge (1 step apart) -> one FP
    # event; 70 alone; 80 and 82 are two steps apart -> two events; 21 sits right after the
    # window and 20 is not flagged -> its own event. b: 66 is just outside [60, 65] -> FP, miss.
    assert lab["found"].tolist() == [True, False, False]
    assert tot["tp"] == 1 and tot["windows"] == 3
    assert tot["fp_events"] == 6
    assert tot["flagged_points"] == 9 and tot["fp_points"] == 7
    assert tot["neg_points"] == (100 - 11 - 11) + (100 - 6)
    r = bench.prf(tot)
    assert r["precision"] == pytest.approx(1 / 7) and r["recall"] == pytest.approx(1 / 3)
    ev = bench.fp_event_table(pred, labels, pd.Timedelta(hours=1))
    assert ev.groupby("series")["n_points"].apply(list).to_dict() == {
        "a": [1, 2, 1, 1, 1],
        "b": [1],
    }


def test_scorer_merges_by_the_step_and_ignores_duplicates_and_unflagged_series():
    frame, labels, pred = _hand_made()
    # daily gap: hourly flags 2 steps apart now merge; a series absent from pred flags nothing
    tot, _ = bench.score(pred[pred["series"] == "a"], frame, labels, pd.Timedelta(hours=2))
    assert tot["fp_events"] == 4 and tot["tp"] == 1
    doubled = pd.concat([pred, pred[pred["is_anomaly"]]], ignore_index=True)
    assert (
        bench.score(doubled, frame, labels, pd.Timedelta(hours=1))[0]
        == bench.score(pred, frame, labels, pd.Timedelta(hours=1))[0]
    )
    none = pred.assign(is_anomaly=False)
    tot0, _ = bench.score(none, frame, labels, pd.Timedelta(hours=1))
    assert tot0["tp"] == tot0["fp_events"] == 0 and bench.prf(tot0)["f1"] == 0.0


def test_main_runs_small(capsys):
    assert (
        bench.main(
            [
                "--seeds",
                "1",
                "--settings",
                "default",
                "--spacing",
                "daily",
                "--n-series",
                "4",
                "--set",
                "fdr=0.01",
                "--explain-fp",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Pooled over settings and seeds" in out and "ensemble" in out and "seeds" in out
    assert "peak_mb" not in out


def test_memory_is_measured_on_request(capsys):
    assert (
        bench.main(
            [
                "--seeds",
                "1",
                "--settings",
                "persistent",
                "--spacing",
                "daily",
                "--n-series",
                "4",
                "--quiet",
                "--memory",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    pooled = out.split("## Pooled over settings and seeds")[1].split("##")[0]
    rows = [r for r in pooled.splitlines() if r.startswith("| ('ensemble'")]
    assert "peak_mb" in pooled and len(rows) == 1
    peak = float(rows[0].strip("|").split("|")[-1])
    assert 0.01 < peak < 500  # a real figure in MB, not NaN and not bytes
