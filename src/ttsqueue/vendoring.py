"""Front-end files taken from npm release tarballs, pinned and checkable offline.

The dashboard (Chart.js) and the API docs (Swagger UI, ReDoc) must work without internet, so
their browser assets are committed. Each one is pinned with the npm package tarball it was taken
from, that tarball's digests as the registry publishes them (`dist.integrity`) and as sha256,
and the sha256 of the file as committed (`ttsqueue.dashboard.vendored`,
`ttsqueue.api.docs_assets`). `scripts/vendor_npm.py` fetches the tarballs again and rebuilds
the files from them; unit tests check the committed files against these digests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from dataclasses import dataclass

# Comments pointing to a source map (JavaScript, CSS): the maps are not shipped.
SOURCE_MAP_LINES = (b"//# sourceMappingURL=", b"/*# sourceMappingURL=")


class VendorCheckError(Exception):
    """A tarball or a file does not have the digest it is pinned to."""


@dataclass(frozen=True, slots=True)
class VendoredFile:
    member: str  # path inside the tarball
    name: str  # file name in the directory the files are served from
    sha256: str  # of the file as committed
    strip_source_map: bool = False  # the map is not shipped: drop the comment pointing to it
    # (old, new) byte strings replaced after that, each old one found exactly once: a pinned,
    # reviewable change (e.g. a hard-coded CDN image the page would fetch).
    replacements: tuple[tuple[bytes, bytes], ...] = ()


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
    return b"".join(line for line in lines if not line.startswith(SOURCE_MAP_LINES))


def _replace(item: VendoredFile, data: bytes) -> bytes:
    for old, new in item.replacements:
        if data.count(old) != 1:
            raise VendorCheckError(f"{item.name}: {old!r} is not found exactly once")
        data = data.replace(old, new)
    return data


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
            data = _replace(item, data)
            if sha256(data) != item.sha256:
                raise VendorCheckError(f"{item.name}: sha256 {sha256(data)} != {item.sha256}")
            found[item.name] = data
    return found
