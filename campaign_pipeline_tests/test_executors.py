"""Executors: the multiprocess config runs a real partition; the k8s example parses; the Celery
run config validates against the Celery code location."""

import json
import subprocess
from importlib import import_module

import dagster as dg
import pytest
import yaml

from campaign_pipeline_tests._orchestration_support import (
    CODE_MODULE,
    PIPELINE_JOB,
    REPO_ROOT,
    TEST_PARTITION,
    clean_env,
    sqlite_home,
    write_raw,
)

DEPLOY = REPO_ROOT / "deploy"


def _load(path):
    return yaml.safe_load(path.read_text())


def test_multiprocess_config_validates_against_the_pipeline_job():
    config = _load(DEPLOY / "executors" / "multiprocess.yaml")
    assert config["execution"]["config"]["multiprocess"]["max_concurrent"] == 2
    job = import_module(CODE_MODULE).defs.resolve_job_def(PIPELINE_JOB)
    assert dg.validate_run_config(job, config)
    # and a wrong key is refused, so the check above means something
    broken = {"execution": {"config": {"multiprocess": {"max_concurrency": 2}}}}
    try:
        dg.validate_run_config(job, broken)
    except dg.DagsterInvalidConfigError:
        pass
    else:
        raise AssertionError("an invalid executor config was accepted")


def test_every_job_runs_in_process_unless_its_run_config_asks_for_processes():
    """A run with no execution config (the schedule's, the sensors', the UI's Materialize)
    resolves to the in-process mode; the multiprocess config is still accepted."""
    defs = import_module(CODE_MODULE).defs
    jobs = [
        defs.resolve_job_def(job.name) for job in import_module("campaign_pipeline.jobs").all_jobs
    ]
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    multiprocess = _load(DEPLOY / "executors" / "multiprocess.yaml")
    for job in jobs:
        (executor,) = dg.validate_run_config(job, {})["execution"].values()
        assert set(executor) == {"in_process"}, job.name
        (executor,) = dg.validate_run_config(job, multiprocess)["execution"].values()
        assert executor["multiprocess"]["max_concurrent"] == 2, job.name


def _run_toy_job(tmp_path, step_seconds: str, *config_args) -> tuple[dg.DagsterInstance, list]:
    """``dagster job execute`` of the toy job for the test partition, each weekly step lasting
    ``step_seconds``, with a fresh SQLite home: the instance and the run's logs (the caller
    disposes of the instance)."""
    home = sqlite_home(tmp_path / "home")
    data = tmp_path / "data"
    write_raw(data / "raw")
    env = clean_env(
        DAGSTER_HOME=str(home),
        CAMPAIGN_PIPELINE_DATA_DIR=str(data),
        TOY_STEP_SECONDS=step_seconds,
    )
    out = subprocess.run(
        [
            str(REPO_ROOT / ".venv" / "bin" / "dagster"),
            "job",
            "execute",
            "-m",
            "campaign_pipeline_tests._toy_definitions",
            "-j",
            "toy_weekly_job",
            *config_args,
            "--tags",
            json.dumps({"dagster/partition": TEST_PARTITION}),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    instance = dg.DagsterInstance.from_config(str(home))
    (run,) = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == TEST_PARTITION
    return instance, instance.all_logs(run.run_id)


def test_a_run_without_execution_config_runs_every_step_in_the_runs_process(tmp_path):
    instance, logs = _run_toy_job(tmp_path, "0")
    try:
        events = [e for e in logs if e.dagster_event]
        steps = {e.step_key for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS"}
        assert steps == {"toy_validated_insights", "toy_weekly_spend", "anomaly_flags"}
        pids = {e.dagster_event.pid for e in events if e.dagster_event.pid is not None}
        assert len(pids) == 1, "one process: the run's"
        assert not any("multiprocess executor" in entry.user_message for entry in logs)
    finally:
        instance.dispose()


def test_multiprocess_executor_runs_one_partition_with_two_steps_at_once(tmp_path):
    """The documented command with the documented config, on the toy job (ingestion, then two
    independent weekly assets): cheaper than the full pipeline, and it shows concurrency."""
    # each weekly step lasts 3 s: far longer than the jitter of starting two child processes
    instance, logs = _run_toy_job(
        tmp_path, "3", "-c", str(DEPLOY / "executors" / "multiprocess.yaml")
    )
    try:
        assert any("multiprocess executor" in entry.user_message for entry in logs)
        events = [e for e in logs if e.dagster_event]
        starts = {
            e.step_key: e.timestamp
            for e in events
            if e.dagster_event.event_type_value == "STEP_START"
        }
        ends = {
            e.step_key: e.timestamp
            for e in events
            if e.dagster_event.event_type_value == "STEP_SUCCESS"
        }
        pids = {
            e.dagster_event.pid for e in events if e.dagster_event.event_type_value == "STEP_START"
        }
        assert set(ends) == {"toy_validated_insights", "toy_weekly_spend", "anomaly_flags"}
        assert len(pids) == 3, "each step runs in its own child process"
        # the two weekly steps overlap in time: max_concurrent 2 let them run side by side
        assert (
            starts["toy_weekly_spend"] < ends["anomaly_flags"]
            and starts["anomaly_flags"] < ends["toy_weekly_spend"]
        )
        partitions = {
            e.dagster_event.partition
            for e in events
            if e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        }
        assert partitions == {
            TEST_PARTITION,
            None,
        }  # the weekly assets, and the unpartitioned ingestion
    finally:
        instance.dispose()


def test_k8s_examples_name_the_dagster_k8s_launcher_and_executor():
    instance = _load(DEPLOY / "k8s" / "dagster.yaml")
    assert instance["run_launcher"]["module"] == "dagster_k8s"
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    launcher = instance["run_launcher"]["config"]
    assert {"job_namespace", "env_config_maps", "env_secrets", "run_k8s_config"} <= set(launcher)
    # the PostgreSQL server named by the same variables the repo's dagster.yaml reads
    from campaign_pipeline.instance import PG_VARIABLES

    db = instance["storage"]["postgres"]["postgres_db"]
    assert sorted(value["env"] for value in db.values()) == sorted(PG_VARIABLES)
    executor = _load(DEPLOY / "k8s" / "run_config.yaml")["execution"]["config"]
    assert {"max_concurrent", "job_namespace", "step_k8s_config"} <= set(executor)
    assert executor["step_k8s_config"]["container_config"]["resources"]["limits"]["memory"]


def test_celery_config_validates_against_the_celery_code_location(monkeypatch):
    """The run config of deploy/celery/ against a job of the Celery code location (broker and
    backend read from the environment, never written in the file); the run itself is in
    test_celery_definitions.py."""
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
    config = _load(DEPLOY / "celery" / "run_config.yaml")
    assert config["execution"]["config"]["broker"] == {"env": "CELERY_BROKER_URL"}
    assert config["execution"]["config"]["backend"] == {"env": "CELERY_RESULT_BACKEND"}
    job = import_module("campaign_pipeline.celery_definitions").defs.resolve_job_def(PIPELINE_JOB)
    assert job.executor_def.name == "celery"
    assert dg.validate_run_config(job, config)
    with pytest.raises(dg.DagsterInvalidConfigError):  # the multiprocess config is not for it
        dg.validate_run_config(job, _load(DEPLOY / "executors" / "multiprocess.yaml"))
