"""Backend choice for DIALER=auto|simulator|ami|callfile (SPEC §7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.conftest import make_settings
from ttsqueue.backends import resolve_dialer
from ttsqueue.config import DialerName
from ttsqueue.dialer.factory import build_dialer
from ttsqueue.dialer.simulator import SimulatorDialer


def test_auto_prefers_ami_when_a_host_is_set(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, DIALER="auto", ASTERISK_AMI_HOST="pbx.local", ASTERISK_SPOOL_DIR=tmp_path
    )
    assert resolve_dialer(settings) is DialerName.AMI


def test_auto_uses_call_files_when_the_spool_is_writable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DIALER="auto", ASTERISK_SPOOL_DIR=tmp_path)
    assert resolve_dialer(settings) is DialerName.CALLFILE


@pytest.mark.parametrize("spool", ["missing", "a-file"])
def test_auto_falls_back_to_the_simulator(tmp_path: Path, spool: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    settings = make_settings(tmp_path, DIALER="auto", ASTERISK_SPOOL_DIR=tmp_path / spool)
    assert resolve_dialer(settings) is DialerName.SIMULATOR


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_auto_ignores_a_read_only_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o500)
    settings = make_settings(tmp_path, DIALER="auto", ASTERISK_SPOOL_DIR=spool)
    assert resolve_dialer(settings) is DialerName.SIMULATOR


def test_an_explicit_choice_wins(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, DIALER="simulator", ASTERISK_AMI_HOST="pbx.local", ASTERISK_SPOOL_DIR=tmp_path
    )
    assert resolve_dialer(settings) is DialerName.SIMULATOR
    settings = make_settings(tmp_path, DIALER="callfile", ASTERISK_AMI_HOST="pbx.local")
    assert resolve_dialer(settings) is DialerName.CALLFILE


def test_auto_fallback_builds_a_simulator_and_warns(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, DIALER="auto", ASTERISK_SPOOL_DIR=tmp_path / "missing")
    with capture_logs() as logs:
        dialer = build_dialer(settings)
    assert isinstance(dialer, SimulatorDialer)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["no asterisk configured: calls are simulated"]
    assert "ASTERISK_AMI_HOST" in warnings[0]["hint"]


def test_explicit_simulator_builds_without_warning(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, DIALER="simulator")
    with capture_logs() as logs:
        dialer = build_dialer(settings)
    assert isinstance(dialer, SimulatorDialer)
    assert [e for e in logs if e["log_level"] == "warning"] == []
