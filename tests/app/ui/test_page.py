"""The demo page over HTTP: its own strict CSP, only named files served (ETag revalidation),
open without the API key (it asks for the key itself), and no outside URL in any of its files."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.ui import STATIC, csp
from tests.app.helpers import assert_error, started_client, tiny_settings


def test_page_is_served_with_its_own_csp(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert policy == csp.PAGE
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert '<script src="ui/page.js"' in response.text


def test_assets_are_revalidated_by_etag(client: TestClient) -> None:
    first = client.get("/ui/page.js")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert first.headers["cache-control"] == "no-cache"  # public code: revalidate, not no-store
    again = client.get("/ui/page.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/ui/page.css").headers["content-type"].startswith("text/css")


def test_only_named_files_are_served(client: TestClient) -> None:
    for path in ("/ui/index.html", "/ui/nope.js", "/ui/..%2f__init__.py", "/ui/swagger-init.js"):
        assert_error(client.get(path), 404, "not_found")


def test_no_file_of_the_page_names_an_outside_url() -> None:
    for name in ("index.html", "page.js", "page.css", "swagger-init.js"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "localStorage" not in text and "sessionStorage" not in text and "cookie" not in text


def test_page_stays_open_when_the_api_needs_a_key(tiny_bundle_dir: Path) -> None:
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"], api_key="k")
    with started_client(settings) as client:
        for path in ("/", "/ui/page.js", "/ui/page.css"):
            assert client.get(path).status_code == 200, path
        assert_error(client.get("/models"), 401, "unauthorized")
        assert client.get("/models", headers={"X-API-Key": "k"}).status_code == 200
