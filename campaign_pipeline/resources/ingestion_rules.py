"""The plausibility bounds of ingestion as one Dagster resource, so the four validated assets
judge with the same bounds and a deployment sets them once (launchpad, run config, or
definitions). The defaults and their reasons are on `ingestion.IngestionRules`."""

import datetime as dt
import re

import dagster as dg
from pydantic import field_validator

from campaign_pipeline.ingestion import IngestionRules
from campaign_pipeline.partitions import PARTITION_START

_DEFAULTS = IngestionRules()


class IngestionRulesResource(dg.ConfigurableResource):
    """Rows outside these bounds are quarantined (date_out_of_range, implausible_value)."""

    earliest_date: str = _DEFAULTS.earliest_date
    max_count: float = _DEFAULTS.max_count
    max_spend_budget_multiple: float = _DEFAULTS.max_spend_budget_multiple
    max_amount: float = _DEFAULTS.max_amount

    @field_validator("earliest_date")
    @classmethod
    def _on_or_after_the_first_partition(cls, value: str) -> str:
        # YYYY-MM-DD only: Python also reads ISO week dates ("2020-W10-1"), pandas does not
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise ValueError(f"earliest_date {value!r} is not a date written YYYY-MM-DD")
        day = dt.date.fromisoformat(value)  # a ValueError names the bad value
        if day < PARTITION_START:
            raise ValueError(
                f"earliest_date {value} is before the first weekly partition "
                f"({PARTITION_START}): rows that early would have no week to land in"
            )
        return value

    @field_validator("max_count", "max_spend_budget_multiple", "max_amount")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be above 0")
        return value

    def to_rules(self) -> IngestionRules:
        return IngestionRules(
            earliest_date=self.earliest_date,
            max_count=self.max_count,
            max_spend_budget_multiple=self.max_spend_budget_multiple,
            max_amount=self.max_amount,
        )
