"""Fixtures of the export tests: the fake GA4 and Amplitude servers, a ledger on SQLite and on
the real PostgreSQL (each test on its own table), and a week of published tables as frames."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from campaign_pipeline.exports.ledger import Ledger
from campaign_pipeline_tests._orchestration_support import require_postgres
from campaign_pipeline_tests.exports.fake_servers import FakeAmplitude, FakeGA4
from campaign_pipeline_tests.exports.support import (
    AMPLITUDE_KEY,
    GA4_MEASUREMENT_ID,
    GA4_SECRET,
)


@pytest.fixture
def fake_ga4():
    with FakeGA4(measurement_id=GA4_MEASUREMENT_ID, api_secret=GA4_SECRET) as server:
        yield server


@pytest.fixture
def fake_amplitude():
    with FakeAmplitude(api_key=AMPLITUDE_KEY) as server:
        yield server


def postgres_url() -> sa.URL:
    env = require_postgres()
    return sa.URL.create(
        "postgresql+psycopg2",
        username=env["DAGSTER_PG_USER"],
        password=env["DAGSTER_PG_PASSWORD"],
        host=env["DAGSTER_PG_HOST"],
        port=int(env["DAGSTER_PG_PORT"]),
        database=env["DAGSTER_PG_DB"],
    )


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def ledger_target(request, tmp_path):
    """(url, table_name) of an empty ledger: a SQLite file, or a table of its own on the real
    PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield sa.URL.create("sqlite", database=str(tmp_path / "ledger.sqlite")), "export_ledger"
        return
    url = postgres_url()
    table = f"test_ledger_{uuid.uuid4().hex[:12]}"
    yield url, table
    Ledger(url, table_name=table).drop()


@pytest.fixture
def make_ledger(ledger_target):
    """A factory of Ledger objects on the test's store (each call: its own engine, as another
    process would have)."""
    made = []

    def make(**kwargs) -> Ledger:
        url, table = ledger_target
        ledger = Ledger(url, table_name=table, **kwargs)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.dispose()
