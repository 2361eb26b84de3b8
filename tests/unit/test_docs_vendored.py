"""The API docs' Swagger UI and ReDoc are the pinned npm releases, byte for byte, and the pages
load them (and nothing else) from this server (offline check; the browser test is in
tests/e2e/test_api_docs_browser.py, the registry comparison is `scripts/vendor_npm.py --fetch`)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ttsqueue.api.docs_assets import (
    ASSETS_PATH,
    DOCS_DIR,
    PACKAGES,
    REDOC,
    REDOCLY_LOGO,
    SWAGGER_UI,
)
from ttsqueue.api.docs_assets import install_docs as install
from ttsqueue.vendoring import (
    NpmPackage,
    VendorCheckError,
    VendoredFile,
    extract,
    sha256,
    sri_sha512,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_committed_files_match_their_pinned_sha256(package: NpmPackage) -> None:
    for item in package.files:
        assert sha256((DOCS_DIR / item.name).read_bytes()) == item.sha256, item.name


def test_nothing_unpinned_is_served() -> None:
    pinned = {item.name for package in PACKAGES for item in package.files}
    assert {path.name for path in DOCS_DIR.iterdir()} == pinned


def test_the_files_are_the_pinned_versions_without_source_maps() -> None:
    bundle = (DOCS_DIR / "swagger-ui-bundle.js").read_text()
    assert f'"{SWAGGER_UI.version}"' in bundle
    redoc = (DOCS_DIR / "redoc.standalone.js").read_text()
    assert f'"{REDOC.version}"' in redoc
    for name in ("swagger-ui.css", "redoc.standalone.js"):
        tail = (DOCS_DIR / name).read_text()[-300:]
        assert "sourceMappingURL" not in tail, name
    assert SWAGGER_UI.tarball_url.startswith("https://registry.npmjs.org/swagger-ui-dist/-/")


def docs_client(root_path: str = "") -> httpx.AsyncClient:
    app = FastAPI(title="probe", docs_url=None, redoc_url=None)
    install(app)
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://docs.test" + root_path)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_pages_load_only_local_assets(path: str) -> None:
    async with docs_client() as client:
        page = await client.get(path)
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
        assert len(urls) >= 2, page.text  # the schema and the script at least
        for url in urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
            assert (await client.get(url)).status_code == 200, url
    assert "fonts.googleapis" not in page.text
    assert "cdn.jsdelivr" not in page.text
    assert f"{ASSETS_PATH}/" in page.text


async def test_swagger_ui_never_sends_the_schema_to_the_online_validator() -> None:
    async with docs_client() as client:
        page = (await client.get("/docs")).text
    assert '"validatorUrl": null' in page


async def test_pages_follow_the_root_path_behind_a_proxy() -> None:
    async with docs_client(root_path="/tts") as client:
        page = (await client.get("/docs")).text  # /tts/docs, from the base URL
    assert "'/tts/openapi.json'" in page
    assert f'"/tts{ASSETS_PATH}/swagger-ui.css"' in page


def test_the_check_script_finds_the_committed_files_intact() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vendor_npm.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for package in PACKAGES:
        assert f"committed {package.name}@{package.version} files match" in done.stdout


def tarball_with(data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/bundle.js")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def patched_package(tarball: bytes, result: bytes) -> NpmPackage:
    item = VendoredFile(
        member="package/bundle.js",
        name="bundle.js",
        sha256=sha256(result),
        replacements=((REDOCLY_LOGO, b'src:""'),),
    )
    return NpmPackage("bundle", "1.0.0", sha256(tarball), sri_sha512(tarball), (item,))


def test_a_pinned_replacement_is_applied_and_checked() -> None:
    original = b'a(){return e("img",{' + REDOCLY_LOGO + b"})}"
    tarball = tarball_with(original)
    files = extract(patched_package(tarball, b'a(){return e("img",{src:""})}'), tarball)
    assert files == {"bundle.js": b'a(){return e("img",{src:""})}'}


def test_a_release_without_the_replaced_text_is_refused() -> None:
    tarball = tarball_with(b"a(){return 1}")
    with pytest.raises(VendorCheckError, match="not found exactly once"):
        extract(patched_package(tarball, b"a(){return 1}"), tarball)


def test_the_committed_redoc_fetches_no_logo_from_a_cdn() -> None:
    redoc = (DOCS_DIR / "redoc.standalone.js").read_bytes()
    assert b"cdn.redoc.ly" not in redoc
    assert REDOC.files[0].replacements == ((REDOCLY_LOGO, b'src:""'),)
