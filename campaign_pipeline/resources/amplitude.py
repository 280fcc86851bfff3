"""Amplitude HTTP V2 as a Dagster resource.

The API key travels in the request body, as the API requires, and nowhere else: payload
files show a placeholder, and the resource's repr leaves it out. ``region`` must match the
project (an EU project's key is refused by the US host as ``Invalid API key``).
"""

from __future__ import annotations

import requests
from pydantic import Field, PrivateAttr

from campaign_pipeline.exports import amplitude
from campaign_pipeline.exports.events import encode_json
from campaign_pipeline.exports.transport import RETRY_DESCRIPTIONS, Answer, RetryPolicy
from campaign_pipeline.resources.http_client import (
    base_url,
    endpoint_problem,
    post_json,
    public_base,
)
from campaign_pipeline.resources.retrying import RetryingResource

AMPLITUDE_BASE_URLS = {"us": "https://api2.amplitude.com", "eu": "https://api.eu.amplitude.com"}
KEY_PLACEHOLDER = "<AMPLITUDE_API_KEY>"


class AmplitudeHTTP(RetryingResource):
    """Sends events to Amplitude's HTTP V2 API (``/2/httpapi``)."""

    api_key: str | None = Field(
        default=None,
        repr=False,
        description="AMPLITUDE_API_KEY: the project's API key (environment only). Default unset: "
        "Amplitude runs dry under mode auto, so nothing is sent without it.",
    )
    region: str = Field(
        default="us",
        description="AMPLITUDE_REGION: us (api2.amplitude.com) or eu (api.eu.amplitude.com); it "
        "must match the project, whose key the other host refuses. Default us: Amplitude's "
        "default data center.",
    )
    endpoint: str | None = Field(
        default=None,
        description=(
            "AMPLITUDE_ENDPOINT: replaces the scheme, host and port of the vendor's URL "
            "(tests, proxies); requests go to $AMPLITUDE_ENDPOINT/2/httpapi. Default unset: "
            "the region's host."
        ),
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for one answer; no answer is retried with backoff (the "
        "insert_id makes a resend harmless). Default 10 s: room for a slow answer, while an "
        "endpoint that hangs does not hold the run.",
    )
    throttle_pause_seconds: float = Field(
        default=RetryPolicy.throttle_pause_seconds,
        ge=0,
        description=RETRY_DESCRIPTIONS["throttle_pause_seconds"],
    )
    max_throttle_rounds: int = Field(
        default=RetryPolicy.max_throttle_rounds,
        ge=1,
        description=RETRY_DESCRIPTIONS["max_throttle_rounds"],
    )
    max_events_per_request: int = Field(
        default=amplitude.MAX_EVENTS_PER_REQUEST,
        ge=1,
        le=amplitude.MAX_EVENTS_PER_REQUEST,
        description="Events per request, at most the default. Default "
        f"{amplitude.MAX_EVENTS_PER_REQUEST:,}: HTTP V2 takes fewer than 2,000 events a request.",
    )
    max_request_bytes: int = Field(
        default=amplitude.MAX_BODY_BYTES,
        ge=1_000,
        le=amplitude.MAX_BODY_BYTES,
        description="Largest request body, at most the default. Default "
        f"{amplitude.MAX_BODY_BYTES:,} bytes: HTTP V2 takes bodies under 1 MB, read as "
        "1,000,000 bytes (the stricter reading).",
    )

    _session: requests.Session | None = PrivateAttr(default=None)

    def missing(self) -> list[str]:
        return [] if (self.api_key or "").strip() else ["AMPLITUDE_API_KEY"]

    def dry_run_problem(self) -> str | None:
        """What stops even a dry run: its payload files hold the URL the region picks."""
        if self.region.strip().lower() not in AMPLITUDE_BASE_URLS:
            return f"AMPLITUDE_REGION {self.region!r} is neither us nor eu"
        return None

    def config_problem(self) -> str | None:
        return self.dry_run_problem() or endpoint_problem("AMPLITUDE_ENDPOINT", self.endpoint)

    @property
    def base(self) -> str:
        if problem := self.dry_run_problem():
            raise ValueError(problem)
        return base_url(self.endpoint, AMPLITUDE_BASE_URLS[self.region.strip().lower()])

    @property
    def overhead_bytes(self) -> int:
        key = (self.api_key or "").strip() or KEY_PLACEHOLDER
        return len(encode_json(amplitude.request_body(key, [])))

    def display_url(self) -> str:
        return f"{public_base(self.base)}{amplitude.PATH}"

    def display_body(self, payloads: list[dict]) -> dict:
        return amplitude.request_body(KEY_PLACEHOLDER, payloads)

    def post_events(self, payloads: list[dict]) -> Answer:
        if self.missing():
            raise RuntimeError("Amplitude is not configured (AMPLITUDE_API_KEY unset)")
        if self._session is None:
            self._session = requests.Session()
        key = self.api_key.strip()
        return post_json(
            self._session,
            f"{self.base}{amplitude.PATH}",
            encode_json(amplitude.request_body(key, payloads)),
            timeout=self.timeout_seconds,
            secrets={KEY_PLACEHOLDER: key},
        )

    def teardown_after_execution(self, context) -> None:
        if self._session is not None:
            self._session.close()
