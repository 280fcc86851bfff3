"""The plausibility bounds of ingestion as one Dagster resource, so the four validated assets
judge with the same bounds and a deployment sets them once (launchpad, run config, or
definitions). The defaults and their reasons are on `ingestion.IngestionRules`."""

import datetime as dt
import re

import dagster as dg
from pydantic import Field, field_validator

from campaign_pipeline.ingestion import IngestionRules
from campaign_pipeline.partitions import PARTITION_START

_DEFAULTS = IngestionRules()


class IngestionRulesResource(dg.ConfigurableResource):
    """Rows outside these bounds are quarantined (date_out_of_range, implausible_value)."""

    earliest_date: str = Field(
        default=_DEFAULTS.earliest_date,
        description=(
            "Rows dated before this day (YYYY-MM-DD, not before the first weekly partition) or "
            f"after the run's own date are quarantined. Default {_DEFAULTS.earliest_date}: no ad "
            "platform export of interest is older, and 1900-01-01 is a spreadsheet's zero date."
        ),
    )
    max_count: float = Field(
        default=_DEFAULTS.max_count,
        description=(
            "Impressions, clicks or conversions of one row above this are quarantined. Default "
            f"{_DEFAULTS.max_count:g}: a typo or an overflow; the largest platforms serve about "
            "1e11 impressions a day in total."
        ),
    )
    max_spend_budget_multiple: float = Field(
        default=_DEFAULTS.max_spend_budget_multiple,
        description=(
            "Spend above this multiple of the campaign's daily budget (when known and above 0) "
            f"is quarantined. Default {_DEFAULTS.max_spend_budget_multiple:g}: platforms "
            "overdeliver by up to about 2x, not 1,000x."
        ),
    )
    max_amount: float = Field(
        default=_DEFAULTS.max_amount,
        description=(
            "Any amount (spend without a known budget, deal_value, daily_budget) above this, in "
            f"the account's currency, is quarantined. Default {_DEFAULTS.max_amount:g}: "
            "implausible, and it keeps every published sum finite."
        ),
    )

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
