"""`ttsqueue asterisk-setup`: the snippets land in an Asterisk configuration directory, the AMI
user gets the configured credentials and least privilege, and a second run changes nothing."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from ttsqueue.cli import app
from ttsqueue.ops.asterisk_setup import default_source, install_snippets

SECRET = "Vz8-u_tt2Q"


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    etc = tmp_path / "asterisk"
    etc.mkdir()
    (etc / "extensions.conf").write_text("[general]\nstatic = yes\n")
    (etc / "manager.conf").write_text("[general]\nenabled = yes\nport = 5038\n")
    return etc


def test_install_reload_and_run_again(tmp_path: Path, etc: Path) -> None:
    settings = make_settings(tmp_path, ASTERISK_AMI_USER="ttsq", ASTERISK_AMI_SECRET=SECRET)
    ran: list[list[str]] = []

    def runner(argv: list[str]) -> tuple[int, str]:
        ran.append(argv)
        return 0, ""

    report = install_snippets(settings, etc_dir=etc, run=runner)
    assert report.ok, report.warnings
    dialplan = (etc / "extensions_tts.conf").read_text()
    assert dialplan == (default_source() / "extensions_tts.conf").read_text()
    assert "[tts-playback]" in dialplan
    manager = (etc / "manager_tts.conf").read_text()
    assert "[ttsq]" in manager
    assert f"secret = {SECRET}" in manager
    assert re.search(r"^write = originate$", manager, re.M)
    assert re.search(r"^read = call,user,system$", manager, re.M)
    assert "@AMI_" not in manager
    assert stat.S_IMODE((etc / "manager_tts.conf").stat().st_mode) == 0o640
    assert (etc / "extensions.conf").read_text().endswith("\n#include extensions_tts.conf\n")
    assert "#include manager_tts.conf" in (etc / "manager.conf").read_text()
    assert ran == [
        ["asterisk", "-rx", "dialplan reload"],
        ["asterisk", "-rx", "manager reload"],
    ]
    again = install_snippets(settings, etc_dir=etc, run=runner)
    assert again.done == []
    assert again.ok
    assert len(ran) == 2
    assert (etc / "extensions.conf").read_text().count("#include extensions_tts.conf") == 1


def test_without_credentials_only_the_dialplan_is_installed(tmp_path: Path, etc: Path) -> None:
    report = install_snippets(make_settings(tmp_path), etc_dir=etc, reload=False)
    assert (etc / "extensions_tts.conf").is_file()
    assert not (etc / "manager_tts.conf").exists()
    assert any("ASTERISK_AMI_SECRET" in w for w in report.warnings)


@pytest.mark.parametrize("secret", ["abc;def", "abc\ndef", "x]y"])
def test_a_secret_that_would_break_manager_conf_is_refused(
    tmp_path: Path, etc: Path, secret: str
) -> None:
    settings = make_settings(tmp_path, ASTERISK_AMI_USER="tts", ASTERISK_AMI_SECRET=secret)
    report = install_snippets(settings, etc_dir=etc, reload=False)
    assert not (etc / "manager_tts.conf").exists()
    assert not report.ok


def test_ami_disabled_is_reported(tmp_path: Path, etc: Path) -> None:
    (etc / "manager.conf").write_text("[general]\nenabled = no\n")
    settings = make_settings(tmp_path, ASTERISK_AMI_USER="tts", ASTERISK_AMI_SECRET=SECRET)
    report = install_snippets(settings, etc_dir=etc, reload=False)
    assert any("enabled = yes" in w for w in report.warnings)


def test_no_asterisk_no_changes(tmp_path: Path) -> None:
    report = install_snippets(make_settings(tmp_path), etc_dir=tmp_path / "none", reload=False)
    assert not report.ok
    assert not (tmp_path / "none").exists()


def test_the_cli_command(tmp_path: Path, etc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTERISK_AMI_USER", "tts")
    monkeypatch.setenv("ASTERISK_AMI_SECRET", SECRET)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `asterisk` binary: reload is reported
    result = CliRunner().invoke(app, ["asterisk-setup", "--etc-dir", str(etc)])
    assert (etc / "manager_tts.conf").is_file()
    assert "installed" in result.output
    assert SECRET not in result.output
    assert result.exit_code == 1  # asterisk not found for the reload
    assert os.access(etc / "extensions_tts.conf", os.R_OK)
