"""The code location as a user sees it in the Dagster UI: asset keys and their lineage,
groups, partitions and history windows, checks, jobs and their assets, the schedule and the
sensors. A rename, a lost dependency or a job that silently drops an asset fails here.

When a change is deliberate, update the expectation below in the same commit.
"""

import dagster as dg
import pytest

from campaign_pipeline.definitions import defs
from campaign_pipeline.partitions import PARTITION_START

# asset -> (group, weekly-partitioned, upstream assets)
ASSETS = {
    "raw_campaigns": ("ingestion", False, set()),
    "raw_insights": ("ingestion", False, set()),
    "raw_campaign_leads": ("ingestion", False, set()),
    "raw_lead_status_changes": ("ingestion", False, set()),
    "validated_campaigns": ("ingestion", False, {"raw_campaigns"}),
    "validated_insights": ("ingestion", False, {"raw_insights", "validated_campaigns"}),
    "validated_leads": ("ingestion", False, {"raw_campaign_leads", "validated_campaigns"}),
    "validated_lead_status_changes": (
        "ingestion",
        False,
        {"raw_lead_status_changes", "validated_leads"},
    ),
    "lead_events": ("ingestion", False, {"validated_leads", "validated_lead_status_changes"}),
    "quarantine": (
        "ingestion",
        False,
        {
            "validated_campaigns",
            "validated_insights",
            "validated_leads",
            "validated_lead_status_changes",
        },
    ),
    "daily_campaign_metrics": (
        "metrics",
        True,
        {
            "validated_campaigns",
            "validated_insights",
            "validated_leads",
            "lead_events",
            "quarantine",
        },
    ),
    "weekly_campaign_metrics": ("metrics", True, {"daily_campaign_metrics", "validated_campaigns"}),
    "weekly_totals": ("metrics", True, {"weekly_campaign_metrics", "quarantine"}),
    "campaign_lifetime_metrics": (
        "metrics",
        False,
        {
            "validated_campaigns",
            "validated_insights",
            "validated_leads",
            "lead_events",
            "quarantine",
        },
    ),
    "anomaly_flags": ("anomalies", True, {"daily_campaign_metrics", "validated_campaigns"}),
    "campaign_health": ("health", True, {"daily_campaign_metrics", "validated_campaigns"}),
    "weekly_report": (
        "report",
        True,
        {
            "campaign_health",
            "anomaly_flags",
            "weekly_totals",
            "weekly_campaign_metrics",
            "daily_campaign_metrics",
            "quarantine",
        },
    ),
    **{
        name: (
            "exports",
            True,
            {"weekly_campaign_metrics", "anomaly_flags", "campaign_health", "validated_campaigns"},
        )
        for name in ("ga4_export", "amplitude_export")
    },
    "export_ledger": ("exports", True, {"ga4_export", "amplitude_export"}),
}

# Weeks of daily metrics before the judged week each weekly asset reads.
CHECKS = {
    **{
        f"validated_{name}": {"row_accounting", "schema"}
        for name in ("campaigns", "insights", "leads", "lead_status_changes")
    },
    "lead_events": {"one_row_per_lead"},
    "quarantine": {
        "schema",
        "no_personal_data",
        "every_file_has_accepted_rows",
        "freshness_check",
    },
    "daily_campaign_metrics": {"schema", "reconciles_with_validated", "freshness_check"},
    "weekly_campaign_metrics": {"schema", "reconciles_with_daily", "freshness_check"},
    "weekly_totals": {"schema", "reconciles_with_weekly_campaign_metrics", "freshness_check"},
    "campaign_lifetime_metrics": {"schema", "reconciles_with_validated", "freshness_check"},
    "anomaly_flags": {"schema", "freshness_check"},
    "campaign_health": {"schema", "freshness_check"},
    "weekly_report": {"self_contained", "freshness_check"},
    "ga4_export": {"freshness_check"},
    "amplitude_export": {"freshness_check"},
    "export_ledger": {"schema", "freshness_check"},
}
BLOCKING = {
    (f"validated_{name}", check)
    for name in ("campaigns", "insights", "leads", "lead_status_changes")
    for check in ("row_accounting", "schema")
} | {("quarantine", "every_file_has_accepted_rows")}

WEEKLY = {name for name, (_, weekly, _) in ASSETS.items() if weekly}
INGESTION = {name for name, (group, _, _) in ASSETS.items() if group == "ingestion"}
JOBS = {
    "ingestion_job": INGESTION,
    "weekly_assets_job": WEEKLY,
    "lifetime_job": {"campaign_lifetime_metrics"},
    "weekly_pipeline_job": set(ASSETS),
}
SENSORS = {
    "raw_file_sensor",
    "anomaly_alert_sensor",
    "run_failure_alert_sensor",
    "freshness_checks_sensor",
}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def test_asset_keys_groups_partitions_and_lineage(graph):
    found = {
        key.to_user_string(): (
            graph.get(key).group_name,
            graph.get(key).partitions_def is not None,
            {parent.to_user_string() for parent in graph.get(key).parent_keys},
        )
        for key in graph.get_all_asset_keys()
    }
    assert found == ASSETS


def test_weekly_partitions_start_monday_and_cover_the_earliest_accepted_date(graph):
    for name in WEEKLY:
        partitions = graph.get(dg.AssetKey(name)).partitions_def
        assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
        assert partitions.get_first_partition_key() == PARTITION_START.isoformat()
        assert PARTITION_START.weekday() == 0  # a Monday
        assert partitions.cron_schedule.endswith(" * * 1")  # weeks start on Mondays


def test_a_backfill_of_weeks_picked_in_the_ui_targets_those_weeks_and_no_other(graph):
    """The UI's Materialize > partition range over the weekly assets. A history window declared
    as a partition mapping (anomaly_flags on 8 weeks of daily metrics) made the backfill also
    target the 8 weeks after the range, in several runs: every weekly asset depends on the
    same week of its upstreams, and reads their history itself."""
    import time

    from dagster._core.execution.asset_backfill import AssetBackfillData

    weekly = [dg.AssetKey(name) for name in WEEKLY]
    for key in weekly:
        for upstream in graph.get(key).parent_keys:
            if graph.get(upstream).partitions_def is not None:
                mapping = graph.get_partition_mapping(key, upstream)
                assert isinstance(mapping, dg.TimeWindowPartitionMapping), (key, upstream)
                assert (mapping.start_offset, mapping.end_offset) == (0, 0), (key, upstream)
    weeks = ["2025-03-03", "2025-03-10", "2025-03-17"]
    with dg.instance_for_test() as instance:
        backfill = AssetBackfillData.from_asset_partitions(
            asset_graph=graph,
            partition_names=weeks,
            asset_selection=weekly,
            dynamic_partitions_store=instance,
            backfill_start_timestamp=time.time(),
            all_partitions=False,
        )
    for key in weekly:
        targeted = backfill.target_subset.get_partitions_subset(key).get_partition_keys()
        assert sorted(targeted) == weeks, key.to_user_string()


def test_asset_checks_and_which_block(graph):
    found: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        found.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert found == CHECKS
    blocking = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking
    }
    assert blocking == BLOCKING


def test_jobs_select_their_assets_without_freshness_checks():
    assert {job.name for job in defs.jobs} == set(JOBS)
    for name, assets in JOBS.items():
        job = defs.resolve_job_def(name)
        selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
        assert selected == assets, name
        checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
        assert "freshness_check" not in checks, name


def test_schedule_and_sensors():
    schedule = defs.resolve_schedule_def("weekly_pipeline_schedule")
    assert schedule.cron_schedule == "0 6 * * 1"
    assert schedule.job_name == "weekly_pipeline_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {sensor.name for sensor in defs.sensors} == SENSORS
    for name in SENSORS:
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_sensor_def("raw_file_sensor").job_name == "weekly_pipeline_job"


def test_descriptions_name_what_the_jobs_do_and_nothing_else():
    """A description that promised a stage the code does not have would mislead users."""
    groups = {group for group, _, _ in ASSETS.values()}
    stages = {"ga4": "exports", "amplitude": "exports", "weekly report": "report"}
    texts = [job.description.lower() for job in defs.jobs]
    texts.append(defs.resolve_schedule_def("weekly_pipeline_schedule").description.lower())
    for text in texts:
        for word, group in stages.items():
            assert group in groups or word not in text, (text, word)
    for name in ("weekly_assets_job", "weekly_pipeline_job"):
        text = defs.resolve_job_def(name).description
        weekly_groups = {ASSETS[asset][0] for asset in WEEKLY}
        assert all(group in text for group in weekly_groups), (name, text)


def test_every_job_releases_memory_after_each_step():
    """An in-process run's steps follow one another in one process; each hands back what it
    freed (`memory.release_memory`) so the next does not start on top of it."""
    for name in JOBS:
        hooks = {hook.name for hook in defs.resolve_job_def(name).hook_defs}
        assert hooks == {"release_memory", "release_memory_after_failure"}, name


def test_the_launchpad_refuses_a_detection_choice_that_is_not_one():
    """A sensitivity of 'extreme' used to launch, then fail inside the step."""
    from typing import get_args

    from campaign_pipeline.assets.anomalies import AnomalyConfig
    from campaign_pipeline.detection.settings import MULTIPLE_TESTING, SENSITIVITIES

    fields = AnomalyConfig.model_fields
    assert get_args(fields["sensitivity"].annotation) == SENSITIVITIES
    assert get_args(fields["multiple_testing"].annotation) == MULTIPLE_TESTING
    job = defs.resolve_job_def("weekly_assets_job")
    config = {"ops": {"anomaly_flags": {"config": {"sensitivity": "high"}}}}
    dg.validate_run_config(job, config)
    config["ops"]["anomaly_flags"]["config"]["sensitivity"] = "extreme"
    with pytest.raises(dg.DagsterInvalidConfigError, match="not in enum type"):
        dg.validate_run_config(job, config)


def test_a_health_window_of_no_days_is_refused():
    """window_days 0 or below judged nothing and wrote the week's campaign_health empty."""
    import pydantic

    from campaign_pipeline.assets.health import HealthConfig

    assert HealthConfig(window_days=1).window_days == 1
    for days in (0, -5):
        with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1"):
            HealthConfig(window_days=days)


def test_settings_that_would_publish_nothing_true_are_refused():
    """No converted status published every lead unconverted; an ISO week date passed the
    check and failed later in pandas without naming the setting."""
    import pydantic

    from campaign_pipeline.assets.ingestion import LeadEventsConfig
    from campaign_pipeline.resources.ingestion_rules import IngestionRulesResource

    with pytest.raises(pydantic.ValidationError, match="at least 1 item"):
        LeadEventsConfig(converted_statuses=[])
    with pytest.raises(pydantic.ValidationError, match="not a date written YYYY-MM-DD"):
        IngestionRulesResource(earliest_date="2020-W10-1")
    assert IngestionRulesResource(earliest_date="2020-01-06").earliest_date == "2020-01-06"


def _undescribed(config_type, path: str) -> list[str]:
    """The fields under ``config_type`` (a Dagster config schema) whose description is missing
    or leaves out the default of a field that has one."""
    fields = getattr(config_type, "fields", None) or {}
    found = []
    for name, field in fields.items():
        where = f"{path}.{name}"
        text = (field.description or "").strip()
        if not text:
            found.append(f"{where}: no description")
        elif not field.is_required and "default" not in text.lower():
            found.append(f"{where}: the description does not give the default")
        found += _undescribed(field.config_type, where)
    return found


def test_every_field_the_launchpad_offers_says_what_it_does_and_its_default():
    """The launchpad shows each field's description next to it: the assets' config and the
    resources' fields are what a user sets there, and a bare name says neither what it does
    nor what leaving it alone means."""
    schema = defs.resolve_implicit_global_asset_job_def().run_config_schema.config_type
    ops = schema.fields["ops"].config_type.fields
    resources = schema.fields["resources"].config_type.fields
    missing = []
    seen = 0
    for op, op_field in ops.items():
        config = op_field.config_type.fields.get("config")
        if config is not None:
            seen += len(getattr(config.config_type, "fields", {}))
            missing += _undescribed(config.config_type, f"ops.{op}.config")
    for key in defs.resources:
        config = resources[key].config_type.fields.get("config")
        seen += len(getattr(config.config_type, "fields", {}))
        missing += _undescribed(config.config_type, f"resources.{key}.config")
    assert seen > 80  # every asset config and resource was walked
    assert missing == []
