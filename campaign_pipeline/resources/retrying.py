"""The retry settings the `ga4` and `amplitude` resources share, as launchpad fields.

Both destinations retry a refused connection, a 429 and a 5xx the same way
(`exports.transport.RetryPolicy`); a resource that also holds throttled users (Amplitude)
adds the throttle fields, and `policy` picks up whichever of the policy's fields it has.
"""

from __future__ import annotations

import dataclasses

import dagster as dg
from pydantic import Field

from campaign_pipeline.exports.transport import RETRY_DESCRIPTIONS, RetryPolicy


class RetryingResource(dg.ConfigurableResource):
    """A destination resource's retry fields (their defaults are `RetryPolicy`'s)."""

    max_tries: int = Field(
        default=RetryPolicy.max_tries, ge=1, description=RETRY_DESCRIPTIONS["max_tries"]
    )
    backoff_base_seconds: float = Field(
        default=RetryPolicy.backoff_base_seconds,
        ge=0,
        description=RETRY_DESCRIPTIONS["backoff_base_seconds"],
    )
    backoff_max_seconds: float = Field(
        default=RetryPolicy.backoff_max_seconds,
        ge=0,
        description=RETRY_DESCRIPTIONS["backoff_max_seconds"],
    )

    def policy(self) -> RetryPolicy:
        """The retry policy of this resource's fields; the policy's defaults for the rest."""
        fields = type(self).model_fields
        return RetryPolicy(
            **{
                f.name: getattr(self, f.name)
                for f in dataclasses.fields(RetryPolicy)
                if f.name in fields
            }
        )
