"""Check, or fetch from the npm registry, the front-end files this project vendors.

    .venv/bin/python scripts/vendor_npm.py                  # check the committed files (offline)
    .venv/bin/python scripts/vendor_npm.py --fetch [NAME]   # download, verify, compare
    .venv/bin/python scripts/vendor_npm.py --write [NAME]   # download, verify, rewrite the files

NAME is an npm package: chart.js (the dashboard), swagger-ui-dist and redoc (the API docs);
all of them by default. Versions and digests are pinned in `ttsqueue.dashboard.vendored` and
`ttsqueue.api.docs_assets`: a tarball must match the registry's published sha512 integrity
and its sha256, and the files taken from it must match theirs, or nothing is written. To move
to another version, change the pins (from `npm view <package>@<version> dist`), run
`--write`, and commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

import ttsqueue.api.docs_assets as docs
import ttsqueue.dashboard.vendored as dashboard
from ttsqueue.vendoring import NpmPackage, VendorCheckError, extract, sha256

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "ttsqueue"
# Each pinned package and the directory its files are served from.
BUNDLES: dict[str, tuple[NpmPackage, Path]] = {
    dashboard.CHART_JS.name: (dashboard.CHART_JS, SOURCE / "dashboard" / dashboard.VENDOR_DIR),
    docs.SWAGGER_UI.name: (docs.SWAGGER_UI, docs.DOCS_DIR),
    docs.REDOC.name: (docs.REDOC, docs.DOCS_DIR),
}
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


def refresh(package: NpmPackage, directory: Path, write: bool) -> bool:
    label = f"{package.name}@{package.version}"
    try:
        files = extract(package, fetch(package))
    except (httpx.HTTPError, VendorCheckError) as exc:
        print(f"refusing {label}: {exc}", file=sys.stderr)
        return False
    print(f"{label}: tarball and files match their pinned digests")
    if write:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
            print(f"wrote {(directory / name).relative_to(ROOT)}")
    return True


def check(package: NpmPackage, directory: Path) -> bool:
    problems = committed_problems(package, directory)
    for problem in problems:
        print(f"{package.name}: {problem}", file=sys.stderr)
    if not problems:
        print(f"committed {package.name}@{package.version} files match their pinned sha256")
    return not problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fetch", action="store_true", help="download and compare, write nothing")
    mode.add_argument("--write", action="store_true", help="download, verify and write")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BUNDLES))
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BUNDLES))
    if unknown:
        parser.error(f"unknown package(s) {unknown}: choose among {', '.join(BUNDLES)}")
    ok = True
    for name in args.names or list(BUNDLES):
        package, directory = BUNDLES[name]
        if args.fetch or args.write:
            ok = refresh(package, directory, args.write) and ok
        ok = check(package, directory) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
