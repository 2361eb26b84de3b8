"""Figures a test run reports for docs/reliability.md: printed, and appended as JSON lines to
$TTSQ_FAULT_REPORT when it is set (a plain test run writes no file)."""

from __future__ import annotations

import os

import orjson


def record(case: str, **figures: object) -> None:
    line = orjson.dumps({"case": case, **figures}).decode()
    print(f"FIGURES {line}")
    target = os.environ.get("TTSQ_FAULT_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
