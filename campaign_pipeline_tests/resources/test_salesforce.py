"""The Salesforce resource: off unless both variables are set, loud when half set, the token
only ever an EnvVar reference, and a settings file checked before any run."""

import dagster as dg
import pytest

from campaign_pipeline.resources.salesforce import (
    ACCESS_TOKEN_ENV,
    INSTANCE_URL_ENV,
    SalesforceSource,
    load_settings_file,
    salesforce_run_config,
    salesforce_source_from_env,
)
from campaign_pipeline.salesforce.client import SalesforceConfigError
from campaign_pipeline.salesforce.leads import SalesforceMapping


def test_unset_means_the_csv_files_and_half_set_names_the_missing_variable():
    assert SalesforceSource().is_configured is False
    assert SalesforceSource(
        instance_url="https://x.my.salesforce.com", access_token="t"
    ).is_configured
    with pytest.raises(SalesforceConfigError, match=f"{ACCESS_TOKEN_ENV} is not"):
        _ = SalesforceSource(instance_url="https://x.my.salesforce.com").is_configured
    with pytest.raises(SalesforceConfigError, match=f"{INSTANCE_URL_ENV} is not"):
        _ = SalesforceSource(access_token="t").is_configured


def test_the_code_location_reads_both_variables_through_envvar(monkeypatch):
    monkeypatch.delenv(INSTANCE_URL_ENV, raising=False)
    monkeypatch.delenv(ACCESS_TOKEN_ENV, raising=False)
    off = salesforce_source_from_env()
    assert off.instance_url is None and off.access_token is None
    monkeypatch.setenv(INSTANCE_URL_ENV, "https://x.my.salesforce.com")
    monkeypatch.setenv(ACCESS_TOKEN_ENV, "00Dsecret!token")
    on = salesforce_source_from_env()
    assert isinstance(on.access_token, dg.EnvVar) and on.access_token == ACCESS_TOKEN_ENV
    assert isinstance(on.instance_url, dg.EnvVar)
    assert "00Dsecret" not in repr(on) + str(on)
    config = salesforce_run_config({"campaign_key_field": "Ad__c"})
    assert config["resources"]["salesforce"]["config"] == {
        "campaign_key_field": "Ad__c",
        "instance_url": {"env": INSTANCE_URL_ENV},
        "access_token": {"env": ACCESS_TOKEN_ENV},
    }


def test_the_token_is_not_in_the_resource_repr():
    source = SalesforceSource(instance_url="https://x.my.salesforce.com", access_token="s3cr3t")
    assert "s3cr3t" not in repr(source) and "s3cr3t" not in str(source)


def test_the_resource_hands_its_settings_to_the_mapping_and_the_client():
    source = SalesforceSource(
        instance_url="https://x.my.salesforce.com",
        access_token="t",
        campaign_key_field="Ad__c",
        status_map={"Hot": "QUALIFIED"},
        batch_size=500,
    )
    assert source.mapping() == SalesforceMapping(
        campaign_key_field="Ad__c", status_map={"Hot": "QUALIFIED"}
    )
    assert source.client().settings.batch_size == 500


def test_a_settings_file_is_checked_naming_file_and_setting(tmp_path):
    path = tmp_path / "salesforce.yaml"
    path.write_text("campaign_key_field: Ad_Campaign_Id__c\nstatus_map:\n  Hot: QUALIFIED\n")
    assert load_settings_file(path) == {
        "campaign_key_field": "Ad_Campaign_Id__c",
        "status_map": {"Hot": "QUALIFIED"},
    }
    for text in ("api_version: 66.0\n", '{"api_version": 66}', "api_version: '66.0'\n"):
        path.write_text(text)  # a version written as a number is the version it reads as
        assert load_settings_file(path) == {"api_version": "66.0"}
    cases = {
        "campain_key_field: X\n": "unknown Salesforce setting 'campain_key_field'",
        "api_version: true\n": "setting 'api_version'",
        "access_token: abc\n": f"access_token comes from the environment ({ACCESS_TOKEN_ENV})",
        "lead_status_field: 'Status, Email'\n": "lead_status_field",
        "batch_size: 50\n": "batch_size 50",
        "batch_size: many\n": "setting 'batch_size'",
        "- a list\n": "expected a mapping",
        "{unclosed: \n": "not YAML or JSON",
    }
    for text, fragment in cases.items():
        path.write_text(text)
        with pytest.raises(ValueError) as caught:
            load_settings_file(path)
        message = str(caught.value)
        assert message.startswith(str(path)) and fragment in message and "\n" not in message


@pytest.mark.parametrize(
    "setting, field",
    [
        ("lead_status_field", "Email"),
        ("lead_created_field", "phone"),
        ("lead_converted_opportunity_field", "FirstName"),
        ("lead_converted_date_field", "MobilePhone"),
        ("lead_campaign_field", "COMPANY"),
        ("history_status_field", "Street"),
    ],
)
def test_a_lead_setting_naming_a_personal_field_is_refused(tmp_path, setting, field):
    """A query would select the person's data into a raw column, and on into the tables."""
    path = tmp_path / "salesforce.yaml"
    path.write_text(f"{setting}: {field}\n")
    with pytest.raises(ValueError) as caught:
        load_settings_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: Salesforce setting {setting} '{field}' is a personal")
    assert "\n" not in message
    # the same word is no personal data on another object, nor as part of a custom field
    path.write_text(f"campaign_key_field: Name\n{setting}: {field}_Source__c\n")
    assert load_settings_file(path)[setting] == f"{field}_Source__c"
