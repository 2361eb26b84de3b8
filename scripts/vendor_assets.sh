#!/usr/bin/env bash
# Re-fetches the dashboard's vendored front-end library from the npm registry at its pinned
# version, checks the package's sha256, and copies the minified build and its license into
# src/ttsqueue/dashboard/static/vendor/. The files are committed: the dashboard serves them
# itself and never loads anything from a CDN. Needs npm; run it only to change the version.
set -euo pipefail

PACKAGE="chart.js"
VERSION="4.6.1"
TARBALL_SHA256="9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/src/ttsqueue/dashboard/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
(cd "$WORK" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$WORK/$PACKAGE-$VERSION.tgz"
echo "$TARBALL_SHA256  $tarball" | sha256sum --check --quiet \
    || { echo "sha256 mismatch for $PACKAGE@$VERSION: refusing to vendor it" >&2; exit 1; }
tar -xzf "$tarball" -C "$WORK" package/dist/chart.umd.min.js package/LICENSE.md
mkdir -p "$DEST"
cp "$WORK/package/dist/chart.umd.min.js" "$DEST/chart.umd.min.js"
cp "$WORK/package/LICENSE.md" "$DEST/chart.js.LICENSE.md"
# The source map is not shipped: drop the comment that points to it.
sed -i '/^\/\/# sourceMappingURL=/d' "$DEST/chart.umd.min.js"
echo "vendored $PACKAGE@$VERSION into ${DEST#"$ROOT"/}"
