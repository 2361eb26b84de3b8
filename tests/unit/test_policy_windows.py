"""Calling-window specs (`CALLING_WINDOWS`, a job's `calling_windows`): parsing, errors that
name the part at fault, and the canonical form."""

from __future__ import annotations

import pytest

from ttsqueue.policy.windows import ALL_DAY, WindowSpecError, parse_windows

LEY_2300 = "mon-fri 07:00-19:00; sat 08:00-15:00"


def test_the_ley_2300_spec() -> None:
    windows = parse_windows(LEY_2300)
    assert windows is not None
    assert windows.days[:5] == (((420, 1140),),) * 5
    assert windows.spans(5) == ((480, 900),)
    assert windows.spans(6) == ()
    assert str(windows) == LEY_2300
    assert windows.contains(0, 7 * 3600)
    assert not windows.contains(0, 19 * 3600)  # the end is excluded
    assert windows.contains(0, 19 * 3600 - 1)
    assert not windows.contains(6, 12 * 3600)


@pytest.mark.parametrize("text", ["", "  ", "none", "NONE"])
def test_empty_or_none_is_no_restriction(text: str) -> None:
    assert parse_windows(text) is None


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("MON-FRI 7:00-12:00, 14:00-18:00", "mon-fri 07:00-12:00, 14:00-18:00"),
        ("lunes - viernes 08:00 - 17:00; sáb 09:00-12:00", "mon-fri 08:00-17:00; sat 09:00-12:00"),
        ("mon 08:00-12:00; mon 11:00-13:00; mon 13:00-14:00", "mon 08:00-14:00"),
        ("fri-mon 00:00-24:00", "mon 00:00-24:00; fri-sun 00:00-24:00"),
        ("sat,sun 10:00-11:00", "sat-sun 10:00-11:00"),
        ("mon wed 09:00-10:00;", "mon 09:00-10:00; wed 09:00-10:00"),
        ("dom 23:59-24:00", "sun 23:59-24:00"),
    ],
)
def test_forms_accepted(text: str, canonical: str) -> None:
    assert str(parse_windows(text)) == canonical


def test_canonical_form_parses_back_to_the_same_windows() -> None:
    for text in [LEY_2300, "fri-mon 00:00-24:00", "tue 01:00-02:00, 03:00-04:00"]:
        windows = parse_windows(text)
        assert parse_windows(str(windows)) == windows


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("mnd 07:00-19:00", ["unknown day 'mnd'", "mon, tue"]),
        ("mon 19:00-07:00", ["ends before it starts", "mon 22:00-24:00; tue 00:00-06:00"]),
        ("mon 08:00-08:00", ["ends before it starts"]),
        ("07:00-19:00", ["no day before the times"]),
        ("mon", ["no times in 'mon'"]),
        ("mon 25:00-26:00", ["time 25:00", "23:59"]),
        ("mon 24:00-24:00", ["time 24:00"]),
        ("mon 08:60-09:00", ["time 08:60"]),
        ("mon 7-19", ["'7-19'", "07:00-19:00"]),
        (";;", ["no calling window"]),
        ("mon 08:00-09:00\r\nAction: Originate", ["control character"]),
        ("mon " + "08:00-09:00," * 60, ["longer than 500"]),
        ("mon ٠٨:00-09:00", ["not a time range"]),
    ],
)
def test_errors_name_the_problem(text: str, names: list[str]) -> None:
    with pytest.raises(WindowSpecError) as caught:
        parse_windows(text)
    for name in names:
        assert name in str(caught.value)


def test_all_day_is_every_day() -> None:
    assert all(ALL_DAY.contains(day, second) for day in range(7) for second in (0, 86399))
