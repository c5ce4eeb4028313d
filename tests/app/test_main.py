"""The app's process-wide tuning once its bundles have loaded: start-up objects frozen out of the
collector, and a young generation large enough that requests in flight do not trigger it."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from app.main import GC_GEN0_THRESHOLD
from tests.app.helpers import started_client, tiny_settings


def test_loading_freezes_start_up_and_raises_the_young_threshold(tiny_bundle_dir: Path) -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, *before[1:])
    try:
        with started_client(tiny_settings(tiny_bundle_dir)) as client:
            assert client.get("/health/ready").status_code == 200
            deadline = time.monotonic() + 5.0  # the loading task's done callback does it
            while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
                client.get("/health/live")
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)
