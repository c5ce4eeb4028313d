"""A served model is usable only whole: loaded bundle and running batcher, or ModelNotReady."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.batcher import DynamicBatcher
from app.bundle_loader import load_bundle
from app.errors import ModelNotReady
from app.served_model import ActiveModel, ModelState, ServedModel
from tests.app.helpers import tiny_settings


def test_require_ready_follows_state_and_batcher(tiny_bundle_dir: Path) -> None:
    served = ServedModel("medpix-student", tiny_bundle_dir / "medpix-student")
    with pytest.raises(ModelNotReady, match="is not ready: loading"):
        served.require_ready()
    bundle = load_bundle(served.bundle_dir, tiny_settings(tiny_bundle_dir))

    async def main() -> None:
        batcher = DynamicBatcher(
            bundle.name, bundle.run_batch, max_batch_size=2, max_delay_s=0.0, queue_size=4
        )
        batcher.start()
        served.active = ActiveModel(bundle, batcher)
        served.state, served.reason = ModelState.READY, None
        assert served.require_ready().name == "medpix-student"
        await batcher.stop()
        with pytest.raises(ModelNotReady, match="batcher is not running"):
            served.require_ready()

    asyncio.run(main())
