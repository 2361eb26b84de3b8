"""One place builds the Redis keys: `store/factory.py` makes the `Keys` of REDIS_PREFIX and
every other part receives them, so no part can name keys under a prefix of its own.

Read from the source (AST): a new `Keys(...)` anywhere else in `src/ttsqueue` fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ttsqueue

SRC = Path(ttsqueue.__file__).resolve().parent
BUILDER = {"store/factory.py"}


def keys_built(tree: ast.AST) -> list[int]:
    """Lines of `tree` that call `Keys(...)` or `<module>.Keys(...)`."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "Keys":
            lines.append(node.lineno)
    return lines


def test_keys_are_built_in_the_store_factory_only() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(SRC).as_posix()
        if where in BUILDER:
            continue
        wrong += [f"{where}:{line}" for line in keys_built(ast.parse(path.read_text("utf-8")))]
    assert wrong == []


def test_the_factory_builds_them() -> None:
    """The rule above holds only while the builder really is where the keys come from."""
    tree = ast.parse((SRC / "store/factory.py").read_text("utf-8"))
    assert len(keys_built(tree)) == 1


def test_the_check_sees_both_spellings() -> None:
    source = "from ttsqueue.store import keys\na = Keys('x:')\nb = keys.Keys('y:')\nc = key('z')\n"
    assert keys_built(ast.parse(source)) == [2, 3]
