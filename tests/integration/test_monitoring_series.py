"""Every series the Grafana dashboard and the Prometheus alert rules under deploy/ use is
really exposed by /metrics, with the labels and label values they select on: checked against a
scrape of the real API after real jobs went through a real worker (answered, busy, canceled;
gTTS unreachable from here, so the speech breaker opens too)."""

from __future__ import annotations

from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.in_process import running_worker, terminal, wait_for
from tests.monitoring_files import TARGET_LABELS, Query, alert_queries, dashboard_queries, selectors
from ttsqueue.config import Settings

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.settings(
        TTS_ENGINE="gtts",
        TTS_FALLBACK_ENGINE="espeak",
        GTTS_TIMEOUT=0.5,
        GTTS_BREAKER_THRESHOLD=1,
        GTTS_BREAKER_COOLDOWN=300,
        WORKER_CONCURRENCY=2,
    ),
]

Exposed = dict[str, list[dict[str, str]]]  # sample name -> the label sets it has


def exposed(scrape: str) -> Exposed:
    found: Exposed = defaultdict(list)
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            found[sample.name].append(dict(sample.labels))
    return found


def missing_from(queries: list[Query], series: Exposed) -> list[str]:
    """What `queries` select that the scrape does not have."""
    problems = []
    for query in queries:
        for selector in selectors(query.expr):
            if selector.metric == "up":  # Prometheus's own, per target
                continue
            label_sets = series.get(selector.metric)
            if not label_sets:
                problems.append(f"{query.where}: no series {selector.metric}")
                continue
            for label, operator, value in selector.matchers:
                if label in TARGET_LABELS:
                    continue
                values = {labels[label] for labels in label_sets if label in labels}
                if not values:
                    problems.append(f"{query.where}: {selector.metric} has no label {label}")
                elif operator in ("=", "=~"):
                    wanted = set(value.split("|")) if operator == "=~" else {value}
                    if not wanted <= values:
                        problems.append(
                            f"{query.where}: {selector.metric}{{{label}}} never has "
                            f"{sorted(wanted - values)} (has {sorted(values)})"
                        )
    return problems


async def run_jobs_and_scrape(api: httpx.AsyncClient, settings: Settings) -> Exposed:
    body = {"text": "Aviso para el tablero de Grafana", "phone_number": "3005050149"}
    canceled = (await api.post("/tts/call", json=body)).json()["job_id"]
    assert (await api.delete(f"/tts/call/{canceled}")).status_code == 200
    async with running_worker(settings):
        jobs = [(await api.post("/tts/call", json=body)).json()["job_id"] for _ in range(2)]
        high = await api.post("/tts/call", json={**body, "priority": "high"})
        busy = {**body, "phone_number": "3005550001", "max_retries": 0}
        jobs += [high.json()["job_id"], (await api.post("/tts/call", json=busy)).json()["job_id"]]
        for job_id in jobs:
            await wait_for(api, job_id, terminal)
        reply = await api.get("/metrics")
    assert reply.status_code == 200
    return exposed(reply.text)


async def test_every_series_the_monitoring_files_use_is_exposed(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    series = await run_jobs_and_scrape(api, settings)
    queries = dashboard_queries() + alert_queries()
    assert len(queries) > 20
    assert missing_from(queries, series) == []
    # The run really produced what the panels and alerts look at.
    assert series["ttsq_tts_breaker_open"] == [{}]
    statuses = {labels["status"] for labels in series["ttsq_jobs_finished_total"]}
    assert statuses == {"completed", "failed", "canceled"}


def test_the_check_finds_what_is_missing() -> None:
    """The comparison above can fail: a misspelt series, label or value is reported."""
    series: Exposed = {
        "ttsq_queue_depth": [{"queue": "normal"}, {"queue": "dead"}],
        "ttsq_workers_alive": [{}],
    }
    queries = [
        Query("ok", 'sum(ttsq_queue_depth{job=~"tts-queue", queue=~"normal|dead"}) + up'),
        Query("typo", "ttsq_workers_alvie == 0"),
        Query("label", 'ttsq_workers_alive{state="idle"}'),
        Query("value", 'ttsq_queue_depth{queue=~"normal|priority"}'),
    ]
    assert missing_from(queries, series) == [
        "typo: no series ttsq_workers_alvie",
        "label: ttsq_workers_alive has no label state",
        "value: ttsq_queue_depth{queue} never has ['priority'] (has ['dead', 'normal'])",
    ]
