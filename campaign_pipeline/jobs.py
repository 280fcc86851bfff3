"""The jobs users and the CLI launch. Each description is built from the assets it selects,
so it names what the job does and nothing it does not."""

import dagster as dg

from campaign_pipeline.assets import all_assets, weekly_assets
from campaign_pipeline.assets.ingestion import ingestion_assets
from campaign_pipeline.assets.metrics import campaign_lifetime_metrics
from campaign_pipeline.checks import freshness_checks
from campaign_pipeline.memory import release_memory

# Freshness checks judge time passing with no run (their sensor evaluates them); inside a run
# that writes an old week they would only report that today's week is missing.
_NOT_FRESHNESS = dg.AssetSelection.all_asset_checks() - dg.AssetSelection.checks(*freshness_checks)


def _select(*assets) -> dg.AssetSelection:
    """The assets with their own checks (schema, row accounting, reconciliation) and without the
    freshness checks."""
    return dg.AssetSelection.assets(*assets).without_checks() | (
        dg.AssetSelection.checks_for_assets(*assets) & _NOT_FRESHNESS
    )


@dg.success_hook(name="release_memory")
def release_memory_after_step(_context: dg.HookContext) -> None:
    """Each step hands back the memory it no longer uses (`memory.release_memory`), so the next
    step of an in-process run does not start on top of it."""
    release_memory()


@dg.failure_hook(name="release_memory_after_failure")
def release_memory_after_failure(_context: dg.HookContext) -> None:
    release_memory()


STEP_HOOKS = {release_memory_after_step, release_memory_after_failure}


# On every run of the jobs that rewrite the unpartitioned validated layer (ingestion_job,
# weekly_pipeline_job), whoever starts it: the raw-file sensor, the schedule, the launchpad,
# `dagster job launch`, a backfill of the job. The run queue of dagster.yaml starts one such run
# at a time (tag_concurrency_limits), so two queued runs never rewrite the layer at once, and
# neither reads it while the other rewrites it. A job tag, not a run tag alone: Dagster's
# sensor and schedule daemons give a run the job's run tags, but the launchpad, `dagster job
# launch` and job backfills give it the job's tags, and `tags` sets both. Runs from the asset
# graph carry no job tag: the ingestion assets' pool holds those back (assets/ingestion.py).
REWRITES_VALIDATED_LAYER_TAG = "campaign_pipeline/rewrites_validated_layer"
_REWRITES_VALIDATED_LAYER = {REWRITES_VALIDATED_LAYER_TAG: "true"}


def _groups(assets: list[dg.AssetsDefinition]) -> str:
    names: list[str] = []
    for asset in assets:
        for group in asset.group_names_by_key.values():
            if group not in names:
                names.append(group)
    return ", ".join(names)


ingestion_job = dg.define_asset_job(
    "ingestion_job",
    hooks=STEP_HOOKS,
    tags=_REWRITES_VALIDATED_LAYER,
    selection=_select(*ingestion_assets),
    description=(
        "Read and validate the raw exports (whole files, not partitioned), then date each lead's "
        "conversion and revenue from its whole history (lead_events)."
    ),
)

weekly_assets_job = dg.define_asset_job(
    "weekly_assets_job",
    hooks=STEP_HOOKS,
    selection=_select(*weekly_assets),
    description=(
        f"The weekly-partitioned assets ({_groups(weekly_assets)}) of one week or of a range of "
        "weeks in one run, from the validated layer as it stands."
    ),
)

lifetime_job = dg.define_asset_job(
    "lifetime_job",
    hooks=STEP_HOOKS,
    selection=_select(campaign_lifetime_metrics),
    description="The campaign lifetime table (whole history).",
)

weekly_pipeline_job = dg.define_asset_job(
    "weekly_pipeline_job",
    hooks=STEP_HOOKS,
    tags=_REWRITES_VALIDATED_LAYER,
    selection=_select(*all_assets),
    description=(
        "Everything for one week: the raw exports are re-read and validated first (so each run "
        f"judges the files as they are now), then the week's {_groups(weekly_assets)} assets "
        "and the whole tables."
    ),
)

all_jobs = [ingestion_job, weekly_assets_job, lifetime_job, weekly_pipeline_job]
