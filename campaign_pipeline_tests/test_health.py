"""The seed's decision rules at every boundary, in order, against an independent row-by-row
transcription of the seed (``builders.seed_health_reference``), plus transitions, the action
summary and the schema."""

import math

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_pipeline.constants import RECOMMENDED_ACTIONS
from campaign_pipeline.health import (
    HealthRules,
    action_summary,
    assign_health,
    health_transitions,
    newly_bad_or_hero,
)
from campaign_pipeline.health_schemas import CampaignHealth, HealthActionSummary
from campaign_pipeline_tests.builders import seed_health_reference


def summary(rows) -> pd.DataFrame:
    """rows: (campaign_id, total_leads, converted_leads, total_spend, days_active[, platform]).

    conversion_rate and cpl are derived the way the metrics layer does: NaN without leads, and
    cpl NaN when spend is unknown.
    """
    frame = pd.DataFrame(
        [r if len(r) == 6 else (*r, "Facebook") for r in rows],
        columns=[
            "campaign_id",
            "total_leads",
            "converted_leads",
            "total_spend",
            "days_active",
            "platform",
        ],
    ).astype(
        {
            "total_leads": "float64",
            "converted_leads": "float64",
            "total_spend": "float64",
            "days_active": "float64",
        }
    )
    leads = frame["total_leads"].where(frame["total_leads"] > 0)
    frame["conversion_rate"] = frame["converted_leads"] / leads
    frame["cpl"] = frame["total_spend"] / leads
    frame["user_id"] = "U1"
    frame["project_name"] = "P1"
    return frame


def universe(cpls, convs=None, leads=100, days=10) -> list[tuple]:
    """Campaigns U0, U1, ... with these CPLs and conversion rates (100 leads each by default)."""
    convs = convs if convs is not None else [0.1] * len(cpls)
    return [
        (f"U{i}", leads, conv * leads, cpl * leads, days)
        for i, (cpl, conv) in enumerate(zip(cpls, convs))
    ]


# A universe of four campaigns with distinct CPLs 10, 20, 30, 40 and conversion rates.
BASE = [
    ("A", 100, 20, 1000.0, 10),  # cpl 10, conv 0.20
    ("B", 100, 10, 2000.0, 10),  # cpl 20, conv 0.10
    ("C", 100, 5, 3000.0, 10),  # cpl 30, conv 0.05
    ("D", 100, 0, 4000.0, 10),  # cpl 40, conv 0.00
]


def judged(rows, rules=HealthRules()) -> pd.DataFrame:
    return assign_health(summary(rows), rules).set_index("campaign_id")


def buckets(rows, rules=HealthRules()) -> dict[str, str]:
    return judged(rows, rules)["health_bucket"].to_dict()


# --- the seed's example and the reasons ------------------------------------------------------


def test_seed_example_buckets_percentiles_and_reasons():
    out = judged(BASE)
    # pandas linear quantiles of [10, 20, 30, 40]: P25 17.5, P50 25, P75 32.5; conv [0, .05, .1, .2]
    # P75 0.125
    assert out.loc["A", ["cpl_p25", "cpl_p50", "cpl_p75", "conv_p75"]].tolist() == [
        17.5,
        25.0,
        32.5,
        0.125,
    ]
    assert out["universe_size"].tolist() == [4, 4, 4, 4] and out["in_universe"].all()
    assert out["health_bucket"].to_dict() == {
        "A": "HERO",
        "B": "NEEDS_MORE_DATA",
        "C": "MIXED",
        "D": "BAD",
    }
    assert out["recommended_action"].to_dict() == {
        "A": "Scale Up",
        "B": "Keep Monitoring",
        "C": "Optimize (Targeting / Creative / Audience)",
        "D": "Stop / Reallocate",
    }
    assert (
        out.loc["A", "reason"]
        == "conversion rate 20.0% >= P75 of 12.5% and CPL 10 <= P25 of 17.5 -> Scale Up"
    )
    assert (
        out.loc["D", "reason"]
        == "100 leads, 0 converted, CPL 40 above the P75 of 32.5 -> Stop / Reallocate"
    )
    assert out.loc["C", "reason"] == (
        "converting (5 of 100 leads, 5.0%) but CPL 30 above the P50 of 25 -> Optimize (Targeting "
        "/ Creative / Audience)"
    )
    assert out.loc["B", "reason"] == (
        "100 leads, 10 converted (10.0%), CPL 20: not BAD (converting), "
        "not HERO/GOOD (conversion rate below the P75 of 12.5%), not MIXED (CPL at or below the "
        "P50 of 25) -> Keep Monitoring"
    )


def test_reason_of_a_good_campaign_and_large_numbers():
    # CPLs 100..5,000 with E at 1,433.33 between P25 and P50 and a top conversion rate
    rows = universe([100, 900, 2000, 5000], [0.1, 0.1, 0.1, 0.0]) + [("E", 30, 6, 43_000.0, 10)]
    out = judged(rows)
    assert out.loc["E", "health_bucket"] == "GOOD"
    assert out.loc["E", "reason"] == (
        "conversion rate 20.0% >= P75 of 10.0% and CPL 1,433 <= P50 of 1,433 (above the P25 of "
        "900) -> Keep Running"
    )


def test_needs_more_data_reason_lists_every_shortfall_with_its_threshold():
    out = judged(BASE + [("E", 6, 1, 60.0, 10), ("F", 0, 0, np.nan, 2), ("G", 12, 3, 0.0, 5)])
    assert out.loc["E", "reason"] == "6 leads (< 10 needed) -> Keep Monitoring"
    assert (
        out.loc["F", "reason"]
        == "0 leads (< 10 needed); spend unknown (must be > 0); 2 active days (< 3 needed) "
        "-> Keep Monitoring"
    )
    assert out.loc["G", "reason"] == "spend 0 (must be > 0) -> Keep Monitoring"


# --- every rule boundary -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leads", "expected"), [(9, "NEEDS_MORE_DATA"), (10, "HERO"), (11, "HERO")]
)
def test_min_leads_boundary(leads, expected):
    # E converts every lead at a CPL of 5 (the cheapest): HERO once it has enough leads
    out = judged(BASE + [("E", leads, leads, 5.0 * leads, 10)])
    assert out.loc["E", "health_bucket"] == expected
    assert out.loc["E", "in_universe"] == (leads >= 10)
    assert out.loc["A", "universe_size"] == (5 if leads >= 10 else 4)


@pytest.mark.parametrize(
    ("spend", "expected"), [(0.0, "NEEDS_MORE_DATA"), (np.nan, "NEEDS_MORE_DATA"), (0.01, "HERO")]
)
def test_spend_must_be_positive(spend, expected):
    out = judged(BASE + [("E", 50, 25, spend, 10)])
    assert out.loc["E", "health_bucket"] == expected
    assert out.loc["E", "in_universe"] == (expected == "HERO")


@pytest.mark.parametrize(("days", "expected"), [(2, "NEEDS_MORE_DATA"), (3, "HERO"), (4, "HERO")])
def test_min_days_boundary(days, expected):
    out = judged(BASE + [("E", 50, 25, 100.0, days)])
    assert out.loc["E", "health_bucket"] == expected
    # active days do not decide who is in the benchmark universe, only who is judged
    assert out.loc["E", "in_universe"]


@pytest.mark.parametrize(("leads", "expected"), [(19, "NEEDS_MORE_DATA"), (20, "BAD"), (21, "BAD")])
def test_bad_needs_twenty_leads(leads, expected):
    # zero conversions at the most expensive CPL (100); below 20 leads nothing else matches
    out = judged(BASE + [("E", leads, 0, 100.0 * leads, 10)])
    assert out.loc["E", "health_bucket"] == expected
    if expected != "BAD":
        assert "not BAD (needs >= 20 leads)" in out.loc["E", "reason"]


@pytest.mark.parametrize(
    ("cpls", "expected", "word"),
    [
        # five universe members: P75 is the 4th smallest CPL exactly (index (5 - 1) * 0.75 = 3)
        ([10, 20, 35.01, 40], "NEEDS_MORE_DATA", None),  # E = 35 just below the P75 of 35.01
        ([10, 20, 30, 40], "BAD", "at"),  # E = 35 is the 4th smallest: exactly the P75
        ([10, 20, 30, 34.99], "BAD", "above"),  # E = 35 just above the P75 of 34.99
    ],
)
def test_bad_cpl_boundary_at_p75(cpls, expected, word):
    out = judged(universe(cpls) + [("E", 40, 0, 40 * 35.0, 10)])
    assert out.loc["E", "health_bucket"] == expected
    if word:
        assert f"CPL 35 {word} the P75 of" in out.loc["E", "reason"]
    if word == "at":
        assert out.loc["E", "cpl"] == out.loc["E", "cpl_p75"] == 35.0


@pytest.mark.parametrize(
    ("convs", "expected"),
    [
        ([0.0, 0.05, 0.2001, 0.3], "NEEDS_MORE_DATA"),  # E's 0.2 just below the P75 of 0.2001
        ([0.0, 0.05, 0.1, 0.3], "HERO"),  # E's 0.2 is the P75 exactly
        ([0.0, 0.05, 0.1, 0.1999], "HERO"),  # just above
    ],
)
def test_top_conversion_boundary_at_p75(convs, expected):
    # E has the cheapest CPL (5), so only its conversion rate decides HERO
    out = judged(universe([10, 20, 30, 40], convs) + [("E", 100, 20, 500.0, 10)])
    assert out.loc["E", "health_bucket"] == expected


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        # nine universe members: P25, P50 and P75 are the 3rd, 5th and 7th smallest CPL exactly
        ([5, 20.01, 30, 40, 50, 60, 70, 80], "HERO"),  # E = 20 just below the P25 of 20.01
        ([5, 10, 30, 40, 50, 60, 70, 80], "HERO"),  # E = 20 is the P25 exactly
        (
            [5, 10, 19.99, 30, 40, 50, 60, 70],
            "GOOD",
        ),  # just above the P25 of 19.99, below the P50 of 30
        ([5, 10, 15, 19.99, 30, 40, 50, 60], "GOOD"),  # E is the P50 exactly
        (
            [5, 10, 15, 19.98, 19.99, 30, 40, 50],
            "MIXED",
        ),  # just above the P50 of 19.99 (and converting)
    ],
)
def test_hero_good_mixed_cpl_boundaries(others, expected):
    # every other campaign converts 5%, E 10%: E is at or above the conversion P75 (5%)
    out = judged(universe(others, [0.05] * len(others)) + [("E", 100, 10, 2000.0, 10)])
    assert out.loc["E", "conv_p75"] == 0.05
    assert out.loc["E", "health_bucket"] == expected


def test_mixed_needs_cpl_strictly_above_the_median():
    # E at the P50 of 25 with a low conversion rate: not MIXED (needs >), not GOOD (needs top
    # conversion)
    out = judged(BASE + [("E", 100, 1, 2500.0, 10)])
    assert out.loc["E", "cpl_p50"] == 25.0
    assert out.loc["E", "health_bucket"] == "NEEDS_MORE_DATA"
    assert "not MIXED (CPL at or below the P50 of 25)" in out.loc["E", "reason"]
    # one cent above the median it is MIXED
    out = judged(BASE + [("E", 100, 1, 2501.0, 10), ("F", 100, 1, 2499.0, 10)])
    assert out.loc["E", "health_bucket"] == "MIXED"


# --- rule order ------------------------------------------------------------------------------


def test_bad_wins_over_hero_when_both_hold():
    # all CPLs equal and nobody converts: P25 = P75 = 20 and P75(conv) = 0, so every campaign
    # meets BAD (>= 20 leads, 0 converted, CPL >= P75) and HERO (conv >= 0, CPL <= P25).
    rows = universe([20, 20, 20], [0, 0, 0], leads=30) + [("E", 15, 0, 300.0, 10)]
    out = judged(rows)
    assert (out.loc[["U0", "U1", "U2"], "health_bucket"] == "BAD").all()
    assert (
        out.loc["E", "health_bucket"] == "HERO"
    )  # under 20 leads BAD cannot fire; the seed's quirk
    assert "no conversions" in out.loc["E", "reason"]


def test_data_check_wins_over_everything_and_hero_over_good():
    assert (
        buckets(BASE + [("E", 100, 50, 100.0, 2)])["E"] == "NEEDS_MORE_DATA"
    )  # HERO profile, 2 days
    assert (
        buckets(BASE + [("E", 100, 0, 9000.0, 2)])["E"] == "NEEDS_MORE_DATA"
    )  # BAD profile, 2 days
    # A meets GOOD's conditions too (CPL 10 <= P50); HERO comes first
    out = judged(BASE)
    assert (
        out.loc["A", "cpl"] <= out.loc["A", "cpl_p50"] and out.loc["A", "health_bucket"] == "HERO"
    )


# --- universes: empty, single, all-zero conversion; NaN CPL ----------------------------------


def test_empty_input():
    out = assign_health(summary([]))
    assert out.empty
    assert {
        "health_bucket",
        "recommended_action",
        "reason",
        "cpl_p25",
        "universe_size",
        "in_universe",
    } <= set(out.columns)


def test_empty_universe_makes_everyone_need_more_data():
    out = judged([("A", 5, 1, 50.0, 10), ("B", 9, 9, 9.0, 10), ("C", 50, 5, 0.0, 10)])
    assert (out["health_bucket"] == "NEEDS_MORE_DATA").all()
    assert out[["cpl_p25", "cpl_p50", "cpl_p75", "conv_p75"]].isna().all().all()
    assert (out["universe_size"] == 0).all()


def test_single_campaign_universe_is_its_own_benchmark():
    converting = judged([("A", 30, 3, 300.0, 10), ("B", 5, 5, 5.0, 10)])
    assert converting.loc["A", ["cpl_p25", "cpl_p50", "cpl_p75"]].tolist() == [10.0, 10.0, 10.0]
    assert converting.loc["A", "health_bucket"] == "HERO"  # at P75 conv and at P25 CPL
    assert converting.loc["B", "health_bucket"] == "NEEDS_MORE_DATA"
    # with no conversions and >= 20 leads, it is at its own P75 CPL: BAD comes before HERO
    assert buckets([("A", 30, 0, 300.0, 10)]) == {"A": "BAD"}


def test_all_zero_conversion_universe_reproduces_the_seed_quirk():
    out = judged(universe([10, 20, 30, 40], [0, 0, 0, 0], leads=30))
    assert (out["conv_p75"] == 0).all()
    # P75 conv = 0, so conv >= P75 holds: the cheapest is HERO and the next GOOD, as in the seed
    assert out["health_bucket"].tolist() == ["HERO", "GOOD", "NEEDS_MORE_DATA", "BAD"]
    assert out.loc["U0", "reason"] == (
        "conversion rate 0.0% >= P75 of 0.0% and CPL 10 <= P25 of 17.5 (no conversions: it clears "
        "the P75 only "
        "because that is 0%, the seed's rule) -> Scale Up"
    )
    assert "not MIXED (no conversions)" in out.loc["U2", "reason"]


def test_nan_cpl_never_meets_a_percentile_rule_and_stays_out_of_the_percentiles():
    frame = summary(BASE + [("E", 50, 25, 100.0, 10), ("F", 0, 0, 500.0, 10)])
    frame.loc[frame["campaign_id"] == "E", "cpl"] = np.nan  # spend and leads known, CPL not
    out = assign_health(frame).set_index("campaign_id")
    assert out.loc["A", "cpl_p25"] == 17.5  # E's NaN is skipped, as pandas quantile does
    assert out.loc["E", "health_bucket"] == "NEEDS_MORE_DATA"
    assert "CPL unknown" in out.loc["E", "reason"] and "benchmark unknown" in out.loc["E", "reason"]
    assert math.isnan(out.loc["F", "cpl"]) and out.loc["F", "health_bucket"] == "NEEDS_MORE_DATA"


def test_unknown_lead_count_or_active_days_is_not_enough_data():
    frame = summary(BASE + [("E", 50, 25, 100.0, 10), ("F", 50, 25, 100.0, 10)])
    frame.loc[frame["campaign_id"] == "E", "total_leads"] = np.nan
    frame.loc[frame["campaign_id"] == "F", "days_active"] = np.nan
    out = assign_health(frame).set_index("campaign_id")
    assert out.loc[["E", "F"], "health_bucket"].tolist() == ["NEEDS_MORE_DATA"] * 2
    assert out.loc["E", "reason"].startswith("unknown leads")
    assert out.loc["F", "reason"].startswith("unknown active days")


# --- benchmark scope -------------------------------------------------------------------------


def test_per_platform_scope_uses_each_platforms_percentiles():
    rows = [(c, leads, conv, spend, days, "Facebook") for c, leads, conv, spend, days in BASE] + [
        ("T1", 100, 3, 10000.0, 10, "TikTok"),
        ("T2", 100, 2, 20000.0, 10, "TikTok"),
    ]
    wide = judged(rows)
    scoped = judged(rows, HealthRules(benchmark_scope="platform"))
    assert wide.loc["A", "health_bucket"] == scoped.loc["A", "health_bucket"] == "HERO"
    # T1 is cheap only among TikTok campaigns: MIXED platform-wide, HERO within its platform
    assert wide.loc["T1", "health_bucket"] == "MIXED"
    assert (
        scoped.loc["T1", "health_bucket"] == "HERO"
    )  # conv 3% >= TikTok P75 2.75%, CPL 100 <= TikTok P25 125
    assert scoped.loc[
        "T1", ["cpl_p25", "cpl_p50", "cpl_p75", "conv_p75"]
    ].tolist() == pytest.approx([125, 150, 175, 0.0275])
    assert scoped["universe_size"].to_dict() == {"A": 4, "B": 4, "C": 4, "D": 4, "T1": 2, "T2": 2}
    assert (wide["universe_size"] == 6).all()


@pytest.mark.parametrize("scope", ["user_id", "project_name"])
def test_user_and_project_scopes_and_missing_segment_values(scope):
    frame = summary(
        BASE + [("E", 100, 3, 10000.0, 10), ("F", 100, 2, 20000.0, 10), ("G", 100, 2, 500.0, 10)]
    )
    frame[scope] = ["X", "X", "X", "X", "Y", "Y", None]
    out = assign_health(frame, HealthRules(benchmark_scope=scope)).set_index("campaign_id")
    assert out.loc["A", "cpl_p25"] == 17.5 and out.loc["E", "cpl_p25"] == 125
    # a campaign without a segment value is benchmarked with the others lacking one (here: alone)
    assert out.loc["G", "universe_size"] == 1 and out.loc["G", "cpl_p50"] == 5.0
    with pytest.raises(ValueError, match="needs a"):
        assign_health(frame.drop(columns=[scope]), HealthRules(benchmark_scope=scope))


def test_rules_are_validated():
    with pytest.raises(ValueError):
        HealthRules(benchmark_scope="country")
    with pytest.raises(ValueError):
        HealthRules(hero_cpl_quantile=1.5)
    with pytest.raises(ValueError):
        HealthRules(min_leads=-1)
    with pytest.raises(ValueError, match="lacks columns"):
        assign_health(summary(BASE).drop(columns=["cpl"]))


def test_thresholds_are_configuration_and_reasons_name_them():
    rows = BASE + [("E", 6, 3, 30.0, 10)]
    assert buckets(rows)["E"] == "NEEDS_MORE_DATA"
    assert buckets(rows, HealthRules(min_leads=5))["E"] == "HERO"
    # a BAD that tolerates a 2% conversion rate, and deciles instead of quartiles in the text
    rules = HealthRules(bad_max_conversion_rate=0.02, bad_cpl_quantile=0.9)
    out = judged(BASE + [("E", 100, 1, 9000.0, 10)], rules)
    assert out.loc["E", "health_bucket"] == "BAD"
    assert "above the P90 of" in out.loc["E", "reason"]
    assert judged(BASE + [("E", 100, 1, 9000.0, 10)]).loc["E", "health_bucket"] == "MIXED"


def test_input_is_not_modified_and_its_index_is_kept():
    frame = summary(BASE).set_index(pd.Index([10, 20, 30, 40]))
    before = frame.copy()
    out = assign_health(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out.index.tolist() == [10, 20, 30, 40]
    assert out.loc[40, "health_bucket"] == "BAD" and out.loc[40, "reason"].startswith(
        "100 leads, 0 converted"
    )


# --- transitions and the action summary ------------------------------------------------------


def test_transitions_and_newly_bad_or_hero():
    previous = pd.DataFrame(
        {"campaign_id": ["A", "B", "C", "GONE"], "health_bucket": ["GOOD", "BAD", "MIXED", "HERO"]}
    )
    current = pd.DataFrame(
        {
            "campaign_id": ["A", "B", "C", "N", "M"],
            "health_bucket": ["HERO", "BAD", "BAD", "HERO", "NEEDS_MORE_DATA"],
        }
    )
    t = health_transitions(current, previous)
    assert t["campaign_id"].tolist() == ["A", "B", "C", "N", "M"]  # this week's campaigns only
    t = t.set_index("campaign_id")
    assert t.loc["A", ["from_bucket", "to_bucket"]].tolist() == ["GOOD", "HERO"]
    assert t["changed"].to_dict() == {"A": True, "B": False, "C": True, "N": False, "M": False}
    assert t["is_new"].to_dict() == {"A": False, "B": False, "C": False, "N": True, "M": True}
    assert t.loc["N", "from_bucket"] is None
    assert newly_bad_or_hero(t.reset_index())["campaign_id"].tolist() == ["A", "C", "N"]


def test_transitions_first_week_and_duplicates():
    current = pd.DataFrame({"campaign_id": ["A", "B"], "health_bucket": ["BAD", "GOOD"]})
    t = health_transitions(current, None)
    assert (
        t["from_bucket"].tolist() == [None, None] and not t["changed"].any() and t["is_new"].all()
    )
    assert newly_bad_or_hero(t)["campaign_id"].tolist() == ["A"]
    with pytest.raises(ValueError):
        health_transitions(
            current, pd.DataFrame({"campaign_id": ["A", "A"], "health_bucket": ["BAD", "GOOD"]})
        )


def test_action_summary_lists_all_actions_in_order_with_spend_shares():
    out = assign_health(summary(BASE + [("E", 5, 0, np.nan, 10)]))
    s = action_summary(out)
    assert s["recommended_action"].tolist() == list(RECOMMENDED_ACTIONS)
    assert s["health_bucket"].tolist() == ["HERO", "GOOD", "MIXED", "BAD", "NEEDS_MORE_DATA"]
    s = s.set_index("recommended_action")
    assert s["n_campaigns"].to_dict() == {
        "Scale Up": 1,
        "Keep Running": 0,
        "Optimize (Targeting / Creative / Audience)": 1,
        "Stop / Reallocate": 1,
        "Keep Monitoring": 2,
    }
    assert s["total_spend"].tolist() == [
        1000.0,
        0.0,
        3000.0,
        4000.0,
        2000.0,
    ]  # E's unknown spend adds nothing
    assert s["share_of_spend"].tolist() == pytest.approx([0.1, 0.0, 0.3, 0.4, 0.2])
    assert s.loc["Keep Monitoring", "n_spend_unknown"] == 1
    assert (
        s.loc["Keep Monitoring", "total_leads"] == 105
        and s.loc["Scale Up", "converted_leads"] == 20
    )


def test_action_summary_without_spend_or_campaigns():
    no_spend = action_summary(assign_health(summary([("A", 5, 0, 0.0, 10)])))
    assert no_spend["share_of_spend"].isna().all()  # 0 / 0 is unknown, not 0
    assert no_spend["total_spend"].tolist() == [0.0] * 5  # A reported a spend of 0
    # an action whose campaigns all reported no spend: its spend is unknown, not 0
    unknown = action_summary(
        assign_health(summary([("B", 5, 0, np.nan, 10), ("C", 5, 0, 250.0, 10)]))
    ).set_index("recommended_action")
    monitoring = unknown.loc["Keep Monitoring"]
    assert (monitoring["n_campaigns"], monitoring["n_spend_unknown"]) == (2, 1)
    assert monitoring["total_spend"] == 250.0 and monitoring["share_of_spend"] == 1.0
    alone = action_summary(assign_health(summary([("B", 5, 0, np.nan, 10)])))
    alone = alone.set_index("recommended_action").loc["Keep Monitoring"]
    assert np.isnan(alone["total_spend"]) and np.isnan(alone["share_of_spend"])
    assert alone["n_spend_unknown"] == 1
    empty = action_summary(assign_health(summary([])))
    assert (
        len(empty) == 5
        and (empty["n_campaigns"] == 0).all()
        and empty["share_of_spend"].isna().all()
    )


# --- the published table's schema ------------------------------------------------------------


def published(rows=BASE) -> pd.DataFrame:
    """As the metrics layer gives them, the window's counts are integers."""
    counts = dict.fromkeys(["total_leads", "converted_leads", "days_active"], "int64")
    return assign_health(summary(rows)).astype(counts).assign(week_start=pd.Timestamp("2025-01-06"))


def test_schema_accepts_the_output_and_rejects_broken_rows():
    CampaignHealth.validate(published(BASE + [("E", 0, 0, np.nan, 0)]))
    broken = {
        "bucket": published().assign(health_bucket="GREAT"),
        "action": published().assign(recommended_action="Scale Up"),  # not every bucket is HERO
        "reason": published().assign(reason=""),
        "reason_for_another_action": published().assign(
            reason="100 leads, 0 converted -> Scale Up"
        ),
        "duplicate": pd.concat([published(), published()]),
        "negative": published().assign(total_leads=-1),
        "leads held as float": published().assign(
            total_leads=published()["total_leads"].astype("float64")
        ),
        "days held as float": published().assign(
            days_active=published()["days_active"].astype("float64")
        ),
    }
    for name, frame in broken.items():
        # a column that does not coerce is a SchemaErrors (pandera collects coercion errors)
        with pytest.raises((pandera.errors.SchemaError, pandera.errors.SchemaErrors)):
            CampaignHealth.validate(frame)
        assert name


def test_action_summary_schema_accepts_the_output_and_rejects_broken_rows():
    week = pd.Timestamp("2025-01-06")
    rows = BASE + [("E", 5, 0, np.nan, 10)]
    good = action_summary(assign_health(summary(rows))).assign(week_start=week)
    HealthActionSummary.validate(good)
    all_unknown = action_summary(assign_health(summary([("B", 5, 0, np.nan, 10)])))
    HealthActionSummary.validate(all_unknown.assign(week_start=week))
    monitoring = good["recommended_action"] == "Keep Monitoring"
    broken = {
        "an action missing": good[~monitoring],
        "an action twice": pd.concat([good, good[monitoring]]),
        "more unknown than campaigns": good.assign(n_spend_unknown=good["n_campaigns"] + 1),
        "0 for spend nobody reported": all_unknown.fillna({"total_spend": 0.0}).assign(
            week_start=week
        ),
        "a share above 1": good.assign(share_of_spend=1.5),
        "an extra column": good.assign(email="a@example.com"),
        "leads held as float": good.assign(total_leads=good["total_leads"].astype("float64")),
    }
    for name, frame in broken.items():
        with pytest.raises((pandera.errors.SchemaError, pandera.errors.SchemaErrors)):
            HealthActionSummary.validate(frame)
        assert name


campaign_rows = st.tuples(
    st.integers(0, 60),  # leads
    st.one_of(
        st.floats(0, 1), st.sampled_from([0.0, 0.1, 0.25])
    ),  # share converted (repeats make ties)
    st.one_of(
        st.just(0.0),
        st.just(float("nan")),
        st.sampled_from([100.0, 250.0, 500.0]),
        st.floats(0, 5000),
    ),
    st.integers(0, 10),  # days active
    st.sampled_from(["Facebook", "Google Ads", None]),
    st.sampled_from([False] * 9 + [True]),  # True: CPL unknown although leads and spend are known
)


def frame_of(rows) -> pd.DataFrame:
    frame = summary(
        [
            (f"C{i}", leads, math.floor(leads * share), spend, days, platform)
            for i, (leads, share, spend, days, platform, _) in enumerate(rows)
        ]
    )
    drop_cpl = np.array([r[5] for r in rows], dtype=bool)
    if len(frame):
        frame.loc[drop_cpl, "cpl"] = np.nan  # a CPL nobody could compute, even with leads and spend
    return frame


def assert_matches_reference(frame: pd.DataFrame, rules: HealthRules) -> None:
    out = assign_health(frame, rules)
    assert out["health_bucket"].tolist() == seed_health_reference(frame, rules)
    assert (out["recommended_action"] != "").all() and out["reason"].str.len().gt(0).all()
    assert all(r.endswith(" -> " + a) for r, a in zip(out["reason"], out["recommended_action"]))
    # the percentiles are the seed's pandas quantiles, bit for bit (ties compare the same way)
    segments = (
        out["platform"].fillna("<none>")
        if rules.benchmark_scope == "platform"
        else pd.Series("all", index=out.index)
    )
    for segment, group in out.groupby(segments):
        members = group[group["in_universe"]]
        for column, level, source in (
            ("cpl_p25", rules.hero_cpl_quantile, "cpl"),
            ("cpl_p75", rules.bad_cpl_quantile, "cpl"),
            ("conv_p75", rules.top_conversion_quantile, "conversion_rate"),
        ):
            expected = members[source].quantile(level)
            assert (group[column].isna().all() and math.isnan(expected)) or (
                group[column] == expected
            ).all(), (segment, column)


@settings(max_examples=150, deadline=None)
@given(st.lists(campaign_rows, max_size=25))
def test_matches_row_by_row_reference(rows):
    assert_matches_reference(frame_of(rows), HealthRules())


quantile_level = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(campaign_rows, max_size=25),
    st.builds(
        HealthRules,
        min_leads=st.integers(0, 15),
        min_spend=st.sampled_from([0.0, 50.0]),
        min_days_active=st.integers(0, 4),
        bad_min_leads=st.integers(0, 30),
        bad_max_conversion_rate=st.sampled_from([0.0, 0.05]),
        bad_cpl_quantile=quantile_level,
        top_conversion_quantile=quantile_level,
        hero_cpl_quantile=quantile_level,
        median_cpl_quantile=quantile_level,
        mixed_min_conversion_rate=st.sampled_from([0.0, 0.02]),
        benchmark_scope=st.sampled_from(["platform_wide", "platform"]),
    ),
)
def test_matches_row_by_row_reference_under_any_configuration(rows, rules):
    assert_matches_reference(frame_of(rows), rules)


def test_a_number_and_a_different_threshold_never_print_alike():
    """A conversion rate of 14.8936% 'below the P75 of' 14.9076% printed both as 14.9%."""
    from campaign_pipeline.health import _apart

    conv = pd.Series([0.148936, 0.2, 0.149076, np.nan])
    c75 = pd.Series([0.149076, 0.149076, 0.149076, 0.149076])
    conv_text, c75_text = _apart("percent", conv, c75)
    assert list(conv_text) == ["14.89%", "20.0%", "14.9%", "unknown"]
    assert list(c75_text) == ["14.91%", "14.9%", "14.9%", "14.9%"]  # equal values print alike
    cpl, p75, p50 = _apart(
        "amount", pd.Series([1433.4, 17.5]), pd.Series([1433.2, 18.0]), pd.Series([900.0, 17.5])
    )
    assert list(cpl) == ["1,433.40", "17.5"] and list(p75) == ["1,433.20", "18"]
    assert list(p50) == ["900.00", "17.5"]
    # an unknown threshold keeps its word while the others gain decimals
    cpl, p75, p50 = _apart("amount", pd.Series([1433.4]), pd.Series([1433.2]), pd.Series([np.nan]))
    assert (list(cpl), list(p75), list(p50)) == (["1,433.40"], ["1,433.20"], ["unknown"])
