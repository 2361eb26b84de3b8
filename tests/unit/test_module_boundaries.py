"""What each part of `src/ttsqueue` may import (docs/architecture.md draws the same map).

Edges point downward only: the API and the dashboard never import a dialer, a speech engine,
the worker or each other; they share `views/`; the API knows languages from `tts/catalog.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ttsqueue

SRC = Path(ttsqueue.__file__).resolve().parent

# part -> the other parts it may import (a part is a folder, or a top-level module).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "domain": set(),
    "phone": set(),
    "text_rules": set(),
    "csvfile": set(),
    "prompts": set(),
    "supervised": {"logs"},
    "vendoring": set(),
    "heap": set(),
    "asterisk_servers": set(),
    "policy": {"config", "errors", "store", "domain"},
    "config": {"asterisk_servers", "errors", "policy"},
    "logs": {"config"},
    "addresses": {"config"},
    "backends": {"config", "domain"},
    "views": {"domain"},
    "campaigns": {
        "broker",
        "csvfile",
        "domain",
        "errors",
        "logs",
        "phone",
        "policy",
        "store",
        "text_rules",
    },
    "store": {"asterisk_servers", "config", "domain", "errors", "logs", "policy"},
    "broker": {"config", "domain", "errors", "logs"},
    "startup": {"broker", "config", "errors", "logs", "store"},
    "stats_snapshot": {"asterisk_servers", "broker", "store"},
    "tts": {"config", "errors", "store", "logs"},
    "webhooks": {"config", "logs", "store", "errors", "domain"},
    "dialer": {
        "asterisk_servers",
        "backends",
        "config",
        "domain",
        "errors",
        "logs",
        "phone",
        "store",
        "supervised",
    },
    "worker": {
        "asterisk_servers",
        "broker",
        "campaigns",
        "config",
        "dialer",
        "domain",
        "errors",
        "heap",
        "logs",
        "policy",
        "startup",
        "store",
        "tts",
        "webhooks",
    },
    "api": {
        "asterisk_servers",
        "backends",
        "broker",
        "campaigns",
        "config",
        "csvfile",
        "domain",
        "errors",
        "heap",
        "logs",
        "phone",
        "policy",
        "prompts",
        "startup",
        "stats_snapshot",
        "store",
        "text_rules",
        "tts",
        "vendoring",
        "views",
        "webhooks",
    },
    "dashboard": {
        "addresses",
        "backends",
        "broker",
        "campaigns",
        "config",
        "domain",
        "errors",
        "heap",
        "logs",
        "stats_snapshot",
        "store",
        "vendoring",
        "views",
    },
    "ops": {"addresses", "broker", "config", "domain", "errors", "store", "logs"},
    "cli": {"addresses", "api", "config", "domain", "errors", "ops", "worker", "dashboard", "logs"},
}
# Modules of a part that another part may reach into, when not the whole part.
ONLY: dict[tuple[str, str], set[str]] = {
    ("api", "tts"): {"ttsqueue.tts.catalog"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports() -> list[tuple[str, str, str]]:
    """(importing file, its part, imported ttsqueue module) for every import in the tree."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith("ttsqueue."):
                    found.append((path.relative_to(SRC).as_posix(), _part(path), module))
    return found


def test_every_part_imports_only_what_it_may() -> None:
    wrong = []
    for where, part, module in imports():
        other = module.split(".")[1]
        if other == part or part == "__init__":
            continue
        if part not in ALLOWED:
            wrong.append(f"{where}: part {part!r} is not in the map")
        elif other not in ALLOWED[part]:
            wrong.append(f"{where} imports {module}")
        elif (part, other) in ONLY and module not in ONLY[(part, other)]:
            wrong.append(f"{where} imports {module} (only {sorted(ONLY[(part, other)])})")
    assert wrong == []


def test_the_edges_never_reach_the_machinery() -> None:
    """The API and the dashboard hold no dialer, engine or worker; neither imports the other."""
    for part in ("api", "dashboard"):
        assert not ALLOWED[part] & {"dialer", "worker", "ops"}
    assert "api" not in ALLOWED["dashboard"]
    assert "dashboard" not in ALLOWED["api"]
    assert any(module == "ttsqueue.tts.catalog" for _, part, module in imports() if part == "api")
