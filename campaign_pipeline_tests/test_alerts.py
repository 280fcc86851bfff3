"""Alert selection, Slack message shape, and posting (with a real local HTTP listener)."""

import json

import pandas as pd
import pytest
import requests

from campaign_pipeline import alerts
from campaign_pipeline_tests._orchestration_support import WebhookListener
from campaign_pipeline_tests._toy_definitions import toy_flags


def test_alertable_flags_keeps_high_and_critical_most_severe_first():
    flags = toy_flags("2024-01-15")
    chosen = alerts.alertable_flags(flags, "high")
    assert list(chosen["severity"]) == ["critical", "high", "high"]
    assert chosen["flag_key"].is_unique
    assert list(alerts.alertable_flags(flags, "critical")["campaign_id"]) == ["c3"]
    assert len(alerts.alertable_flags(flags, "low")) == len(flags)


def test_duplicate_flag_keys_are_posted_once():
    flags = toy_flags("2024-01-15")
    doubled = pd.concat([flags, flags], ignore_index=True)
    assert len(alerts.alertable_flags(doubled)) == 3


def test_flag_key_depends_on_the_contract_key_only():
    flags = toy_flags("2024-01-15")
    changed = flags.assign(value=flags["value"] + 1, explanation="other words")
    assert list(alerts.flag_keys(flags)) == list(alerts.flag_keys(changed))
    moved = flags.assign(period_start=flags["period_start"] + pd.Timedelta(days=1))
    assert not set(alerts.flag_keys(flags)) & set(alerts.flag_keys(moved))
    # the same date as text or as a timestamp is the same key
    as_text = flags.assign(period_start=flags["period_start"].dt.strftime("%Y-%m-%d"))
    assert list(alerts.flag_keys(flags)) == list(alerts.flag_keys(as_text))


def test_messages_are_slack_blocks_split_by_size_and_escaped():
    flags = alerts.alertable_flags(pd.concat([toy_flags(w) for w in ("2024-01-08", "2024-01-15")]))
    settings = alerts.AlertSettings(max_flags_per_message=4)
    messages = alerts.build_flag_messages(flags, settings, context="week 2024-01-15")
    assert [len(keys) for keys, _ in messages] == [4, 2]
    assert sorted(k for keys, _ in messages for k in keys) == sorted(flags["flag_key"])
    keys, payload = messages[0]
    assert isinstance(payload["text"], str) and payload["text"]
    assert payload["blocks"][0]["type"] == "header"
    sections = [b for b in payload["blocks"] if b["type"] == "section"]
    assert len(sections) == 4
    body = sections[0]["text"]["text"]
    assert "*CRITICAL*" in body and "`c3`" in body and "&lt;3&gt; &amp; more" in body
    json.dumps(payload)  # serialisable as is


def test_the_text_fallback_lists_campaigns_without_cutting_an_id():
    flags = toy_flags("2024-01-15")
    many = pd.concat(
        [flags.assign(campaign_id=f"CMP{i:06d}", severity="critical") for i in range(30)],
        ignore_index=True,
    )
    (_, payload), *_ = alerts.build_flag_messages(
        alerts.alertable_flags(many), alerts.AlertSettings()
    )
    listed = payload["text"].split(" (", 1)[1].rstrip(")")
    *ids, rest = listed.split(", ")
    assert all(len(i) == 9 and i.startswith("CMP") for i in ids), ids
    assert rest.startswith("and ") and rest.endswith(" more")


def test_settings_reject_unknown_severity():
    with pytest.raises(ValueError):
        alerts.AlertSettings(min_severity="urgent")


def test_run_failure_message_sends_first_error_line_only():
    payload = alerts.build_run_failure_message(
        "weekly_pipeline_job",
        "run-123",
        "Boom: export refused\nTraceback...\nsecret row values",
        partition="2024-01-15",
        step_keys=["exports"],
        ui_base_url="http://127.0.0.1:3000/",
    )
    text = payload["blocks"][0]["text"]["text"]
    assert "weekly_pipeline_job" in payload["text"] and "2024-01-15" in payload["text"]
    assert "Boom: export refused" in text and "Traceback" not in text and "secret" not in text
    assert "<http://127.0.0.1:3000/runs/run-123|open the run>" in text


def test_run_failure_message_names_a_range_runs_weeks():
    payload = alerts.build_run_failure_message(
        "weekly_pipeline_job", "run-124", "Boom", partition="2024-01-08 to 2024-01-22"
    )
    assert "weekly_pipeline_job for weeks 2024-01-08 to 2024-01-22" in payload["text"]


def test_redact_url_keeps_host_and_drops_token():
    url = "https://hooks.example.com/services/T000/B000/SECRETTOKEN"
    assert alerts.redact_url(url) == "https://hooks.example.com/…"


def test_post_json_reaches_a_real_listener():
    with WebhookListener() as hook:
        status = alerts.post_json(hook.url, {"text": "hello"})
    assert status == 200
    assert hook.bodies == [{"text": "hello"}]


def test_post_json_retries_server_errors_then_succeeds():
    with WebhookListener(statuses=[503, 429]) as hook:
        status = alerts.post_json(
            hook.url, {"text": "x"}, alerts.AlertSettings(retries=2), sleep=lambda s: None
        )
    assert status == 200
    assert len(hook.bodies) == 3


def test_post_json_errors_never_show_the_webhook_token():
    with WebhookListener(statuses=[403]) as hook:
        url = hook.url + "/T1/B2/SECRETTOKEN"
        with pytest.raises(alerts.AlertPostError) as raised:
            alerts.post_json(url, {"text": "x"}, sleep=lambda s: None)
    assert "SECRETTOKEN" not in str(raised.value) and "403" in str(raised.value)

    # a refused connection: requests' own message contains the URL; ours must not
    with WebhookListener() as hook:
        dead_url = hook.url + "/SECRETTOKEN"
    with pytest.raises(alerts.AlertPostError) as raised:
        alerts.post_json(
            dead_url,
            {"text": "x"},
            alerts.AlertSettings(retries=1, timeout_seconds=2),
            sleep=lambda s: None,
        )
    assert "SECRETTOKEN" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_webhook_url_from_env():
    assert alerts.webhook_url_from_env({}) is None
    assert alerts.webhook_url_from_env({"ALERT_WEBHOOK_URL": "  "}) is None
    assert alerts.webhook_url_from_env({"ALERT_WEBHOOK_URL": "http://x/y"}) == "http://x/y"


def test_requests_is_what_posts(monkeypatch):
    seen = {}

    class FakeSession:
        def post(self, url, json, timeout):
            seen.update(url=url, json=json, timeout=timeout)
            response = requests.Response()
            response.status_code = 204
            return response

    assert (
        alerts.post_json(
            "http://h/x", {"a": 1}, alerts.AlertSettings(timeout_seconds=3), session=FakeSession()
        )
        == 204
    )
    assert seen == {"url": "http://h/x", "json": {"a": 1}, "timeout": 3}


# --- the queue of failed runs waiting to be posted -------------------------------------------


def _queue(*pending, after=7):
    return alerts.FailureQueue(after, tuple(alerts.PendingFailure(*p) for p in pending))


def test_failure_queue_round_trips_through_its_cursor():
    queue = _queue(("run-a", 100.5, 2), ("run-b", 200.0))
    assert alerts.FailureQueue.from_cursor(queue.to_cursor()) == queue
    assert alerts.FailureQueue.from_cursor(None) == alerts.FailureQueue()


def test_failure_queue_reads_dagsters_run_status_cursor_and_starts_empty_on_anything_else():
    dagster_cursor = json.dumps(
        {"__class__": "RunStatusSensorCursor", "record_id": 42, "update_timestamp": None}
    )
    assert alerts.FailureQueue.from_cursor(dagster_cursor) == alerts.FailureQueue(42)
    for junk in ("not json", "[1, 2]", '{"pending": [{"run_id": "x"}]}'):
        assert alerts.FailureQueue.from_cursor(junk) == alerts.FailureQueue()


def test_failure_queue_queues_a_run_once_and_moves_its_place_only_past_events_read():
    queue = _queue(("run-a", 100.0, 1))
    more = queue.with_failures(
        [alerts.PendingFailure("run-a", 100.0), alerts.PendingFailure("run-b", 150.0)], 9
    )
    assert more == _queue(("run-a", 100.0, 1), ("run-b", 150.0), after=9)
    assert queue.with_failures([], None) == queue


def test_failure_queue_tries_fewest_failed_first_and_forgets_only_posted_or_too_old():
    queue = _queue(("old", 100.0, 3), ("mid", 200.0, 1), ("new", 300.0, 1))
    assert [p.run_id for p in queue.in_posting_order()] == ["mid", "new", "old"]
    assert [p.run_id for p in queue.failed("mid").in_posting_order()] == ["new", "mid", "old"]
    assert queue.posted("mid") == _queue(("old", 100.0, 3), ("new", 300.0, 1))

    kept, given_up = queue.expire(now=400.0, max_age_seconds=200.0)
    assert [p.run_id for p in given_up] == ["old"]  # 300 s old; "mid", exactly 200 s, waits
    assert kept == _queue(("mid", 200.0, 1), ("new", 300.0, 1))


def test_failure_given_up_line_names_the_run_when_and_why():
    line = alerts.failure_given_up_line(
        alerts.PendingFailure("run-9", 1_700_000_000.0, 4), alerts.FAILURE_ALERT_MAX_AGE_SECONDS
    )
    assert line == (
        "gave up posting the failure of run run-9 (failed 2023-11-14 22:13:20 UTC): not "
        "accepted by the webhook within 72 h of the failure, 4 failed tick(s); see the run "
        "in the UI's Runs page"
    )


# --- a run stopped by a blocking check ---------------------------------------------------------

STOP_LINE = (
    "insights.csv: none of its 3 rows was accepted (unparseable_date: 3 of 3 quarantined; e.g. "
    "line 2: unparseable date: '2024-01-08T10:00:00Z' is not YYYY-MM-DD[ HH:MM:SS] or "
    "MM/DD/YYYY); no week is processed without its rows: correct the file and run again"
)


def _none_accepted():
    return alerts.FailedCheck("quarantine", "every_file_has_accepted_rows", STOP_LINE)


def _lines(payload):
    return payload["blocks"][0]["text"]["text"].splitlines()


def test_run_failure_message_names_the_failed_check_and_its_own_line():
    payload = alerts.build_run_failure_message(
        "weekly_pipeline_job",
        "run-7",
        None,
        partition="2024-01-15",
        step_keys=["quarantine"],
        failed_checks=[_none_accepted()],
    )
    assert _lines(payload) == [
        "*Run failed: weekly_pipeline_job for week 2024-01-15*",
        "run `run-7`",
        "failed steps: `quarantine`",
        f"failed check `quarantine:every_file_has_accepted_rows`: {STOP_LINE}",
    ]
    assert payload["text"] == (
        "Run failed: weekly_pipeline_job for week 2024-01-15: "
        "check quarantine:every_file_has_accepted_rows"
    )


def test_run_failure_message_keeps_another_steps_error_beside_the_failed_check():
    payload = alerts.build_run_failure_message(
        "weekly_pipeline_job",
        "run-8",
        "raw_leads: SalesforceError: session expired\nTraceback...",
        step_keys=["quarantine", "raw_leads"],
        failed_checks=[_none_accepted()],
    )
    assert _lines(payload)[-2:] == [
        f"failed check `quarantine:every_file_has_accepted_rows`: {STOP_LINE}",
        "error: raw_leads: SalesforceError: session expired",
    ]


def test_run_failure_message_bounds_each_checks_line_and_the_number_of_checks():
    long = alerts.FailedCheck("quarantine", "every_file_has_accepted_rows", "x" * 900 + "\nmore")
    schemas = [alerts.FailedCheck(f"validated_t{i}", "schema", f"t{i} & <bad>") for i in range(4)]
    payload = alerts.build_run_failure_message(
        "weekly_pipeline_job", "run-9", None, failed_checks=[long, *schemas]
    )
    lines = _lines(payload)[2:]
    assert lines[0] == "failed check `quarantine:every_file_has_accepted_rows`: " + "x" * 499 + "…"
    assert lines[1:] == [
        "failed check `validated_t0:schema`: t0 &amp; &lt;bad&gt;",
        "failed check `validated_t1:schema`: t1 &amp; &lt;bad&gt;",
        "and 2 more failed check(s)",
    ]
    assert alerts.MAX_FAILED_CHECKS_SHOWN == 3
    assert len(payload["blocks"][0]["text"]["text"]) < 3000  # Slack's section text limit


def test_a_checks_line_quoting_personal_data_is_withheld_and_a_check_without_one_is_named():
    leaked = alerts.FailedCheck(
        "validated_leads", "schema", "lead_status failure cases: 'ann@example.com'"
    )
    quiet = alerts.FailedCheck("validated_leads", "row_accounting", None)
    text = "\n".join(
        _lines(alerts.build_run_failure_message("j", "r", None, failed_checks=[leaked, quiet]))
    )
    assert "ann@example.com" not in text
    assert (
        "failed check `validated_leads:schema`: its line quotes a value shaped like personal "
        "data; see the run"
    ) in text
    assert text.endswith("failed check `validated_leads:row_accounting`")
    assert "error:" not in text
