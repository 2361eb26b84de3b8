"""Where the dashboard's vendored front-end files come from, pinned and checkable offline.

The files under `static/vendor/` are committed (the dashboard must work offline and never
loads anything from a CDN). Each one is recorded here with the npm package tarball it was
taken from, that tarball's digests as the registry publishes them (`dist.integrity`) and as
sha256, and the sha256 of the file as committed. `scripts/vendor_chartjs.py` fetches the
tarball again and rebuilds the files from it; a unit test checks the committed files against
these digests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from dataclasses import dataclass

VENDOR_DIR = "static/vendor"
SOURCE_MAP_LINE = b"//# sourceMappingURL="


class VendorCheckError(Exception):
    """A tarball or a file does not have the digest it is pinned to."""


@dataclass(frozen=True, slots=True)
class VendoredFile:
    member: str  # path inside the tarball
    name: str  # file name under static/vendor/
    sha256: str  # of the file as committed
    strip_source_map: bool = False  # the map is not shipped: drop the comment pointing to it


@dataclass(frozen=True, slots=True)
class NpmPackage:
    name: str
    version: str
    tarball_sha256: str
    integrity: str  # the registry's `dist.integrity` (sha512, base64)
    files: tuple[VendoredFile, ...]

    @property
    def tarball_url(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.name}-{self.version}.tgz"


CHART_JS = NpmPackage(
    name="chart.js",
    version="4.6.1",
    tarball_sha256="9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00",
    integrity="sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==",
    files=(
        VendoredFile(
            member="package/dist/chart.umd.min.js",
            name="chart.umd.min.js",
            sha256="c17f2ce49fb9c71ef7fb39c03f868804ac5ab34730149976eebe6b7f807bef0c",
            strip_source_map=True,
        ),
        VendoredFile(
            member="package/LICENSE.md",
            name="chart.js.LICENSE.md",
            sha256="41a84aa2caba645f966a18d9c2056b73e6d3a81d80bc0046bc0011a2634d4cce",
        ),
    ),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def check_tarball(package: NpmPackage, tarball: bytes) -> None:
    if sha256(tarball) != package.tarball_sha256 or sri_sha512(tarball) != package.integrity:
        raise VendorCheckError(
            f"{package.name}@{package.version}: the tarball does not match its pinned digests"
        )


def _strip_source_map(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if not line.startswith(SOURCE_MAP_LINE))


def extract(package: NpmPackage, tarball: bytes) -> dict[str, bytes]:
    """The vendored files (name -> bytes) from a verified tarball, each checked too."""
    check_tarball(package, tarball)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for item in package.files:
            member = archive.extractfile(item.member)
            if member is None:
                raise VendorCheckError(f"{item.member} is not a file in the tarball")
            data = member.read()
            if item.strip_source_map:
                data = _strip_source_map(data)
            if sha256(data) != item.sha256:
                raise VendorCheckError(f"{item.name}: sha256 {sha256(data)} != {item.sha256}")
            found[item.name] = data
    return found
