"""Fixtures of the real-Asterisk tests (tests/asterisk/): a private Asterisk per test or per
module, skipped without an Asterisk (ASTERISK_SRC / ASTERISK_BIN), failed instead when
TTSQ_REQUIRE_ASTERISK=1 (CI) says they must run."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.asterisk.install import AsteriskInstall, AsteriskUnavailable, find_asterisk, required
from tests.asterisk.instance import PrivateAsterisk, close_all


@pytest.fixture(scope="session")
def asterisk_install() -> Iterator[AsteriskInstall]:
    try:
        install = find_asterisk()
    except AsteriskUnavailable as exc:
        if required():
            pytest.fail(f"TTSQ_REQUIRE_ASTERISK=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield install
    close_all()


@pytest.fixture
def asterisk(asterisk_install: AsteriskInstall) -> Iterator[PrivateAsterisk]:
    """A fresh private Asterisk for one test (for tests that stop, restart or reconfigure it)."""
    with PrivateAsterisk(asterisk_install) as pbx:
        yield pbx


@pytest.fixture(scope="module")
def shared_asterisk(asterisk_install: AsteriskInstall) -> Iterator[PrivateAsterisk]:
    """One private Asterisk for the tests of a module that leave it as they found it."""
    with PrivateAsterisk(asterisk_install) as pbx:
        yield pbx


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under TTSQ_REQUIRE_ASTERISK=1 a skipped real-Asterisk test is a failed one."""
    report: pytest.TestReport = yield
    if required() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but TTSQ_REQUIRE_ASTERISK=1: {report.longrepr}"
    return report
