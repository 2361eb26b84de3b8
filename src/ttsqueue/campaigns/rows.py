"""A campaign's rows, from an uploaded CSV file or JSON, each checked and its message rendered.
Pure: the caller decides what to do with the valid rows and the errors.

Every row needs a `phone_number` (normalized like any request: DEFAULT_REGION, extensions
only with ALLOW_EXTENSIONS) and a value for every column the template uses; the rendered
message must obey the text rules (SPEC §2). A bad row is reported by its line in the file
(header = line 1; JSON rows by their index) and never stops the others. Choices:
- blank lines (or lines of empty cells) are skipped, not errors;
- a row with fewer cells than the header has its missing cells empty; extra cells are an
  error unless they are empty (spreadsheets pad rows with separators);
- a number given twice is an error on the later row ("duplicate of line N"): a campaign
  calls a person once; columns with an empty header name are ignored;
- with ASTERISK_SERVERS, a number no server's prefixes match is an error on its row, as a
  single request gets a 422 for it, rather than a job that fails when it is released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ttsqueue.campaigns.template import MessageTemplate, TemplateError
from ttsqueue.csvfile import CsvFileError, Record, column_name, decode, detect_separator, records
from ttsqueue.phone import InvalidPhoneNumber, PhoneNumber, parse_phone
from ttsqueue.text_rules import checked_text

PHONE_COLUMN = "phone_number"
DEFAULT_MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RowRules:
    """What a row is checked against (from the settings and the campaign)."""

    template: MessageTemplate
    region: str
    allow_extensions: bool = False
    max_text_length: int = 1000
    max_rows: int = DEFAULT_MAX_ROWS
    # Why no Asterisk server calls an E.164 number, or None when one does (ASTERISK_SERVERS).
    unserved: Callable[[str], str | None] | None = None


@dataclass(frozen=True, slots=True)
class CampaignRow:
    # CSV: the line the row starts on; JSON: the row's index.
    position: int
    phone: PhoneNumber
    text: str
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class RowError:
    position: int
    field: str
    message: str

    def to_json(self, unit: str) -> dict[str, Any]:
        return {unit: self.position, "field": self.field, "message": self.message}


@dataclass(slots=True)
class ParsedRows:
    columns: list[str]
    # "line" for a CSV file, "index" for JSON rows: what `position` counts.
    unit: str
    rows: list[CampaignRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    separator: str | None = None


def _clean(value: str) -> str:
    # A line break inside a quoted cell is a line break, however the file spells it.
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


class _Checker:
    """Checks rows one by one, remembering numbers already seen."""

    def __init__(self, rules: RowRules, parsed: ParsedRows) -> None:
        self.rules = rules
        self.parsed = parsed
        self.seen: dict[str, int] = {}

    def _error(self, position: int, field_name: str, message: str) -> None:
        self.parsed.errors.append(RowError(position, field_name, message))

    def _phone(self, position: int, raw: str) -> PhoneNumber | None:
        if not raw:
            self._error(position, PHONE_COLUMN, "phone_number is empty")
            return None
        try:
            phone = parse_phone(raw, self.rules.region, self.rules.allow_extensions)
        except InvalidPhoneNumber as exc:
            self._error(position, PHONE_COLUMN, str(exc))
            return None
        refused = self.rules.unserved(phone.e164) if self.rules.unserved is not None else None
        if refused is not None:
            self._error(position, PHONE_COLUMN, refused)
            return None
        first = self.seen.setdefault(phone.e164, position)
        if first != position:
            self._error(position, PHONE_COLUMN, f"duplicate of {self.parsed.unit} {first}")
            return None
        return phone

    def check(self, position: int, values: dict[str, str]) -> None:
        before = len(self.parsed.errors)
        phone = self._phone(position, values.get(PHONE_COLUMN, ""))
        empty = sorted(c for c in self.rules.template.columns if not values.get(c))
        for column in empty:
            self._error(position, column, f"{column} is empty but the message uses {{{column}}}")
        if empty:
            return
        try:
            text = checked_text(self.rules.template.render(values), self.rules.max_text_length)
        except ValueError as exc:
            self._error(position, "text", f"the message for this row {exc}")
            return
        if phone is not None and len(self.parsed.errors) == before:
            self.parsed.rows.append(CampaignRow(position, phone, text, values))


def _header(record: Record, rules: RowRules) -> list[str]:
    if record.error is not None:
        raise CsvFileError(f"line {record.line}: the header is {record.error}")
    columns = [column_name(cell) for cell in record.cells]
    named = [c for c in columns if c]
    duplicated = sorted({c for c in named if named.count(c) > 1})
    if duplicated:
        raise CsvFileError(f"the header names a column twice: {', '.join(duplicated)}")
    if PHONE_COLUMN not in columns:
        raise CsvFileError(
            f"the header has no {PHONE_COLUMN} column (found: {', '.join(named) or 'none'})"
        )
    try:
        rules.template.check_columns(named)
    except TemplateError as exc:
        raise CsvFileError(str(exc)) from None
    return columns


def _row_values(record: Record, columns: list[str]) -> dict[str, str] | str:
    """The row's cells by column, or why they do not fit the header."""
    cells = record.cells
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        return f"the row has {len(cells)} values but the header has {len(columns)} columns"
    values = {name: "" for name in columns if name}
    for name, cell in zip(columns, cells, strict=False):
        if name:
            values[name] = _clean(cell)
    return values


def rows_from_csv(data: bytes, rules: RowRules) -> ParsedRows:
    """Rows of an uploaded CSV file. CsvFileError when the file as a whole is unusable."""
    text = decode(data)
    separator = detect_separator(text, PHONE_COLUMN)
    stream = (r for r in records(text, separator) if not r.blank)
    header = next(stream, None)
    if header is None:
        raise CsvFileError("the file is empty: it needs a header line with a phone_number column")
    columns = _header(header, rules)
    parsed = ParsedRows([c for c in columns if c], "line", separator=separator)
    checker = _Checker(rules, parsed)
    for count, record in enumerate(stream, start=1):
        if count > rules.max_rows:
            raise CsvFileError(f"the file has more than {rules.max_rows} rows")
        values = _row_values(record, columns) if record.error is None else record.error
        if isinstance(values, str):
            parsed.errors.append(RowError(record.line, "row", values))
        else:
            checker.check(record.line, values)
    return parsed


def _json_values(item: object) -> dict[str, str] | str:
    if not isinstance(item, Mapping):
        return "each row must be an object of column: value"
    values: dict[str, str] = {}
    for key, value in item.items():
        name = column_name(str(key))
        if isinstance(value, bool) or not isinstance(value, str | int | float | None):
            return f"the value of {key!r} must be a string or a number"
        values[name] = "" if value is None else _clean(str(value))
    return values


def rows_from_json(items: Sequence[object], rules: RowRules) -> ParsedRows:
    """Rows given as JSON objects (`[{"phone_number": ..., "nombre": ...}, ...]`)."""
    if len(items) > rules.max_rows:
        raise CsvFileError(f"more than {rules.max_rows} rows")
    columns: dict[str, None] = {}
    for item in items:
        if isinstance(item, Mapping):
            columns.update((column_name(str(k)), None) for k in item)
    parsed = ParsedRows(list(columns), "index")
    checker = _Checker(rules, parsed)
    for index, item in enumerate(items):
        values = _json_values(item)
        if isinstance(values, str):
            parsed.errors.append(RowError(index, "row", values))
        else:
            checker.check(index, values)
    return parsed


def error_lines(errors: Iterable[RowError]) -> list[int]:
    """The distinct positions with at least one error, in order."""
    return sorted({e.position for e in errors})
