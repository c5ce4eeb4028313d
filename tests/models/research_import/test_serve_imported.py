"""An imported bundle is an ordinary bundle: `fusionserve serve` answers /predict with the
research model's own probabilities and shows the provenance on /models (real HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import torch
from tokenizers import Tokenizer

from app.contract.image import image_to_array, load_image_file
from app.contract.manifest import TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder
from fusionserve.cli import main
from models.data import load_samples
from models.multitask import MultiTaskModel
from models.research_import.importer import RESEARCH_MAX_LENGTH
from models.research_import.research_config import read_research_config
from models.research_import.tokenizer_source import resolve_tokenizer
from tests.app.servers import running_server
from tests.models.research_import.conftest import (
    research_yaml,
    save_research_checkpoint,
    seeded_model,
)


def _probabilities(
    model: MultiTaskModel, image: Path, text: str, encoder: TextEncoder
) -> dict[str, np.ndarray]:
    encoded = encoder.encode([text])
    pixels = image_to_array(load_image_file(image), 224)[None]
    with torch.no_grad():
        out = model(
            torch.from_numpy(pixels),
            torch.from_numpy(encoded.input_ids),
            torch.from_numpy(encoded.attention_mask),
        )
    keys = ("logits_modality", "logits_location")
    return {k: torch.softmax(out[k][0], dim=-1).numpy() for k in keys}


def test_served_imported_bundle_answers_as_the_research_model(
    tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    yaml_path = research_yaml(tmp_path / "medpix-student.yaml", fusion="gated")
    model = seeded_model(read_research_config(yaml_path, "student").model_config)
    checkpoint = save_research_checkpoint(model, tmp_path / "student_best.pth")
    bundle = tmp_path / "exported" / "research-medpix-student"
    args = ["import-research", "--checkpoint", str(checkpoint), "--config", str(yaml_path)]
    assert main([*args, "--role", "student", "--out", str(bundle), "--threads", "1"]) == 0

    sample = load_samples("medpix", medpix_root, "dev")[3]
    manifest = Manifest.load(bundle)
    tokenizer = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    expected = _probabilities(model, sample.image_path, sample.text, TextEncoder(tokenizer, 256))
    with running_server(bundle.parent) as (_proc, base):
        response = httpx.post(
            f"{base}/predict",
            params={"model": "medpix"},  # the task-set alias reaches the imported student
            files={"image": (sample.image_path.name, sample.image_path.read_bytes(), "image/png")},
            data={"text": sample.text},
            timeout=30,
        )
        info = httpx.get(f"{base}/models/research-medpix-student", timeout=10).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "research-medpix-student"
    for key, task in zip(("logits_modality", "logits_location"), manifest.tasks, strict=True):
        served = body["predictions"][task.name]["probabilities"]
        got = np.array([served[label] for label in task.labels])
        assert np.abs(got - expected[key]).max() <= 1e-4
        assert body["predictions"][task.name]["label"] == task.labels[int(expected[key].argmax())]
    provenance = info["provenance"]
    assert provenance["source"] == "imported" and provenance["calibrated"] is False
    assert provenance["research_config"] == "medpix-student.yaml"
    assert len(provenance["checkpoint_sha256"]) == 64
    assert info["metrics"]["calibration"] == "uncalibrated"


def test_outputs_do_not_depend_on_padding_length(
    tmp_path: Path, tiny_backbones: None, medpix_root: Path
) -> None:
    """The research code padded to 256; shorter padding must give the same answer."""
    yaml_path = research_yaml(tmp_path / "run.yaml", text="tiny-distilbert")
    model = seeded_model(read_research_config(yaml_path, "teacher").model_config)
    tokenizer = resolve_tokenizer("tiny-distilbert").tokenizer
    research, short = TextEncoder(tokenizer, RESEARCH_MAX_LENGTH), TextEncoder(tokenizer, 64)
    samples = load_samples("medpix", medpix_root, "dev")[:12]
    fitting = [s for s in samples if short.encode([s.text]).token_counts[0] <= 64]
    assert len(fitting) >= 5
    for sample in fitting:
        padded_256 = _probabilities(model, sample.image_path, sample.text, research)
        padded_64 = _probabilities(model, sample.image_path, sample.text, short)
        for key, value in padded_256.items():
            assert np.abs(value - padded_64[key]).max() <= 1e-5
