"""CSV files as spreadsheets export them, read with the physical line of every record. Pure.

- UTF-8, with or without the byte-order mark Excel writes ("CSV UTF-8"); anything else is
  refused with the line of the first bad byte (save the file as CSV UTF-8).
- The separator is detected on the header line: `;` (what Excel writes where the decimal mark
  is a comma, as in Colombia), `,` or a tab.
- Quoted fields may hold separators, quotes (`""`) and line breaks; a record is reported at
  the line it starts on, counting the header as line 1 and blank lines too.
- A quoting error spoils only its own record (reported), never the records after it.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

BOM = "\ufeff"
SEPARATORS = (";", ",", "\t")
_NOT_NAME = re.compile(r"[^a-z0-9]+")


class CsvFileError(ValueError):
    """The file as a whole cannot be read (encoding, no header); the message says how to fix it."""


def decode(data: bytes) -> str:
    """UTF-8 text without its BOM; CsvFileError naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFileError(
            f"line {line} is not valid UTF-8: save the file as 'CSV UTF-8' "
            "(in Excel: Save As > CSV UTF-8 (Comma delimited))"
        ) from None
    return text.removeprefix(BOM)


def column_name(raw: str) -> str:
    """`Teléfono Móvil` -> `telefono_movil`: accents dropped, lower case, `_` between words."""
    plain = unicodedata.normalize("NFKD", raw.strip().removeprefix(BOM))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return _NOT_NAME.sub("_", plain.lower()).strip("_")


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].split("\r", 1)[0]


def _count_outside_quotes(line: str, separator: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == separator and not quoted:
            count += 1
    return count


def detect_separator(text: str, wanted_column: str | None = None) -> str:
    """The separator of the header line: the one that yields `wanted_column` when one does,
    else the most frequent (`,` when there is none: a single column)."""
    header = _first_line(text)
    counts = {sep: _count_outside_quotes(header, sep) for sep in SEPARATORS}
    ranked = [sep for sep in sorted(SEPARATORS, key=lambda sep: -counts[sep]) if counts[sep]]
    if not ranked:
        return ","  # a single column
    if wanted_column is not None:
        for sep in ranked:
            cells = next(csv.reader([header], delimiter=sep), [])
            if wanted_column in (column_name(cell) for cell in cells):
                return sep
    return ranked[0]


@dataclass(frozen=True, slots=True)
class Record:
    # Physical line the record starts on (header = 1).
    line: int
    cells: list[str]
    # Set when the record is not valid CSV; `cells` is then empty.
    error: str | None = None

    @property
    def blank(self) -> bool:
        return self.error is None and not any(cell.strip() for cell in self.cells)


def _describe(exc: csv.Error) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return "a quoted field that starts on this line is never closed"
    return f"not valid CSV ({message})"


def records(text: str, separator: str) -> Iterator[Record]:
    """Every record with its starting line; blank lines come out as blank records."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    done = 0  # lines consumed so far
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(done + 1, [], _describe(exc))
        else:
            yield Record(done + 1, cells)
        done = reader.line_num
