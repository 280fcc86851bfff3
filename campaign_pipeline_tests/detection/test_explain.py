"""The flags' confidence: its features, its model, the fit that sets it (no Dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from campaign_pipeline.detection import DetectionSettings, detect_campaign_anomalies, detect_series
from campaign_pipeline.detection.explain import CONFIDENCE_FEATURES, confidence, confidence_features
from campaign_pipeline_tests.detection.script_modules import load_script
from campaign_pipeline_tests.detection.synth import add_rates, daily_frame

S = DetectionSettings()


def _flags(rows):
    return pd.DataFrame(
        rows, columns=["campaign_id", "grain", "period_start", "metric", "q_value", "methods"]
    )


def test_confidence_features_read_the_published_columns():
    flags = _flags(
        [
            ("c1", "day", "2024-02-01", "spend", 0.01, "count_test+robust_z"),
            ("c1", "day", "2024-02-01", "cpc", 0.5, "cusum"),
            ("c1", "day", "2024-02-01", "cpm", 1.0, "rule"),
            ("c2", "day", "2024-02-01", "ctr", 1e-9, "count_test+robust_z,cusum,window_shift,rule"),
            ("c2", "week", "2024-01-29", "ctr", np.nan, "window_shift"),
            ("c3", "day", "2024-02-02", "clicks", 0.001, "cusum,window_shift"),
        ]
    )
    x = pd.DataFrame(confidence_features(flags), columns=CONFIDENCE_FEATURES)
    assert (x["intercept"] == 1).all()
    # -log10 q where a test with a q-value fired (clipped at 1e-6; unknown q = no evidence)
    assert np.allclose(x["evidence"], [2.0, 0.0, 0.0, 6.0, 0.0, 3.0])
    # other metrics of the same campaign, grain and period: c1's day has three
    assert list(x["more_metrics"]) == [2, 2, 2, 0, 0, 0]
    assert list(x["more_methods"]) == [0, 0, 0, 2, 0, 1]
    assert list(x["rule"]) == [0, 0, 1, 1, 0, 0]
    # CUSUM alone: neither a test with a q-value nor a rule
    assert list(x["cusum_only"]) == [0, 1, 0, 0, 0, 0]


def test_a_cusum_or_rule_flag_is_not_read_by_the_days_point_q_value():
    # the day's point q-value says nothing about an alarm the point test did not raise
    # (reading it would give such flags, 97 % real on the benchmark, a confidence of 0.3)
    a = _flags([("c1", "day", "d", "ctr", 0.9, "cusum"), ("c2", "day", "d", "cpc", 0.9, "rule")])
    b = a.assign(q_value=0.001)
    assert np.allclose(
        confidence(a, S.confidence_coefficients), confidence(b, S.confidence_coefficients)
    )
    assert (confidence(a, S.confidence_coefficients) > 0.9).all()


@pytest.mark.parametrize(
    "coefficients", [S.confidence_coefficients, S.series_confidence_coefficients]
)
def test_confidence_rises_with_evidence_and_agreement(coefficients):
    one = _flags(
        [
            (f"c{i}", "day", "d", "spend", q, "count_test+robust_z")
            for i, q in enumerate((0.04, 0.01, 1e-3, 1e-5))
        ]
    )
    by_q = confidence(one, coefficients)
    assert np.all(np.diff(by_q) > 0) and np.all((by_q > 0) & (by_q < 1))
    agreed = _flags([("c1", "day", "d", "spend", 0.04, "count_test+robust_z,window_shift")])
    assert confidence(agreed, coefficients)[0] > by_q[0]
    assert len(confidence(one.iloc[:0], coefficients)) == 0


def test_campaign_confidence_is_recomputable_from_the_published_flags():
    base = daily_frame(n_campaigns=4, n_days=70, seed=3)
    m = (base["campaign_id"] == "c1") & (base["date"] >= pd.Timestamp("2024-02-20"))
    base.loc[m, "spend"] *= 4
    flags = detect_campaign_anomalies(
        add_rates(base), judge_start="2024-01-15", judge_end="2024-03-10"
    )
    assert len(flags) and flags["confidence"].between(0, 1).all()
    assert np.allclose(flags["confidence"], confidence(flags, S.confidence_coefficients))
    # a campaign-day with several flagged metrics is more credible than the same flag alone
    day = flags[(flags["grain"] == "day") & (flags["campaign_id"] == "c1")]
    assert day.groupby("period_start").size().max() >= 2


def test_series_confidence_is_recomputable_and_shift_flags_carry_the_shift_q_value():
    rng = np.random.default_rng(4)
    t = pd.date_range("2024-01-01", periods=24 * 40, freq="h")
    v = np.exp(rng.normal(0, 0.15, len(t)))
    v[700] *= 6  # a one-hour spike: the point test
    v[850:] *= 1.6  # a lasting rise no single hour shows strongly (z ~3): the window shift
    # the week's family at once: an hour's share of it (1/168) leaves a lone series' shift
    # short of the level; which q-value a shift flag carries is what is tested
    settings = DetectionSettings(causal_correction=False)
    out = detect_series(pd.DataFrame({"series": "a", "timestamp": t, "value": v}), settings)
    flagged = out[out["is_anomaly"]]
    assert out.loc[~out["is_anomaly"], ["confidence", "q_value"]].isna().all().all()
    assert out.loc[~out["is_anomaly"], "methods"].isna().all()
    assert np.allclose(
        flagged["confidence"],
        confidence(
            flagged.assign(
                campaign_id=flagged["series"], grain="point", period_start=flagged["timestamp"]
            ),
            S.series_confidence_coefficients,
        ),
    )
    shift_only = flagged[flagged["methods"] == "window_shift"]
    assert len(shift_only) and (shift_only["q_value"] <= S.fdr).all()
    # the shift's q-value, not the hour's: a point q-value is never below its own p-value,
    # which for the hour's z (score ~3.3) is about 0.001
    assert (shift_only["q_value"] < 2 * stats.norm.sf(shift_only["score"])).all()


def test_series_flags_explain_themselves_with_their_numbers():
    rng = np.random.default_rng(4)
    t = pd.date_range("2024-01-01", periods=24 * 40, freq="h")
    v = np.exp(rng.normal(0, 0.15, len(t)))
    v[700] *= 6  # a one-hour spike: the point test
    v[850:] *= 1.6  # a lasting rise: the window shift alone
    out = detect_series(pd.DataFrame({"series": "cpc_a", "timestamp": t, "value": v}))
    assert list(out.columns) == [
        "series",
        "timestamp",
        "is_anomaly",
        "score",
        "expected",
        "anomaly_type",
        "severity",
        "confidence",
        "value",
        "expected_lower",
        "expected_upper",
        "q_value",
        "methods",
        "explanation",
    ]
    assert np.allclose(out["value"], v)
    judged = out["expected"].notna()
    # judged from day 15, once two of each weekday are known (`weekday_min_weeks`)
    assert judged.iloc[24 * 14 :].all() and not judged.iloc[: 24 * 14].any()
    assert (
        (out.loc[judged, "expected_lower"] < out.loc[judged, "expected"])
        & (out.loc[judged, "expected"] < out.loc[judged, "expected_upper"])
    ).all()
    assert out.loc[~out["is_anomaly"], ["methods", "explanation"]].isna().all().all()
    spike = out.iloc[700]
    assert (
        spike["is_anomaly"] and spike["methods"] == "robust_z" and spike["anomaly_type"] == "spike"
    )
    assert spike["explanation"].startswith(
        f"cpc_a spiked on 2024-01-30 04:00: {spike['value']:.3g} against an expected "
        f"{spike['expected']:.3g} "
        f"(normal range {spike['expected_lower']:.3g} to {spike['expected_upper']:.3g}), "
    )
    assert (
        f"robust z {spike['score']:.1f}, adjusted p {spike['q_value']:.2g}. Detectors: robust_z."
        in spike["explanation"]
    )
    # the shift is explained by its run of hours (its mean against the 4 days before them),
    # typed and sized as the run, as a shift-only row of `anomaly_flags` is
    shift = out[out["methods"] == "window_shift"]
    assert len(shift) and (shift["anomaly_type"] == "drift").all()
    assert (
        shift["explanation"]
        .str.contains(
            r": the last [35] hours average [\d.]+ against [\d.]+ in the 4-day baseline "
            r"before them \(\+\d+%; that hour"
        )
        .all()
    )
    rise = shift["explanation"].str.extract(r"\(\+(\d+)%")[0].astype(float)
    assert rise.between(30, 120).all()  # the injected +60 %, seen through a few noisy hours
    # time-zone-aware input: explained on UTC's clock, which is the clock it was judged on
    aware = detect_series(
        pd.DataFrame(
            {
                "series": "cpc_a",
                "timestamp": t.tz_localize("UTC").tz_convert("Europe/Berlin"),
                "value": v,
            }
        )
    )
    assert aware.iloc[700]["explanation"].startswith("cpc_a spiked on 2024-01-30 04:00 UTC: ")


def test_fit_recovers_known_coefficients_and_auc_counts_pairs():
    fit_confidence = load_script("fit_confidence")
    rng = np.random.default_rng(0)
    n = 6000
    methods = rng.choice(
        ["count_test+robust_z", "cusum", "rule", "count_test+robust_z,window_shift"], n
    )
    # flags share a campaign-day at random, so `more_metrics` takes the values 0, 1 and 2
    flags = pd.DataFrame(
        {
            "campaign_id": rng.integers(0, n // 2, n),
            "grain": "day",
            "period_start": 0,
            "metric": "m",
            "q_value": 10 ** -rng.uniform(0, 5, n),
            "methods": methods,
        }
    )
    truth = np.array([-1.0, 0.8, 1.2, 1.5, 2.0, 1.0])
    p = 1 / (1 + np.exp(-(confidence_features(flags) @ truth)))
    flags["real"] = rng.random(n) < p
    assert np.allclose(fit_confidence.fit(flags, ridge=0.0), truth, atol=0.35)
    assert (
        fit_confidence.auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
        == 0.75
    )


def test_a_change_that_prints_as_a_threshold_has_that_thresholds_severity():
    """+50 % over an expected value off by a float's last digits is medium, as printed."""
    from campaign_pipeline.detection.explain import severity

    rel = np.array([150 / 100.00000001 - 1, 200 / 100.00000001 - 1, 0.4999, 4 / 1.0000000001 - 1])
    got = severity(rel, np.array(["spike"] * 4), S)
    assert got.tolist() == ["medium", "high", "low", "critical"]
