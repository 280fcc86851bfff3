"""Fixtures shared across the test modules: a temporary data dir with tiny raw exports, and a
storage resource pointing at it (published tables in ``<tmp>/out``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_pipeline.resources.storage import PipelineStorage
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


@pytest.fixture(scope="session")
def salesforce_sample(tmp_path_factory) -> SalesforceExports:
    """A fake Salesforce org holding the leads of a small synthetic sample (10 campaigns, 6
    weeks, 760 leads), and data dirs with the same leads as CSV files and without lead files
    (see fake_salesforce.salesforce_exports). Read only: start a FakeSalesforce per test."""
    from campaign_pipeline.sample_data import generate_sample

    root = tmp_path_factory.mktemp("salesforce")
    generate_sample(root / "sample", seed=3, n_campaigns=10, n_days=42)
    return salesforce_exports(root / "sample", root)
