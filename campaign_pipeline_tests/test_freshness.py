"""Freshness checks belong to their sensor: a run that writes a week (an old one here), started
as `dagster asset materialize`, the UI's Materialize button or an asset backfill start it,
neither evaluates nor fails them; the sensor then evaluates them in a checks-only run of
their own, as before."""

from __future__ import annotations

import dagster as dg

from campaign_pipeline.checks import (
    FRESHNESS_CHECK_KEYS,
    FRESHNESS_SENSOR_NAME,
    evaluates_freshness,
    freshness_checks,
    freshness_checks_sensor,
)
from campaign_pipeline.definitions import defs
from campaign_pipeline.resources.storage import DATA_DIR_ENV, OUT_DIR_ENV

PAST_WEEK = "2024-01-08"  # the tiny exports' first week (conftest.data_dir)
WEEKLY_TABLE = dg.AssetKey("daily_campaign_metrics")  # freshness: last week's partition
WHOLE_TABLE = dg.AssetKey("quarantine")  # freshness: updated within 8 days


def test_only_a_run_that_materializes_nothing_evaluates_freshness():
    assert evaluates_freshness([])
    assert not evaluates_freshness({WEEKLY_TABLE})
    assert not evaluates_freshness(iter([WHOLE_TABLE]))


def _freshness_results(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, bool]:
    return {
        evaluation.asset_key: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_check_key in FRESHNESS_CHECK_KEYS
    }


def _tick(instance: dg.DagsterInstance):
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, sensor_name=FRESHNESS_SENSOR_NAME
    )
    return freshness_checks_sensor(context)


def test_a_past_week_run_leaves_freshness_to_the_sensor(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    monkeypatch.setenv(OUT_DIR_ENV, str(tmp_path / "out"))
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    ingestion = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingestion"]
    week_run = [*ingestion, WEEKLY_TABLE]
    with dg.instance_for_test() as instance:
        # As `dagster asset materialize --select ... --partition 2024-01-08` runs it: the
        # implicit asset job with every check of the selected assets, the freshness ones too.
        result = job.execute_in_process(
            instance=instance, partition_key=PAST_WEEK, asset_selection=week_run
        )
        assert result.success
        freshness_steps = {c.node_def.name for c in freshness_checks}
        ran = {e.step_key for e in result.all_events if e.is_step_success}
        assert len(ran & freshness_steps) == 2  # in the run: one weekly, one whole-table check
        assert _freshness_results(result) == {}
        # the run's own checks still judge what it wrote
        assert any(e.passed for e in result.get_asset_check_evaluations())

        # As the UI's Materialize button runs it: each check of the asset named explicitly.
        ui = job.get_subset(
            asset_selection={WEEKLY_TABLE},
            asset_check_selection={
                k for k in graph.asset_check_keys if k.asset_key == WEEKLY_TABLE
            },
        )
        result = ui.execute_in_process(instance=instance, partition_key=PAST_WEEK)
        assert result.success and _freshness_results(result) == {}

        # The sensor evaluates every freshness check, also the ones those runs planned and left
        # without a result (Dagster's own sensor waits forever for those to complete).
        request = _tick(instance)
        assert isinstance(request, dg.RunRequest)
        assert set(request.asset_check_keys) == set(FRESHNESS_CHECK_KEYS)
        checks_run = job.get_subset(
            asset_selection=set(), asset_check_selection=set(request.asset_check_keys)
        ).execute_in_process(instance=instance, tags={"dagster/sensor_name": FRESHNESS_SENSOR_NAME})
        results = _freshness_results(checks_run)
        assert set(results) == {k.asset_key for k in FRESHNESS_CHECK_KEYS}
        assert results[WHOLE_TABLE]  # rebuilt a moment ago
        assert not results[WEEKLY_TABLE]  # 2024's weeks are not last week
        # Nothing is due until time passes or an asset is materialized again.
        assert isinstance(_tick(instance), dg.SkipReason)
