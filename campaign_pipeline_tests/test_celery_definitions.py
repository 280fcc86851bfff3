"""Past one process, for real: a week of the shipped sample through the Celery executor, with a
Redis broker, two Celery workers started as the docs say, and every table on an S3 server
(moto on 127.0.0.1). The published and validated tables equal a run on local folders, and
every step ran in a worker's process, not in the one that launched the run."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from campaign_pipeline.locations import Location
from campaign_pipeline_tests._object_store_support import (
    REDIS_PASSWORD,
    S3_SECRET_KEY,
    RedisServer,
    require_redis_server,
    start_celery_worker,
    stop_process,
)
from campaign_pipeline_tests._orchestration_support import (
    PIPELINE_JOB,
    REPO_ROOT,
    clean_env,
    sqlite_home,
)

WEEK = "2025-05-05"  # the last week of the shipped sample (data/raw), which holds its Monday
DAGSTER = str(REPO_ROOT / ".venv" / "bin" / "dagster")


def _execute_week(module: str, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "job", "execute", "-m", module, "-j", PIPELINE_JOB, "-c", str(config)]
        + ["--tags", json.dumps({"dagster/partition": WEEK})],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _execute_week_here(data_dir: Path, out_dir: Path) -> None:
    """`WEEK` of `PIPELINE_JOB` of the project's definitions on ``data_dir`` and ``out_dir``,
    every step in this process (Dagster's in-process execution, an ephemeral instance)."""
    import os

    import pytest

    from campaign_pipeline.definitions import build_defs
    from campaign_pipeline.executors import in_process_first_executor
    from campaign_pipeline.runner import storage_run_config

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "CELERY_", "CAMPAIGN_", "DAGSTER_PG_")) or name in {
                "DAGSTER_HOME",
                "EXPORT_LEDGER_URL",
            }:
                patch.delenv(name)
        # built under these variables, as a fresh process would build it: its resources read
        # some of them (the export ledger's DAGSTER_PG_*)
        defs = build_defs(in_process_first_executor)
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
                run_config=storage_run_config(str(data_dir), str(out_dir)),
                instance=instance,
                partition_key=WEEK,
                raise_on_error=False,
            )
    failures = [e.message for e in result.all_events if e.is_step_failure]
    assert result.success, failures


def _wait_ready(logs: list[Path], workers: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, log in zip(workers, logs, strict=True):
            assert worker.poll() is None, log.read_text()[-3000:]
        if all(" ready." in log.read_text() for log in logs):
            return
        time.sleep(0.2)
    raise AssertionError("Celery workers not ready: " + logs[0].read_text()[-2000:])


def _tables(root: Location) -> dict[str, pd.DataFrame]:
    """Every Parquet file under ``root`` by its relative name."""
    found = {}
    for entry in root.iterdir():
        if entry.is_dir():
            found |= {f"{entry.name}/{k}": v for k, v in _tables(entry).items()}
        elif entry.name.endswith(".parquet"):
            found[entry.name] = pd.read_parquet(io.BytesIO(entry.read_bytes()))
    return found


def test_a_week_through_two_celery_workers_with_tables_on_s3(tmp_path, s3_server, s3_prefix):
    redis = RedisServer(require_redis_server(), tmp_path / "redis")
    workers: list[subprocess.Popen] = []
    try:
        s3_server.upload_dir(REPO_ROOT / "data" / "raw", f"{s3_prefix}/data/raw")
        home = sqlite_home(tmp_path / "home")
        env = clean_env(
            DAGSTER_HOME=str(home),
            CAMPAIGN_PIPELINE_DATA_DIR=f"{s3_prefix}/data",
            CAMPAIGN_PIPELINE_OUT_DIR=f"{s3_prefix}/out",
            CELERY_BROKER_URL=redis.url(0),
            CELERY_RESULT_BACKEND=redis.url(1),
            **s3_server.env,
        )
        logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
        workers = [start_celery_worker(f"w{i}", env, log) for i, log in zip((1, 2), logs)]
        _wait_ready(logs, workers)

        celery_run = _execute_week(
            "campaign_pipeline.celery_definitions",
            REPO_ROOT / "deploy" / "celery" / "run_config.yaml",
            env,
        )
        assert celery_run.returncode == 0, celery_run.stdout[-3000:] + celery_run.stderr[-3000:]

        # the reference: the same week on local folders, every step in one process (this one:
        # a `dagster job execute` would add seconds of imports), with none of this process'
        # variables that choose an instance, a store, a broker or a ledger
        (tmp_path / "local" / "data").mkdir(parents=True)
        (tmp_path / "local" / "data" / "raw").symlink_to(REPO_ROOT / "data" / "raw")
        _execute_week_here(tmp_path / "local" / "data", tmp_path / "local" / "out")

        for layer in ("out", "data/staging"):
            on_s3 = _tables(Location(f"{s3_prefix}/{layer}"))
            local = _tables(Location(tmp_path / "local" / layer))
            assert sorted(on_s3) == sorted(local), layer
            for name, frame in local.items():
                pd.testing.assert_frame_equal(on_s3[name], frame, obj=name)
        published = _tables(Location(f"{s3_prefix}/out"))
        for table in ("campaign_health", "daily_campaign_metrics", "weekly_campaign_metrics"):
            assert len(published[f"{table}/{WEEK}.parquet"]), table  # a real week, not empty
        # the weekly report, written by a worker onto the bucket, is the local run's page
        page = f"weekly_report/{WEEK}.html"
        assert (
            Location(f"{s3_prefix}/out/{page}").read_text()
            == Location(tmp_path / "local" / "out" / page).read_text()
        )

        # where each step ran: in the two workers, never in the launching process
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            (run,) = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.SUCCESS
            events = [e for e in instance.all_logs(run.run_id) if e.dagster_event]
            step_pids = {
                e.step_key: e.dagster_event.pid
                for e in events
                if e.dagster_event.event_type == dg.DagsterEventType.STEP_START
            }
            launcher_pids = {
                e.dagster_event.pid
                for e in events
                if e.dagster_event.event_type == dg.DagsterEventType.RUN_START
            }
            hostnames = {
                e.dagster_event.engine_event_data.metadata["Celery worker"].value.split("@")[0]
                for e in events
                if e.dagster_event.event_type == dg.DagsterEventType.ENGINE_EVENT
                and "in celery worker" in (e.dagster_event.message or "")
            }
            everything = instance.all_logs(run.run_id)  # with each event's metadata
            stored = json.dumps([dg.serialize_value(e) for e in everything]) + json.dumps(
                run.run_config, default=str
            )
        finally:
            instance.dispose()
        worker_pids = {w.pid for w in workers}
        # every asset: raw, validated, lead events, the week, exports, report
        assert len(step_pids) == 20
        assert set(step_pids.values()) == worker_pids, (step_pids, worker_pids)
        assert launcher_pids and not launcher_pids & worker_pids
        assert hostnames == {"w1", "w2"}  # both workers took steps
        # no secret of the store or the broker in the run's config, its event log, the
        # workers' logs or the launcher's output
        printed = celery_run.stdout + celery_run.stderr + "".join(p.read_text() for p in logs)
        assert "transport:   redis://:**@127.0.0.1" in printed  # the banner masks the password
        for secret in (S3_SECRET_KEY, REDIS_PASSWORD):
            assert secret not in stored and secret not in printed
    finally:
        for worker in workers:
            stop_process(worker)
        redis.stop()
