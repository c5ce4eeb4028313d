"""The observation seam: a ServingHooks subclass sees loads, batches, items and rejections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.hooks import ServingHooks
from tests.app.helpers import MEDPIX_IMAGE, b64, started_client, tiny_settings


class Recorder(ServingHooks):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def model_loaded(self, model: str, **info: Any) -> None:
        self.calls.append(("loaded", (model, info["ready"], info["provider"])))

    def batch_done(self, model: str, size: int, inference_s: float, ok: bool) -> None:
        self.calls.append(("batch", (model, size, ok)))

    def item_done(self, model: str, timings: Any, prediction: Any) -> None:
        self.calls.append(
            ("item", (model, timings.total >= timings.inference, sorted(prediction.tasks)))
        )

    def item_rejected(self, model: str, reason: str) -> None:
        self.calls.append(("rejected", (model, reason)))

    def input_size(self, model: str, image_pixels: int, text_tokens: int) -> None:
        self.calls.append(("input", (model, image_pixels, text_tokens > 0)))


def test_hooks_observe_the_serving_path(tiny_bundle_dir: Path) -> None:
    hooks = Recorder()
    settings = tiny_settings(tiny_bundle_dir, models=["medpix-student"])
    with started_client(settings, hooks=hooks) as client:
        image = b64(MEDPIX_IMAGE.read_bytes())
        assert client.post("/predict", json={"image": image, "text": "CT"}).status_code == 200
        bad = client.post("/predict", json={"image": "", "text": "CT"})
        assert bad.status_code == 422
    kinds = [kind for kind, _ in hooks.calls]
    assert ("loaded", ("medpix-student", True, "CPUExecutionProvider")) in hooks.calls
    assert ("batch", ("medpix-student", 1, True)) in hooks.calls
    assert ("input", ("medpix-student", 256 * 320, True)) in hooks.calls
    assert ("item", ("medpix-student", True, ["location", "modality"])) in hooks.calls
    assert kinds.count("item") == 1  # the rejected image never reached the model
