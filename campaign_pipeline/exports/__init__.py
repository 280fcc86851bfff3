"""The GA4 and Amplitude export stage: what is sent (events), how it is cut to each API's
limits (ga4, amplitude), the exactly-once ledger (ledger) and the delivery of a week
(delivery). Pure Python: nothing here knows Dagster; the assets in ``assets/exports.py`` and
the resources in ``resources/`` wire it in."""
