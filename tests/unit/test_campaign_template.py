"""Message templates with `{column}` placeholders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsqueue.campaigns.template import TemplateError, parse_template


def test_placeholders_render_from_normalized_columns() -> None:
    template = parse_template("Hola {Nombre}, su cita es el {fecha cita} a las {HORA}.")
    assert template.columns == {"nombre", "fecha_cita", "hora"}
    values = {"nombre": "Ana", "fecha_cita": "lunes 3", "hora": "9:00"}
    assert template.render(values) == "Hola Ana, su cita es el lunes 3 a las 9:00."


def test_doubled_braces_are_literal() -> None:
    template = parse_template("Código {{ {codigo} }}")
    assert template.columns == {"codigo"}
    assert template.render({"codigo": "1234"}) == "Código { 1234 }"


def test_every_placeholder_must_be_a_column() -> None:
    template = parse_template("Hola {nombre}, debe {monto}")
    template.check_columns(["phone_number", "nombre", "monto", "extra"])
    with pytest.raises(TemplateError, match=r"\{monto\} is not a column \(columns: nombre, phone"):
        template.check_columns(["phone_number", "nombre"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Hola {", "unmatched '{' at character 6"),
        ("Hola }", "unmatched '}' at character 6"),
        ("Hola {}", "empty placeholder"),
        ("Hola {!!}", "empty placeholder"),
        ("Hola {a{b}}", "unmatched '{'"),
        ("Hola\x00", "control character U+0000"),
        ("Hola\r\nAction: Originate", "control character U+000D"),
        ("x" * 20_001, "longer than"),
    ],
)
def test_bad_templates_are_refused(text: str, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(text)
    assert words in str(caught.value)


def test_attributes_indexes_and_format_specs_are_just_names() -> None:
    # Nothing between braces is evaluated: `{a.b}` is the column `a_b`, never an attribute.
    template = parse_template("{a.__class__} {b[0]} {c:>10} {d!r}")
    assert template.columns == {"a_class", "b_0", "c_10", "d_r"}


@given(st.text(max_size=60), st.dictionaries(st.sampled_from("abc"), st.text(max_size=10)))
def test_rendering_never_fails_on_a_parsed_template(text: str, values: dict[str, str]) -> None:
    try:
        template = parse_template(text)
    except TemplateError:
        return
    filled = {column: values.get(column, "v") for column in template.columns}
    rendered = template.render(filled)
    assert isinstance(rendered, str)
    if not template.columns:
        assert rendered == text.replace("{{", "{").replace("}}", "}")
