"""The Dagster instance of the repo's dagster.yaml: PostgreSQL when DAGSTER_PG_* are set,
embedded SQLite in .dagster_home/ otherwise, for the plain `dagster` commands a user types.

The PostgreSQL test needs a server (DAGSTER_PG_* set, e.g. by
``eval "$(scripts/ci_postgres.sh start)"``): it skips locally without one and fails in CI.
"""

import contextlib
import re
import shutil
import sqlite3
import subprocess
import uuid

import dagster as dg
import pytest
import yaml

from campaign_pipeline import jobs
from campaign_pipeline.instance import RESOLVED_DIR_ENV, InstanceChoiceError, postgres_settings
from campaign_pipeline.partitions import TRIGGER_TAG
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


def test_dagster_yaml_chooses_the_storage_from_the_environment():
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    assert config["storage"]["custom"]["module"] == "campaign_pipeline.instance"
    assert config["storage"]["custom"]["class"] == "EnvironmentChosenStorage"
    # the local config (for a DAGSTER_HOME of your own) differs only by its storage
    local = yaml.safe_load((REPO_ROOT / "deploy" / "local" / "dagster.yaml").read_text())
    assert "storage" not in local
    assert local["run_coordinator"] == config["run_coordinator"]
    assert local["concurrency"] == config["concurrency"]


@pytest.mark.parametrize("server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_run_queue_starts_one_run_that_rewrites_the_validated_layer_at_a_time(
    server, tmp_path, monkeypatch, request
):
    """Dagster's own queue daemon, on an instance with the repo's dagster.yaml (its storage, on
    SQLite or on the PostgreSQL server, and its run queue): a run that rewrites the validated
    layer waits while another such run is in progress, whoever launched either:
    weekly_pipeline_job from the sensor, the schedule or the launchpad, ingestion_job, or
    ingestion assets picked in the asset graph. Runs of the week's assets alone and of the
    lifetime table are not held back. Each run carries the tags and the pools Dagster gives it:
    its job's tags, and the pools of the steps in its execution plan. (Where the storage cannot
    count a pool, the daemon logs it and holds nothing back: the lists would differ.)"""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.op_concurrency_limits_counter import (
        compute_run_op_concurrency_info_for_snapshot,
    )
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.snap import snapshot_from_execution_plan
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    from campaign_pipeline.assets.ingestion import INGESTION_POOL
    from campaign_pipeline.definitions import defs

    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    instance_config = {key: config[key] for key in ("storage", "run_coordinator", "concurrency")}
    if server == "postgres":
        require_postgres()
    # where the daemon would launch them from (the queue reads the runs' tags, pools, statuses)
    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(CODE_MODULE), "__repository__")
    asset_graph = defs.resolve_implicit_global_asset_job_def()

    pools = {}  # job name, picked assets -> (job, its run's pools): each worked out once

    def run_of(instance, status, job, tags=None, assets=None):
        picked = tuple(assets or ())
        name = job.name if job is not None else None
        if (name, picked) not in pools:
            if assets is not None:  # picked in the asset graph: a subset of the implicit asset job
                resolved = asset_graph.get_subset(asset_selection={dg.AssetKey(a) for a in picked})
            else:
                resolved = defs.resolve_job_def(name)
            # the pools of the run's steps, as Dagster works them out when it creates a run
            plan = snapshot_from_execution_plan(
                create_execution_plan(resolved), resolved.get_job_snapshot_id()
            )
            pools[name, picked] = resolved, compute_run_op_concurrency_info_for_snapshot(plan)
        resolved, run_op_concurrency = pools[name, picked]
        # a weekly run is of one week (or a range), as every launcher asks
        week = {"dagster/partition": TEST_PARTITION} if resolved.partitions_def else {}
        return instance.add_run(
            dg.DagsterRun(
                job_name=resolved.name,
                run_id=str(uuid.uuid4()),
                status=status,
                tags={**(resolved.tags or {}), **week, **(tags or {})},
                asset_selection={dg.AssetKey(a) for a in picked} or None,
                run_op_concurrency=run_op_concurrency,
                remote_job_origin=repository.get_job_origin(resolved.name),
            )
        ).run_id

    open_instances = contextlib.ExitStack()
    request.addfinalizer(open_instances.close)
    shared = []  # one instance for every case but the first-pass one

    def instance_for(fresh: bool):
        if shared and not fresh:
            return shared[0]
        with monkeypatch.context() as env:  # the storage is chosen when the instance is made
            if server == "sqlite":
                for name in PG_ENV:
                    env.delenv(name, raising=False)
                # the folder the storage class takes before its configured one
                env.setenv(RESOLVED_DIR_ENV, str(tmp_path / str(uuid.uuid4())))
            instance = open_instances.enter_context(dg.instance_for_test(overrides=instance_config))
        # the repo's storage class, on the server asked for
        assert instance.get_ref().storage_data.class_name == "EnvironmentChosenStorage"
        assert ("Postgres" in type(instance.event_log_storage).__name__) == (server == "postgres")
        if not fresh:
            shared.append(instance)
        return instance

    def dequeued(*runs, pool_seen: bool = True) -> list[int]:
        # the first pass over the pool needs an instance that never stored it (on SQLite: the
        # pool's stored limit outlives the runs); each case deletes its runs at the end
        instance = instance_for(fresh=not pool_seen)
        ids = []
        try:
            stored = instance.event_log_storage.get_concurrency_keys()
            if pool_seen and INGESTION_POOL not in stored:
                # what Dagster's queue writes the first time it sees a queued run in the pool
                # (only then: on PostgreSQL a second write fails, dagster#33552)
                instance.event_log_storage.initialize_concurrency_limit_to_default(INGESTION_POOL)
            ids += [run_of(instance, *run) for run in runs]
            chosen = QueuedRunCoordinatorDaemon(interval_seconds=1)._get_runs_to_dequeue(
                instance, instance.get_concurrency_config(), fixed_iteration_time=None
            )
            # stored by now, first pass or not: default_limit
            assert instance.event_log_storage.get_concurrency_info(INGESTION_POOL).limit == 1
            return [ids.index(run.run_id) for run in chosen]
        finally:
            for run_id in ids:
                instance.delete_run(run_id)

    # the sensor and schedule daemons give a run its job's run tags; the launchpad, `dagster
    # job launch` and job backfills its job's tags: both must hold the tag
    for job in (jobs.weekly_pipeline_job, jobs.ingestion_job):
        assert job.tags == job.run_tags == {jobs.REWRITES_VALIDATED_LAYER_TAG: "true"}
    queued, started = dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED
    sensor, schedule = {TRIGGER_TAG: "raw_file_sensor"}, {TRIGGER_TAG: "weekly_schedule"}
    pipeline, week_alone = jobs.weekly_pipeline_job, jobs.weekly_assets_job
    # two stretches from one sensor tick, and the week's assets alone: the second stretch waits,
    # also in the queue's first pass over the pool (the jobs' tag; on a fresh instance only)
    for pool_seen in (True, False) if server == "sqlite" else (True,):
        assert dequeued(
            (queued, pipeline, sensor),
            (queued, pipeline, sensor),
            (queued, week_alone),
            pool_seen=pool_seen,
        ) == [0, 2]
    # a sensor run still going: the schedule's Monday run and a launchpad ingestion wait, the
    # lifetime table goes
    assert dequeued(
        (started, pipeline, sensor),
        (queued, pipeline, schedule),
        (queued, jobs.ingestion_job),
        (queued, jobs.lifetime_job),
    ) == [3]
    # a launchpad run of the pipeline holds the sensor's back too
    assert dequeued((started, pipeline), (queued, pipeline, sensor)) == []
    assert dequeued((started, week_alone), (queued, pipeline, schedule)) == [1]
    # the asset graph: one validated table re-materialized holds the pipeline back, and waits
    # for it in turn; weekly assets picked there do not
    assert dequeued(
        (started, None, None, ["validated_insights"]),
        (queued, pipeline, sensor),
        (queued, None, None, ["weekly_campaign_metrics", "anomaly_flags"]),
    ) == [2]
    assert dequeued((started, pipeline, schedule), (queued, None, None, ["lead_events"])) == []


def test_postgres_settings_need_every_variable_or_none():
    assert postgres_settings({}) is None
    full = dict(zip(PG_ENV, ("db.example", "5432", "dagster", "s3cret", "dagster")))
    assert postgres_settings(full) == {
        "hostname": "db.example",
        "port": 5432,
        "username": "dagster",
        "password": "s3cret",
        "db_name": "dagster",
    }
    half = {"DAGSTER_PG_HOST": "db.example", "DAGSTER_PG_DB": "dagster"}
    with pytest.raises(InstanceChoiceError) as error:
        postgres_settings(half)
    assert "DAGSTER_PG_PORT, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD unset" in str(error.value)


def test_run_naming_a_database_the_server_lacks_ends_in_one_line(tmp_path):
    pg = require_postgres()
    from campaign_pipeline_tests.builders import write_exports
    from campaign_pipeline_tests.test_cli import REPO, assert_one_line_error, run_cli

    raw = write_exports(tmp_path)
    env = {**pg, "DAGSTER_PG_DB": "no_such_database", "DAGSTER_HOME": str(REPO)}
    proc = run_cli("run", "--data-dir", str(raw.parent), "--out", str(tmp_path / "out"), env=env)
    assert_one_line_error(
        proc, "/no_such_database (DAGSTER_PG_*) cannot be reached:", '"no_such_database"'
    )


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


def _dagster(clone, *args, **env):
    """A plain `dagster ...` command in the clone's root, as a user types it (no DAGSTER_HOME)."""
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "dagster"), *args],
        cwd=clone,
        env=clean_env(PYTHONPATH=str(clone), CAMPAIGN_PIPELINE_DATA_DIR=str(clone / "data"), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


MATERIALIZE = ("asset", "materialize", "-m", CODE_MODULE, "--select", "raw_campaigns")


def _announcements(process) -> list[str]:
    return [line for line in process.stderr.splitlines() if "Dagster instance storage:" in line]


def test_fresh_clone_runs_plain_dagster_commands_on_sqlite_that_survives_restarts(tmp_path):
    clone = _repo_copy(tmp_path)
    validate = _dagster(clone, "definitions", "validate")
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-4000:]

    first = _dagster(clone, *MATERIALIZE)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-4000:]
    storage = clone / ".dagster_home" / "storage"
    assert _announcements(first) == [
        f"campaign_pipeline: Dagster instance storage: embedded SQLite in {storage} "
        "(set DAGSTER_PG_* to use PostgreSQL)"
    ]
    # a second command, a new process: it sees the first run (the storage is a folder, not a
    # temporary home)
    second = _dagster(clone, *MATERIALIZE)
    assert second.returncode == 0, second.stderr[-4000:]
    runs = sqlite3.connect(storage / "history" / "runs.db").execute(
        "SELECT count(*) FROM runs WHERE status = 'SUCCESS'"
    )
    assert runs.fetchone()[0] == 2


def test_half_configured_postgres_is_an_error_not_a_silent_fallback(tmp_path):
    clone = _repo_copy(tmp_path)
    failed = _dagster(clone, *MATERIALIZE, DAGSTER_PG_HOST="127.0.0.1")
    assert failed.returncode != 0
    assert "PostgreSQL instance half configured: DAGSTER_PG_PORT" in failed.stderr + failed.stdout
    assert not (clone / ".dagster_home" / "storage").exists()


@pytest.mark.postgres
def test_fresh_clone_uses_postgres_when_the_variables_are_set(tmp_path):
    pg = require_postgres()
    clone = _repo_copy(tmp_path)
    done = _dagster(clone, *MATERIALIZE, **pg)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert _announcements(done) == [
        "campaign_pipeline: Dagster instance storage: PostgreSQL "
        f"{pg['DAGSTER_PG_USER']}@{pg['DAGSTER_PG_HOST']}:{pg['DAGSTER_PG_PORT']}/"
        f"{pg['DAGSTER_PG_DB']} (from DAGSTER_PG_*)"
    ]
    # never the connection URL with its password (user:password@host)
    assert f":{pg['DAGSTER_PG_PASSWORD']}@" not in done.stderr + done.stdout
    run_ids = set(
        re.findall(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            done.stderr + done.stdout,
        )
    )
    assert run_ids
    stored = _pg_rows(
        pg, "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (list(run_ids),)
    )
    assert [status for _, status in stored] == ["SUCCESS"]
    assert not (clone / ".dagster_home" / "storage").exists()


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
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY "
        "dagster_event_type",
        (run_id,),
    )
    partitions = _pg_rows(
        pg,
        "SELECT DISTINCT partition FROM event_logs WHERE run_id = %s AND dagster_event_type = "
        "'ASSET_MATERIALIZATION'"
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
