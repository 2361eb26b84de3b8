"""The API docs (Swagger UI at /docs, ReDoc at /redoc) served from this process, offline.

FastAPI's own pages load their JavaScript, CSS, favicon and (ReDoc) Google Fonts from CDNs,
so without internet they are blank. Here the same pages point at files committed under
`static/docs/`, taken from the npm release tarballs pinned below (see `ttsqueue.vendoring`;
`scripts/vendor_npm.py` checks or rebuilds them). Swagger UI's online validator is turned off:
it would send the schema to validator.swagger.io.

The pages, the schema and these files need no API key (`ttsqueue.api.access`): they describe
the API and hold no data; every call made from the pages still needs one.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ttsqueue.vendoring import NpmPackage, VendoredFile

DOCS_DIR = Path(__file__).parent / "static" / "docs"
ASSETS_PATH = "/docs-assets"
REDOCLY_LOGO = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'

SWAGGER_UI = NpmPackage(
    name="swagger-ui-dist",
    version="5.35.0",
    tarball_sha256="1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6",
    integrity="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
    files=(
        VendoredFile(
            member="package/swagger-ui-bundle.js",
            name="swagger-ui-bundle.js",
            sha256="e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
        ),
        VendoredFile(
            member="package/swagger-ui.css",
            name="swagger-ui.css",
            sha256="a6a4cf68f069eb89984d5d43644e6a812e749df08d2b1320c6e06e6973847d10",
            strip_source_map=True,
        ),
        VendoredFile(
            member="package/favicon-32x32.png",
            name="favicon-32x32.png",
            sha256="3ed612f41e050ca5e7000cad6f1cbe7e7da39f65fca99c02e99e6591056e5837",
        ),
        VendoredFile(
            member="package/LICENSE",
            name="swagger-ui.LICENSE",
            sha256="cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
        ),
        VendoredFile(
            member="package/NOTICE",
            name="swagger-ui.NOTICE",
            sha256="0d20d1adef18aee3f40dd258172155521ce702ac445cb5f7b7d60ed32dad2fb2",
        ),
        VendoredFile(
            member="package/swagger-ui-bundle.js.LICENSE.txt",
            name="swagger-ui-bundle.js.LICENSE.txt",
            sha256="37eb6e7e59aed57b2c1acf076574b818ea07b74265717e0bd67b59e0baf9abbb",
        ),
    ),
)

REDOC = NpmPackage(
    name="redoc",
    version="2.5.4",
    tarball_sha256="44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e",
    integrity="sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==",
    files=(
        VendoredFile(
            member="package/bundles/redoc.standalone.js",
            name="redoc.standalone.js",
            sha256="c53971e9a82b51d77c364b74528eacac091ffd00df67fa08b2f990d29866e4be",
            strip_source_map=True,
            # The side menu's "API docs by Redocly" logo comes from Redocly's CDN: without a
            # source the image is never fetched, fails, and ReDoc hides it (its onError).
            replacements=((REDOCLY_LOGO, b'src:""'),),
        ),
        VendoredFile(
            member="package/LICENSE",
            name="redoc.LICENSE",
            sha256="d3026d549cf68ab7355bcfa85877bf8f845b3334a7efbfdc63936432fb34ff0e",
        ),
        VendoredFile(
            member="package/bundles/redoc.standalone.js.LICENSE.txt",
            name="redoc.standalone.js.LICENSE.txt",
            sha256="eed602ec32e00b2b9df1984fbcc26a687b1b3193ec01961389c4b8439e6edf73",
        ),
    ),
)

PACKAGES = (SWAGGER_UI, REDOC)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json"})


def open_docs_path(path: str) -> bool:
    """The docs pages, the schema and their assets: readable without an API key."""
    return path in DOCS_PATHS or path.startswith(ASSETS_PATH + "/")


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc on `app` (created with docs_url=None, redoc_url=None)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=DOCS_DIR), name="docs-assets")
    title = f"{app.title} API"
    schema = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + schema,
            title=title,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + schema,
            title=title,
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            with_google_fonts=False,
        )


def _root(request: Request) -> str:
    """Where the app is mounted behind a proxy (`--root-path`), so the URLs keep working."""
    return str(request.scope.get("root_path", "")).rstrip("/")
