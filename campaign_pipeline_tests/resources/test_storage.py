"""PipelineStorage on a local folder and on an S3 server (moto on 127.0.0.1): the same tables,
the same errors, the same defaults."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from campaign_pipeline.locations import Location
from campaign_pipeline.resources.storage import DATA_DIR_ENV, OUT_DIR_ENV, PipelineStorage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> PipelineStorage:
    if request.param == "local":
        return PipelineStorage(data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "out"))
    prefix = request.getfixturevalue("s3_prefix")
    return PipelineStorage(data_dir=f"{prefix}/data", out_dir=f"{prefix}/out")


def _week(week: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign_id": [f"c{i}" for i in range(n)],
            "week_start": pd.to_datetime([week] * n).astype("datetime64[ns]"),
            "spend": [1.5 * i for i in range(n)],
        }
    )


def test_staging_tables_and_json_round_trip(storage):
    frame = _week("2024-01-08", 3)
    path = storage.write_staging("validated_insights", frame)
    assert str(path) == f"{storage.data_location}/staging/validated_insights.parquet"
    pd.testing.assert_frame_equal(storage.read_staging("validated_insights"), frame)
    assert storage.read_staging("validated_insights", columns=["spend"]).columns.tolist() == [
        "spend"
    ]
    storage.write_staging_json("accounting_insights", {"read": 3, "accepted": 3})
    assert storage.read_staging_json("accounting_insights") == {"read": 3, "accepted": 3}


def test_a_missing_staging_table_is_a_failure_naming_it(storage):
    with pytest.raises(dg.Failure) as failed:
        storage.read_staging("validated_leads")
    assert failed.value.description == (
        f"{storage.staging_dir}/validated_leads.parquet does not exist: "
        "materialize the asset `validated_leads` first"
    )


def test_weekly_and_single_tables(storage):
    for week, n in (("2024-01-15", 2), ("2024-01-08", 3), ("2024-01-22", 0)):
        storage.write_table("weekly_campaign_metrics", _week(week, n), week)
    storage.write_table("quarantine", _week("2024-01-08", 1))
    assert storage.table_weeks("weekly_campaign_metrics") == [
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    everything = storage.read_table("weekly_campaign_metrics")
    assert (
        everything["week_start"].dt.strftime("%Y-%m-%d").tolist()
        == ["2024-01-08"] * 3 + ["2024-01-15"] * 2
    )
    chosen = storage.read_table("weekly_campaign_metrics", ["2024-01-15", "2024-02-05"])
    pd.testing.assert_frame_equal(chosen, _week("2024-01-15", 2))
    empty = storage.read_table("weekly_campaign_metrics", ["2024-01-22"])
    assert len(empty) == 0 and empty.columns.tolist() == ["campaign_id", "week_start", "spend"]
    assert len(storage.read_table("quarantine")) == 1
    assert storage.read_table("never_written").empty
    assert storage.published_tables() == {"quarantine": None, "weekly_campaign_metrics": 3}


def test_rewriting_a_week_replaces_that_week_only(storage):
    storage.write_table("campaign_health", _week("2024-01-08", 3), "2024-01-08")
    storage.write_table("campaign_health", _week("2024-01-15", 2), "2024-01-15")
    storage.write_table("campaign_health", _week("2024-01-08", 1), "2024-01-08")
    assert storage.read_table("campaign_health")["campaign_id"].tolist() == ["c0", "c0", "c1"]


def test_empty_dirs_are_resolved_where_the_step_runs(monkeypatch, tmp_path):
    """An unconfigured resource takes the variables of the process that uses it (a worker),
    not of the process that imported the definitions."""
    monkeypatch.delenv(OUT_DIR_ENV, raising=False)
    storage = PipelineStorage()
    monkeypatch.setenv(DATA_DIR_ENV, "s3://bucket/team-a")
    assert str(storage.raw_dir) == "s3://bucket/team-a/raw"
    assert str(storage.published_dir) == "s3://bucket/team-a/out"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(OUT_DIR_ENV, str(tmp_path / "published"))
    assert storage.staging_dir == Location(tmp_path / "data" / "staging")
    assert storage.table_path("anomaly_flags", "2024-01-08") == Location(
        tmp_path / "published" / "anomaly_flags" / "2024-01-08.parquet"
    )


def test_a_weekly_tables_folder_reads_as_one_table_when_a_week_has_no_text(storage):
    """A week without rows (or with a text column all null) keeps its text columns typed as
    text, so the folder's files agree and a reader can take the folder whole, as analysts do
    (`pd.read_parquet(folder)`) and as the report's filtered reads do."""
    import pyarrow.parquet as pq

    storage.write_table("anomaly_flags", _week("2024-01-08", 2).iloc[0:0], "2024-01-08")
    storage.write_table("anomaly_flags", _week("2024-01-15", 2), "2024-01-15")
    nothing = _week("2024-01-22", 2).assign(campaign_id=None)
    storage.write_table("anomaly_flags", nothing, "2024-01-22")
    for week in ("2024-01-08", "2024-01-15", "2024-01-22"):
        source = storage.table_path("anomaly_flags", week)
        with source.open() as handle:
            assert str(pq.read_schema(handle).field("campaign_id").type) == "string", week
    folder = storage.published_dir / "anomaly_flags"
    whole = pq.read_table(folder.url if not folder.is_local else folder.local_path)
    assert whole.num_rows == 4
    assert sorted(whole.column("campaign_id").drop_null().to_pylist()) == ["c0", "c1"]
    # read back, a null text column is the same frame as before
    pd.testing.assert_frame_equal(storage.read_table("anomaly_flags", ["2024-01-22"]), nothing)
