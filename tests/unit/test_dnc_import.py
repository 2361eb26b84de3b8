"""Reading do-not-call imports: the CSV shapes operators send, JSON, and the limits."""

from __future__ import annotations

import pytest

from ttsqueue.api import dnc_import
from ttsqueue.api.dnc_import import ImportFormatError, numbers_from_csv, numbers_from_json


def positions(found: dnc_import.ImportNumbers) -> list[int]:
    return [p.position for p in found.problems]


def test_a_plain_list_without_header() -> None:
    found = numbers_from_csv(b"3005050149\n\n+1 212 555 1234\r\nabc\n", "CO")
    assert found.numbers == ["+573005050149", "+12125551234"]
    assert positions(found) == [4]
    assert found.received == 3


def test_a_header_with_a_phone_number_column_among_others() -> None:
    data = "\ufeffNombre;Phone Number;Notas\nAna;3005050149;x\nLuis;;y\n".encode()
    found = numbers_from_csv(data, "CO")
    assert found.numbers == ["+573005050149"]
    assert [(p.position, p.message) for p in found.problems] == [(3, "phone number is empty")]


def test_a_single_named_column_is_the_numbers() -> None:
    found = numbers_from_csv("Teléfono\n3005050149\n".encode(), "CO")
    assert found.numbers == ["+573005050149"]
    assert found.problems == []


def test_several_columns_and_none_named_phone_number() -> None:
    with pytest.raises(ImportFormatError, match="no phone_number column"):
        numbers_from_csv(b"nombre,telefono\nAna,3005050149\n", "CO")


def test_a_broken_record_is_reported_with_its_csv_problem() -> None:
    found = numbers_from_csv(b'phone_number\n"3005050149"x\n3005050150\n', "CO")
    assert found.numbers == ["+573005050150"]
    assert found.problems[0].position == 2
    assert found.problems[0].message.startswith("not valid CSV")


def test_hostile_values_are_invalid_and_cut_short() -> None:
    evil = "3005050149\r\nAction: Originate" + "x" * 100
    found = numbers_from_json(f'{{"numbers": [{evil!r}]}}'.replace("'", '"').encode(), "CO")
    assert found.numbers == []
    assert len(found.problems[0].value) == 40


def test_json_shapes() -> None:
    found = numbers_from_json(b'{"numbers": ["3005050149", 3005050150, 1.5, null]}', "CO")
    assert found.numbers == ["+573005050149", "+573005050150"]
    assert positions(found) == [2, 3]
    for body, field in [
        (b"[1]", "numbers"),
        (b'{"numbers": "3005050149"}', "numbers"),
        (b'{"numbers": [], "list": "x"}', "list"),
        (b"{", "body"),
    ]:
        with pytest.raises(ImportFormatError) as caught:
            numbers_from_json(body, "CO")
        assert caught.value.field == field


def test_at_most_so_many_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dnc_import, "MAX_IMPORT_NUMBERS", 3)
    assert len(numbers_from_csv(b"3005050149\n3005050150\nx\n", "CO").numbers) == 2
    with pytest.raises(ImportFormatError, match="at most 3 numbers"):
        numbers_from_csv(b"3005050149\n3005050150\nx\n3005050151\n", "CO")


def test_extensions_are_not_numbers_here() -> None:
    assert numbers_from_csv(b"1234\n", "CO").numbers == []
