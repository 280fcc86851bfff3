"""The generator is deterministic and has the shape the pipeline and the benchmarks rely on."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.ingestion import ingest_raw_dir
from campaign_pipeline.sample_data import ANOMALY_KINDS, generate_sample

FILES = ("campaigns.csv", "insights.csv", "campaign_leads.csv", "lead_status_changes.csv")


def digests(folder) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    manifest = generate_sample(out, seed=3, n_campaigns=120, n_days=84, anomalies=True, defects=True)
    return out, manifest


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = generate_sample(tmp_path / "a", seed=11, n_campaigns=20, n_days=30)
    b = generate_sample(tmp_path / "b", seed=11, n_campaigns=20, n_days=30)
    c = generate_sample(tmp_path / "c", seed=12, n_campaigns=20, n_days=30)
    assert digests(a.out_dir) == digests(b.out_dir)
    assert digests(a.out_dir)["insights.csv"] != digests(c.out_dir)["insights.csv"]


def test_realistic_shape(sample):
    out, _ = sample
    result = ingest_raw_dir(out)
    insights = result.insights.merge(result.campaigns[["campaign_id", "platform"]], on="campaign_id")
    # heavy tail: the biggest spender spends many times the median campaign
    per_campaign = insights.groupby("campaign_id")["spend"].sum()
    assert per_campaign.max() / per_campaign.median() > 8
    # platforms differ: LinkedIn CPM above TikTok CPM (ratio of sums)
    cpm = insights.groupby("platform").apply(lambda g: 1000 * g["spend"].sum() / g["impressions"].sum(), include_groups=False)
    assert cpm["LinkedIn"] > 2 * cpm["TikTok"]
    # weekends differ from weekdays for LinkedIn (business audience)
    linked = insights[insights["platform"] == "LinkedIn"]
    weekend = linked["date"].dt.weekday >= 5
    assert linked.loc[weekend, "spend"].mean() < 0.8 * linked.loc[~weekend, "spend"].mean()
    # ad-set parts exist and were summed
    assert (result.insights["n_parts"] > 1).any()
    # most campaigns never convert a lead (the seed's median conversion rate was 0)
    converted = result.leads["lead_status"].isin(["DONE_DEAL", "ALREADY_BOUGHT", "RESALE_REQUEST", "MEETING_DONE", "HIGH_INTEREST", "QUALIFIED"])
    share_never = 1 - result.leads[converted]["campaign_id"].nunique() / result.campaigns["campaign_id"].nunique()
    assert share_never > 0.4
    # short campaigns exist
    days = result.insights.groupby("campaign_id")["date"].nunique()
    assert (days <= 10).sum() >= 5


def test_three_timestamp_formats_and_casual_statuses(sample):
    out, _ = sample
    created = pd.read_csv(out / "insights.csv", dtype=str)["created_at"]
    assert created.str.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$").any()
    assert created.str.match(r"^\d{4}-\d{2}-\d{2}$").any()
    assert created.str.match(r"^\d{2}/\d{2}/\d{4}$").any()
    statuses = pd.read_csv(out / "campaign_leads.csv", dtype=str, keep_default_na=False)["lead_status"]
    assert (statuses != statuses.str.strip().str.upper()).any()


def test_every_anomaly_kind_is_injected_and_labelled_in_range(sample):
    out, manifest = sample
    labels = pd.read_csv(out / "anomaly_labels.csv", parse_dates=["start_date", "end_date"])
    assert set(labels["kind"]) == set(ANOMALY_KINDS)
    assert labels["campaign_id"].is_unique  # one anomaly per injected campaign
    assert (labels["start_date"] >= pd.Timestamp("2025-01-06") + pd.Timedelta(days=21)).all()
    assert (labels["end_date"] >= labels["start_date"]).all()
    assert (labels["end_date"] <= pd.Timestamp("2025-01-06") + pd.Timedelta(days=83)).all()
    # a delivery outage is really zero delivery on its days
    result = ingest_raw_dir(out)
    outage = labels[labels["kind"] == "delivery_outage"].iloc[0]
    days = result.insights[(result.insights["campaign_id"] == outage["campaign_id"])
                           & result.insights["date"].between(outage["start_date"], outage["end_date"])]
    assert len(days) and (days["impressions"].fillna(0) == 0).all()


def test_every_defect_is_findable_and_quarantined_or_kept_as_labelled(sample):
    out, manifest = sample
    defects = pd.read_csv(out / "defects.csv")
    assert {"unparseable_date", "negative_spend", "clicks_gt_impressions", "conversions_gt_clicks",
            "unknown_campaign", "missing_key", "conflicting_duplicate_campaign", "blank_numeric",
            "exact_duplicate", "bom_header", "header_whitespace"} <= set(defects["kind"])
    assert (out / "campaigns.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    result = ingest_raw_dir(out)
    q = result.quarantine
    expected_code = {
        "unparseable_date": "unparseable_date", "negative_spend": "negative_spend",
        "clicks_gt_impressions": "clicks_gt_impressions", "conversions_gt_clicks": "conversions_gt_clicks",
        "unknown_campaign": "unknown_campaign", "missing_key": "missing_key",
    }
    for row in defects.itertuples():
        if row.kind in expected_code:
            hit = q[(q["source_file"] == row.file) & (q["row_key"] == row.row_key)]
            assert hit["reason_code"].tolist() == [expected_code[row.kind]], row
        elif row.kind == "conflicting_duplicate_campaign":
            assert q["row_key"].str.startswith(f"{row.row_key} (line").sum() == 2
        elif row.kind == "blank_numeric":
            assert row.row_key not in set(q["row_key"])  # blank is not a defect
    assert result.files["insights"].duplicates_removed == (defects["kind"] == "exact_duplicate").sum()


def test_scale_multiplies_campaigns(tmp_path):
    small = generate_sample(tmp_path / "s", seed=1, n_campaigns=10, n_days=20)
    big = generate_sample(tmp_path / "b", seed=1, n_campaigns=10, n_days=20, scale=3)
    assert small.rows["campaigns"] == 10 and big.rows["campaigns"] == 30
