"""The optional live Salesforce source of the raw leads and status changes, as one Dagster
resource.

Unset (no SALESFORCE_INSTANCE_URL and no SALESFORCE_ACCESS_TOKEN) it is off and the raw lead
assets read campaign_leads.csv and lead_status_changes.csv as always; set, those two assets
pull from the org instead (campaigns.csv and insights.csv still come from the raw folder).
Half set is an error naming the missing variable, not a silent fall back to stale files.

The token reaches the resource only through ``dg.EnvVar``, so the UI, the run config and the
run storage hold the variable's name, never its value; the field is kept out of the resource's
repr as well. The settings below that name fields are the ``SalesforceMapping`` defaults
(``campaign_pipeline/salesforce/leads.py`` explains each choice).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from pydantic import Field, ValidationError

from campaign_pipeline.salesforce.client import (
    ACCESS_TOKEN_ENV,
    INSTANCE_URL_ENV,
    ClientSettings,
    SalesforceClient,
    SalesforceConfigError,
    source_configured,
)
from campaign_pipeline.salesforce.leads import DEFAULT_STATUS_MAP, SalesforceMapping

_CLIENT = ClientSettings()
_MAPPING = SalesforceMapping()


class SalesforceSource(dg.ConfigurableResource):
    """Where the raw leads come from: the org when both variables are set, else the CSV files."""

    instance_url: str | None = Field(
        default=None,
        description=f"the org's base URL (env {INSTANCE_URL_ENV}), e.g. "
        "https://yourorg.my.salesforce.com; unset: read the CSV files",
    )
    access_token: str | None = Field(
        default=None,
        repr=False,
        description=f"OAuth access token (secret: env {ACCESS_TOKEN_ENV} through EnvVar only)",
    )
    api_version: str = Field(default=_CLIENT.api_version, description="REST API version")
    batch_size: int = Field(default=_CLIENT.batch_size, description="rows asked per page")
    max_attempts: int = Field(
        default=_CLIENT.max_attempts, description="tries per request on 5xx or no connection"
    )
    backoff_seconds: float = Field(
        default=_CLIENT.backoff_seconds, description="first pause before a retry (doubles)"
    )
    timeout_seconds: float = Field(
        default=_CLIENT.timeout_seconds, description="longest wait for one answer"
    )
    stop_at_api_usage: float = Field(
        default=_CLIENT.stop_at_api_usage,
        description="stop once the org has used this share of its daily API allowance",
    )
    lead_status_field: str = _MAPPING.lead_status_field
    lead_created_field: str = _MAPPING.lead_created_field
    lead_converted_opportunity_field: str = _MAPPING.lead_converted_opportunity_field
    lead_converted_date_field: str = _MAPPING.lead_converted_date_field
    lead_campaign_field: str | None = Field(
        default=None,
        description="a Lead field holding the ad platform's campaign id (then CampaignMember is "
        "not read)",
    )
    campaign_key_field: str | None = Field(
        default=None,
        description="a Campaign field holding the ad platform's campaign id (the id in "
        "campaigns.csv); unset: the Salesforce Campaign Id is that id",
    )
    opportunity_amount_field: str = _MAPPING.opportunity_amount_field
    opportunity_won_field: str = _MAPPING.opportunity_won_field
    history_status_field: str = _MAPPING.history_status_field
    status_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_STATUS_MAP),
        description="Salesforce lead status -> pipeline status (unlisted statuses pass through)",
    )
    timezone: str = Field(
        default=_MAPPING.timezone, description="the zone whose calendar dates a lead's day is in"
    )

    @property
    def is_configured(self) -> bool:
        """True when both the URL and the token are set; raises when only one of them is."""
        return source_configured(self.instance_url, self.access_token)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            api_version=self.api_version,
            batch_size=self.batch_size,
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            timeout_seconds=self.timeout_seconds,
            stop_at_api_usage=self.stop_at_api_usage,
        )

    def mapping(self) -> SalesforceMapping:
        return SalesforceMapping(
            lead_status_field=self.lead_status_field,
            lead_created_field=self.lead_created_field,
            lead_converted_opportunity_field=self.lead_converted_opportunity_field,
            lead_converted_date_field=self.lead_converted_date_field,
            lead_campaign_field=self.lead_campaign_field or None,
            campaign_key_field=self.campaign_key_field or None,
            opportunity_amount_field=self.opportunity_amount_field,
            opportunity_won_field=self.opportunity_won_field,
            history_status_field=self.history_status_field,
            status_map=dict(self.status_map),
            timezone=self.timezone,
        )

    def client(self, progress: Callable[[str], None] | None = None) -> SalesforceClient:
        if not self.is_configured:
            raise SalesforceConfigError(
                f"Salesforce is not configured: set {INSTANCE_URL_ENV} and {ACCESS_TOKEN_ENV}"
            )
        return SalesforceClient(
            self.instance_url or "",
            self.access_token or "",
            self.client_settings(),
            progress=progress,
        )


def salesforce_source_from_env() -> SalesforceSource:
    """The resource for the code location: an ``EnvVar`` for each variable that is set (read at
    run time, never copied into the definitions), None for each that is not (off, or half set,
    which the assets report)."""
    return SalesforceSource(
        instance_url=dg.EnvVar(INSTANCE_URL_ENV) if os.environ.get(INSTANCE_URL_ENV) else None,
        access_token=dg.EnvVar(ACCESS_TOKEN_ENV) if os.environ.get(ACCESS_TOKEN_ENV) else None,
    )


SECRET_SETTINGS = ("instance_url", "access_token")


def load_settings_file(path: Path) -> dict:
    """Non-secret settings of the resource from a YAML or JSON mapping, checked against the
    resource's fields. Raises ``ValueError`` with one line naming the file and the setting."""
    import yaml  # a Dagster dependency

    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not YAML or JSON ({type(error).__name__})") from None
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a mapping of Salesforce settings")
    for name in settings:
        if name in SECRET_SETTINGS:
            env = INSTANCE_URL_ENV if name == "instance_url" else ACCESS_TOKEN_ENV
            raise ValueError(f"{path}: {name} comes from the environment ({env}), not a file")
        if name not in SalesforceSource.model_fields:
            raise ValueError(f"{path}: unknown Salesforce setting '{name}'")
    version = settings.get("api_version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        # YAML and JSON read an unquoted 66.0 (or 66) as a number: it means the version "66.0"
        settings["api_version"] = f"{float(version):.1f}"
    try:
        SalesforceSource(**settings).mapping()
        SalesforceSource(**settings).client_settings()
    except SalesforceConfigError as error:
        raise ValueError(f"{path}: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: setting '{where}': {first['msg']}") from None
    return settings


def salesforce_run_config(settings: dict | None = None) -> dict:
    """Run config for the ``salesforce`` resource: ``settings`` (non-secret fields) plus both
    variables as ``{"env": ...}`` references, so the run's stored config holds no secret."""
    config = dict(settings or {})
    config["instance_url"] = {"env": INSTANCE_URL_ENV}
    config["access_token"] = {"env": ACCESS_TOKEN_ENV}
    return {"resources": {"salesforce": {"config": config}}}
