"""The Dagster instance: PostgreSQL from the repo's dagster.yaml, SQLite without a server.

The PostgreSQL test needs a server (DAGSTER_PG_* set, e.g. by
``eval "$(scripts/ci_postgres.sh start)"``): it skips locally without one and fails in CI.
"""

import shutil
import subprocess

import dagster as dg
import pytest
import yaml

from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests._orchestration_support import (
    CODE_MODULE,
    PG_ENV,
    PIPELINE_JOB,
    REPO_ROOT,
    TEST_PARTITION,
    clean_env,
    require,
    require_postgres,
    write_raw,
)


def test_dagster_yaml_reads_every_postgres_setting_from_the_environment():
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    db = config["storage"]["postgres"]["postgres_db"]
    assert db == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    assert {v["env"] for v in db.values()} == set(PG_ENV)
    # the local config differs only by its storage (SQLite by default)
    local = yaml.safe_load((REPO_ROOT / "deploy" / "local" / "dagster.yaml").read_text())
    assert "storage" not in local
    assert local["run_coordinator"] == config["run_coordinator"]


def _repo_copy(tmp_path):
    """The files a fresh clone has (tracked or new, not ignored): no .venv, no data/out, no home."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return clone


def test_fresh_clone_validates_definitions_on_sqlite_without_a_server(tmp_path):
    clone = _repo_copy(tmp_path)
    out = subprocess.run(
        ["bash", "scripts/dagster.sh", "definitions", "validate"],
        cwd=clone,
        env=clean_env(PYTHONPATH=str(clone)),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert f"DAGSTER_HOME={clone / '.dagster_home'}" in out.stderr
    assert (clone / ".dagster_home" / "dagster.yaml").read_text() == (
        REPO_ROOT / "deploy" / "local" / "dagster.yaml"
    ).read_text()


def _pg_rows(pg, sql, params):
    import psycopg2

    with psycopg2.connect(
        host=pg["DAGSTER_PG_HOST"],
        port=int(pg["DAGSTER_PG_PORT"]),
        user=pg["DAGSTER_PG_USER"],
        password=pg["DAGSTER_PG_PASSWORD"],
        dbname=pg["DAGSTER_PG_DB"],
        connect_timeout=10,
    ) as conn:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _stored(pg, run_id):
    runs = _pg_rows(pg, "SELECT status FROM runs WHERE run_id = %s", (run_id,))
    events = _pg_rows(
        pg,
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY dagster_event_type",
        (run_id,),
    )
    partitions = _pg_rows(
        pg,
        "SELECT DISTINCT partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        " AND partition IS NOT NULL",
        (run_id,),
    )
    return runs, dict(events), {p for (p,) in partitions}


@pytest.mark.postgres
def test_partition_run_is_stored_in_postgres_and_survives_a_server_restart(tmp_path):
    pg = require_postgres()
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path / "data"
    write_raw(data / "raw")

    from importlib import import_module

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        job = import_module(CODE_MODULE).defs.resolve_job_def(PIPELINE_JOB)
        result = job.execute_in_process(
            partition_key=TEST_PARTITION,
            instance=instance,
            resources={"storage": PipelineStorage(data_dir=str(data))},
        )
        assert result.success
        run_id = result.run_id
    finally:
        instance.dispose()

    runs, events, partitions = _stored(pg, run_id)
    assert runs == [("SUCCESS",)]
    # Dagster stores run success under its historical name PIPELINE_SUCCESS
    assert events.get("ASSET_MATERIALIZATION", 0) >= 2 and events.get("PIPELINE_SUCCESS") == 1
    assert partitions == {TEST_PARTITION}

    restart = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "ci_postgres.sh"), "restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    require(
        restart.returncode == 0,
        f"cannot restart the PostgreSQL server: {restart.stderr.strip()[-300:]}",
    )

    assert _stored(pg, run_id) == (runs, events, partitions)
    # and a new instance built from the same file sees the run and the week's materializations
    again = dg.DagsterInstance.from_config(str(home))
    try:
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert TEST_PARTITION in again.get_materialized_partitions(dg.AssetKey("anomaly_flags"))
    finally:
        again.dispose()
