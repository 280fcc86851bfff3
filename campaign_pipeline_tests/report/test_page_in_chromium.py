"""The weekly report as a campaign manager meets it: the page the pipeline wrote, opened from
disk in Debian's headless Chromium and driven by Playwright. Every section shows, the charts
are drawn, the filters and sorting work in the page itself, it fits a phone, and it made no
request to anything but its own file.

Needs Debian's chromium (/usr/bin/chromium): skips locally without it, fails in CI (CI=true).
A screenshot of the laptop and the phone view is saved under test-artifacts/weekly_report/ (or
$CAMPAIGN_PIPELINE_TEST_ARTIFACTS/weekly_report/) and in pytest's tmp path; the test prints
where.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from campaign_pipeline.report import build_weekly_report, load_report_tables, report_path
from campaign_pipeline_tests._orchestration_support import REPO_ROOT, chromium_binary, require
from campaign_pipeline_tests.report._support import SECTIONS, busiest_week, week_table

pytestmark = pytest.mark.ui

CHROMIUM_FLAGS = [  # as test_ui.py: no sandbox as root, and nothing that phones home
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS_ENV = "CAMPAIGN_PIPELINE_TEST_ARTIFACTS"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

VISIBLE_ROWS = """rows => rows.filter(r => !r.hidden && r.offsetParent !== null)
                          .map(r => r.dataset.campaign)"""
RECORD_CSP = """window.__blocked = [];
document.addEventListener("securitypolicyviolation", e => window.__blocked.push(e.blockedURI));"""


def _artifacts_dir() -> Path:
    root = os.environ.get(ARTIFACTS_ENV) or str(REPO_ROOT / "test-artifacts")
    folder = Path(root) / "weekly_report"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def opened(request, tmp_path_factory):
    chromium = chromium_binary()
    require(chromium is not None, "Debian's chromium is not installed (apt-get install chromium)")
    published_sample = request.getfixturevalue("published_sample")  # only with a browser
    from playwright.sync_api import sync_playwright

    week = busiest_week(published_sample.out_dir)
    path = report_path(published_sample.out_dir, week).local_path
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=LAPTOP,
        )
        requests: list[str] = []
        errors: list[str] = []
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                errors.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.add_init_script(RECORD_CSP)
        page.goto(path.as_uri(), wait_until="load")
        try:
            yield SimpleNamespace(
                context=context,
                page=page,
                url=path.as_uri(),
                requests=requests,
                errors=errors,
                week=week,
                out_dir=published_sample.out_dir,
                tmp=tmp_path_factory.mktemp("report-screens"),
            )
        finally:
            context.close()


def _visible_campaigns(page) -> list[str]:
    return page.eval_on_selector_all("#explorer-table tbody tr", VISIBLE_ROWS)


def test_every_section_is_shown_and_the_page_made_no_request(opened):
    page = opened.page
    for section in SECTIONS:
        box = page.locator(f"section#{section}").bounding_box()
        assert box and box["height"] > 60 and box["width"] > 600, section
        assert page.locator(f"section#{section} h2").is_visible()
    assert opened.requests, "the recorder saw nothing, not even the page itself"
    outside = [u for u in opened.requests if u != opened.url and not u.startswith("data:")]
    assert outside == [], outside
    assert page.evaluate("window.__blocked") == []  # nothing even tried and was refused
    assert opened.errors == []


def test_the_request_recorder_sees_what_a_page_fetches(opened, tmp_path):
    """The recording the test above trusts: in the same browser, a page from disk without the
    report's policy that loads an image from 127.0.0.1 is seen (port 9: nothing answers, nothing
    leaves the machine). Its own list, so the report's record stays the report's alone."""
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    seen: list[str] = []
    page = opened.context.new_page()
    page.on("request", lambda request: seen.append(request.url))
    try:
        page.goto(probe.as_uri(), wait_until="load")
    finally:
        page.close()
    assert seen == [probe.as_uri(), "http://127.0.0.1:9/pixel.png"]


def test_the_charts_are_drawn(opened):
    page = opened.page
    flags = week_table(opened.out_dir, "anomaly_flags", opened.week)
    top = int(flags["severity"].isin(["critical", "high"]).sum())
    charts = page.locator("#top-flags svg.chart")
    assert charts.count() == top > 0
    scatter = page.locator("#scatter svg.chart")
    assert scatter.count() == 1
    for chart in [*charts.all(), scatter]:
        box = chart.bounding_box()
        assert box and box["width"] > 250 and box["height"] > 80
        # the drawing itself has size: the data line / points, not an empty frame
        drawn = chart.evaluate(
            "svg => Math.max(...[...svg.querySelectorAll('path, use')]"
            ".map(e => e.getBBox().width * e.getBBox().height))"
        )
        assert drawn > 100
    import matplotlib.image

    for chart in (charts.first, scatter):
        pixels = matplotlib.image.imread(io.BytesIO(chart.screenshot()), format="png")[..., :3]
        colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 30, "the chart rendered as (almost) one colour"


def test_filtering_by_action_shows_exactly_that_actions_campaigns(opened):
    page = opened.page
    health = week_table(opened.out_dir, "campaign_health", opened.week)
    everyone = sorted(health["campaign_id"])
    assert sorted(_visible_campaigns(page)) == everyone
    by_action = health.groupby("recommended_action")["campaign_id"].apply(sorted)
    assert len(by_action) >= 2
    for action, campaigns in by_action.items():
        page.select_option('select[data-filter="action"]', action)
        shown = sorted(_visible_campaigns(page))
        assert shown == campaigns, action
        assert page.locator("#explorer-count").inner_text() == (
            f"Showing {len(campaigns)} of {len(everyone)} campaigns"
        )
    # two filters at once: their intersection
    action, platform = health.iloc[0][["recommended_action", "platform"]]
    page.select_option('select[data-filter="action"]', action)
    page.select_option('select[data-filter="platform"]', platform)
    both = health[(health["recommended_action"] == action) & (health["platform"] == platform)]
    assert sorted(_visible_campaigns(page)) == sorted(both["campaign_id"])
    page.click("#explorer-reset")
    assert sorted(_visible_campaigns(page)) == everyone


def test_sorting_a_column_orders_the_rows_unknown_last(opened):
    page = opened.page
    health = week_table(opened.out_dir, "campaign_health", opened.week).set_index("campaign_id")
    page.get_by_role("button", name="CPL (window)").click()
    ascending = _visible_campaigns(page)
    cpl = health.loc[ascending, "cpl"].to_numpy()
    known = cpl[~np.isnan(cpl)]
    assert len(known) >= 5 and (np.diff(known) >= 0).all()
    assert np.isnan(cpl[len(known) :]).all()  # unknown CPLs after every known one
    page.get_by_role("button", name="CPL (window)").click()
    cpl = health.loc[_visible_campaigns(page), "cpl"].to_numpy()
    assert (np.diff(cpl[~np.isnan(cpl)]) <= 0).all()


def test_a_long_unbroken_name_wraps_and_a_focused_sort_button_shows_it(opened, tmp_path):
    """Ad platforms' campaign names are often one long token; a keyboard user must see which
    column heading has the focus."""
    tables = load_report_tables(opened.out_dir, opened.week)
    renamed = tables.flags["campaign_id"].iloc[0]
    # one token, no hyphen or space to break at (a hyphen lets the old layout wrap too)
    long_name = "FB_Prospecting_" + "LAL_1pct_US_2554_Video_Retargeting_" * 5

    def rename(frame: pd.DataFrame) -> pd.DataFrame:
        if "campaign_name" not in frame.columns:
            return frame
        name = frame["campaign_name"].mask(frame["campaign_id"] == renamed, long_name)
        return frame.assign(campaign_name=name)

    tables = dataclasses.replace(
        tables,
        health=rename(tables.health),
        weekly=rename(tables.weekly),
        daily=rename(tables.daily),
    )
    path = tmp_path / "long_name.html"
    path.write_text(build_weekly_report(tables).html, encoding="utf-8")
    page = opened.context.new_page()
    try:
        page.goto(path.as_uri(), wait_until="load")
        assert (
            long_name in page.locator(f'#explorer-table tr[data-campaign="{renamed}"]').inner_text()
        )
        table = page.locator("#explorer-table").bounding_box()
        name_column = page.locator("#explorer-table thead th").first.bounding_box()
        assert name_column["width"] < 0.3 * table["width"], (name_column, table)
        page.set_viewport_size(PHONE)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        page.set_viewport_size(LAPTOP)
        page.focus("#explorer-reset")
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return [e.tagName, e.closest('th') !== null,"
            " getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]; }"
        )
        assert focused[:2] == ["BUTTON", True] and focused[2] != "none", focused
    finally:
        page.close()


def test_readable_on_a_phone_and_screenshots_saved(opened):
    page = opened.page
    artifacts = _artifacts_dir()
    laptop = opened.tmp / f"weekly_report_{opened.week}_laptop.png"
    page.screenshot(path=str(laptop), full_page=True)
    page.set_viewport_size(PHONE)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        for chart in page.locator("#top-flags svg.chart, #scatter svg.chart").all():
            box = chart.bounding_box()
            assert 0 < box["width"] <= PHONE["width"]
        phone = opened.tmp / f"weekly_report_{opened.week}_phone.png"
        page.screenshot(path=str(phone), full_page=True)
    finally:
        page.set_viewport_size(LAPTOP)
    import matplotlib.image

    for shot in (laptop, phone):
        pixels = matplotlib.image.imread(shot)
        assert pixels.shape[0] > 2000, "a full page is several screens long"
        shutil.copy(shot, artifacts / shot.name)
    print(f"\nweekly report screenshots: {artifacts} (and {opened.tmp})")
    # whatever ran before (filters, sorting, a phone-sized layout): still nothing fetched
    assert [u for u in opened.requests if u != opened.url] == []
