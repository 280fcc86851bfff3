"""The weekly report campaign managers open: one self-contained HTML page per week, built from
the published tables (pure code; the Dagster asset is ``assets/report.py``)."""

from campaign_pipeline.lazy import lazy_exports

# Each public name and the module that defines it, imported on first use, so that
# ``report.files`` (the CLI's check of `--week`, reading the tables) does not wait for matplotlib.
_EXPORTS = {
    "MissingTablesError": "files",
    "ReportTables": "files",
    "WeeklyReport": "build",
    "build_weekly_report": "build",
    "build_weekly_reports": "build",
    "check_week": "files",
    "load_report_tables": "files",
    "report_path": "files",
    "write_report_page": "files",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
