"""What a person sees for a materialization: previews never show personal data, and the
flags' preview starts with what matters most."""

from __future__ import annotations

import pandas as pd

from campaign_pipeline.metadata import markdown_preview, most_severe_first


def test_flags_preview_runs_from_critical_to_low_surest_first():
    flags = pd.DataFrame(
        {
            "campaign_id": ["a", "b", "c", "d", "e", "f"],
            "severity": ["low", "medium", "critical", "high", "medium", "critical"],
            "confidence": [0.99, 0.5, 0.6, 0.9, 0.95, 0.97],
        },
        index=[0, 0, 1, 1, 2, 2],
    )  # a concatenation of weeks repeats index labels
    ordered = most_severe_first(flags)
    assert list(ordered["campaign_id"]) == [
        "f",
        "c",
        "d",
        "e",
        "b",
        "a",
    ]  # a plain sort put low before medium
    assert len(ordered) == len(flags)
    assert markdown_preview(ordered, rows=2).splitlines()[2].startswith("| f ")


def test_preview_never_shows_personal_data():
    leads = pd.DataFrame(
        {
            "id": [1],
            "name": ["Ann Example"],
            "email": ["ann@example.com"],
            "phone": ["+1 555 0100"],
            "lead_status": ["NEW"],
        }
    )
    shown = markdown_preview(leads)
    assert (
        "Ann" not in shown and "example.com" not in shown and "555" not in shown and "NEW" in shown
    )


def test_the_column_schema_names_text_as_string_and_describes_each_column():
    """The UI's Columns tab showed pandas' 'object' for text and no descriptions."""
    from campaign_pipeline.metadata import table_schema
    from campaign_pipeline.metric_schemas import WeeklyTotals

    frame = pd.DataFrame(
        {"scope": ["all", None], "n_campaigns": [1.0, 2.0], "mixed": ["a", 1]}, dtype=object
    ).astype({"n_campaigns": "float64"})
    columns = {c.name: c for c in table_schema(frame, WeeklyTotals).columns}
    assert [columns[c].type for c in ("scope", "n_campaigns", "mixed")] == [
        "string",
        "float64",
        "object",
    ]
    described = WeeklyTotals.to_schema().columns
    assert columns["n_campaigns"].description == described["n_campaigns"].description
    assert columns["n_campaigns"].description  # the model describes it
    assert columns["mixed"].description is None  # not a column of the model
