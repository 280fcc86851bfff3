"""How the report writes numbers: a null never reads as a zero, rates change by percentage
points, a change from zero has no honest percentage, and the unrounded value is kept."""

import math

from campaign_pipeline.report import formatting as fmt


def test_nulls_read_as_a_dash_in_every_format():
    for kind in fmt.FORMAT_OF_KIND:
        for missing in (None, float("nan"), math.inf, "n/a"):
            assert fmt.of_kind(kind, missing) == fmt.MISSING, (kind, missing)
    assert fmt.raw(None) == "" and fmt.raw(float("nan")) == ""


def test_each_metric_in_its_own_format():
    assert fmt.metric("spend", 4406.0312) == "4,406.03"
    assert fmt.metric("leads", 1234.0) == "1,234"
    assert fmt.metric("conversion_rate", 0.0471) == "4.7%"
    assert fmt.metric("ctr", 0.0048) == "0.48%"  # below 1%: a second decimal
    assert fmt.metric("ctr", 0.0087) == "0.87%" and fmt.metric("ctr", 0.0) == "0.00%"
    assert fmt.metric("roas", 0.5512) == "0.55×"
    assert fmt.expected("conversions", 0.14) == "0.1"  # an expected count below 100 keeps a decimal
    assert fmt.expected("conversions", 140.4) == "140"


def test_week_over_week_change():
    value, text = fmt.change(110.0, 100.0, "amount")  # amounts and counts: relative
    assert text == "+10.0%" and math.isclose(value, 0.1)
    value, text = fmt.change(0.047, 0.060, "percent")  # rates: percentage points
    assert text == "-1.3 pp" and math.isclose(value, -1.3)
    assert fmt.change(5.0, 0.0, "count") == (None, fmt.MISSING)  # from zero: no percentage
    assert fmt.change(None, 3.0, "count") == (None, fmt.MISSING)
    assert fmt.change(100.0, 100.00001, "amount")[1] == "0.0%"  # never "-0.0%"


def test_the_unrounded_value_is_kept():
    assert fmt.raw(4406.0312) == "4406.0312"
    assert fmt.raw(12.0) == "12"
    assert float(fmt.raw(1 / 3)) == 1 / 3


def test_a_value_and_a_different_threshold_never_read_alike():
    assert fmt.apart("percent", 0.148936, 0.149076) == ["14.89%", "14.91%"]
    assert fmt.apart("percent", 0.2, 0.149076) == ["20.0%", "14.9%"]
    assert fmt.apart("percent", 0.149076, 0.149076) == ["14.9%", "14.9%"]  # equal: alike
    assert fmt.apart("amount", 1433.404, 1433.401, 90.0) == ["1,433.404", "1,433.401", "90.000"]
    assert fmt.apart("amount", None, 12.0) == [fmt.MISSING, "12.00"]
