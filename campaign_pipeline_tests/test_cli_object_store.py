"""`campaign-pipeline run` with the data dir and the out dir on an S3 server (moto on
127.0.0.1): the same tables and export payloads as a run on local folders, the store's secret
nowhere, and one-line errors for a store that cannot be used (the command in this process:
the checks before the run answer them)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from campaign_pipeline.locations import Location
from campaign_pipeline_tests._cli_support import run_cli_in_process
from campaign_pipeline_tests._object_store_support import S3_SECRET_KEY, free_port

REPO = Path(__file__).resolve().parents[1]


# the variables of this process a command here does not get (prefixes, and names)
_NOT_PASSED = ("CAMPAIGN_PIPELINE_", "AWS_", "DAGSTER_PG_", "DAGSTER_HOME", "EXPORT_LEDGER_URL")


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """``campaign-pipeline ARGS`` started as a user starts it, without the variables of this
    process in `_NOT_PASSED` (but those of ``env``); `_finish` waits for it."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(tuple(n for n in _NOT_PASSED if n.endswith("_")))
        and k not in _NOT_PASSED
    }
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env | env,
        cwd=REPO,
    )


def _finish(started: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = started.communicate(timeout=600)
    return subprocess.CompletedProcess(started.args, started.returncode, stdout, stderr)


def _cli_here(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command in this process (`run_cli_in_process`) with the variables a `_start`ed one
    gets: for the errors the checks before the run answer (a subprocess' imports cost
    seconds)."""
    return run_cli_in_process(*args, unset=_NOT_PASSED, env=env)[0]


def _files(root: Location, prefix: str = "") -> dict[str, Location]:
    """Every file under ``root`` by its relative name."""
    found = {}
    for entry in root.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found |= _files(entry, f"{name}/")
        else:
            found[name] = entry
    return found


def _without_places_and_times(stdout: str, *places: str) -> str:
    for place in places:
        stdout = stdout.replace(place, "<dir>")
    return re.sub(r"\d+\.\ds\b", "<s>", stdout)


def test_run_on_s3_equals_a_run_on_local_folders(tmp_path, s3_server, s3_prefix):
    from campaign_pipeline.sample_data import generate_sample

    generate_sample(tmp_path / "data" / "raw", seed=11, n_campaigns=12, n_days=28, defects=True)
    s3_server.upload_dir(tmp_path / "data" / "raw", f"{s3_prefix}/data/raw")

    started = _start(
        "run", "--data-dir", f"{s3_prefix}/data", "--out", f"{s3_prefix}/out", env=s3_server.env
    )
    # meanwhile the same command on local folders, in this process (a subprocess' imports cost
    # seconds; the two runs take the time of one on a second core): without the variables
    # `_start` leaves out, AWS's included
    try:
        local, _ = run_cli_in_process(
            "run", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            unset=_NOT_PASSED,
        )  # fmt: skip
    finally:
        remote = _finish(started)
    assert local.returncode == 0, local.stderr[-3000:]
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert f"campaign-pipeline: data {s3_prefix}/data -> {s3_prefix}/out" in remote.stdout
    assert _without_places_and_times(
        remote.stdout, f"{s3_prefix}/data", f"{s3_prefix}/out"
    ) == _without_places_and_times(local.stdout, str(tmp_path / "data"), str(tmp_path / "out"))

    # (this process reaches the server through the variables s3_prefix set)
    # the same files, and in each the same rows (Parquet) or the same bytes (export payloads)
    for layer in ("out", "data/staging"):
        local_files = _files(Location(tmp_path / layer))
        remote_files = _files(Location(f"{s3_prefix}/{layer}"))
        assert sorted(remote_files) == sorted(local_files), layer
        assert any(name.startswith("anomaly_flags/") for name in local_files) or layer != "out"
        for name, path in local_files.items():
            stored = remote_files[name].read_bytes()
            if name.endswith(".parquet"):
                pd.testing.assert_frame_equal(
                    pd.read_parquet(io.BytesIO(stored)), pd.read_parquet(path.local_path)
                )
            elif name.startswith("exported_"):  # when each copy of the file was written
                times = [json.loads(b)["exported_at"] for b in (stored, path.read_bytes())]
                assert [pd.Timestamp(t).tz is not None for t in times] == [True, True], name
            else:
                assert stored == path.read_bytes(), name

    # the store's secret: in no output and in no object written
    assert S3_SECRET_KEY not in remote.stdout + remote.stderr
    everything = _files(Location(s3_prefix))
    assert len(everything) > 20
    assert not [n for n, p in everything.items() if S3_SECRET_KEY.encode() in p.read_bytes()]


@pytest.mark.parametrize(
    ("data_dir", "fragments"),
    [
        ("gs://bucket/data", ["gs:// needs gcsfs", "pip install gcsfs"]),
        ("s3://KEYID:hunter2secret@bucket/data", ["credentials in it", "AWS_ACCESS_KEY_ID"]),
        ("{s3_prefix}/nothing", ["{s3_prefix}/nothing/raw: raw folder not found"]),
        ("s3://no-such-bucket/data", ["raw folder not found", "bucket 'no-such-bucket' does not"]),
    ],
)
def test_a_store_that_cannot_be_used_is_one_line_and_exit_2(
    data_dir, fragments, s3_server, s3_prefix
):
    data_dir = data_dir.format(s3_prefix=s3_prefix)
    proc = _cli_here("run", "--data-dir", data_dir, env=s3_server.env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment.format(s3_prefix=s3_prefix) in lines[0]
    assert "hunter2secret" not in proc.stdout + proc.stderr


def test_a_store_that_cannot_be_reached_is_one_line_for_run_and_report(s3_server, s3_prefix):
    """botocore's connection error, or a refused key, used to end in its 50-140-line traceback."""
    dead = s3_server.env | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    dead["AWS_MAX_ATTEMPTS"] = "1"  # botocore's retries only make the test slower
    for args in (
        ("run", "--data-dir", s3_prefix),
        ("report", "--week", "2025-05-05", "--out", f"{s3_prefix}/out"),
    ):
        proc = _cli_here(*args, env=dead)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "the object store cannot be read (EndpointConnectionError" in lines[0], lines
        assert "check AWS_ENDPOINT_URL and the credentials" in lines[0]
        assert S3_SECRET_KEY not in proc.stdout + proc.stderr


def test_an_out_dir_in_a_bucket_that_does_not_exist_is_named_before_the_run(s3_server, s3_prefix):
    raw = Location(f"{s3_prefix}/raw")
    for path in sorted((REPO / "data" / "raw").glob("*.csv")):
        (raw / path.name).write_bytes(path.read_bytes())
    proc = _cli_here(
        "run", "--data-dir", s3_prefix, "--out", "s3://no-such-bucket/out", env=s3_server.env
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == (
        "error: s3://no-such-bucket/out: the out folder's bucket 'no-such-bucket' does not exist "
        "(or these credentials cannot see it)"
    )
    assert "raw_campaigns" not in proc.stdout  # nothing ran
