"""One week's export in a process of its own, so a test can SIGKILL it mid-export
(``python -m campaign_pipeline_tests.exports.kill_target DESTINATION ENDPOINT``; the ledger
URL and the credentials come from the environment, as in production)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from campaign_pipeline.exports import delivery
from campaign_pipeline.exports.ledger import Ledger
from campaign_pipeline.exports.transport import RetryPolicy
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline_tests.exports.support import (
    GA4_MEASUREMENT_ID,
    WEEK,
    events_for,
    week_tables,
)

CAMPAIGNS = 40
AMPLITUDE_BATCH = 5
POLICY = RetryPolicy(max_tries=3, backoff_base_seconds=0.01, backoff_max_seconds=0.05)


def week_events() -> dict:
    return {WEEK: events_for(week_tables(n_campaigns=CAMPAIGNS, flags_per_campaign=3))}


def run_export(destination: str, endpoint: str, ledger: Ledger, out_dir: str = "."):
    weeks = week_events()
    if destination == "amplitude":
        client = AmplitudeHTTP(api_key=os.environ["AMPLITUDE_API_KEY"], endpoint=endpoint)
        return delivery.export_amplitude(
            weeks, live=True, why="test", client=client, ledger=ledger, out_dir=out_dir,
            policy=POLICY, max_events=AMPLITUDE_BATCH,
        )  # fmt: skip
    client = GA4MeasurementProtocol(
        measurement_id=GA4_MEASUREMENT_ID,
        api_secret=os.environ["GA4_API_SECRET"],
        endpoint=endpoint,
    )
    return delivery.export_ga4(
        weeks, live=True, why="test", client=client, ledger=ledger, out_dir=out_dir, policy=POLICY
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("destination", choices=["ga4", "amplitude"])
    parser.add_argument("endpoint")
    args = parser.parse_args(argv)
    ledger = Ledger(
        os.environ["EXPORT_LEDGER_URL"],
        table_name=os.environ.get("EXPORT_LEDGER_TABLE", "export_ledger"),
    )
    print("started", flush=True)
    report = run_export(args.destination, args.endpoint, ledger)
    print(json.dumps(report.to_metadata()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
