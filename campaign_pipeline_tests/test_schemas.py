"""The row contracts evaluated as masks (what ingestion runs) fail exactly the rows and checks
that pandera fails when it runs the same contracts, on random rows with every kind of defect."""

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow
import pytest

from campaign_pipeline import schemas

ROWS = 400


def _text(rng: np.random.Generator) -> pd.Series:
    return pd.Series(rng.choice(np.array(["a1", "", None, "b 2"], dtype=object), ROWS))


def _numbers(rng: np.random.Generator, fractional: bool = False) -> pd.Series:
    values = rng.integers(-3, 50, ROWS).astype(float)
    if fractional:
        values[rng.random(ROWS) < 0.1] += 0.5
    values[rng.random(ROWS) < 0.15] = np.nan
    return pd.Series(values)


def _dates(rng: np.random.Generator) -> pd.Series:
    days = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 90, ROWS), unit="D")
    return pd.Series(days).where(rng.random(ROWS) > 0.15)


def _frames(rng: np.random.Generator) -> dict:
    return {
        schemas.CampaignRowContract: pd.DataFrame(
            {
                "campaign_id": _text(rng),
                "user_id": _text(rng),
                "project_name": _text(rng),
                "daily_budget": _numbers(rng),
                "created_at": _dates(rng),
            }
        ),
        schemas.InsightRowContract: pd.DataFrame(
            {
                "campaign_id": _text(rng),
                "date": _dates(rng),
                "spend": _numbers(rng, fractional=True),
                "impressions": _numbers(rng, fractional=True),
                "clicks": _numbers(rng, fractional=True),
                "conversions": _numbers(rng, fractional=True),
            }
        ),
        schemas.LeadRowContract: pd.DataFrame(
            {
                "lead_id": _text(rng),
                "campaign_id": _text(rng),
                # a shifted row's phone or email in the status (`personal_data_in_lead_status`)
                "lead_status": _text(rng).where(
                    rng.random(ROWS) > 0.2,
                    pd.Series(rng.choice(["+1 555 021 1797", "ann@example.com"], ROWS)),
                ),
                "added_date": _dates(rng),
                "deal_value": _numbers(rng, fractional=True),
            }
        ),
        schemas.LeadStatusChangeRowContract: pd.DataFrame(
            {
                "change_id": _text(rng),
                "lead_id": _text(rng),
                "new_status": _text(rng),
                "changed_at": _dates(rng),
            }
        ),
    }


def _pandera_failures(model, frame: pd.DataFrame) -> set[tuple[int, str]]:
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return {(int(i), str(c)) for i, c in zip(cases["index"], cases["check"], strict=True)}
    return set()


def _mask_failures(model, frame: pd.DataFrame) -> set[tuple[int, str]]:
    masks = schemas.ROW_RULES[model](frame)
    return {(int(i), name) for name, mask in masks.items() for i in np.flatnonzero(mask)}


@pytest.mark.parametrize("seed", [1, 2])
def test_row_masks_fail_exactly_what_pandera_fails(seed):
    for model, frame in _frames(np.random.default_rng(seed)).items():
        expected = _pandera_failures(model, frame)
        assert expected, f"{model.__name__}: the random rows should break some checks"
        assert _mask_failures(model, frame) == expected, model.__name__


def test_every_row_contract_has_masks():
    contracts = {schemas.CampaignRowContract, schemas.InsightRowContract}
    contracts |= {schemas.LeadRowContract, schemas.LeadStatusChangeRowContract}
    assert set(schemas.ROW_RULES) == contracts


def test_arrow_text_uniqueness_fails_on_the_values_pandera_fails():
    """The Arrow-backed unique check fails exactly where pandera's own `unique` does."""
    leads = pyarrow.table(
        {
            "lead_id": ["L2", "L1", "L3", "L1"],
            "campaign_id": ["C1"] * 4,
            "lead_status": ["NEW"] * 4,
            "added_date": pd.to_datetime(["2025-01-06"] * 4),
            "deal_value": [None, 1.0, 2.0, 3.0],
        }
    )
    schemas.validate_arrow(schemas.ValidatedLeads, leads.slice(0, 3))
    with pytest.raises(pandera.errors.SchemaErrors) as raised:
        schemas.validate_arrow(schemas.ValidatedLeads, leads, lazy=True)
    failures = raised.value.failure_cases
    assert failures["column"].tolist() == ["lead_id", "lead_id"]
    assert failures["failure_case"].tolist() == ["L1", "L1"]
    with pytest.raises(pandera.errors.SchemaErrors) as raised:  # pandera's check on the same rows
        schemas.ValidatedLeads.validate(leads.to_pandas(), lazy=True)
    assert set(raised.value.failure_cases["failure_case"]) == {"L1"}


@pytest.mark.parametrize("seed", range(5))
def test_arrow_text_occurs_once_marks_every_copy_of_a_repeated_value(seed):
    rng = np.random.default_rng(seed)
    values = rng.choice(
        np.array(["a", "b", "c", "dd", "", None], dtype=object), rng.integers(0, 60)
    )
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pyarrow.array(list(values), pyarrow.string())))
    expected = ~pd.Series(values, dtype=object).duplicated(keep=False) | pd.isna(values)
    assert schemas._occurs_once(arrow).tolist() == expected.tolist()
