"""The committed Chart.js is the pinned npm release, byte for byte (offline check).

`scripts/vendor_chartjs.py --fetch` compares against the registry itself; here the committed
files are checked against the pins, and the extraction and refusals are exercised on a
tarball built the way npm lays one out.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest

import ttsqueue.dashboard
from ttsqueue.dashboard.vendored import (
    CHART_JS,
    VENDOR_DIR,
    NpmPackage,
    VendorCheckError,
    extract,
    sha256,
    sri_sha512,
)

VENDOR = Path(ttsqueue.dashboard.__file__).parent / VENDOR_DIR
PAGE = Path(ttsqueue.dashboard.__file__).parent / "templates" / "index.html"


def test_committed_files_match_their_pinned_sha256() -> None:
    for item in CHART_JS.files:
        assert sha256((VENDOR / item.name).read_bytes()) == item.sha256, item.name


def test_the_page_loads_the_pinned_build_and_it_is_the_pinned_version() -> None:
    script = (VENDOR / "chart.umd.min.js").read_bytes()
    assert script.startswith(b"/*!\n * Chart.js v" + CHART_JS.version.encode() + b"\n")
    assert b"sourceMappingURL" not in script  # the map is not shipped
    assert 'src="/static/vendor/chart.umd.min.js"' in PAGE.read_text()
    assert CHART_JS.tarball_url == "https://registry.npmjs.org/chart.js/-/chart.js-4.6.1.tgz"


def npm_tarball(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def pinned_to(tarball: bytes) -> NpmPackage:
    """The Chart.js pins, but for a tarball built here (same files, other container bytes)."""
    return dataclasses.replace(
        CHART_JS, tarball_sha256=sha256(tarball), integrity=sri_sha512(tarball)
    )


def published_members() -> dict[str, bytes]:
    script = (VENDOR / "chart.umd.min.js").read_bytes()
    return {
        "package/dist/chart.umd.min.js": script + b"//# sourceMappingURL=chart.umd.min.js.map\n",
        "package/LICENSE.md": (VENDOR / "chart.js.LICENSE.md").read_bytes(),
        "package/package.json": b'{"name": "chart.js", "version": "4.6.1"}',
    }


def test_extract_rebuilds_the_committed_files_from_the_published_layout() -> None:
    tarball = npm_tarball(published_members())
    files = extract(pinned_to(tarball), tarball)
    assert files == {item.name: (VENDOR / item.name).read_bytes() for item in CHART_JS.files}


def test_a_tarball_that_is_not_the_pinned_one_is_refused() -> None:
    tarball = npm_tarball(published_members())
    with pytest.raises(VendorCheckError, match="pinned digests"):
        extract(CHART_JS, tarball)
    # Right sha256, wrong integrity: refused too.
    half = dataclasses.replace(pinned_to(tarball), integrity=CHART_JS.integrity)
    with pytest.raises(VendorCheckError, match="pinned digests"):
        extract(half, tarball)


def test_a_changed_file_inside_a_matching_tarball_is_refused() -> None:
    members = published_members()
    members["package/dist/chart.umd.min.js"] += b"window.evil = 1;\n"
    tarball = npm_tarball(members)
    with pytest.raises(VendorCheckError, match=r"chart\.umd\.min\.js: sha256"):
        extract(pinned_to(tarball), tarball)
