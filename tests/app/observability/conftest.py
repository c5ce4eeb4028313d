"""A started service over the tiny bundles, shared by the observability tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.helpers import started_client, tiny_settings


@pytest.fixture(scope="module")
def observed(tiny_bundle_dir: Path) -> Iterator[TestClient]:
    settings = tiny_settings(
        tiny_bundle_dir,
        models=["medpix-student", "wound-student"],
        max_body_bytes=256 * 1024,
        max_text_chars=200,
        max_batch_items=4,
        low_confidence_threshold=0.9,
    )
    with started_client(settings) as client:
        yield client
