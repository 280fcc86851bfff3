"""The CLI as a user meets it: one-line errors with exit code 2, and a full run through Dagster."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from campaign_pipeline_tests.test_ingestion import write_raw

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGN_PIPELINE_")}
    full_env.pop("DAGSTER_HOME", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "campaign_pipeline.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_file_exits_2_naming_the_file(tmp_path):
    raw = write_raw(tmp_path)
    (raw / "insights.csv").unlink()
    assert_one_line_error(run_cli("run", "--data-dir", str(tmp_path)), "insights.csv", "file not found")


def test_missing_required_column_exits_2_naming_file_and_column(tmp_path):
    raw = write_raw(tmp_path)
    text = (raw / "campaign_leads.csv").read_text().replace("lead_status", "status")
    (raw / "campaign_leads.csv").write_text(text)
    assert_one_line_error(run_cli("run", "--data-dir", str(tmp_path)), "campaign_leads.csv", "column 'lead_status'")


def test_unreadable_file_exits_2(tmp_path):
    raw = write_raw(tmp_path)
    (raw / "campaigns.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert_one_line_error(run_cli("run", "--data-dir", str(tmp_path)), "campaigns.csv")


def test_missing_raw_folder_exits_2(tmp_path):
    assert_one_line_error(run_cli("run", "--data-dir", str(tmp_path / "nowhere")), "raw folder not found")


def test_detect_missing_column_exits_2(tmp_path):
    path = tmp_path / "series.csv"
    pd.DataFrame({"series": ["a"], "time": ["2025-01-01"], "value": [1.0]}).to_csv(path, index=False)
    assert_one_line_error(run_cli("detect", str(path), "--out", str(tmp_path / "f.csv")), "column 'timestamp'")
