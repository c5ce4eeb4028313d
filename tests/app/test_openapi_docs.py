"""/docs and /redoc air-gapped: every asset comes from the app (fastapi-offline's Swagger UI and
ReDoc), each page has a CSP allowing only those, and in chromium, with every outside request
blocked and recorded, Swagger UI renders the operations and ReDoc the API, needing nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.ui import csp
from tests.app.helpers import assert_error, started_client, tiny_settings
from tests.app.servers import running_server
from tests.app.ui.browser import browser_page

ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js", "redoc.standalone.js")


def test_docs_pages_name_only_their_own_assets(client: TestClient) -> None:
    for path, policy in (("/docs", csp.SWAGGER), ("/redoc", csp.REDOC)):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == policy
        assert "script-src 'self';" in policy and "'unsafe-eval'" not in policy
        assert "http" not in response.text  # no CDN, no absolute URL at all
    assert "'unsafe-inline'" not in csp.SWAGGER


def test_docs_assets_come_from_the_app(client: TestClient) -> None:
    for name in ASSETS:
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert len(response.content) > 200 and response.headers["etag"]
    assert client.get("/docs/assets/favicon.png").headers["content-type"] == "image/png"
    assert_error(client.get("/docs/assets/core.py"), 404, "not_found")


def test_docs_stay_open_with_an_api_key(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], api_key="k")
    with started_client(settings) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-init.js"):
            assert client.get(path).status_code == 200, path


@pytest.mark.slow
def test_docs_render_air_gapped(tiny_bundle_dir: Path) -> None:
    env = {"FUSIONSERVE_MODELS": "medpix-student"}
    with running_server(tiny_bundle_dir, env=env) as (_, base):
        with browser_page(base) as (page, log):
            page.goto(base + "/docs")
            page.wait_for_selector(".swagger-ui .opblock-summary-path[data-path='/predict']")
            page.click(".opblock-summary-path[data-path='/predict']")  # expand: examples render
            page.wait_for_selector(".opblock-body .model-example")
            assert page.locator(".swagger-ui .opblock").count() >= 6
        log.assert_self_contained()
        assert f"{base}/openapi.json" in log.requests

        with browser_page(base) as (page, log):
            page.goto(base + "/redoc")
            page.wait_for_selector("h2:has-text('Predict both tasks for one image + text')")
        # ReDoc's sidebar links a logo on a CDN: the CSP stops it before any request is made.
        assert not log.outside and not log.page_errors
        blocked = [e for e in log.console_errors if "Content Security Policy" not in e]
        assert blocked == [] and all("cdn.redoc.ly" in e for e in log.console_errors)
        assert f"{base}/openapi.json" in log.requests
