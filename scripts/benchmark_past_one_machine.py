#!/usr/bin/env python
"""What object storage and Celery workers cost on the shipped sample (data/raw), measured on
this machine with real servers on 127.0.0.1:

1. `campaign-pipeline run` over every week, data dir and out dir on a local folder, then on an
   S3-compatible server (moto's standalone server; a real S3/MinIO adds network latency per
   request on top of what is measured here).
2. `dagster job execute ... weekly_pipeline_job` for one week: every step in one process on
   local folders, then through the Celery executor with N workers (Redis broker) and the tables
   on the S3 server. Needs redis-server (Debian package); skipped without it.

Wall-clock seconds of each command, end to end (Python start-up and Dagster's import included),
the median of --repeat runs. Run it on an idle machine:

    .venv/bin/python scripts/benchmark_past_one_machine.py [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from campaign_pipeline_tests._object_store_support import (  # noqa: E402
    RedisServer,
    S3Server,
    start_celery_worker,
    stop_process,
)
from campaign_pipeline_tests._orchestration_support import clean_env, sqlite_home  # noqa: E402

WEEK = "2025-05-05"
BIN = REPO / ".venv" / "bin"


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr[-2000:]}")
    return seconds


def _median(command: list[str], env: dict[str, str], repeat: int) -> float:
    return statistics.median(_timed(command, env) for _ in range(repeat))


def _week(module: str, config: Path) -> list[str]:
    return [
        str(BIN / "dagster"),
        "job",
        "execute",
        "-m",
        module,
        "-j",
        "weekly_pipeline_job",
        "-c",
        str(config),
        "--tags",
        json.dumps({"dagster/partition": WEEK}),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="past_one_machine_"))
    s3 = S3Server(tmp / "moto.log")
    try:
        bucket = f"s3://{s3.new_bucket()}"
        s3.upload_dir(REPO / "data" / "raw", f"{bucket}/data/raw")
        base = clean_env()
        base = {k: v for k, v in base.items() if not k.startswith(("AWS_", "CAMPAIGN_"))}
        cli = [str(BIN / "campaign-pipeline"), "run"]
        local_cli = _median(
            cli + ["--data-dir", str(REPO / "data"), "--out", str(tmp / "out")], base, args.repeat
        )
        s3_cli = _median(
            cli + ["--data-dir", f"{bucket}/data", "--out", f"{bucket}/out"],
            base | s3.env,
            args.repeat,
        )
        print("campaign-pipeline run, shipped sample (18 weeks), median of", args.repeat)
        print(f"  local folders          {local_cli:6.1f} s")
        print(f"  S3 (moto, 127.0.0.1)   {s3_cli:6.1f} s  ({s3_cli / local_cli - 1:+.0%})")

        redis_binary = shutil.which("redis-server")
        if redis_binary is None:
            print("redis-server not installed: Celery figures skipped")
            return
        in_process = tmp / "in_process.yaml"
        in_process.write_text("execution:\n  config:\n    in_process: {}\n")
        local_week = _median(
            _week("campaign_pipeline.definitions", in_process),
            base
            | {
                "DAGSTER_HOME": str(sqlite_home(tmp / "home_local")),
                "CAMPAIGN_PIPELINE_DATA_DIR": str(REPO / "data"),
                "CAMPAIGN_PIPELINE_OUT_DIR": str(tmp / "week_out"),
            },
            args.repeat,
        )
        redis = RedisServer(redis_binary, tmp / "redis")
        workers = []
        try:
            env = base | s3.env
            env |= {
                "DAGSTER_HOME": str(sqlite_home(tmp / "home_celery")),
                "CAMPAIGN_PIPELINE_DATA_DIR": f"{bucket}/data",
                "CAMPAIGN_PIPELINE_OUT_DIR": f"{bucket}/week_out",
                "CELERY_BROKER_URL": redis.url(0),
                "CELERY_RESULT_BACKEND": redis.url(1),
            }
            logs = [tmp / f"worker{i}.log" for i in range(args.workers)]
            workers = [start_celery_worker(f"w{i}", env, log) for i, log in enumerate(logs)]
            while not all(" ready." in log.read_text() for log in logs):
                time.sleep(0.2)
            celery_week = _median(
                _week(
                    "campaign_pipeline.celery_definitions",
                    REPO / "deploy" / "celery" / "run_config.yaml",
                ),
                env,
                args.repeat,
            )
        finally:
            for worker in workers:
                stop_process(worker)
            redis.stop()
        print(f"one week ({WEEK}) of weekly_pipeline_job, median of", args.repeat)
        print(f"  in process, local folders               {local_week:6.1f} s")
        print(
            f"  Celery, {args.workers} workers, Redis, S3 (moto)     {celery_week:6.1f} s  "
            f"({celery_week / local_week - 1:+.0%})"
        )
    finally:
        s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
