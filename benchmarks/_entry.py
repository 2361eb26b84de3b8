"""Starts one product process exactly as the product does, configured by the environment.

    python benchmarks/_entry.py api|worker     the product's own `run(load_settings())`
    uvicorn --factory _entry:api_app ...       the API app, for several uvicorn workers

Being a plain script, it can also run under `python -m cProfile -o out.prof`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ttsqueue.config import load_settings

if TYPE_CHECKING:  # a worker started here must not pay for importing FastAPI (about 1 s of CPU)
    from fastapi import FastAPI


def api_app() -> FastAPI:
    """The product's own factory for uvicorn's worker processes."""
    from ttsqueue.api.app import app_from_environment

    return app_from_environment()


def main(role: str) -> None:
    settings = load_settings()
    if role == "api":
        from ttsqueue.api.app import run as run_api

        run_api(settings)
    elif role == "worker":
        from ttsqueue.worker.main import run as run_worker

        run_worker(settings)
    else:
        raise SystemExit(f"unknown role {role!r}: api or worker")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
