"""The naive baseline: one plain FastAPI route running the PyTorch model eagerly, per request.

What a first deployment usually looks like — and not a strawman: the model is loaded once, in
eval mode under `torch.inference_mode()`; the route is a plain `def`, so FastAPI runs it in its
thread pool and request parsing overlaps the forward pass; preprocessing is the shared contract's
(identical inputs to the served bundle). What it lacks is everything the service adds: no
batching (one forward pass per request), no ONNX Runtime graph optimisation, no int8.

Run as its own process (the only benchmark module that imports torch):
`python -m fusionserve.bench.naive_server --checkpoint CKPT --bundle exported/medpix-student
--port 8100`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any

import torch
import uvicorn
from fastapi import FastAPI, File, Form, UploadFile

from app.contract.image import decode_image, image_to_array
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder

LOGIT_KEYS = ("logits_modality", "logits_location")  # research head order = manifest task order


def create_app(checkpoint: Path, bundle_dir: Path) -> FastAPI:
    """Load the checkpoint's model and the bundle's preprocessing; one route does the rest."""
    from models.checkpoint import load_checkpoint

    model, _cfg, _extra = load_checkpoint(checkpoint)
    model.eval()
    manifest = Manifest.load(bundle_dir)
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(
        bundle_dir / TOKENIZER_FILE, pre.max_text_length, pre.empty_text
    )
    app = FastAPI(title="naive baseline")

    @app.get("/health/ready")
    def ready() -> dict[str, Any]:
        return {"status": "ready", "torch": torch.__version__, "threads": torch.get_num_threads()}

    @app.post("/predict")
    def predict(
        image: Annotated[UploadFile, File()], text: Annotated[str, Form()]
    ) -> dict[str, Any]:
        pixels = image_to_array(decode_image(image.file.read()), pre.image_size, pre.mean, pre.std)
        encoded = encoder.encode([text])
        with torch.inference_mode():
            outputs = model(
                torch.from_numpy(pixels[None]),
                torch.from_numpy(encoded.input_ids),
                torch.from_numpy(encoded.attention_mask),
            )
        predictions = {}
        for task, key in zip(manifest.tasks, LOGIT_KEYS, strict=True):
            probs = torch.softmax(outputs[key][0] / task.temperature, dim=-1).tolist()
            best = max(range(len(probs)), key=probs.__getitem__)
            predictions[task.name] = {
                "label": task.labels[best],
                "probability": probs[best],
                "probabilities": dict(zip(task.labels, probs, strict=True)),
            }
        return {"predictions": predictions}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="models.checkpoint file")
    parser.add_argument("--bundle", type=Path, required=True, help="bundle for preprocessing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    app = create_app(args.checkpoint, args.bundle)
    uvicorn.run(app, host=args.host, port=args.port)  # uvicorn defaults: info, access log


if __name__ == "__main__":
    main()
