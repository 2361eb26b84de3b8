"""One voice in the logs: every module of `src/ttsqueue` logs through structlog
(`ttsqueue.logs.get_logger`) with a fixed event name and keyword fields. Only `logs.py`, which
routes the standard library's records through the same renderer, touches `logging` loggers.

Read from the source (AST), so that a new `logging.getLogger` or a %-style call fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ttsqueue

SRC = Path(ttsqueue.__file__).resolve().parent
STDLIB_SETUP = {"logs.py"}
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def stdlib_loggers(tree: ast.AST) -> list[int]:
    """Lines that get a standard-library logger: `logging.getLogger(...)` or an import of
    `getLogger` from `logging`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "logging":
            if any(alias.name == "getLogger" for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr == "getLogger" and ast.unparse(owner) == "logging":
                lines.append(node.lineno)
    return lines


def formatted_calls(tree: ast.AST) -> list[int]:
    """Lines of `log.<level>(...)` calls whose event is not a plain string or that pass
    positional arguments after it (%-style formatting)."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "log"):
            continue
        if node.func.attr not in LEVELS:
            continue
        event = node.args[0] if node.args else None
        plain = isinstance(event, ast.Constant) and isinstance(event.value, str)
        if node.func.attr == "log" or not plain or len(node.args) > 1:
            lines.append(node.lineno)
    return lines


def _sources() -> list[tuple[str, ast.AST]]:
    return [
        (path.relative_to(SRC).as_posix(), ast.parse(path.read_text("utf-8")))
        for path in sorted(SRC.rglob("*.py"))
    ]


def test_no_stdlib_logger_outside_the_log_setup() -> None:
    wrong = [
        f"{where}:{line}"
        for where, tree in _sources()
        if where not in STDLIB_SETUP
        for line in stdlib_loggers(tree)
    ]
    assert wrong == []


def test_events_are_fixed_names_with_keyword_fields() -> None:
    wrong = [f"{where}:{line}" for where, tree in _sources() for line in formatted_calls(tree)]
    assert wrong == []


def test_the_checks_see_what_they_forbid() -> None:
    source = (
        "import logging\n"
        "from logging import getLogger\n"
        "log = logging.getLogger('x')\n"
        "log.info('call %s placed', call_id)\n"
        "log.warning(f'call {call_id} placed')\n"
        "log.log(30, 'placed')\n"
        "log.info('call placed', call_id=call_id)\n"
    )
    tree = ast.parse(source)
    assert stdlib_loggers(tree) == [2, 3]
    assert formatted_calls(tree) == [4, 5, 6]
