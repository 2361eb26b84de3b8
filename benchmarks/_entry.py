"""Starts one product process exactly as the product does, configured by the environment.

    python benchmarks/_entry.py api|worker     the product's own `run(load_settings())`

Being a plain script, it can also run under `python -m cProfile -o out.prof`.
"""

from __future__ import annotations

import sys

from ttsqueue.config import load_settings


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
