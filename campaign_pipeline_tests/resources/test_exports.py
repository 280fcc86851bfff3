"""The export resources: an unset credential means "not configured" (never a crash at run
launch), set ones are wired as EnvVar (the value never in the definitions), the ledger's
store follows its settings, and no secret shows in a repr, a URL or a description."""

import dagster as dg
import pytest
import sqlalchemy as sa

from campaign_pipeline.exports.delivery import resolve_mode
from campaign_pipeline.exports.ledger import LedgerError
from campaign_pipeline.locations import Location
from campaign_pipeline.resources.amplitude import AmplitudeHTTP
from campaign_pipeline.resources.exports import (
    ExportLedgerStore,
    export_resources,
    export_run_config,
    ledger_url_problem,
)
from campaign_pipeline.resources.ga4 import GA4MeasurementProtocol
from campaign_pipeline.runner import merge_run_config, storage_run_config

SECRETS = ("GA4_MEASUREMENT_ID", "GA4_API_SECRET", "GA4_ENDPOINT", "AMPLITUDE_API_KEY")
PG = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD")


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*SECRETS, *PG, "DAGSTER_PG_DB", "AMPLITUDE_ENDPOINT", "EXPORT_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unset_credentials_mean_not_configured_and_set_ones_are_envvars(clean_env):
    resources = export_resources()
    assert resources["ga4"].missing() == ["GA4_MEASUREMENT_ID", "GA4_API_SECRET"]
    assert resources["amplitude"].missing() == ["AMPLITUDE_API_KEY"]
    assert resolve_mode("auto", resources["ga4"].missing()) == (
        "dry-run",
        "GA4_MEASUREMENT_ID, GA4_API_SECRET not set",
    )
    clean_env.setenv("GA4_API_SECRET", "s3cret-value")
    clean_env.setenv("GA4_MEASUREMENT_ID", "G-ABC")
    clean_env.setenv("AMPLITUDE_API_KEY", "k3y-value")
    resources = export_resources()
    for resource, field in ((resources["ga4"], "api_secret"), (resources["amplitude"], "api_key")):
        value = getattr(resource, field)
        assert isinstance(value, dg.EnvVar)  # the variable's name, read when a run starts
        assert "s3cret" not in repr(resource) and "k3y" not in repr(resource)
    assert resolve_mode("auto", []) == ("live", "credentials set")
    assert resolve_mode("dry-run", [])[0] == "dry-run" and resolve_mode("off", [])[0] == "off"
    with pytest.raises(ValueError, match="export mode must be one of"):
        resolve_mode("sometimes", [])


def test_a_run_with_unset_credentials_runs_dry_instead_of_failing_at_launch(clean_env):
    seen = {}

    @dg.asset
    def probe(ga4: GA4MeasurementProtocol, amplitude: AmplitudeHTTP):
        seen["missing"] = ga4.missing() + amplitude.missing()

    assert dg.materialize([probe], resources=export_resources()).success
    assert seen["missing"] == ["GA4_MEASUREMENT_ID", "GA4_API_SECRET", "AMPLITUDE_API_KEY"]


def test_the_ledger_store_follows_url_then_dagster_pg_then_a_sqlite_file(clean_env, tmp_path):
    default = ExportLedgerStore().open(tmp_path)
    assert default.backend == "sqlite" and default.url.database == str(
        tmp_path / "export_ledger.sqlite"
    )
    postgres = ExportLedgerStore(
        postgres_host="db.internal",
        postgres_port="5433",
        postgres_user="u",
        postgres_password="pg-pa55",
        postgres_db="d",
    ).open(tmp_path)
    assert postgres.backend == "postgresql"
    assert postgres.describe() == "PostgreSQL db.internal:5433/d, table export_ledger"
    url = "postgresql+psycopg2://x:url-pa55@h:1/db"
    chosen = ExportLedgerStore(url=url, postgres_host="db.internal").open(tmp_path)
    assert chosen.url.host == "h" and "url-pa55" not in chosen.describe()
    assert "pg-pa55" not in repr(ExportLedgerStore(postgres_password="pg-pa55"))
    clean_env.setenv("EXPORT_LEDGER_URL", "sqlite:///x.sqlite")
    for name in PG:
        clean_env.setenv(name, "1")
    clean_env.setenv("DAGSTER_PG_DB", "d")
    store = export_resources()["export_ledger_store"]
    assert isinstance(store.url, dg.EnvVar) and isinstance(store.postgres_password, dg.EnvVar)
    assert sa.make_url("sqlite:///x.sqlite").get_backend_name() == "sqlite"


def test_the_cli_mode_is_run_config_merged_with_the_storage_resource():
    merged = merge_run_config(storage_run_config("d", "o"), export_run_config("off", "only"))
    assert merged["resources"]["storage"] == {"config": {"data_dir": "d", "out_dir": "o"}}
    assert merged["resources"]["exports"] == {"config": {"mode": "off"}}
    assert merged["resources"]["ga4"] == {"config": {"validate_mode": "only"}}


def test_live_config_problems_are_those_of_the_destinations_that_would_go_live():
    from campaign_pipeline.resources.exports import live_config_problems

    broken = {
        "GA4_MEASUREMENT_ID": "UA-123",
        "GA4_API_SECRET": "s3cret",
        "AMPLITUDE_API_KEY": "k3y",
        "AMPLITUDE_REGION": "mars",
    }
    assert live_config_problems("auto", broken) == [
        "ga4: not exported: GA4_MEASUREMENT_ID 'UA-123' is not a web stream's measurement id "
        "(G-...): GA4 would accept every request and keep nothing",
        "amplitude: not exported: AMPLITUDE_REGION 'mars' is neither us nor eu",
    ]
    # a dry run sends nothing, but writes Amplitude's URL, which the region picks (it failed
    # at the export step, after every other step had run); an export turned off needs nothing
    region = ["amplitude: no dry run: AMPLITUDE_REGION 'mars' is neither us nor eu"]
    assert live_config_problems("dry-run", broken) == region
    assert live_config_problems("off", broken) == []
    # a destination without its credentials runs dry under auto
    no_keys = {"AMPLITUDE_REGION": "mars", "GA4_ENDPOINT": "notaurl"}
    assert live_config_problems("auto", no_keys) == region
    fine = {**broken, "GA4_MEASUREMENT_ID": "G-1", "AMPLITUDE_REGION": "eu"}
    assert live_config_problems("auto", fine) == []


def test_urls_shown_never_hold_a_secret_and_config_problems_are_named():
    ga4 = GA4MeasurementProtocol(measurement_id="UA-123", api_secret="s3cret", endpoint=None)
    assert ga4.display_url("/mp/collect") == (
        "https://www.google-analytics.com/mp/collect?measurement_id=UA-123"
        "&api_secret=<GA4_API_SECRET>"
    )
    assert "is not a web stream's measurement id (G-...)" in ga4.config_problem()
    eu = GA4MeasurementProtocol(eu_collection=True, endpoint="http://user:pw@127.0.0.1:8080/")
    assert eu.display_url("/mp/collect").startswith("http://127.0.0.1:8080/mp/collect?")
    amp = AmplitudeHTTP(api_key="k3y", region="eu")
    assert amp.display_url() == "https://api.eu.amplitude.com/2/httpapi"
    assert amp.display_body([])["api_key"] == "<AMPLITUDE_API_KEY>"
    assert (
        AmplitudeHTTP(region="mars").config_problem()
        == "AMPLITUDE_REGION 'mars' is neither us nor eu"
    )
    with pytest.raises(ValueError):
        AmplitudeHTTP(max_events_per_request=2000)  # the API's limit is below 2,000
    # an endpoint override that is no http(s) URL with a host is named before any request
    for endpoint in ("notaurl", "ftp://127.0.0.1:21", "http://", "127.0.0.1:8080"):
        configured = GA4MeasurementProtocol(measurement_id="G-1", api_secret="s", endpoint=endpoint)
        assert configured.config_problem() == (
            f"GA4_ENDPOINT {endpoint!r} is not an http(s) URL with a host "
            "(e.g. http://127.0.0.1:8080)"
        )
        assert (
            AmplitudeHTTP(api_key="k", endpoint=endpoint)
            .config_problem()
            .startswith(f"AMPLITUDE_ENDPOINT {endpoint!r} is not an http(s) URL")
        )
    assert (
        GA4MeasurementProtocol(
            measurement_id="G-1", api_secret="s", endpoint="https://proxy.example:8443"
        ).config_problem()
        is None
    )
    assert AmplitudeHTTP(api_key="k", endpoint="http://127.0.0.1:8080/").config_problem() is None


def test_no_default_sqlite_ledger_on_an_object_store(s3_prefix):
    """Reading an empty ledger works (dry runs, the published ledger table); the first write
    (a live export) fails with one line naming what to set, and nothing is created anywhere."""
    ledger = ExportLedgerStore().open(Location(f"{s3_prefix}/out"))
    assert not ledger.exists()
    assert ledger.rows(["2024-01-08"]).empty
    assert ledger.statuses("ga4", ["k1"]) == {}
    with pytest.raises(LedgerError) as refused:
        ledger.ensure()
    assert "EXPORT_LEDGER_URL" in str(refused.value) and "DAGSTER_PG_" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert Location(s3_prefix).iterdir() == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///ledger.sqlite", None),
        ("postgresql+psycopg2://ledger:pw@db.internal:5432/ledger", None),
        ("ledger.sqlite", "EXPORT_LEDGER_URL is not a SQLAlchemy URL (dialect+driver://"),
        (" sqlite:///l.sqlite", "EXPORT_LEDGER_URL is not a SQLAlchemy URL (it has spaces"),
        ("postgresql://ledger:pw@db:notaport/l", "EXPORT_LEDGER_URL: the port 'notaport' is not"),
        ("postgresql://ledger:pw@db:99999/l", "EXPORT_LEDGER_URL: the port 99999 is not a port"),
        # an unescaped '@' in the password: what follows it would be read as host and port
        ("postgresql://ledger:pw@SECRET@db:5432/l", "EXPORT_LEDGER_URL: its user:password@host"),
        ("postgresql://ledger:pw@SECRET:x@db/l", "EXPORT_LEDGER_URL: its user:password@host"),
        ("nosuchdialect://db/l", "EXPORT_LEDGER_URL: 'nosuchdialect' cannot be loaded here ("),
    ],
)
def test_a_ledger_url_that_cannot_open_a_ledger_is_named_without_its_password(url, problem):
    found = ledger_url_problem(url)
    if problem is None:
        assert found is None
        return
    assert found.startswith(problem), found
    assert found.endswith("; correct it, or unset it for the default ledger")
    assert "pw" not in found and "SECRET" not in found
