"""The Salesforce path of the raw lead assets: pull, stage the text table exactly where the CSV
path stages a file, and describe the pull. The validated assets read the staged table the same
way whichever path wrote it, so validation, quarantine and row accounting do not change.

A failed pull fails the asset with the client's one-line message (no traceback chained to it);
the metadata holds counts only: never the token, never a cell value.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from campaign_pipeline import ingestion
from campaign_pipeline.resources.salesforce import SalesforceSource
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline.salesforce.client import SalesforceError
from campaign_pipeline.salesforce.leads import pull_campaign_leads, pull_lead_status_changes

_PULLS = {"campaign_leads": pull_campaign_leads, "lead_status_changes": pull_lead_status_changes}


def materialize_from_salesforce(
    context: dg.AssetExecutionContext,
    storage: PipelineStorage,
    salesforce: SalesforceSource,
    key: str,
) -> dg.MaterializeResult:
    pulled_at = dt.datetime.now(dt.UTC)  # the pull sees Salesforce as of its start
    try:
        client = salesforce.client(progress=context.log.info)
        pull = _PULLS[key](client, salesforce.mapping())
    except SalesforceError as error:
        raise dg.Failure(description=str(error)) from None
    storage.write_snapshot(
        f"raw_{key}", lambda tmp: ingestion.write_text_frame_snapshot(pull.frame, tmp)
    )
    storage.record_export_time(key, pulled_at)
    stats = client.stats
    context.log.info(
        f"pulled {len(pull.frame):,} rows from Salesforce in {stats.pages} pages "
        f"({stats.requests} requests, {stats.retries} retries)"
    )
    return dg.MaterializeResult(
        metadata={
            "source": "salesforce",
            "instance_url": dg.MetadataValue.url(client.instance_url),
            "api_version": client.settings.api_version,
            "rows_read": len(pull.frame),
            "pages_fetched": stats.pages,
            "requests": stats.requests,
            "retries": stats.retries,
            "api_usage": stats.api_usage or "not reported",
            "records_by_object": dg.MetadataValue.json(dict(stats.queries)),
            **{name: int(value) for name, value in pull.counts.items()},
            "columns": ", ".join(c for c in pull.frame.columns if not c.startswith("_")),
        }
    )
