"""Reading CSV files as spreadsheets export them: encodings, separators, line numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsqueue.csvfile import CsvFileError, column_name, decode, detect_separator, records


def test_bom_is_dropped_and_other_encodings_refused_with_the_line() -> None:
    assert decode("\ufeffphone_number\n".encode()) == "phone_number\n"
    assert decode(b"phone_number\n") == "phone_number\n"
    with pytest.raises(CsvFileError, match=r"line 3 is not valid UTF-8.*CSV UTF-8"):
        decode("a\nb\nJosé\n".encode("cp1252"))


@pytest.mark.parametrize(
    ("header", "separator"),
    [
        ("nombre;phone_number;fecha", ";"),
        ("nombre,phone_number,fecha", ","),
        ("nombre\tphone_number", "\t"),
        ('"apellido, nombre";phone_number', ";"),  # a comma inside quotes does not count
        ("phone_number", ","),
        ("a,b;phone_number", ";"),  # the separator that yields the wanted column wins
    ],
)
def test_separator_detected_on_the_header(header: str, separator: str) -> None:
    assert detect_separator(header + "\r\n1;2\n", "phone_number") == separator


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Phone Number", "phone_number"),
        ("  PHONE-NUMBER ", "phone_number"),
        ("Teléfono Móvil", "telefono_movil"),
        ("\ufeffFecha (cita)", "fecha_cita"),
        ("", ""),
        ("***", ""),
    ],
)
def test_column_names_are_normalized(raw: str, name: str) -> None:
    assert column_name(raw) == name


def test_records_start_lines_with_quotes_newlines_and_blanks() -> None:
    text = 'a;b\r\n1;"x;\r\ny"\r\n\r\n2;"say ""hi"""\n;;\n3;4'
    found = [(r.line, r.cells, r.blank) for r in records(text, ";")]
    assert found == [
        (1, ["a", "b"], False),
        (2, ["1", "x;\r\ny"], False),
        (4, [], True),
        (5, ["2", 'say "hi"'], False),
        (6, ["", "", ""], True),
        (7, ["3", "4"], False),
    ]


def test_a_quoting_error_spoils_only_its_record() -> None:
    text = 'a;b\n1;"2"x\n3;4\n5;"never closed\n6;7\n'
    found = list(records(text, ";"))
    assert [(r.line, r.cells) for r in found if r.error is None] == [
        (1, ["a", "b"]),
        (3, ["3", "4"]),
    ]
    errors = [(r.line, r.error) for r in found if r.error is not None]
    assert errors[0][0] == 2
    assert errors[0][1] is not None
    assert errors[0][1].startswith("not valid CSV")
    assert errors[1] == (4, "a quoted field that starts on this line is never closed")


@given(
    st.lists(
        st.lists(st.text(alphabet='ab;,"\n\r x', max_size=6), min_size=2, max_size=2),
        min_size=1,
        max_size=8,
    )
)
def test_written_rows_read_back_at_their_lines(rows: list[list[str]]) -> None:
    # Rows written the way spreadsheets write them (every field quoted) read back intact, each
    # at the line it starts on.
    lines, starts, line = [], [], 1
    for row in rows:
        written = ";".join('"' + cell.replace('"', '""') + '"' for cell in row)
        starts.append(line)
        lines.append(written)
        line += written.count("\n") + written.count("\r") - written.count("\r\n") + 1
    found = list(records("\n".join(lines) + "\n", ";"))
    assert [r.cells for r in found] == rows
    assert [r.line for r in found] == starts
