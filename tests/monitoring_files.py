"""What the monitoring files under deploy/ ask of /metrics: every PromQL expression of the
Grafana dashboard and of the Prometheus alert rules, and the series selectors in them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "tts-queue.json"
PROMETHEUS = ROOT / "deploy" / "prometheus"
# Grafana's variables, as a Prometheus would see them once Grafana has filled them in.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": "tts-queue"}
# Labels Prometheus adds to every scraped series: not the application's to expose.
TARGET_LABELS = frozenset({"job", "instance"})
_SELECTOR = re.compile(r"\b(ttsq_[a-z0-9_]+|up)\b(?:\{([^}]*)\})?")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@dataclass(frozen=True, slots=True)
class Query:
    where: str  # the panel or the alert
    expr: str  # PromQL, Grafana variables filled in


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def fill(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_queries() -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} {target['refId']}", fill(target["expr"]))
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def selectors(expr: str) -> list[Selector]:
    found = []
    for metric, inside in _SELECTOR.findall(expr):
        matchers = tuple(_MATCHER.findall(inside or ""))
        found.append(Selector(metric, tuple((k, op, v) for k, op, v in matchers)))
    return found
