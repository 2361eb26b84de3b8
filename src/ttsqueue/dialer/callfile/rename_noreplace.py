"""Renaming a file into place without ever replacing one that is already there.

`os.rename` silently replaces an existing target. Linux `renameat2(..., RENAME_NOREPLACE)`
(glibc 2.28+) does the check and the rename in one atomic step and fails with EEXIST instead.
Where it is missing (another libc or OS) or the filesystem refuses the flag (EINVAL, ENOSYS),
the fallback checks for the target first and then renames: the same result unless another
process creates the target in between, which callers must exclude by other means.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

AT_FDCWD = -100
RENAME_NOREPLACE = 1

_Renameat2 = Callable[[int, bytes, int, bytes, int], int]


@functools.cache
def _renameat2() -> _Renameat2 | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    renameat2: _Renameat2 = function
    return renameat2


def rename_noreplace(source: Path, target: Path) -> None:
    """Rename `source` to `target` atomically; FileExistsError when `target` exists."""
    renameat2 = _renameat2()
    if renameat2 is not None:
        old, new = os.fsencode(source), os.fsencode(target)
        if renameat2(AT_FDCWD, old, AT_FDCWD, new, RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), str(source), None, str(target))
    rename_checked(source, target)


def rename_checked(source: Path, target: Path) -> None:
    """The fallback: refuse an existing target, then a plain rename."""
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)
