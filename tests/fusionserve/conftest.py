"""Fixtures for client and CLI tests: one real `fusionserve serve` over the tiny bundles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import tiny_bundle_dir
from tests.app.servers import running_server

__all__ = ["tiny_bundle_dir"]


@pytest.fixture(scope="session")
def server_url(tiny_bundle_dir: Path) -> Iterator[str]:
    """Base URL of a real server (subprocess, uvicorn) shared by the client and CLI tests."""
    with running_server(tiny_bundle_dir, env={"FUSIONSERVE_MAX_BATCH_ITEMS": "8"}) as (_, base):
        yield base
