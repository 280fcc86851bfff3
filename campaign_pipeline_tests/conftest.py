"""Fixtures shared across the test modules: a temporary data dir with tiny raw exports, a
storage resource pointing at it (published tables in ``<tmp>/out``), a generated sample
published once per session, a Salesforce sample for the fake org, an S3-compatible
server on 127.0.0.1 with a fresh bucket per test, and SQLite without disk flushes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests._object_store_support import S3Server
from campaign_pipeline_tests._orchestration_support import write_raw
from campaign_pipeline_tests.fake_salesforce import SalesforceExports, salesforce_exports


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data dir whose raw/ holds the tiny two-campaign exports (weeks of 2024-01-08 and
    2024-01-15; see _orchestration_support.RAW_EXPORTS)."""
    folder = tmp_path / "data"
    write_raw(folder / "raw")
    return folder


@pytest.fixture
def tmp_storage(tmp_path) -> PipelineStorage:
    """Storage on an empty temporary data dir, published tables in ``<tmp>/out``."""
    return PipelineStorage(data_dir=str(tmp_path / "data"), out_dir=str(tmp_path / "out"))


@dataclass(frozen=True)
class PublishedSample:
    """A generated sample run through the whole pipeline once (`campaign-pipeline run`)."""

    data_dir: Path
    out_dir: Path
    weeks: list[str]
    stdout: str  # what the command printed


@pytest.fixture(scope="session")
def published_sample(tmp_path_factory) -> PublishedSample:
    """40 campaigns over 7 weeks with injected anomalies and contract defects, through
    `campaign-pipeline run --export off` (`cli.main`, in this process: Dagster in process, an
    ephemeral instance): every published table and every week's report page, built once for
    the tests that read them and for the test of the command's own output (~20 s).

    No exports: whatever credentials or ledger the environment holds, nothing is sent. The
    variables the command reads are unset for the run (as a user without them runs it)."""
    from campaign_pipeline.sample_data import generate_sample
    from campaign_pipeline_tests._cli_support import run_cli_in_process

    folder = tmp_path_factory.mktemp("published_sample")
    generate_sample(
        folder / "data" / "raw", seed=5, n_campaigns=40, n_days=49, anomalies=True, defects=True
    )
    proc, runs = run_cli_in_process(
        "run", "--data-dir", str(folder / "data"), "--out", str(folder / "out"),
        "--export", "off",
        unset=("CAMPAIGN_PIPELINE_", "DAGSTER_PG_", "SALESFORCE_", "DAGSTER_HOME",
               "EXPORT_LEDGER_URL"),
    )  # fmt: skip
    assert proc.returncode == 0 and len(runs) == 1, proc.stderr[-3000:]
    return PublishedSample(
        data_dir=folder / "data",
        out_dir=folder / "out",
        weeks=runs[0].weeks,
        stdout=proc.stdout,
    )


@pytest.fixture(scope="session")
def salesforce_sample(tmp_path_factory) -> SalesforceExports:
    """A fake Salesforce org holding the leads of a small synthetic sample (10 campaigns, 6
    weeks, 760 leads), and data dirs with the same leads as CSV files and without lead files
    (see fake_salesforce.salesforce_exports). Read only: start a FakeSalesforce per test."""
    from campaign_pipeline.sample_data import generate_sample

    root = tmp_path_factory.mktemp("salesforce")
    generate_sample(root / "sample", seed=3, n_campaigns=10, n_days=42)
    return salesforce_exports(root / "sample", root)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """moto's S3 server on 127.0.0.1 (one per test session; each test takes its own bucket)."""
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3_prefix(s3_server, monkeypatch) -> str:
    """``s3://<fresh bucket>/campaigns``, with this process's AWS variables pointing at the
    test server (as a user points the pipeline at MinIO)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.new_bucket()}/campaigns"


@pytest.fixture(autouse=True)
def _no_dagster_state_storage_left_behind():
    """Each test ends with Dagster's current definitions-state storage as it began.

    A test instance sets it when entered; one left set after its instance is disposed makes a
    later test's first load of a code location fail ("Attempted to resolve undefined
    DagsterInstance weakref"), depending on which tests ran before."""
    from dagster._core.storage.defs_state.base import _current_storage

    before = _current_storage.get()
    yield
    _current_storage.set(before)


@pytest.fixture(scope="session", autouse=True)
def _sqlite_without_fsync():
    """Every SQLite connection this test process opens through SQLAlchemy (Dagster's test and
    ephemeral instances, `DAGSTER_HOME` instances of `runner.run_pipeline`, the export ledger)
    writes without waiting for the disk (``PRAGMA synchronous=OFF``).

    Dagster's SQLite storage commits each event of a run and opens a connection per query; on a
    slow disk the flushes were most of the time of the tests that run jobs on such an instance
    (runner, sensors, schedules: ~45 ms an event here). Nothing here outlives the machine, and a
    killed process loses nothing: its writes are in the operating system's cache either way.
    Subprocesses (`dagster` and `campaign-pipeline` commands) keep SQLite's default."""
    import sqlite3

    import sqlalchemy as sa

    def no_fsync(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    sa.event.listen(sa.engine.Engine, "connect", no_fsync)
    yield
    sa.event.remove(sa.engine.Engine, "connect", no_fsync)
