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


def _standard(what: str, default: str) -> str:
    return (
        f"{what}: a field API name. Default {default}: Salesforce's standard field, so an org "
        "that did not customise it needs no setting."
    )


class SalesforceSource(dg.ConfigurableResource):
    """Where the raw leads come from: the org when both variables are set, else the CSV files."""

    instance_url: str | None = Field(
        default=None,
        description=f"{INSTANCE_URL_ENV}: the org's base URL, e.g. "
        "https://yourorg.my.salesforce.com. Default unset: the leads come from the CSV files, "
        "so the pipeline runs with no org.",
    )
    access_token: str | None = Field(
        default=None,
        repr=False,
        description=f"{ACCESS_TOKEN_ENV}: an OAuth access token (secret: from the environment "
        "through EnvVar only). Default unset: the leads come from the CSV files.",
    )
    api_version: str = Field(
        default=_CLIENT.api_version,
        description=f"REST API version. Default {_CLIENT.api_version}: a version current orgs "
        "serve; v56.0 and later keep query cursors for 2 days, so a slow pull never loses its "
        "cursor.",
    )
    batch_size: int = Field(
        default=_CLIENT.batch_size,
        description=f"Rows asked per page. Default {_CLIENT.batch_size}: Salesforce's maximum, "
        "so a pull costs the fewest API requests.",
    )
    max_attempts: int = Field(
        default=_CLIENT.max_attempts,
        description="Tries per request when the server answers 5xx or the connection fails. "
        f"Default {_CLIENT.max_attempts}: one try and three retries, 1, 2 and 4 s apart, ride "
        "out a blip.",
    )
    backoff_seconds: float = Field(
        default=_CLIENT.backoff_seconds,
        description=f"The first pause before a retry; it doubles each time (with jitter). "
        f"Default {_CLIENT.backoff_seconds:g}: a busy org recovers in seconds.",
    )
    timeout_seconds: float = Field(
        default=_CLIENT.timeout_seconds,
        description=f"Longest wait for one answer. Default {_CLIENT.timeout_seconds:g} s: SOQL "
        "over large objects can take a minute to start.",
    )
    stop_at_api_usage: float = Field(
        default=_CLIENT.stop_at_api_usage,
        description="The pull stops once the org has used this share of its daily API "
        f"allowance. Default {_CLIENT.stop_at_api_usage}: the last 5 % is left to the "
        "integrations that run the business (1.0: go on until Salesforce refuses).",
    )
    lead_status_field: str = Field(
        default=_MAPPING.lead_status_field,
        description=_standard("The Lead field read as lead_status", _MAPPING.lead_status_field),
    )
    lead_created_field: str = Field(
        default=_MAPPING.lead_created_field,
        description=_standard("The Lead field read as added_date", _MAPPING.lead_created_field),
    )
    lead_converted_opportunity_field: str = Field(
        default=_MAPPING.lead_converted_opportunity_field,
        description=_standard(
            "The Lead field naming the opportunity a lead converted into (its won Amount is "
            "deal_value)",
            _MAPPING.lead_converted_opportunity_field,
        ),
    )
    lead_converted_date_field: str = Field(
        default=_MAPPING.lead_converted_date_field,
        description=_standard(
            "The Lead field dating the conversion (of several leads converted into one "
            "opportunity, the first carries the amount)",
            _MAPPING.lead_converted_date_field,
        ),
    )
    lead_campaign_field: str | None = Field(
        default=None,
        description="A Lead field holding the ad platform's campaign id; set, CampaignMember is "
        "not read. Default unset: a lead's campaign is its first CampaignMember's, the standard "
        "way Salesforce ties leads to campaigns.",
    )
    campaign_key_field: str | None = Field(
        default=None,
        description="A Campaign field holding the ad platform's campaign id (the id in "
        "campaigns.csv). Default unset: the Salesforce Campaign Id is that id.",
    )
    opportunity_amount_field: str = Field(
        default=_MAPPING.opportunity_amount_field,
        description=_standard(
            "The Opportunity field read as deal_value", _MAPPING.opportunity_amount_field
        ),
    )
    opportunity_won_field: str = Field(
        default=_MAPPING.opportunity_won_field,
        description=_standard(
            "The Opportunity field saying it was won (only a won one has a deal_value)",
            _MAPPING.opportunity_won_field,
        ),
    )
    history_status_field: str = Field(
        default=_MAPPING.history_status_field,
        description=_standard(
            "The LeadHistory.Field value of a status change (the lead field's API name)",
            _MAPPING.history_status_field,
        ),
    )
    status_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_STATUS_MAP),
        description="Salesforce lead status -> pipeline status; a status not listed passes "
        "through as it is. Default: Salesforce's four default statuses ("
        + ", ".join(f"{k} -> {v}" for k, v in DEFAULT_STATUS_MAP.items())
        + "), so an org with the standard picklist needs no setting.",
    )
    timezone: str = Field(
        default=_MAPPING.timezone,
        description="The zone whose calendar date is a lead's day (Salesforce sends instants in "
        f"UTC). Default {_MAPPING.timezone}: the instants as Salesforce sends them.",
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
