"""Fetch the dashboard's Chart.js from the npm registry at its pinned version, verified.

    .venv/bin/python scripts/vendor_chartjs.py           # check the committed files (offline)
    .venv/bin/python scripts/vendor_chartjs.py --fetch   # download, verify, compare
    .venv/bin/python scripts/vendor_chartjs.py --write   # download, verify, rewrite the files

The version and every digest are pinned in `src/ttsqueue/dashboard/vendored.py`: the
tarball must match the registry's published sha512 integrity and its sha256, and the files
taken from it must match theirs, or nothing is written. To move to another version, change
the pins there (from `npm view chart.js@<version> dist`), run `--write`, and commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from ttsqueue.dashboard.vendored import (
    CHART_JS,
    VENDOR_DIR,
    NpmPackage,
    VendorCheckError,
    extract,
    sha256,
)

DASHBOARD = Path(__file__).resolve().parent.parent / "src" / "ttsqueue" / "dashboard"
TIMEOUT_S = 60.0


def committed_problems(package: NpmPackage, directory: Path) -> list[str]:
    problems = []
    for item in package.files:
        path = directory / item.name
        if not path.is_file():
            problems.append(f"{item.name}: missing")
        elif (digest := sha256(path.read_bytes())) != item.sha256:
            problems.append(f"{item.name}: sha256 {digest}, pinned {item.sha256}")
    return problems


def fetch(package: NpmPackage) -> bytes:
    print(f"fetching {package.tarball_url}")
    reply = httpx.get(package.tarball_url, timeout=TIMEOUT_S, follow_redirects=True)
    reply.raise_for_status()
    return reply.content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fetch", action="store_true", help="download and compare, write nothing")
    mode.add_argument("--write", action="store_true", help="download, verify and write")
    args = parser.parse_args()
    directory = DASHBOARD / VENDOR_DIR
    label = f"{CHART_JS.name}@{CHART_JS.version}"
    if args.fetch or args.write:
        try:
            files = extract(CHART_JS, fetch(CHART_JS))
        except (httpx.HTTPError, VendorCheckError) as exc:
            print(f"refusing {label}: {exc}", file=sys.stderr)
            return 1
        print(f"{label}: tarball and files match their pinned digests")
        if args.write:
            directory.mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                (directory / name).write_bytes(data)
                print(f"wrote {(directory / name).relative_to(DASHBOARD.parent.parent.parent)}")
    problems = committed_problems(CHART_JS, directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"committed {label} files match their pinned sha256")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
