"""A campaign's message template: text with `{column}` placeholders filled from each row. Pure.

`{{` and `}}` stand for literal braces. A placeholder names a column the way headers are
normalized (`{Fecha Cita}` and `{fecha_cita}` are the same column); nothing else is allowed
between braces (no format specs, attributes or indexes: a template is data, not code).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ttsqueue.csvfile import column_name
from ttsqueue.text_rules import ALLOWED_CONTROLS, first_control_char

# Long enough for any message of MAX_TEXT_LENGTH with long placeholder names.
MAX_TEMPLATE_LENGTH = 20_000
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """The template cannot be used; the message names the problem."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    column: str


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(p.column for p in self.parts if isinstance(p, Placeholder))

    def check_columns(self, available: Collection[str]) -> None:
        """TemplateError when a placeholder names no column of the file or rows."""
        missing = sorted(self.columns - set(available))
        if missing:
            shown = ", ".join(sorted(available)) or "none"
            names = ", ".join("{" + name + "}" for name in missing)
            raise TemplateError(f"placeholder {names} is not a column (columns: {shown})")

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(
            values[part.column] if isinstance(part, Placeholder) else part for part in self.parts
        )


def _literal(token: str, position: int) -> str:
    if token in ("{{", "}}"):
        return token[0]
    raise TemplateError(
        f"unmatched {token!r} at character {position + 1}; write {token * 2!r} for a literal brace"
    )


def parse_template(text: str) -> MessageTemplate:
    if not isinstance(text, str) or not text.strip():
        raise TemplateError("the message template is empty")
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"the message template is longer than {MAX_TEMPLATE_LENGTH} characters")
    bad = first_control_char(text, ALLOWED_CONTROLS)
    if bad is not None:
        raise TemplateError(f"the message template contains control character U+{ord(bad):04X}")
    parts: list[str | Placeholder] = []
    last = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[last : match.start()])
        last = match.end()
        if match[1] is None:
            parts.append(_literal(match[0], match.start()))
            continue
        column = column_name(match[1])
        if not column:
            raise TemplateError(
                f"empty placeholder {match[0]!r} at character {match.start() + 1}; "
                "write {{ and }} for literal braces"
            )
        parts.append(Placeholder(column))
    parts.append(text[last:])
    return MessageTemplate(text, tuple(p for p in parts if p != ""))
