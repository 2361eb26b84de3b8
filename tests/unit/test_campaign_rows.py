"""Campaign rows from a CSV file or JSON: every edge case a spreadsheet produces, errors by
line, and thousands of bad rows that never stop the good ones."""

from __future__ import annotations

import pytest

from ttsqueue.campaigns.rows import ParsedRows, RowRules, rows_from_csv, rows_from_json
from ttsqueue.campaigns.template import parse_template
from ttsqueue.csvfile import CsvFileError

RULES = RowRules(parse_template("Hola {nombre}, su cita es el {fecha}."), region="CO")


def csv(*lines: str, bom: bool = False, newline: str = "\r\n") -> bytes:
    text = newline.join(lines) + newline
    return (("\ufeff" if bom else "") + text).encode()


def errors_by_line(parsed: ParsedRows) -> list[tuple[int, str]]:
    return [(e.position, e.field) for e in parsed.errors]


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("separator", [";", ",", "\t"])
def test_excel_exports_with_or_without_bom(bom: bool, separator: str) -> None:
    data = csv(
        separator.join(["Nombre", "Phone Number", "Fecha"]),
        separator.join(["Ana", "300 505 0149", "lunes 3"]),
        bom=bom,
    )
    parsed = rows_from_csv(data, RULES)
    assert parsed.errors == []
    assert parsed.separator == separator
    assert parsed.columns == ["nombre", "phone_number", "fecha"]
    [row] = parsed.rows
    assert (row.position, row.phone.e164) == (2, "+573005050149")
    assert row.text == "Hola Ana, su cita es el lunes 3."


def test_quoted_separators_quotes_and_line_breaks() -> None:
    data = csv(
        "nombre;phone_number;fecha",
        '"Pérez; Ana";3005050149;"martes, 4 de marzo"',
        '"Luis ""el Flaco""";3005050150;"miércoles\r\n5"',
        "Eva;3005050151;jueves",
    )
    parsed = rows_from_csv(data, RULES)
    assert parsed.errors == []
    assert [r.position for r in parsed.rows] == [2, 3, 5]  # the third row starts on line 5
    assert parsed.rows[0].text == "Hola Pérez; Ana, su cita es el martes, 4 de marzo."
    assert parsed.rows[1].text == 'Hola Luis "el Flaco", su cita es el miércoles\n5.'


def test_blank_lines_are_skipped_but_counted() -> None:
    data = csv("", "nombre,phone_number,fecha", "", "Ana,3005050149,lunes", ",,", "Eva,x,martes")
    parsed = rows_from_csv(data, RULES)
    assert [r.position for r in parsed.rows] == [4]
    assert errors_by_line(parsed) == [(6, "phone_number")]


def test_missing_and_extra_cells() -> None:
    data = csv(
        "nombre;phone_number;fecha;notas",
        "Ana;3005050149;lunes",  # missing trailing cell: empty, unused
        "Luis;3005050150",  # missing a used cell
        "Eva;3005050151;martes;;;",  # extra empty cells: padding
        "Paco;3005050152;jueves;x;y",  # extra values: an error
    )
    parsed = rows_from_csv(data, RULES)
    assert [r.position for r in parsed.rows] == [2, 4]
    assert errors_by_line(parsed) == [(3, "fecha"), (5, "row")]
    assert "5 values but the header has 4" in parsed.errors[1].message


def test_a_number_twice_is_reported_on_the_later_line() -> None:
    data = csv(
        "nombre,phone_number,fecha",
        "Ana,3005050149,lunes",
        "Ana otra vez,+57 300 505 0149,martes",
    )
    parsed = rows_from_csv(data, RULES)
    assert [r.position for r in parsed.rows] == [2]
    assert parsed.errors[0].position == 3
    assert parsed.errors[0].message == "duplicate of line 2"


def test_every_problem_of_a_row_is_reported() -> None:
    parsed = rows_from_csv(csv("nombre;phone_number;fecha", ";12;"), RULES)
    assert errors_by_line(parsed) == [(2, "phone_number"), (2, "fecha"), (2, "nombre")]


def test_the_rendered_message_obeys_the_text_rules() -> None:
    rules = RowRules(parse_template("Aviso: {detalle}"), region="CO", max_text_length=30)
    data = csv(
        "phone_number;detalle",
        "3005050149;corto",
        "3005050150;" + "largo " * 10,
        '3005050151;"con\x00nulo"',
    )
    parsed = rows_from_csv(data, rules)
    assert [r.position for r in parsed.rows] == [2]
    assert errors_by_line(parsed) == [(3, "text"), (4, "text")]
    assert "at most 30" in parsed.errors[0].message
    assert "U+0000" in parsed.errors[1].message


def test_a_bad_quote_spoils_one_row_only() -> None:
    data = csv(
        "nombre;phone_number;fecha",
        'Ana;"3005050149"x;lunes',
        "Luis;3005050150;martes",
        'Eva;3005050151;"never closed',
        "Paco;3005050152;jueves",
    )
    parsed = rows_from_csv(data, RULES)
    assert [r.position for r in parsed.rows] == [3]
    assert errors_by_line(parsed) == [(2, "row"), (4, "row")]
    assert "never closed" in parsed.errors[1].message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (csv("nombre;telefono;fecha", "Ana;3005050149;lunes"), "no phone_number column"),
        (csv("phone_number;nombre"), "placeholder {fecha} is not a column"),
        (csv("phone_number;Nombre;NOMBRE;fecha"), "names a column twice: nombre"),
        ("phone_number;nombre;fecha\nJosé;x;y\n".encode("latin-1"), "line 2 is not valid UTF-8"),
    ],
)
def test_files_refused_as_a_whole(data: bytes, words: str) -> None:
    with pytest.raises(CsvFileError) as caught:
        rows_from_csv(data, RULES)
    assert words in str(caught.value)


def test_too_many_rows() -> None:
    rules = RowRules(RULES.template, region="CO", max_rows=3)
    lines = ["phone_number;nombre;fecha"] + [f"30050501{n:02d};a;b" for n in range(4)]
    with pytest.raises(CsvFileError, match="more than 3 rows"):
        rows_from_csv(csv(*lines), rules)


def test_five_thousand_bad_rows_do_not_stop_the_good_ones() -> None:
    lines = ["nombre;phone_number;fecha"]
    for n in range(10_000):
        number = f"300{n:07d}" if n % 2 == 0 else f"12{n}"
        lines.append(f"Persona {n};{number};lunes")
    parsed = rows_from_csv(csv(*lines), RULES)
    assert len(parsed.rows) == 5_000
    assert len(parsed.errors) == 5_000
    assert [e.position for e in parsed.errors[:3]] == [3, 5, 7]
    assert parsed.rows[-1].position == 10_000
    assert parsed.rows[-1].text == "Hola Persona 9998, su cita es el lunes."


def test_json_rows_by_index() -> None:
    items = [
        {"Nombre": "Ana", "phone_number": "3005050149", "fecha": "lunes"},
        {"nombre": "Luis", "phone_number": 3005050150, "fecha": 3},
        {"nombre": "Eva", "phone_number": "3005050149", "fecha": "martes"},
        ["not", "an", "object"],
        {"nombre": {"x": 1}, "phone_number": "3005050151", "fecha": "x"},
        {"nombre": "Sin número", "fecha": "x"},
        {"nombre": True, "phone_number": "3005050152", "fecha": "x"},
    ]
    parsed = rows_from_json(items, RULES)
    assert parsed.unit == "index"
    assert [r.position for r in parsed.rows] == [0, 1]
    assert parsed.rows[1].text == "Hola Luis, su cita es el 3."
    assert [(e.position, e.field) for e in parsed.errors] == [
        (2, "phone_number"),
        (3, "row"),
        (4, "row"),
        (5, "phone_number"),
        (6, "row"),
    ]
    assert parsed.errors[0].to_json("index") == {
        "index": 2,
        "field": "phone_number",
        "message": "duplicate of index 0",
    }


def test_extensions_only_when_allowed() -> None:
    data = csv("phone_number;nombre;fecha", "1234;Recepción;hoy")
    assert errors_by_line(rows_from_csv(data, RULES)) == [(2, "phone_number")]
    allowed = RowRules(RULES.template, region="CO", allow_extensions=True)
    assert rows_from_csv(data, allowed).rows[0].phone.e164 == "1234"
