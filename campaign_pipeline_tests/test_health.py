"""The seed's decision rules at every boundary, in order, against an independent reference."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_pipeline.health import (
    HealthRules,
    action_summary,
    assign_health,
    health_transitions,
    newly_bad_or_hero,
)


def summary(rows) -> pd.DataFrame:
    """rows: (campaign_id, total_leads, converted_leads, total_spend, days_active[, platform])."""
    frame = pd.DataFrame(
        [r if len(r) == 6 else (*r, "Facebook") for r in rows],
        columns=["campaign_id", "total_leads", "converted_leads", "total_spend", "days_active", "platform"],
    )
    frame["conversion_rate"] = np.where(frame["total_leads"] > 0, frame["converted_leads"] / frame["total_leads"].where(frame["total_leads"] > 0), np.nan)
    frame["cpl"] = frame["total_spend"] / frame["total_leads"].where(frame["total_leads"] > 0)
    frame["user_id"] = "U1"
    frame["project_name"] = "P1"
    return frame


# A universe of four campaigns with distinct CPLs 10, 20, 30, 40 and conversion rates.
BASE = [
    ("A", 100, 20, 1000.0, 10),  # cpl 10, conv 0.20
    ("B", 100, 10, 2000.0, 10),  # cpl 20, conv 0.10
    ("C", 100, 5, 3000.0, 10),  # cpl 30, conv 0.05
    ("D", 100, 0, 4000.0, 10),  # cpl 40, conv 0.00
]


def buckets(rows, rules=HealthRules()) -> dict[str, str]:
    out = assign_health(summary(rows), rules)
    return dict(zip(out["campaign_id"], out["health_bucket"]))


def test_seed_example_buckets_and_percentiles():
    out = assign_health(summary(BASE)).set_index("campaign_id")
    # pandas linear quantiles of [10, 20, 30, 40]: P25 17.5, P50 25, P75 32.5; conv P75 0.125
    assert out.loc["A", "cpl_p25"] == pytest.approx(17.5)
    assert out.loc["A", "cpl_p50"] == pytest.approx(25)
    assert out.loc["A", "cpl_p75"] == pytest.approx(32.5)
    assert out.loc["A", "conv_p75"] == pytest.approx(0.125)
    assert out["health_bucket"].to_dict() == {"A": "HERO", "B": "NEEDS_MORE_DATA", "C": "MIXED", "D": "BAD"}
    assert out.loc["D", "recommended_action"] == "Stop / Reallocate"
    assert out.loc["D", "reason"] == "100 leads, 0 converted, CPL 40 at or above the P75 of 32 -> Stop / Reallocate"
    assert "12.5%" in out.loc["A", "reason"] and "P25 of 18" in out.loc["A", "reason"]


@pytest.mark.parametrize(("leads", "expected_ok"), [(9, False), (10, True), (11, True)])
def test_min_leads_boundary(leads, expected_ok):
    rows = BASE + [("E", leads, leads, 10.0 * leads / 2, 10)]  # cpl 5 (cheapest), conv 1.0
    got = buckets(rows)["E"]
    assert (got == "HERO") is expected_ok
    if not expected_ok:
        assert "(< 10 needed)" in assign_health(summary(rows)).set_index("campaign_id").loc["E", "reason"]


@pytest.mark.parametrize(("spend", "expected"), [(0.0, "NEEDS_MORE_DATA"), (np.nan, "NEEDS_MORE_DATA"), (0.01, "HERO")])
def test_spend_must_be_positive(spend, expected):
    assert buckets(BASE + [("E", 50, 25, spend, 10)])["E"] == expected


@pytest.mark.parametrize(("days", "expected"), [(2, "NEEDS_MORE_DATA"), (3, "HERO"), (4, "HERO")])
def test_min_days_boundary(days, expected):
    assert buckets(BASE + [("E", 50, 25, 100.0, days)])["E"] == expected


@pytest.mark.parametrize(("leads", "expected"), [(19, "NEEDS_MORE_DATA"), (20, "BAD"), (21, "BAD")])
def test_bad_needs_twenty_leads(leads, expected):
    # zero conversions and the most expensive CPL; with < 20 leads BAD cannot fire and
    # nothing else matches (conv 0 < P75, not > 0)
    assert buckets(BASE + [("E", leads, 0, 100.0 * leads, 10)])["E"] == expected


def test_bad_at_exactly_p75_cpl_and_just_below():
    at = assign_health(summary(BASE + [("E", 40, 0, 40 * 35.0, 10)])).set_index("campaign_id")
    # universe CPLs 10,20,30,35,40 -> P75 35: E sits exactly at it
    assert at.loc["E", "cpl_p75"] == pytest.approx(35.0)
    assert at.loc["E", "health_bucket"] == "BAD"
    below = buckets(BASE + [("E", 40, 0, 40 * 34.0, 10), ("F", 40, 0, 40 * 36.0, 10)])
    assert below["E"] == "NEEDS_MORE_DATA"  # 34 < P75 of 35


def test_hero_good_boundaries_at_percentiles():
    # universe CPLs 10, 20, 30, 40, 17.5 -> sorted 10, 17.5, 20, 30, 40: P25 17.5, P50 20
    rows = BASE + [("E", 100, 20, 1750.0, 10)]
    out = assign_health(summary(rows)).set_index("campaign_id")
    assert out.loc["E", "cpl_p25"] == pytest.approx(17.5)
    assert out.loc["E", "conv_p75"] == pytest.approx(0.2)
    assert out.loc["E", "health_bucket"] == "HERO"  # conv == P75 and cpl == P25: both inclusive
    assert out.loc["B", "health_bucket"] == "NEEDS_MORE_DATA"  # conv 0.10 < P75 0.20
    # just above P25 but at or below P50 -> GOOD
    rows = BASE + [("E", 100, 20, 1900.0, 10), ("F", 100, 20, 1800.0, 10)]
    out = assign_health(summary(rows)).set_index("campaign_id")
    assert out.loc["E", "cpl"] > out.loc["E", "cpl_p25"]
    assert out.loc["E", "cpl"] <= out.loc["E", "cpl_p50"]
    assert out.loc["E", "health_bucket"] == "GOOD"


def test_mixed_needs_cpl_strictly_above_median():
    # CPLs 10,20,30,40 and E at 25 = P50 of 10,20,25,30,40 -> not MIXED (needs >), not GOOD (conv low)
    out = assign_health(summary(BASE + [("E", 100, 1, 2500.0, 10)])).set_index("campaign_id")
    assert out.loc["E", "cpl_p50"] == pytest.approx(25)
    assert out.loc["E", "health_bucket"] == "NEEDS_MORE_DATA"
    assert "no rule met" in out.loc["E", "reason"]


def test_rule_order_bad_before_others_and_data_check_first():
    # D would also satisfy MIXED's cpl condition but has no conversions; BAD wins.
    assert buckets(BASE)["D"] == "BAD"
    # too few active days beats everything, even a HERO profile
    assert buckets(BASE + [("E", 100, 50, 100.0, 2)])["E"] == "NEEDS_MORE_DATA"


def test_empty_and_single_campaign_universes():
    empty = assign_health(summary([]))
    assert empty.empty and "health_bucket" in empty.columns
    small = assign_health(summary([("A", 5, 1, 50.0, 10)]))
    assert small["health_bucket"].tolist() == ["NEEDS_MORE_DATA"]
    assert math.isnan(small["cpl_p75"].iloc[0]) and small["universe_size"].iloc[0] == 0
    single = assign_health(summary([("A", 30, 3, 300.0, 10)]))
    # one campaign: every percentile is its own value, so it is at P75 conv and P25 cpl -> HERO
    assert single["health_bucket"].tolist() == ["HERO"]


def test_all_zero_conversion_universe_reproduces_the_seed_quirk():
    rows = [("A", 30, 0, 300.0, 10), ("B", 30, 0, 600.0, 10), ("C", 30, 0, 900.0, 10), ("D", 30, 0, 1200.0, 10)]
    out = assign_health(summary(rows)).set_index("campaign_id")
    assert (out["conv_p75"] == 0).all()
    # P75 conv = 0 so conv >= P75 holds: the cheapest is HERO, as in the seed; the dearest BAD
    assert out["health_bucket"].to_dict() == {"A": "HERO", "B": "GOOD", "C": "NEEDS_MORE_DATA", "D": "BAD"}
    assert "P75 of 0.0%" in out.loc["A", "reason"]


def test_nan_cpl_never_matches_a_percentile_rule():
    rows = BASE + [("E", 0, 0, 500.0, 10)]  # no leads -> cpl NaN, conversion rate NaN
    out = assign_health(summary(rows)).set_index("campaign_id")
    assert math.isnan(out.loc["E", "cpl"])
    assert out.loc["E", "health_bucket"] == "NEEDS_MORE_DATA"
    assert out.loc["A", "cpl_p25"] == pytest.approx(17.5)  # E is not in the universe


def test_per_platform_scope_uses_each_platforms_percentiles():
    rows = [(c, l, k, s, d, "Facebook") for c, l, k, s, d in BASE] + [
        ("T1", 100, 3, 10000.0, 10, "TikTok"), ("T2", 100, 2, 20000.0, 10, "TikTok"),
    ]
    wide = buckets(rows)
    scoped = buckets(rows, HealthRules(benchmark_scope="platform"))
    assert scoped["A"] == wide["A"] == "HERO"
    # T1 is cheap only among TikTok campaigns: MIXED platform-wide, GOOD-or-better in its platform
    assert wide["T1"] == "MIXED"
    assert scoped["T1"] == "HERO"  # conv 3% >= TikTok P75 2.75%, CPL 100 <= TikTok P25 125
    with pytest.raises(ValueError):
        HealthRules(benchmark_scope="country")


def test_transitions_and_newly_bad_or_hero():
    previous = pd.DataFrame({"campaign_id": ["A", "B", "C"], "health_bucket": ["GOOD", "BAD", "MIXED"]})
    current = pd.DataFrame({"campaign_id": ["A", "B", "C", "N"], "health_bucket": ["HERO", "BAD", "BAD", "HERO"]})
    t = health_transitions(current, previous).set_index("campaign_id")
    assert t.loc["A", "from_bucket"] == "GOOD" and bool(t.loc["A", "changed"])
    assert not bool(t.loc["B", "changed"])
    assert t.loc["N", "from_bucket"] is None and not bool(t.loc["N", "changed"])
    assert sorted(newly_bad_or_hero(t.reset_index())["campaign_id"]) == ["A", "C", "N"]


def test_action_summary_lists_all_actions_with_spend_shares():
    out = assign_health(summary(BASE))
    s = action_summary(out).set_index("recommended_action")
    assert len(s) == 5
    assert s.loc["Stop / Reallocate", "n_campaigns"] == 1
    assert s.loc["Stop / Reallocate", "total_spend"] == 4000
    assert s.loc["Keep Running", "n_campaigns"] == 0
    assert s["share_of_spend"].sum() == pytest.approx(1.0)
    assert s.loc["Stop / Reallocate", "share_of_spend"] == pytest.approx(0.4)


# --- against a straightforward row-by-row transcription of the seed ----------------------


def reference(frame: pd.DataFrame) -> list[str]:
    universe = frame[(frame["total_leads"] >= 10) & (frame["total_spend"] > 0)]
    p25, p50, p75 = (universe["cpl"].quantile(q) for q in (0.25, 0.5, 0.75))
    c75 = universe["conversion_rate"].quantile(0.75)
    out = []
    for row in frame.itertuples():
        if row.total_leads < 10 or not row.total_spend > 0 or row.days_active < 3:
            out.append("NEEDS_MORE_DATA")
        elif row.total_leads >= 20 and row.conversion_rate == 0 and row.cpl >= p75:
            out.append("BAD")
        elif row.conversion_rate >= c75 and row.cpl <= p25:
            out.append("HERO")
        elif row.conversion_rate >= c75 and row.cpl <= p50:
            out.append("GOOD")
        elif row.conversion_rate > 0 and row.cpl > p50:
            out.append("MIXED")
        else:
            out.append("NEEDS_MORE_DATA")
    return out


campaign_rows = st.tuples(
    st.integers(0, 60),  # leads
    st.floats(0, 1),  # share converted
    st.one_of(st.just(0.0), st.just(float("nan")), st.sampled_from([100.0, 250.0, 500.0]), st.floats(0, 5000)),
    st.integers(0, 10),  # days active
)


@settings(max_examples=150, deadline=None)
@given(st.lists(campaign_rows, max_size=25))
def test_matches_row_by_row_reference(rows):
    frame = summary([(f"C{i}", leads, math.floor(leads * share), spend, days) for i, (leads, share, spend, days) in enumerate(rows)])
    assert assign_health(frame)["health_bucket"].tolist() == reference(frame)
