"""The weekly report campaign managers open: one self-contained HTML page per week, built from
the published tables (pure code; the Dagster asset is ``assets/report.py``)."""

from campaign_pipeline.report.build import WeeklyReport, build_weekly_report, build_weekly_reports
from campaign_pipeline.report.files import (
    MissingTablesError,
    ReportTables,
    check_week,
    latest_report,
    load_report_tables,
    report_path,
    write_report_page,
)

__all__ = [
    "MissingTablesError",
    "ReportTables",
    "WeeklyReport",
    "build_weekly_report",
    "build_weekly_reports",
    "check_week",
    "latest_report",
    "load_report_tables",
    "report_path",
    "write_report_page",
]
