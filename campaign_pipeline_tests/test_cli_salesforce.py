"""`campaign-pipeline run` with the Salesforce source on, against a fake org on 127.0.0.1. As a
user runs it (a subprocess): the lead files are not needed, the published metrics equal a run
on the same leads as CSV files (in this process, meanwhile), and a token expiring during the run
ends it with one line on stderr, exit code 2, no traceback and no token. What the checks before
the run answer (an expired token, a refused query, half-set variables) is the command in this
process (`cli.main`): the same one line, exit code 2 and no token."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from campaign_pipeline import runner
from campaign_pipeline.resources.salesforce import ACCESS_TOKEN_ENV, INSTANCE_URL_ENV
from campaign_pipeline.salesforce.client import AUTH_MESSAGE
from campaign_pipeline_tests._cli_support import run_cli_in_process
from campaign_pipeline_tests.fake_salesforce import FakeOrg, FakeSalesforce

REPO = Path(__file__).resolve().parents[1]
_NOT_PASSED = ("CAMPAIGN_PIPELINE_", "SALESFORCE_")  # variable prefixes
SETTINGS = "campaign_key_field: Ad_Campaign_Id__c\nbatch_size: 200\nmax_attempts: 2\n"


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``campaign-pipeline ARGS`` started as a user starts it, without this process' variables
    the command reads (but those of ``env``); `finish` waits for it."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(_NOT_PASSED) and k != "DAGSTER_HOME"
    }
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=REPO,
    )


def finish(started: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = started.communicate(timeout=300)
    return subprocess.CompletedProcess(started.args, started.returncode, stdout, stderr)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return finish(start_cli(*args, env=env))


def run_cli_here(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`run_cli`'s command in this process (`run_cli_in_process`), the same variables unset:
    for the errors the checks before the run answer (a subprocess' imports cost seconds)."""
    return run_cli_in_process(*args, unset=(*_NOT_PASSED, "DAGSTER_HOME"), env=env)[0]


def _env(sf: FakeSalesforce) -> dict:
    return {INSTANCE_URL_ENV: sf.url, ACCESS_TOKEN_ENV: sf.token}


def _run_args(data_dir: Path, tmp_path: Path) -> list[str]:
    """A run on a copy of ``data_dir``'s raw folder (runs write staging/ beside it)."""
    shutil.copytree(data_dir / "raw", tmp_path / "data" / "raw")
    settings = tmp_path / "salesforce.yaml"
    settings.write_text(SETTINGS)
    return ["run", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--salesforce-settings", str(settings)]  # fmt: skip


def _one_line_exit_2(proc: subprocess.CompletedProcess, token: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert token not in proc.stderr + proc.stdout
    return lines[0]


def _table(out: Path, name: str) -> pd.DataFrame:
    path = out / f"{name}.parquet"
    files = [path] if path.exists() else sorted((out / name).glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def test_run_reads_the_leads_from_salesforce_and_publishes_what_the_csv_files_give(
    salesforce_sample, tmp_path
):
    data = salesforce_sample.salesforce_dir
    assert not (data / "raw" / "campaign_leads.csv").exists()
    csv_out = tmp_path / "csv_out"
    shutil.copytree(salesforce_sample.csv_dir / "raw", tmp_path / "csv" / "raw")
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        started = start_cli(*_run_args(data, tmp_path), env=_env(sf))
        # the reference run on the CSV files in this process, meanwhile (other folders): the
        # two runs take the time of one on a second core
        try:
            runner.run_pipeline(str(tmp_path / "csv"), str(csv_out), say=lambda _line: None)
        finally:
            proc = finish(started)
    assert proc.returncode == 0, proc.stderr
    assert f"leads: Salesforce {sf.url}" in proc.stdout
    assert sf.token not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr

    for table in ("daily_campaign_metrics", "weekly_campaign_metrics", "campaign_health"):
        live, files = _table(tmp_path / "out", table), _table(csv_out, table)
        assert len(live) > 0
        pd.testing.assert_frame_equal(live, files)
    assert _table(tmp_path / "out", "daily_campaign_metrics")["leads"].sum() == len(
        salesforce_sample.built.expected_leads
    )


def test_an_expired_token_ends_the_run_with_one_line(salesforce_sample, tmp_path):
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        sf.expire_token()
        proc = run_cli_here(*_run_args(salesforce_sample.salesforce_dir, tmp_path), env=_env(sf))
    assert _one_line_exit_2(proc, sf.token) == f"error: {AUTH_MESSAGE}"


def test_a_token_expiring_during_the_run_ends_it_with_one_line(salesforce_sample, tmp_path):
    with FakeSalesforce(salesforce_sample.built.org) as sf:
        sf.expire_token(after_requests=6)  # the 5 checks before the run pass, the pull does not
        proc = run_cli(*_run_args(salesforce_sample.salesforce_dir, tmp_path), env=_env(sf))
    line = _one_line_exit_2(proc, sf.token)
    assert line.startswith("error: raw_campaign_leads, raw_lead_status_changes: ")
    assert line.endswith(AUTH_MESSAGE)


def test_a_refused_query_ends_the_run_with_one_line_naming_the_field(salesforce_sample, tmp_path):
    org = salesforce_sample.built.org
    hidden = FakeOrg(org.records, org.fields | {"Lead": org.fields["Lead"] - {"ConvertedDate"}})
    with FakeSalesforce(hidden) as sf:
        proc = run_cli_here(*_run_args(salesforce_sample.salesforce_dir, tmp_path), env=_env(sf))
    line = _one_line_exit_2(proc, sf.token)
    assert "400 INVALID_FIELD" in line and "no field 'ConvertedDate' on Lead" in line
    assert "lead_converted_date_field" in line


def test_half_set_variables_end_the_run_with_one_line(salesforce_sample, tmp_path):
    env = {INSTANCE_URL_ENV: "http://127.0.0.1:9"}  # the token forgotten
    proc = run_cli_here(*_run_args(salesforce_sample.salesforce_dir, tmp_path)[:3], env=env)
    line = _one_line_exit_2(proc, "no token")
    assert f"{INSTANCE_URL_ENV} is set but {ACCESS_TOKEN_ENV} is not" in line
