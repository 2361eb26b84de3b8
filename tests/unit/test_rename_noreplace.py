"""Renaming into place without replacing: on a real filesystem, through renameat2 and through
the fallback used where renameat2 is missing or refused."""

from __future__ import annotations

import ctypes
import errno
import sys
from pathlib import Path

import pytest

from ttsqueue.dialer.callfile import rename_noreplace as module
from ttsqueue.dialer.callfile.rename_noreplace import rename_checked, rename_noreplace

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    source, target = tmp_path / "staged.call", tmp_path / "target.call"
    source.write_text("new\n")
    return source, target


@pytest.fixture
def refused_flag(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A renameat2 that answers EINVAL, as a filesystem without RENAME_NOREPLACE does."""
    calls: list[int] = []

    def renameat2(old_dir: int, old: bytes, new_dir: int, new: bytes, flags: int) -> int:
        calls.append(flags)
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(module, "_renameat2", lambda: renameat2)
    return calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux only")
def test_glibc_provides_renameat2() -> None:
    assert module._renameat2() is not None


@pytest.mark.parametrize("rename", [rename_noreplace, rename_checked])
def test_a_free_name_is_taken(files: tuple[Path, Path], rename: object) -> None:
    source, target = files
    rename(source, target)  # type: ignore[operator]
    assert target.read_text() == "new\n"
    assert not source.exists()


@pytest.mark.parametrize("rename", [rename_noreplace, rename_checked])
def test_an_existing_file_is_never_replaced(files: tuple[Path, Path], rename: object) -> None:
    source, target = files
    target.write_text("Asterisk is dialing this\nStartRetry: 1 1 (1)\n")
    inode = target.stat().st_ino
    with pytest.raises(FileExistsError):
        rename(source, target)  # type: ignore[operator]
    assert target.read_text() == "Asterisk is dialing this\nStartRetry: 1 1 (1)\n"
    assert target.stat().st_ino == inode
    assert source.read_text() == "new\n"


def test_a_dangling_symlink_counts_as_taken(files: tuple[Path, Path]) -> None:
    source, target = files
    target.symlink_to(source.parent / "nowhere")
    with pytest.raises(FileExistsError):
        rename_noreplace(source, target)
    assert target.is_symlink()


def test_other_errors_are_raised_with_both_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        rename_noreplace(tmp_path / "missing", tmp_path / "target")
    assert raised.value.filename == str(tmp_path / "missing")
    assert raised.value.filename2 == str(tmp_path / "target")


def test_a_filesystem_that_refuses_the_flag_falls_back(
    files: tuple[Path, Path], refused_flag: list[int]
) -> None:
    source, target = files
    target.write_text("old\n")
    with pytest.raises(FileExistsError):
        rename_noreplace(source, target)
    assert target.read_text() == "old\n"
    target.unlink()
    rename_noreplace(source, target)
    assert target.read_text() == "new\n"
    assert refused_flag == [module.RENAME_NOREPLACE, module.RENAME_NOREPLACE]
