"""Where the dashboard's vendored Chart.js comes from (see `ttsqueue.vendoring`).

The files under `static/vendor/` are committed (the dashboard must work offline and never
loads anything from a CDN); `scripts/vendor_npm.py chart.js` checks or rebuilds them.
"""

from __future__ import annotations

from ttsqueue.vendoring import (
    NpmPackage,
    VendorCheckError,
    VendoredFile,
    extract,
    sha256,
    sri_sha512,
)

__all__ = [
    "CHART_JS",
    "VENDOR_DIR",
    "NpmPackage",
    "VendorCheckError",
    "extract",
    "sha256",
    "sri_sha512",
]

VENDOR_DIR = "static/vendor"

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
