"""Days without delivery are not judged; a cost spike needs the events the spend implies."""

import numpy as np
import pandas as pd

from campaign_pipeline.detection import DetectionSettings, detect_campaign_anomalies
from campaign_pipeline_tests.detection.synth import add_rates, daily_frame


def _flags(daily, start, end, **settings):
    return detect_campaign_anomalies(
        daily, judge_start=start, judge_end=end, settings=DetectionSettings(**settings)
    )


def test_lead_events_after_a_campaign_ended_raise_no_alarm():
    daily = daily_frame(n_campaigns=3, n_days=70, seed=4)
    ended = daily["campaign_id"].eq("c0") & (daily["date"] >= pd.Timestamp("2024-02-20"))
    # after its last day c0 still gets rows (late conversions) with leads 0 and no delivery
    daily.loc[ended, ["spend", "impressions", "clicks", "conversions"]] = np.nan
    daily.loc[ended, "leads"] = 0.0
    daily.loc[ended, "converted_leads"] = 1.0
    daily["has_delivery"] = daily["spend"].notna()
    daily = add_rates(daily)
    flags = _flags(daily, "2024-02-20", "2024-03-10")
    assert flags[flags["campaign_id"] == "c0"].empty
    # the same zeros on delivery days are a real drop, and are flagged
    daily.loc[ended, "has_delivery"] = True
    daily.loc[ended, ["spend", "impressions", "clicks", "conversions"]] = daily.loc[
        ended, ["spend", "impressions", "clicks", "conversions"]
    ].fillna(0.0)
    flagged = _flags(add_rates(daily), "2024-02-20", "2024-03-10")
    assert not flagged[flagged["campaign_id"] == "c0"].empty


def test_days_before_a_campaigns_first_delivery_are_read_without_it():
    from campaign_pipeline.detection.ensemble import _blank_days_off_delivery

    days = pd.date_range("2024-02-05", periods=10, freq="D")
    rows = pd.DataFrame(
        {
            "campaign_id": "c0",
            "date": days,
            "spend": np.nan,
            "impressions": np.nan,
            "clicks": np.nan,
            "conversions": np.nan,
            "leads": 3.0,
            "converted_leads": 1.0,
        }
    )
    rows.loc[6:7, ["spend", "impressions", "clicks", "conversions"]] = [
        50.0,
        4000.0,
        80.0,
        4.0,
    ]  # delivers 2 days
    rows["has_delivery"] = rows["spend"].notna()
    full = _blank_days_off_delivery(rows)
    # leads-only days before the first delivery keep their leads, as they would on their own
    # (a delivery on day 6 must not blank days 0-5: a look-ahead); the days after it ended do not
    pd.testing.assert_frame_equal(full.iloc[:6], _blank_days_off_delivery(rows.iloc[:6]))
    assert (full["leads"].iloc[:6] == 3.0).all() and full["leads"].iloc[8:].isna().all()
    assert (full["leads"].iloc[6:8] == 3.0).all()


def test_cpa_jump_on_a_handful_of_conversions_is_not_an_alert():
    # about 2 conversions a day: CPA x4 means 0 or 1 conversion instead of 2, which is noise
    daily = daily_frame(n_campaigns=4, n_days=56, seed=2, impressions=2000, ctr=0.01, conv_rate=0.1)
    day = pd.Timestamp("2024-02-20")
    at = daily["date"].eq(day) & daily["campaign_id"].eq("c1")
    daily.loc[at, "conversions"] = 1.0
    daily.loc[at, "spend"] = daily.loc[at, "spend"] * 2
    flags = _flags(add_rates(daily), day, day)
    assert flags[(flags["campaign_id"] == "c1") & (flags["metric"] == "cpa")].empty


def test_cpc_spike_on_many_clicks_is_an_alert():
    daily = daily_frame(n_campaigns=4, n_days=56, seed=3, impressions=20000, ctr=0.02)
    day = pd.Timestamp("2024-02-20")
    at = daily["date"].eq(day) & daily["campaign_id"].eq("c2")
    daily.loc[at, "clicks"] = np.round(daily.loc[at, "clicks"] / 4)
    daily.loc[at, "conversions"] = np.minimum(daily.loc[at, "conversions"], daily.loc[at, "clicks"])
    flags = _flags(add_rates(daily), day, day)
    hit = flags[(flags["campaign_id"] == "c2") & flags["metric"].isin(["cpc", "ctr", "clicks"])]
    assert not hit.empty


def test_lead_conversion_rate_is_not_judged_by_default():
    assert "lead_conversion_rate" not in DetectionSettings().metrics


def test_lead_flood_rule_fires_on_a_junk_day_and_not_on_a_busy_normal_day():
    daily = daily_frame(
        n_campaigns=3, n_days=56, seed=5, impressions=3000, ctr=0.01, conv_rate=0.05
    )
    day = pd.Timestamp("2024-02-20")
    flood = daily["date"].eq(day) & daily["campaign_id"].eq("c0")
    daily.loc[flood, "leads"] = daily.loc[flood, "leads"] + 30
    busy = daily["date"].eq(day) & daily["campaign_id"].eq("c1")
    daily.loc[busy, "leads"] = daily.loc[busy, "leads"] * 2
    flags = _flags(add_rates(daily), day, day)
    leads = flags[flags["metric"] == "leads"]
    assert "lead_flood" in set(leads.loc[leads["campaign_id"] == "c0", "anomaly_type"])
    assert "lead_flood" not in set(leads.loc[leads["campaign_id"] == "c1", "anomaly_type"])
