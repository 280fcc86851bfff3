"""Raw and validated layers: one raw asset per export file, one validated asset after each.

These assets are not partitioned: every export is a whole file, and the promise that
"rows read = accepted + quarantined + duplicates" is a promise about a file. Weekly assets
downstream read the validated tables and keep only their week.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from campaign_pipeline import ingestion, metrics
from campaign_pipeline.assets.common import revenue_reported, schema_check
from campaign_pipeline.assets.salesforce import materialize_from_salesforce
from campaign_pipeline.constants import CONVERTED_STATUSES
from campaign_pipeline.ingestion import FILE_SPECS, FileSpec, FileValidation, RawFileError
from campaign_pipeline.metadata import markdown_preview, table_schema
from campaign_pipeline.raw_parsing import repeated_text
from campaign_pipeline.resources.ingestion_rules import IngestionRulesResource
from campaign_pipeline.resources.salesforce import SalesforceSource
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.run_summary import NONE_ACCEPTED_CHECK, none_accepted_stop
from campaign_pipeline.salesforce.client import SalesforceError
from campaign_pipeline.salesforce.leads import SALESFORCE_KEYS
from campaign_pipeline.schemas import (
    VALIDATED_MODELS,
    Quarantine,
    arrow_frame,
    arrow_text_schema,
)

GROUP = "ingestion"
# Every asset here rewrites a table of the one unpartitioned ingestion layer that the weekly
# assets read. dagster.yaml limits this pool to one run at a time (`concurrency.pools`, run
# granularity), whoever launched the run: a job, a backfill, the asset graph in the UI.
INGESTION_POOL = "campaign_pipeline_ingestion"

# The validated asset of each raw file, and which validated assets it needs to know
# (an insight of an unknown campaign is quarantined, so insights wait for campaigns).
VALIDATED_NAMES = {
    "campaigns": "validated_campaigns",
    "insights": "validated_insights",
    "campaign_leads": "validated_leads",
    "lead_status_changes": "validated_lead_status_changes",
}


def _read_export_file(
    context: dg.AssetExecutionContext, storage: PipelineStorage, spec: FileSpec
) -> dg.MaterializeResult:
    path = storage.raw_path(spec.filename)
    name = f"raw_{spec.key}"
    try:
        rows, columns = storage.write_snapshot(
            name, lambda tmp: ingestion.write_raw_snapshot(path, spec, tmp)
        )
    except RawFileError as error:
        raise dg.Failure(description=str(error), metadata={"path": str(path)}) from error
    columns += [c for c in spec.optional if c not in columns]
    context.log.info(f"read {rows:,} rows from {path}")
    stat = path.stat()
    modified = dt.datetime.fromtimestamp(stat.mtime_ns / 1e9, dt.UTC)
    storage.record_export_time(spec.key, modified)  # a week the export predates is not sent
    return dg.MaterializeResult(
        metadata={
            "source": "csv",
            "path": dg.MetadataValue.path(str(path)),
            "rows_read": rows,
            "modified_utc": modified.isoformat(timespec="seconds"),
            "size_bytes": stat.size,
            "sha256": path.sha256(),
            "columns": ", ".join(columns),
        }
    )


def _raw_asset(spec: FileSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{spec.key}",
        group_name=GROUP,
        pool=INGESTION_POOL,
        kinds={"csv"},
        description=(
            f"`{spec.filename}` as exported, read once as text (nothing coerced yet) into an Arrow "
            "snapshot, so validation can explain every cell it rejects."
        ),
    )
    def raw_file(
        context: dg.AssetExecutionContext, storage: PipelineStorage
    ) -> dg.MaterializeResult:
        return _read_export_file(context, storage, spec)

    return raw_file


def _raw_lead_asset(spec: FileSpec) -> dg.AssetsDefinition:
    """A raw lead table: from Salesforce when the `salesforce` resource is configured, else
    from its file (assets/salesforce.py)."""

    @dg.asset(
        name=f"raw_{spec.key}",
        group_name=GROUP,
        pool=INGESTION_POOL,
        kinds={"csv", "salesforce"},
        description=(
            f"`{spec.filename}` as exported, or the same rows pulled from Salesforce when "
            "SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN are set; read as text (nothing "
            "coerced yet) so validation can explain every cell it rejects."
        ),
    )
    def raw_file(
        context: dg.AssetExecutionContext,
        storage: PipelineStorage,
        salesforce: SalesforceSource,
    ) -> dg.MaterializeResult:
        try:
            from_salesforce = salesforce.is_configured
        except SalesforceError as error:  # half configured
            raise dg.Failure(description=str(error)) from None
        if from_salesforce:
            return materialize_from_salesforce(context, storage, salesforce, spec.key)
        return _read_export_file(context, storage, spec)

    return raw_file


def _accounting_check(
    validation: FileValidation,
    stored: pd.DataFrame,
    stored_quarantine: pd.DataFrame,
    rows_in_raw: int,
) -> dg.AssetCheckResult:
    """Recount from what was stored, not from the validator's own tallies, so a lost row shows."""
    accepted = int(stored["n_parts"].sum()) if "n_parts" in stored.columns else len(stored)
    quarantined = len(stored_quarantine)
    duplicates = validation.duplicates_removed
    balanced = rows_in_raw == accepted + quarantined + duplicates
    return dg.AssetCheckResult(
        check_name="row_accounting",
        passed=bool(balanced),
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{rows_in_raw} read = {accepted} accepted + {quarantined} quarantined "
            f"+ {duplicates} duplicates"
        ),
        metadata={
            "rows_read": rows_in_raw,
            "rows_accepted": accepted,
            "rows_quarantined": quarantined,
            "duplicates_removed": duplicates,
            "difference": rows_in_raw - (accepted + quarantined + duplicates),
        },
    )


def _validated_asset(
    key: str,
    validate: Callable[..., FileValidation],
    upstream: list[str],
) -> dg.AssetsDefinition:
    spec = FILE_SPECS[key]
    name = VALIDATED_NAMES[key]
    model = VALIDATED_MODELS[key]

    @dg.asset(
        name=name,
        group_name=GROUP,
        pool=INGESTION_POOL,
        kinds={"pandas", "parquet"},
        deps=[f"raw_{key}", *upstream],
        check_specs=[
            dg.AssetCheckSpec(
                "row_accounting",
                asset=name,
                blocking=True,
                description="rows read = accepted + quarantined + duplicates removed",
            ),
            dg.AssetCheckSpec(
                "schema",
                asset=name,
                blocking=True,
                description=f"the stored table passes the pandera model {model.__name__}",
            ),
        ],
        description=(
            f"`{spec.filename}` parsed, checked against the pandera row contract, and split into "
            "accepted rows and quarantined rows with a reason. Personal data stops here."
        ),
    )
    def validated(
        context: dg.AssetExecutionContext,
        storage: PipelineStorage,
        ingestion_rules: IngestionRulesResource,
    ) -> dg.MaterializeResult:
        upstream = [_reload_validation(storage, dep) for dep in _UPSTREAM_KEYS[key]]
        # the snapshot is not held here: the validator lets it go once the rows are split
        validation = validate(
            storage.read_snapshot(f"raw_{key}"),
            *upstream,
            rules=ingestion_rules.to_rules(),
            now=pd.Timestamp.now(),
        )
        storage.write_staging(name, validation.accepted_table)
        storage.write_staging(f"quarantine_{key}", validation.quarantine)
        storage.write_staging_json(
            f"accounting_{key}", validation.accounting | {"reasons": validation.reason_counts}
        )
        # what was stored, read back as Arrow: the checks recount and re-validate it without
        # turning its text into Python objects; the preview needs only the first rows
        stored_table = storage.read_staging_table(name)
        stored = arrow_frame(stored_table)
        first_rows = stored_table.slice(0, 10).to_pandas()
        accounting = validation.accounting
        context.log.info(
            f"{spec.filename}: {accounting['rows_read']:,} read, {accounting['rows_accepted']:,} "
            "accepted, "
            f"{accounting['rows_quarantined']:,} quarantined, "
            f"{accounting['duplicates_removed']:,} duplicates removed"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": stored_table.num_rows,
                "rows_read": accounting["rows_read"],
                "rows_accepted": accounting["rows_accepted"],
                "rows_quarantined": accounting["rows_quarantined"],
                "duplicates_removed": accounting["duplicates_removed"],
                "quarantine_reasons": dg.MetadataValue.json(validation.reason_counts),
                "path": dg.MetadataValue.path(str(storage.staging_path(name))),
                "preview": dg.MetadataValue.md(markdown_preview(first_rows)),
                "dagster/column_schema": table_schema(first_rows),
            },
            check_results=[
                _accounting_check(
                    validation,
                    stored,
                    storage.read_staging(f"quarantine_{key}"),
                    # the snapshot table's own row count (not a tally of the validator's), taken
                    # before its rows were split; reading the snapshot again here would download
                    # it a second time from an object store
                    validation.rows_read,
                ),
                schema_check(arrow_text_schema(model), stored),
            ],
        )

    return validated


# What each validator needs from files validated before it.
_UPSTREAM_KEYS = {
    "campaigns": [],
    "insights": ["campaigns"],
    "campaign_leads": ["campaigns"],
    "lead_status_changes": ["campaign_leads"],
}


# The columns of an upstream validated table that a validator reads.
_UPSTREAM_COLUMNS = {
    "campaigns": ["campaign_id", "daily_budget"],
    "campaign_leads": ["lead_id"],
}


def _reload_validation(storage: PipelineStorage, key: str) -> FileValidation:
    """An upstream file's accepted keys and quarantined keys, as stored by its asset."""
    accepted = storage.read_staging_table(VALIDATED_NAMES[key], columns=_UPSTREAM_COLUMNS[key])
    quarantine = storage.read_staging(f"quarantine_{key}", asset=VALIDATED_NAMES[key])
    return FileValidation(
        source_file=FILE_SPECS[key].filename,
        accepted_table=accepted,
        quarantine=quarantine,
        rows_read=0,
        rows_accepted=accepted.num_rows,
        rows_quarantined=len(quarantine),
        duplicates_removed=0,
    )


raw_assets = [
    _raw_lead_asset(spec) if key in SALESFORCE_KEYS else _raw_asset(spec)
    for key, spec in FILE_SPECS.items()
]

validated_campaigns = _validated_asset("campaigns", ingestion.validate_campaigns, [])
validated_insights = _validated_asset(
    "insights", ingestion.validate_insights, ["validated_campaigns"]
)
validated_leads = _validated_asset(
    "campaign_leads", ingestion.validate_leads, ["validated_campaigns"]
)
validated_lead_status_changes = _validated_asset(
    "lead_status_changes", ingestion.validate_lead_status_changes, ["validated_leads"]
)


@dg.asset(
    group_name=GROUP,
    pool=INGESTION_POOL,
    kinds={"pandas", "parquet"},
    deps=list(VALIDATED_NAMES.values()),
    check_specs=[
        dg.AssetCheckSpec(
            "schema", asset="quarantine", description="passes the pandera Quarantine model"
        ),
        dg.AssetCheckSpec(
            "no_personal_data",
            asset="quarantine",
            description="no lead name, email or phone in the published rejects: no personal "
            "column, and no value shaped like an email or a phone in a leads row",
        ),
        dg.AssetCheckSpec(
            NONE_ACCEPTED_CHECK,
            asset="quarantine",
            blocking=True,
            description=(
                "every raw file that has rows had some accepted: else no week is built (weeks "
                "without a whole file's figures would publish and export leads without spend)"
            ),
        ),
    ],
)
def quarantine(context: dg.AssetExecutionContext, storage: PipelineStorage) -> dg.MaterializeResult:
    """Every rejected raw row with its file, key and reason: nothing is dropped silently.

    Its blocking check `every_file_has_accepted_rows` judges the four files together once all
    are validated, after this table (which the failure points to) is written: a file with rows
    and none accepted fails it, and the weekly and lifetime assets of the run, which depend on
    this asset, do not run (`run_summary.files_with_none_accepted` says why)."""
    parts = [
        storage.read_staging(f"quarantine_{key}", asset=VALIDATED_NAMES[key]) for key in FILE_SPECS
    ]
    table = ingestion.combine_quarantine(parts)
    path = storage.write_table("quarantine", table)
    by_file = table.groupby("source_file").size().to_dict() if len(table) else {}
    by_reason = table.groupby("reason_code").size().to_dict() if len(table) else {}
    leaked, shaped = ingestion.personal_data_in_quarantine(table)
    context.log.info(f"quarantine: {len(table):,} rows")
    stop = none_accepted_stop(storage)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "by_file": dg.MetadataValue.json({k: int(v) for k, v in by_file.items()}),
            "by_reason": dg.MetadataValue.json({k: int(v) for k, v in by_reason.items()}),
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(markdown_preview(table.drop(columns=["raw_values"]))),
        },
        check_results=[
            schema_check(Quarantine, table),
            dg.AssetCheckResult(
                check_name="no_personal_data",
                passed=not leaked and not shaped,
                metadata={
                    "columns_found": ", ".join(leaked) or "none",
                    # where, never what: the values themselves are the personal data
                    "rows_with_personal_shapes": ", ".join(shaped[:20]) or "none",
                },
            ),
            dg.AssetCheckResult(
                check_name=NONE_ACCEPTED_CHECK,
                passed=stop is None,
                severity=dg.AssetCheckSeverity.ERROR,
                description=stop or "every raw file that has rows had some accepted",
            ),
        ],
    )


# what metrics.lead_events reads of the validated layer
LEAD_COLUMNS = ["lead_id", "campaign_id", "lead_status", "added_date", "deal_value"]
CHANGE_COLUMNS = ["lead_id", "old_status", "new_status", "changed_at"]


class LeadEventsConfig(dg.Config):
    converted_statuses: list[str] = Field(
        default=list(CONVERTED_STATUSES),
        min_length=1,
        description=(
            "Statuses (trimmed, upper-cased) that count a lead as converted, from its first "
            f"change into one. Default {', '.join(CONVERTED_STATUSES)}: the data contract's. At "
            "least one: none would publish every lead unconverted, without a word."
        ),
    )


def _unique_ids(ids: pd.Series) -> bool:
    """No id twice (null included), found by sorting (`raw_parsing.repeated_text`): pandas'
    ``is_unique`` hashes every id (3.2 s for the 4.8M leads of the 1x benchmark, against 0.8 s)."""
    values = pa.array(ids, from_pandas=True)  # Arrow-backed text is not copied
    if values.null_count > 1:
        return False
    return pa.types.is_null(values.type) or not repeated_text(values).any()


@dg.asset(
    group_name=GROUP,
    pool=INGESTION_POOL,
    deps=["validated_leads", "validated_lead_status_changes"],
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "one_row_per_lead",
            asset="lead_events",
            description="exactly one row for each validated lead",
        )
    ],
)
def lead_events(config: LeadEventsConfig, storage: PipelineStorage) -> dg.MaterializeResult:
    """One row per validated lead with the days its lead, conversion and revenue count on.

    Built once per ingestion (in staging, like the validated tables it comes from) because a
    lead added months ago can convert this week: finding each lead's first conversion takes
    the whole status history, while a week's metrics then read only the leads whose events
    fall in that week.
    """
    # without a deal_value column in the file, the leads go without one: revenue is unknown
    reported = revenue_reported(storage)
    columns = [c for c in LEAD_COLUMNS if reported or c != metrics.DEAL_VALUE]
    leads = storage.read_staging("validated_leads", columns=columns, arrow_strings=True)
    changes = storage.read_staging(
        "validated_lead_status_changes", columns=CHANGE_COLUMNS, arrow_strings=True
    )
    events = metrics.lead_events(leads, changes, tuple(config.converted_statuses))
    n_leads = len(leads)
    del leads, changes  # what the events do not share is let go before they are written
    path = storage.write_staging("lead_events", events)
    by_source = events["conversion_source"].value_counts().to_dict()
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="one_row_per_lead",
                passed=bool(len(events) == n_leads and _unique_ids(events["lead_id"])),
                metadata={"leads": n_leads, "rows": len(events)},
            )
        ],
        metadata={
            "dagster/row_count": len(events),
            "converted": int(events["is_converted"].sum()),
            "won": int(events["is_won"].sum()),
            "conversion_source": dg.MetadataValue.json({k: int(v) for k, v in by_source.items()}),
            "path": dg.MetadataValue.path(str(path)),
            "dagster/column_schema": table_schema(events),
        },
    )


ingestion_assets = [
    *raw_assets,
    validated_campaigns,
    validated_insights,
    validated_leads,
    validated_lead_status_changes,
    lead_events,
    quarantine,
]
