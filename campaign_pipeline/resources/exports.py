"""How the export stage runs (mode, what is sent) and where its ledger lives, plus the
resources of the code location built from the environment.

``dg.EnvVar`` fails a run at launch when its variable is unset. Exports must instead treat
an unset credential as "not configured" (a dry run under ``auto``), so a credential is wired
as an ``EnvVar`` only when its variable is set where the code location loads; either way the
value itself is read at run time and never stored in the definitions or the run config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from campaign_pipeline.constants import SEVERITIES
from campaign_pipeline.exports.delivery import resolve_mode
from campaign_pipeline.exports.events import DEFAULT_MIN_SEVERITY
from campaign_pipeline.exports.ledger import (
    DEFAULT_LEASE_MINUTES,
    DEFAULT_TABLE,
    Ledger,
    LedgerError,
)
from campaign_pipeline.locations import Location
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol

LEDGER_FILE = "export_ledger.sqlite"
# Each destination resource's fields read from the environment, and their variables.
GA4_VARIABLES = {
    "measurement_id": "GA4_MEASUREMENT_ID",
    "api_secret": "GA4_API_SECRET",
    "endpoint": "GA4_ENDPOINT",
}
AMPLITUDE_VARIABLES = {
    "api_key": "AMPLITUDE_API_KEY",
    "endpoint": "AMPLITUDE_ENDPOINT",
    "region": "AMPLITUDE_REGION",
}
PG_VARIABLES = {
    "postgres_host": "DAGSTER_PG_HOST",
    "postgres_port": "DAGSTER_PG_PORT",
    "postgres_user": "DAGSTER_PG_USER",
    "postgres_password": "DAGSTER_PG_PASSWORD",
    "postgres_db": "DAGSTER_PG_DB",
}


class ExportSettings(dg.ConfigurableResource):
    """The export stage's mode and what it sends (``campaign-pipeline run --export`` sets
    ``mode`` as run config; in the launchpad: ``resources: {exports: {config: {mode: ...}}}``)."""

    mode: Literal["auto", "dry-run", "off"] = Field(
        default="auto",
        description=(
            "auto: live for each destination whose credentials are set, dry-run for the others; "
            "dry-run: write the exact payloads to <out>/exports/<destination>/<week>.json; "
            "off: skip. Default auto: nothing is sent without credentials, and setting them is "
            "all a live export takes."
        ),
    )
    min_severity: Literal["low", "medium", "high", "critical"] = Field(
        default=DEFAULT_MIN_SEVERITY,
        description=(
            f"Anomaly flags at or above this severity are sent ({', '.join(SEVERITIES)}). "
            f"Default {DEFAULT_MIN_SEVERITY}: low flags are the detector's weakest signal."
        ),
    )
    send_partial_weeks: bool = Field(
        default=False,
        description=(
            "Send a week that had not ended when the newest raw export was written. Default "
            "false: its events are held back until a run on a later export, because an event "
            "is sent once and neither destination replaces it, so a week sent from part of its "
            "days would keep those figures. Set it to send such a week as it stands."
        ),
    )


def _pg(variable: str, what: str) -> str:
    return (
        f"{variable}: the ledger's PostgreSQL {what}. Default unset; with all five DAGSTER_PG_* "
        "set (and no url) the ledger lives on the instance's server, which every machine reaches."
    )


class ExportLedgerStore(dg.ConfigurableResource):
    """Where the exactly-once ledger lives: ``url`` (a SQLAlchemy URL, EXPORT_LEDGER_URL), else
    the PostgreSQL server of DAGSTER_PG_* when all five are set, else a SQLite file
    (``sqlite_path``, default ``<out>/export_ledger.sqlite``)."""

    url: str | None = Field(
        default=None,
        repr=False,
        description=(
            "EXPORT_LEDGER_URL: a SQLAlchemy URL of the ledger's database, e.g. "
            "postgresql+psycopg2://... Default unset: the DAGSTER_PG_* server when all five "
            "are set, else a SQLite file."
        ),
    )
    postgres_host: str | None = Field(default=None, description=_pg("DAGSTER_PG_HOST", "host"))
    postgres_port: str | None = Field(default=None, description=_pg("DAGSTER_PG_PORT", "port"))
    postgres_user: str | None = Field(default=None, description=_pg("DAGSTER_PG_USER", "user"))
    postgres_password: str | None = Field(
        default=None,
        repr=False,
        description=_pg("DAGSTER_PG_PASSWORD", "password (secret: from the environment only)"),
    )
    postgres_db: str | None = Field(default=None, description=_pg("DAGSTER_PG_DB", "database name"))
    sqlite_path: str | None = Field(
        default=None,
        description=(
            "The SQLite file of the ledger when neither url nor the DAGSTER_PG_* server is set. "
            "Default unset: <out>/export_ledger.sqlite, next to the published tables it vouches "
            "for."
        ),
    )
    table_name: str = Field(
        default=DEFAULT_TABLE,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description=(
            f"The ledger's table. Default {DEFAULT_TABLE}; another name is another ledger, as "
            "a pipeline pointed at another GA4 property or Amplitude project needs (else its "
            "events count as already sent)."
        ),
    )
    lease_minutes: float = Field(
        default=DEFAULT_LEASE_MINUTES,
        ge=0,
        description=(
            "A claim older than this whose run never marked it is taken over and sent again. "
            f"Default {DEFAULT_LEASE_MINUTES:g}: far longer than one request with every retry."
        ),
    )

    def _postgres_url(self) -> sa.URL | None:
        values = [getattr(self, name) for name in PG_VARIABLES]
        if not all(values):
            return None
        return sa.URL.create(
            "postgresql+psycopg2",
            username=self.postgres_user,
            password=self.postgres_password,
            host=self.postgres_host,
            port=int(self.postgres_port),
            database=self.postgres_db,
        )

    def open(self, published_dir: Path | Location) -> Ledger:
        kwargs = {"table_name": self.table_name, "lease_minutes": self.lease_minutes}
        if self.url:
            return Ledger(self.url, **kwargs)
        postgres = self._postgres_url()
        if postgres is not None:
            return Ledger(postgres, **kwargs)
        if self.sqlite_path:
            return Ledger.sqlite(Path(self.sqlite_path), **kwargs)
        published = Location(published_dir)
        if not published.is_local:
            return _NoLedgerOnObjectStore(published, **kwargs)
        return Ledger.sqlite(published.local_path / LEDGER_FILE, **kwargs)


class _NoLedgerOnObjectStore(Ledger):
    """The default SQLite ledger file cannot live on an object store (no file locking, no
    in-place writes), and a file on one machine's disk would let two machines send the same
    event. So with the out dir on a store and no database configured, the ledger is empty to
    readers (dry runs and the published table work) and refuses the first write (a live
    export) with one line naming the settings to set."""

    def __init__(self, published_dir: Location, **kwargs):
        super().__init__("sqlite://", **kwargs)
        self.where = published_dir

    def describe(self) -> str:
        return f"none (the out dir {self.where} is on an object store)"

    def exists(self) -> bool:
        return False

    def ensure(self) -> None:
        raise LedgerError(
            f"export ledger: the out dir {self.where} is on an object store, where the default "
            "SQLite ledger cannot live: set EXPORT_LEDGER_URL or the DAGSTER_PG_* variables "
            "(a database every machine reaches), or export_ledger_store.sqlite_path"
        )


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else None


def export_resources() -> dict[str, dg.ConfigurableResource]:
    """The export resources of the code location, credentials from the environment."""
    ga4 = {field: _env(variable) for field, variable in GA4_VARIABLES.items()}
    amplitude = {field: _env(variable) for field, variable in AMPLITUDE_VARIABLES.items()}
    ledger = {"url": _env("EXPORT_LEDGER_URL")}
    if all(os.environ.get(v, "").strip() for v in PG_VARIABLES.values()):
        ledger |= {field: dg.EnvVar(var) for field, var in PG_VARIABLES.items()}
    return {
        "exports": ExportSettings(),
        "ga4": GA4MeasurementProtocol(**{k: v for k, v in ga4.items() if v is not None}),
        "amplitude": AmplitudeHTTP(**{k: v for k, v in amplitude.items() if v is not None}),
        "export_ledger_store": ExportLedgerStore(
            **{k: v for k, v in ledger.items() if v is not None}
        ),
    }


def live_config_problems(mode: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """What would stop a live export under ``mode``, from the environment as the code location
    reads it (a region that is no region, an endpoint that is no URL, a GA4 id that is no web
    stream's): `campaign-pipeline run` says it before a run that can take minutes, not when the
    export step reaches it. The same check fails the export assets (`config_problem`)."""

    def settings(variables: dict[str, str]) -> dict[str, str]:
        return {f: environ[v] for f, v in variables.items() if environ.get(v, "").strip()}

    problems = []
    for name, resource in (
        ("ga4", GA4MeasurementProtocol(**settings(GA4_VARIABLES))),
        ("amplitude", AmplitudeHTTP(**settings(AMPLITUDE_VARIABLES))),
    ):
        resolved = resolve_mode(mode, resource.missing())[0]
        if resolved == "live" and (problem := resource.config_problem()):
            problems.append(f"{name}: not exported: {problem}")
        elif resolved == "dry-run" and (problem := resource.dry_run_problem()):
            problems.append(f"{name}: no dry run: {problem}")
    return problems


LEDGER_URL_VARIABLE = "EXPORT_LEDGER_URL"
# How sqlalchemy.make_url splits a URL (its own pattern, host and port only): the password ends
# at the first '@', so a port read by it holds no piece of a password unless it holds an '@'.
_URL_PARTS = re.compile(
    r"[\w+]+://(?:[^:/]*(?::[^@]*)?@)?(?:(?P<host>\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?)?"
)


def ledger_url_problem(text: str) -> str | None:
    """Why ``text`` (EXPORT_LEDGER_URL) cannot open a ledger, never quoting its password, or
    None. Both export steps and the ledger's own step open it at the end of a run, and
    SQLAlchemy's own errors ("Could not parse SQLAlchemy URL", "invalid literal for int()")
    name no variable, so `campaign-pipeline run` asks this before the run."""
    name, instead = LEDGER_URL_VARIABLE, "correct it, or unset it for the default ledger"
    parts = _URL_PARTS.match(text)
    host_and_port = f"{parts['host'] or ''}{parts['port'] or ''}" if parts else ""
    if "@" in host_and_port:  # the password ended at its first '@': the rest is a piece of it
        return (
            f"{name}: its user:password@host part holds more than one '@' (an '@' inside the "
            f"password is written %40); {instead}"
        )
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        spaces = " (it has spaces around it)" if text != text.strip() else ""
        return (
            f"{name} is not a SQLAlchemy URL{spaces} (dialect+driver://user:password@host:port/"
            f"database, e.g. postgresql+psycopg2://...); {instead}"
        )
    except ValueError:  # the port did not read as a whole number
        return f"{name}: the port {parts['port']!r} is not a port number; {instead}"
    if url.port is not None and not 0 < url.port < 65536:
        return f"{name}: the port {url.port} is not a port number (1 to 65535); {instead}"
    try:
        url.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"{name}: {url.drivername!r} cannot be loaded here ({reason}); {instead}"
    return None


def export_run_config(mode: str, ga4_validate: str | None = None) -> dict:
    """Run config for the export stage, as ``campaign-pipeline run`` passes it."""
    config: dict = {"resources": {"exports": {"config": {"mode": mode}}}}
    if ga4_validate:
        config["resources"]["ga4"] = {"config": {"validate_mode": ga4_validate}}
    return config
