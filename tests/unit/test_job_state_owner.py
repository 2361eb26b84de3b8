"""One owner of a job's state: no module but `store/lifecycle.py` writes a job record.

Read from the source (AST), so that a new caller writing a status, a job field or a job index
by itself fails here before it can race the owner's scripts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ttsqueue

SRC = Path(ttsqueue.__file__).resolve().parent
OWNER = {"store/lifecycle.py", "store/job_change.py"}

# Redis commands that change a key.
WRITES = {
    "hset",
    "hsetnx",
    "hmset",
    "hdel",
    "hincrby",
    "hincrbyfloat",
    "rpush",
    "lpush",
    "ltrim",
    "delete",
    "getdel",
    "unlink",
    "expire",
    "pexpire",
    "persist",
    "zadd",
    "zrem",
    "zincrby",
    "set",
    "rename",
}
# Keys of a job's record: its hash, its history, the indexes its status lives in.
JOB_KEYS = {
    "job",
    "history",
    "index",
    "status_index",
    "priority_index",
    "status_priority_index",
    "expiry_index",
    "unconfirmed",
    "attempt",
    "idempotency",
}
# The scripts that change job records, and the encodings of a record or a status change.
JOB_SCRIPTS = {
    "create_job",
    "transition",
    "delete_job",
    "touch_job",
    "confirm_job",
    "release_claim",
}
ENCODINGS = {"to_redis", "encode_change"}
# What only the owner imports: the job scripts' registry and the change encoding.
OWNER_ONLY = {
    "ttsqueue.store.scripts": {"Scripts"},
    "ttsqueue.store.job_change": {"Change", "Hop", "encode", "count_processing"},
}


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(SRC).as_posix(): ast.parse(path.read_text("utf-8"), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def _names_a_job_key(node: ast.AST, aliases: set[str]) -> bool:
    return any(
        (isinstance(sub, ast.Attribute) and sub.attr in JOB_KEYS)
        or (isinstance(sub, ast.Name) and sub.id in aliases)
        for sub in ast.walk(node)
    )


def _key_aliases(tree: ast.Module) -> set[str]:
    """Local names given a job key first (`key = keys.job(job_id)`), then written to."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _names_a_job_key(node.value, set())
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def job_state_writes(tree: ast.Module) -> list[str]:
    """Every place in `tree` that writes job state, described for the failure message."""
    found: list[str] = []
    aliases = _key_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            args = [*node.args, *(k.value for k in node.keywords)]
            if name in WRITES and any(_names_a_job_key(a, aliases) for a in args):
                found.append(f"line {node.lineno}: {name}() on a job key")
            if name in ENCODINGS:
                found.append(f"line {node.lineno}: {name}()")
        if isinstance(node, ast.Attribute) and node.attr in JOB_SCRIPTS:
            found.append(f"line {node.lineno}: script {node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module in OWNER_ONLY:
            names = {alias.name for alias in node.names}
            if names & OWNER_ONLY[node.module]:
                found.append(f"line {node.lineno}: imports {node.module}")
    return found


def test_only_the_lifecycle_writes_job_state() -> None:
    modules = _modules()
    assert "store/lifecycle.py" in modules
    offenders = {
        path: writes
        for path, tree in modules.items()
        if path not in OWNER and path != "store/scripts.py"
        for writes in [job_state_writes(tree)]
        if writes
    }
    assert offenders == {}


def test_the_check_sees_the_owners_writes() -> None:
    """The owner itself is found writing: the check is not blind."""
    owner = job_state_writes(_modules()["store/lifecycle.py"])
    assert any("script transition" in w for w in owner)
    assert any("script create_job" in w for w in owner)
    assert any("script delete_job" in w for w in owner)  # a refused submission
    assert any("to_redis()" in w for w in owner)


def test_the_check_catches_a_caller_writing_a_status() -> None:
    rogue = ast.parse(
        "async def cancel(redis, keys, job_id):\n"
        "    await redis.hset(keys.job(job_id), 'status', 'canceled')\n"
        "    await redis.zrem(keys.status_index('queued'), job_id)\n"
        "    history = keys.history(job_id)\n"
        "    await redis.rpush(history, '{}')\n"
        "    await redis.get(keys.job(job_id))\n"
    )
    assert len(job_state_writes(rogue)) == 3


def test_lifecycle_is_the_only_caller_of_its_write_operations() -> None:
    """The named operations are called by the worker and the API, never re-implemented."""
    users = {
        path
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "ttsqueue.store.lifecycle"
        and any(alias.name == "JobLifecycle" for alias in node.names)
    }
    assert users >= {"api/context.py", "worker/context.py"}
