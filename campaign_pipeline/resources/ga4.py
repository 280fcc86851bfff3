"""GA4 Measurement Protocol as a Dagster resource.

Credentials come from the environment through ``dg.EnvVar`` (wired in
``resources/exports.py`` only when the variable is set, so an unset one means "not
configured", never a crash at run launch). The secret lives in the request's query string
only: not in a log line, metadata, a payload file, an exception or the ledger, and not in the
resource's repr.
"""

from __future__ import annotations

from typing import Literal

import requests
from pydantic import Field, PrivateAttr

from campaign_pipeline.exports.ga4 import VALIDATE_MODES
from campaign_pipeline.exports.transport import Answer
from campaign_pipeline.resources.http_client import (
    base_url,
    endpoint_problem,
    post_json,
    public_base,
)
from campaign_pipeline.resources.retrying import RetryingResource

GA4_BASE_URL = "https://www.google-analytics.com"
GA4_EU_BASE_URL = "https://region1.google-analytics.com"
SECRET_PLACEHOLDER = "<GA4_API_SECRET>"


class GA4MeasurementProtocol(RetryingResource):
    """Sends events to a GA4 web data stream (``/mp/collect``), or validates them
    (``/debug/mp/collect``)."""

    measurement_id: str | None = Field(
        default=None,
        description="GA4_MEASUREMENT_ID: the web stream's measurement id (G-...). Default unset: "
        "GA4 runs dry under mode auto, so nothing is sent without it.",
    )
    api_secret: str | None = Field(
        default=None,
        repr=False,
        description="GA4_API_SECRET: a Measurement Protocol API secret (environment only). "
        "Default unset: GA4 runs dry under mode auto.",
    )
    endpoint: str | None = Field(
        default=None,
        description=(
            "GA4_ENDPOINT: replaces the scheme, host and port of the vendor's URL (tests, "
            "proxies); requests go to $GA4_ENDPOINT/mp/collect. Default unset: "
            f"{GA4_BASE_URL} (or the EU host with eu_collection)."
        ),
    )
    eu_collection: bool = Field(
        default=False,
        description="Collect through region1.google-analytics.com, so the data is collected "
        "in the EU. Default false: Google's global endpoint, which every property accepts.",
    )
    validate_mode: Literal["off", "before_send", "only"] = Field(
        default="off",
        description=(
            "off; before_send: each request goes to /debug/mp/collect first and the events its "
            "validationMessages name are refused; only: validate every request, send nothing. "
            "Default off: validation doubles the requests, and the server checks neither the "
            "secret nor the measurement id (check a first live week in DebugView)."
        ),
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for one answer; a request whose answer never came is marked failed "
            "and sent by the next run, not resent in this one (GA4 may have counted it). "
            "Default 10 s: room for a slow answer, while an endpoint that hangs does not "
            "hold the run."
        ),
    )

    _session: requests.Session | None = PrivateAttr(default=None)

    def missing(self) -> list[str]:
        """The settings that are unset: GA4 runs dry under ``auto`` while any is."""
        return [
            name
            for name, value in (
                ("GA4_MEASUREMENT_ID", self.measurement_id),
                ("GA4_API_SECRET", self.api_secret),
            )
            if not (value or "").strip()
        ]

    def dry_run_problem(self) -> str | None:
        """Nothing stops a dry run: its payload files show the endpoint as it is set."""
        return None

    def config_problem(self) -> str | None:
        """A configuration GA4 would accept and silently drop (D1.2): say so before sending."""
        if self.missing():
            return None
        if problem := endpoint_problem("GA4_ENDPOINT", self.endpoint):
            return problem
        if not self.measurement_id.strip().startswith("G-"):
            return (
                f"GA4_MEASUREMENT_ID {self.measurement_id.strip()!r} is not a web stream's "
                "measurement id (G-...): GA4 would accept every request and keep nothing"
            )
        if self.validate_mode not in VALIDATE_MODES:
            return f"validate_mode must be one of {', '.join(VALIDATE_MODES)}"
        return None

    @property
    def base(self) -> str:
        return base_url(self.endpoint, GA4_EU_BASE_URL if self.eu_collection else GA4_BASE_URL)

    def display_url(self, path: str) -> str:
        measurement = (self.measurement_id or "").strip() or "<GA4_MEASUREMENT_ID>"
        return (
            f"{public_base(self.base)}{path}?measurement_id={measurement}"
            f"&api_secret={SECRET_PLACEHOLDER}"
        )

    def post(self, path: str, body: bytes) -> Answer:
        if self.missing():
            raise RuntimeError(f"GA4 is not configured ({', '.join(self.missing())} unset)")
        if self._session is None:
            self._session = requests.Session()
        secret = self.api_secret.strip()
        return post_json(
            self._session,
            f"{self.base}{path}",
            body,
            params={"measurement_id": self.measurement_id.strip(), "api_secret": secret},
            timeout=self.timeout_seconds,
            secrets={SECRET_PLACEHOLDER: secret},
        )

    def teardown_after_execution(self, context) -> None:
        if self._session is not None:
            self._session.close()
