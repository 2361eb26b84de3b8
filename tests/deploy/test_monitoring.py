"""The Prometheus configuration, alert rules and Grafana dashboard under deploy/, checked by
Prometheus's own promtool (Debian package `prometheus`, installed by `./manage.sh check`): the
configuration and rules are valid, every alert fires in its unit test (alerts.test.yml) and
stays quiet in the healthy twin, and every dashboard query is valid PromQL. That the series
they use are really exposed is tests/integration/test_monitoring_series.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from tests.monitoring_files import (
    PROMETHEUS,
    alert_rules,
    dashboard,
    dashboard_queries,
)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        raise RuntimeError("promtool is missing: apt-get install prometheus (manage.sh check does)")
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_prometheus_configuration_is_valid_and_loads_the_rules() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_alert_rules_are_valid() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_in_the_unit_tests() -> None:
    done = promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert "ttsq_queue_depth" in exprs["TtsQueueBacklogGrowing"]
    assert exprs["TtsQueueNoLiveWorkers"].startswith("ttsq_workers_alive == 0")
    assert "ttsq_tts_breaker_open" in exprs["TtsQueueSpeechBreakerOpen"]
    assert 'queue="dead"' in exprs["TtsQueueDeadLetters"]
    assert 'status="failed"' in exprs["TtsQueueCallsFailing"]
    assert exprs["TtsQueueRabbitMQDown"].startswith("ttsq_broker_up == 0")
    assert exprs["TtsQueueApiOrRedisDown"].startswith('up{job="tts-queue"} == 0')
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (Grafana's variables filled in)."""
    queries = dashboard_queries()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": query.expr}
                    for i, query in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_the_dashboard_covers_what_operators_watch() -> None:
    board = dashboard()
    exprs = " ".join(query.expr for query in dashboard_queries())
    for series in (
        "ttsq_jobs_submitted_total",  # throughput
        "ttsq_jobs_finished_total",  # outcomes
        "ttsq_queue_depth",  # queue depths
        "ttsq_calls_active",  # trunk use
        "ttsq_tts_cache_hits_total",  # cache hit rate
        "ttsq_job_end_to_end_seconds_bucket",  # latency histograms
        "ttsq_job_processing_seconds_bucket",
        "ttsq_tts_synthesis_seconds_bucket",
    ):
        assert series in exprs, series
    assert board["uid"] == "tts-queue"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_dashboard_panels_are_well_formed_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        taken = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not taken & cells, f"{panel['title']} overlaps another panel"
        cells |= taken
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert 'job=~"$job"' in target["expr"], panel["title"]
