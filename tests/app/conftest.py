"""Fixtures for serving tests: a real tiny bundle directory and ready-to-use clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.helpers import started_client, tiny_settings


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """exported/-like directory: medpix-student, medpix-teacher, wound-student (+ int8)."""
    pytest.importorskip("onnx", reason="building the tiny bundle needs the onnx package")
    from tests.fixtures.tiny_bundle import build_tiny_bundle_dir

    return build_tiny_bundle_dir(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def client(tiny_bundle_dir: Path) -> Iterator[TestClient]:
    """One app over the tiny bundles with small limits, shared by the request-matrix tests."""
    settings = tiny_settings(
        tiny_bundle_dir,
        max_body_bytes=256 * 1024,
        max_image_pixels=200_000,
        max_text_chars=200,
        max_batch_items=4,
    )
    with started_client(settings) as test_client:
        yield test_client
