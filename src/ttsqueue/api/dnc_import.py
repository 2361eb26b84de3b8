"""Reading a do-not-call import (`POST /dnc`): JSON `{"numbers": [...]}`, or CSV as a text/csv
body or a multipart upload (field `file`). Numbers are normalized like every phone number
(DEFAULT_REGION; extensions are not accepted: the list holds E.164 numbers); invalid ones are
reported by line (CSV) or index (JSON) and never stop the valid ones.

CSV: one number per line, or a header naming a `phone_number` column (other columns are
ignored); a header without that column is accepted when the file has a single column.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ttsqueue.csvfile import CsvFileError, Record, column_name, decode, detect_separator, records
from ttsqueue.phone import InvalidPhoneNumber, parse_phone

PHONE_COLUMN = "phone_number"
MAX_IMPORT_NUMBERS = 200_000
# ~20 bytes a line for the most numbers an import takes, with room for extra columns.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
# Errors listed in an answer; the count is always complete.
MAX_REPORTED_ERRORS = 1000
_VALUE_SHOWN = 40

CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel"})


class ImportFormatError(ValueError):
    """The body as a whole is unusable (a 422 naming `field`)."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ImportProblem:
    position: int
    value: str
    message: str


@dataclass(slots=True)
class ImportNumbers:
    # "line" (CSV) or "index" (JSON): what a problem's position counts.
    unit: str
    numbers: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.numbers) + len(self.problems)


# (position, raw value, why it is unusable before parsing or None)
Entry = tuple[int, str, str | None]


def _normalize(entries: Iterator[Entry], unit: str, region: str) -> ImportNumbers:
    result = ImportNumbers(unit)
    for position, raw, problem in entries:
        if result.received >= MAX_IMPORT_NUMBERS:
            raise ImportFormatError("numbers", f"at most {MAX_IMPORT_NUMBERS} numbers per import")
        if problem is not None:
            result.problems.append(ImportProblem(position, raw[:_VALUE_SHOWN], problem))
            continue
        try:
            result.numbers.append(parse_phone(raw, region, allow_extensions=False).e164)
        except InvalidPhoneNumber as exc:
            result.problems.append(ImportProblem(position, raw[:_VALUE_SHOWN], str(exc)))
    return result


def _json_entries(body: bytes) -> Iterator[Entry]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ImportFormatError("body", f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("numbers"), list):
        raise ImportFormatError("numbers", 'the body must be {"numbers": ["3005050149", ...]}')
    unknown = sorted(set(data) - {"numbers"})
    if unknown:
        raise ImportFormatError(unknown[0], "unknown field")
    for index, item in enumerate(data["numbers"]):
        if isinstance(item, bool) or not isinstance(item, str | int):
            yield index, "", "must be a string (or an integer)"
        else:
            yield index, str(item), None


def _column(header: Record) -> int | None:
    """Which column holds the numbers when the first record is a header, else None."""
    names = [column_name(cell) for cell in header.cells]
    if PHONE_COLUMN in names:
        return names.index(PHONE_COLUMN)
    if any(ch.isdigit() for cell in header.cells for ch in cell):
        return None  # the first line is data
    if len(names) == 1:
        return 0
    raise ImportFormatError(
        "file", f"the header has no {PHONE_COLUMN} column (found: {', '.join(names)})"
    )


def _csv_entries(data: bytes) -> Iterator[Entry]:
    try:
        text = decode(data)
    except CsvFileError as exc:
        raise ImportFormatError("file", str(exc)) from None
    rows: Iterator[Record] = (
        r for r in records(text, detect_separator(text, PHONE_COLUMN)) if not r.blank
    )
    first = next(rows, None)
    if first is None:
        return
    column = _column(first) if first.error is None else None
    if column is None:  # no header: the first record is a number too
        rows = itertools.chain([first], rows)
        column = 0
    for record in rows:
        if record.error is not None:
            yield record.line, "", record.error
        else:
            cell = record.cells[column].strip() if column < len(record.cells) else ""
            yield record.line, cell, None


def numbers_from_json(body: bytes, region: str) -> ImportNumbers:
    return _normalize(_json_entries(body), "index", region)


def numbers_from_csv(data: bytes, region: str) -> ImportNumbers:
    return _normalize(_csv_entries(data), "line", region)


def problems_json(found: ImportNumbers) -> list[dict[str, Any]]:
    return [
        {found.unit: p.position, "value": p.value, "message": p.message}
        for p in found.problems[:MAX_REPORTED_ERRORS]
    ]
