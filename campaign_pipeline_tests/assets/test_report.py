"""The weekly_report asset through Dagster: it writes each week's page where the data contract
says, the page is the pure builder's for that week's tables, and the materialization carries
the Markdown summary and a self-contained check, which fails naming what a page would fetch."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from campaign_pipeline.assets.report import weekly_report
from campaign_pipeline.report import build, build_weekly_report, load_report_tables, report_path
from campaign_pipeline.resources.storage import PipelineStorage
from campaign_pipeline_tests.builders import failed_alone
from campaign_pipeline_tests.report._support import busiest_week


def test_the_pipeline_wrote_every_weeks_page_as_the_builder_builds_it(published_sample):
    out = published_sample.out_dir
    assert sorted(p.stem for p in (out / "weekly_report").glob("*.html")) == sorted(
        published_sample.weeks
    )
    # the first week (no week before it) and the one with the most flags, byte for byte
    for week in (published_sample.weeks[0], busiest_week(out)):
        written = report_path(out, week).read_text(encoding="utf-8")
        assert written == build_weekly_report(load_report_tables(out, week)).html, week


@pytest.fixture
def published_copy(published_sample, tmp_path) -> PipelineStorage:
    """The sample's published tables in a folder of the test's own, without the pages."""
    out = tmp_path / "out"
    shutil.copytree(published_sample.out_dir, out, ignore=shutil.ignore_patterns("*.html"))
    return PipelineStorage(data_dir=str(published_sample.data_dir), out_dir=str(out))


def test_one_week_materialized_attaches_its_summary_and_passes_self_contained(
    published_sample, published_copy
):
    week = published_sample.weeks[-1]
    result = dg.materialize(
        [weekly_report], partition_key=week, resources={"storage": published_copy}
    )
    assert result.success
    path = report_path(published_copy.published_dir, week)
    assert path.exists() and len(path.parent.files(".html")) == 1  # that week only
    (materialization,) = result.asset_materializations_for_node("weekly_report")
    metadata = materialization.metadata
    summary = metadata["summary"].value
    assert f"**Weekly report {week}" in summary and "- Buckets: HERO" in summary
    assert metadata["path"].value == str(path)
    assert metadata["latest_page_kb"].value == round(path.stat().size / 1024, 1)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "self_contained" and check.passed


def test_a_page_that_reaches_outside_fails_self_contained_naming_what(
    published_sample, published_copy, monkeypatch
):
    fetching = '<img src="https://cdn.example.com/pixel.gif">'
    render = build.render_page
    monkeypatch.setattr(build, "render_page", lambda context: render(context) + fetching)
    week = published_sample.weeks[-1]
    result = dg.materialize(
        [weekly_report], partition_key=week, resources={"storage": published_copy}
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "self_contained" and not check.passed
    assert check.metadata["outside_references"].value == {
        week: ['src="https://cdn.example.com/pixel.gif"']
    }


def test_a_week_without_published_tables_fails_naming_them(published_copy):
    message = failed_alone(
        [weekly_report], ["weekly_report"], {"storage": published_copy}, partition_key="2024-06-03"
    )
    assert "week 2024-06-03 has no published campaign_health" in message
    # the advice is the UI's (materialize), not the command line's (`campaign-pipeline run`)
    assert "materialize them for that week first" in message
    assert "campaign-pipeline" not in message and "--out" not in message
