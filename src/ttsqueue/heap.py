"""Keeping CPython's full collections short in the long-running processes.

A full (generation 2) collection walks every object the collector tracks. Once its imports and
app are built, an API process tracks about 100,000 objects (FastAPI's routes, pydantic's
schemas), and one full collection took 59-81 ms on the benchmark machine: every request in
flight waited for it, and these pauses made the ingest's 99th percentile. Objects that live as
long as the process are moved to the permanent generation once they exist, so that later
collections walk only what was created since.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Call once in a process's entry point, after its app or context is built and before it
    serves. Garbage is collected first, so that none of it is kept for good."""
    gc.collect()
    gc.freeze()
