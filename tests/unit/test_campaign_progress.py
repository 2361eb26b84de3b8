"""What a campaign shows (counts over every row, progress, ETA) and how its settings are kept:
pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ttsqueue.campaigns.progress import campaign_view, eta_seconds
from ttsqueue.campaigns.spec import CampaignSpec, CampaignState, row_job_id
from ttsqueue.campaigns.store import CampaignRecord

START = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def spec(total: int = 100, calls_per_minute: int | None = None) -> CampaignSpec:
    return CampaignSpec(
        campaign_id="2f1d8c6e-0b13-4f0e-9a57-9b3f4a526c1e",
        name="Citas",
        template="Hola {nombre}",
        language="es",
        engine="espeak",
        voice=None,
        max_retries=2,
        retry_delay=60,
        max_concurrent_calls=5,
        calls_per_minute=calls_per_minute,
        calling_windows="co-ley-2300",
        timezone=None,
        caller_id=None,
        created_at="2026-03-10T15:00:00.000Z",
        total=total,
        invalid=3,
    )


def record(
    state: CampaignState = CampaignState.RUNNING,
    released: int = 40,
    calls_per_minute: int | None = None,
) -> CampaignRecord:
    return CampaignRecord(
        spec=spec(calls_per_minute=calls_per_minute),
        state=state,
        released=released,
        started_at=START.isoformat(),
        finished_at=None,
        next_release_ms=0,
    )


def test_spec_survives_redis_as_text() -> None:
    original = spec(calls_per_minute=30)
    assert CampaignSpec.from_fields(original.to_fields()) == original
    assert "voice" not in original.to_fields()


def test_row_job_ids_are_stable_and_distinct() -> None:
    cid = spec().campaign_id
    assert row_job_id(cid, 0) == row_job_id(cid, 0)
    assert len({row_job_id(cid, i) for i in range(1000)}) == 1000
    assert len(row_job_id(cid, 7)) == 36


def test_counts_cover_every_row() -> None:
    counts = {"status:completed": 20, "status:failed": 5, "outcome:answered": 20,
              "outcome:busy": 5, "confirmed": 4}  # fmt: skip
    view = campaign_view(record(), counts, ["queued", "calling", "retrying"], START)
    assert view["counts"] == {
        "by_status": {"calling": 1, "completed": 20, "failed": 5, "pending": 60,
                      "queued": 1, "retrying": 1},
        "by_outcome": {"answered": 20, "busy": 5},
        "confirmed": 4,
    }  # fmt: skip
    assert sum(view["counts"]["by_status"].values()) == 88  # finished + live + not released
    assert view["progress"] == {"done": 25, "total": 100, "percent": 25.0}
    assert view["rows"] == {"total": 100, "invalid": 3, "released": 40}


def test_canceled_rows_not_released_count_as_canceled() -> None:
    view = campaign_view(record(CampaignState.CANCELED), {"status:canceled": 40}, [], START)
    assert view["counts"]["by_status"] == {"canceled": 100}
    assert view["progress"]["percent"] == 100.0
    assert view["eta_s"] == 0.0


def test_eta_extrapolates_the_finishing_rate() -> None:
    later = START + timedelta(seconds=100)
    # 25 finished in 100 s, 75 left: 300 s.
    assert eta_seconds(record(), 25, 75, later) == 300.0
    assert eta_seconds(record(), 0, 100, later) is None
    assert eta_seconds(record(CampaignState.PAUSED), 25, 75, later) is None
    assert eta_seconds(record(CampaignState.COMPLETED), 100, 0, later) == 0.0


def test_eta_is_never_sooner_than_the_pace_allows() -> None:
    later = START + timedelta(seconds=10)
    # Fast so far (25 in 10 s), but 60 rows still to release at 6 a minute: 590 s at least.
    paced = record(released=40, calls_per_minute=6)
    assert eta_seconds(paced, 25, 75, later) == 590.0


def test_jobs_finished_but_not_yet_counted_are_done_in_the_progress_and_eta() -> None:
    """The pacer counts finished jobs once a tick; until then their live status already says
    they finished, and the progress and ETA agree with it."""
    later = START + timedelta(seconds=100)
    view = campaign_view(record(released=2), {}, ["completed", "failed"], later)
    assert view["counts"]["by_status"] == {"completed": 1, "failed": 1, "pending": 98}
    assert view["progress"] == {"done": 2, "total": 100, "percent": 2.0}
    assert view["eta_s"] == 4900.0  # 2 finished in 100 s, 98 left
    counted = campaign_view(record(released=3), {"status:completed": 1}, ["completed"], later)
    assert counted["progress"]["done"] == 2
    assert counted["eta_s"] == 4900.0
