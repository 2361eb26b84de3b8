"""Calling rules from the settings (CALLING_WINDOWS, CALLING_HOLIDAYS, MAX_CONTACTS_PER_DAY),
the co-ley-2300 preset, and a job's overrides."""

from __future__ import annotations

from datetime import date

import pytest

from ttsqueue.config import load_settings
from ttsqueue.errors import ConfigError
from ttsqueue.policy.rules import (
    NO_RULES,
    JobPolicy,
    PolicyFieldError,
    rules_for_job,
    validate_job_policy,
)
from ttsqueue.policy.windows import parse_windows

LEY_2300 = "mon-fri 07:00-19:00; sat 08:00-15:00"


def test_by_default_nothing_restricts_calls() -> None:
    rules = load_settings().calling_rules()
    assert rules == NO_RULES
    assert rules.unrestricted


def test_the_co_ley_2300_preset() -> None:
    rules = load_settings(CALLING_WINDOWS="co-ley-2300").calling_rules()
    assert str(rules.windows) == LEY_2300
    assert rules.holidays is not None
    assert rules.holidays.codes == ("CO",)
    assert rules.holidays.is_holiday(date(2026, 1, 12))
    assert rules.max_contacts_per_day == 1
    assert rules.preset == "co-ley-2300"
    assert load_settings(CALLING_WINDOWS=" CO-Ley-2300 ").calling_rules().preset == "co-ley-2300"


def test_explicit_settings_win_over_the_preset() -> None:
    rules = load_settings(
        CALLING_WINDOWS="co-ley-2300", CALLING_HOLIDAYS="none", MAX_CONTACTS_PER_DAY="2"
    ).calling_rules()
    assert (rules.holidays, rules.max_contacts_per_day) == (None, 2)
    off = load_settings(CALLING_WINDOWS="co-ley-2300", MAX_CONTACTS_PER_DAY="0").calling_rules()
    assert off.max_contacts_per_day == 0
    # Empty means "not set": the preset's values stay.
    empty = load_settings(
        CALLING_WINDOWS="co-ley-2300", CALLING_HOLIDAYS=" ", MAX_CONTACTS_PER_DAY=""
    ).calling_rules()
    assert empty.holidays is not None
    assert empty.max_contacts_per_day == 1


def test_a_spec_with_holidays_and_a_cap() -> None:
    settings = load_settings(
        CALLING_WINDOWS="mon-sat 09:00-18:00", CALLING_HOLIDAYS="us-ny,co", MAX_CONTACTS_PER_DAY=3
    )
    assert settings.CALLING_HOLIDAYS == "US-NY,CO"
    rules = settings.calling_rules()
    assert str(rules.windows) == "mon-sat 09:00-18:00"
    assert rules.holidays is not None
    assert rules.holidays.codes == ("US-NY", "CO")
    assert (rules.max_contacts_per_day, rules.preset) == (3, None)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("CALLING_WINDOWS", "mon 19:00-07:00", "ends before it starts"),
        ("CALLING_WINDOWS", "weekdays 9-5", "neither a preset (co-ley-2300) nor a window spec"),
        ("CALLING_WINDOWS", "co-ley-2301 ", "'co-ley-2301' is neither a preset"),
        ("CALLING_WINDOWS", "weekdays 09:00-17:00", "unknown day 'weekdays'"),
        ("CALLING_HOLIDAYS", "XX", "not a country"),
        ("MAX_CONTACTS_PER_DAY", "-1", "greater than or equal to 0"),
        ("MAX_CONTACTS_PER_DAY", "one", "valid integer"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{name: value})
    assert f"{name}: " in str(caught.value)
    assert words in str(caught.value)


BASE = load_settings(CALLING_WINDOWS="mon-fri 08:00-17:00", CALLING_HOLIDAYS="US").calling_rules()


def test_a_job_window_replaces_the_windows_only() -> None:
    rules = rules_for_job(BASE, JobPolicy(calling_windows="sat 10:00-12:00"))
    assert rules.windows == parse_windows("sat 10:00-12:00")
    assert rules.holidays == BASE.holidays


def test_a_job_preset_brings_its_holidays_and_cap() -> None:
    rules = rules_for_job(BASE, JobPolicy(calling_windows="co-ley-2300"))
    assert str(rules.windows) == LEY_2300
    assert rules.holidays is not None
    assert rules.holidays.codes == ("CO",)
    assert rules.max_contacts_per_day == 1


def test_emergencies_ignore_windows_holidays_and_cap() -> None:
    strict = load_settings(CALLING_WINDOWS="co-ley-2300").calling_rules()
    assert rules_for_job(strict, JobPolicy(ignore_calling_windows=True)) == NO_RULES
    assert rules_for_job(strict, JobPolicy()) is strict


def test_job_fields_are_validated_naming_the_field() -> None:
    assert validate_job_policy("co-ley-2300", "America/Bogota") == JobPolicy(
        "co-ley-2300", "America/Bogota"
    )
    with pytest.raises(PolicyFieldError) as caught:
        validate_job_policy("mon 25:00-26:00", None)
    assert caught.value.field == "calling_windows"
    with pytest.raises(PolicyFieldError) as caught:
        validate_job_policy(None, "Bogota")
    assert caught.value.field == "timezone"
    assert str(caught.value).startswith("timezone: ")
