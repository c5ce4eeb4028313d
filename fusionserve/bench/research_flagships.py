"""Full-size research flagships through `fusionserve import-research` (random weights).

Run from the repository root with the train extra (needs torch; minutes, several GB RAM):

    python -m fusionserve.bench.research_flagships --work ../artifacts/flagships [--which student]

For each flagship — student mobilevit-xx-small + bert-mini, teacher vit-base + bert-base-uncased,
both cross_attention D=256 on MedPix — it writes a research YAML and a bare state_dict with
seeded weights, times the import, reports the bundle size, the onnxruntime CPU latency per
sample at batch 1 (one thread, median) with the research padding (256) and with the caption
padded as the service pads it (its length rounded up to 16), and served parity: a real MedPix
dev image and caption posted to a `fusionserve serve` process, against the torch model's
softmax on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
import yaml

from app.contract.graph import graph_feeds
from app.contract.image import image_to_array, load_image_file
from app.contract.manifest import MODEL_FILE, TOKENIZER_FILE, Manifest
from app.contract.text import TextEncoder, trim_padding
from fusionserve.bench.coldstart import free_port, running_server
from fusionserve.bench.suite import bundle_mb
from models.data import load_samples
from models.export.ort_eval import make_session
from models.multitask import MultiTaskModel, count_parameters
from models.research_import.importer import ImportRequest, import_research
from models.research_import.research_config import read_research_config

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDPIX_ROOT = REPO_ROOT.parent / "shared" / "datasets" / "medpix-2.0"
FLAGSHIPS: dict[str, dict[str, Any]] = {
    "student": {"vision": "mobilevit-xx-small", "text": "bert-mini", "fusion_dim": 256,
                "fusion_heads": 8, "fusion_layers": 1, "dropout": 0.2924},
    "teacher": {"vision": "vit-base", "text": "bert-base-uncased", "fusion_dim": 256,
                "fusion_heads": 4, "fusion_layers": 3, "dropout": 0.0962},
}  # fmt: skip
LATENCY_RUNS = 20


def write_research_run(work: Path, role: str) -> tuple[Path, Path, MultiTaskModel]:
    """YAML in the research schema + torch.save(state_dict()) of a seeded model."""
    config = {
        "data": {"type": "medpix", "root": "datasets/MedPix-2-0", "batch_size": 16},
        role: FLAGSHIPS[role],
        "fusion": {"type": "cross_attention"},
        "loss": {"type": "combined"},
    }
    yaml_path = work / f"{role}.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    torch.manual_seed(7)
    model = MultiTaskModel(read_research_config(yaml_path, role).model_config).eval()
    with torch.no_grad():  # research init gives near-uniform heads; make the outputs peaked
        for name, weight in model.named_parameters():
            if name.startswith("head_") and name.endswith(".weight"):
                weight.normal_(0.0, 1.0)
    checkpoint = work / f"{role}_best.pth"
    torch.save(model.state_dict(), checkpoint)
    return yaml_path, checkpoint, model


def ort_latency_ms(bundle: Path, feeds: dict[str, np.ndarray]) -> float:
    session = make_session(bundle / MODEL_FILE, threads=1)
    session.run(None, feeds)
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def served_parity(bundle: Path, model: MultiTaskModel, image: Path, text: str) -> dict[str, Any]:
    """POST one real case to a served copy of the bundle; compare with torch on the same inputs."""
    manifest = Manifest.load(bundle)
    pre = manifest.preprocessing
    pixels = image_to_array(load_image_file(image), pre.image_size)[None]
    encoder = TextEncoder.from_file(bundle / TOKENIZER_FILE, pre.max_text_length)
    encoded = encoder.encode([text])
    with torch.no_grad():
        out = model(
            torch.from_numpy(pixels),
            torch.from_numpy(encoded.input_ids),
            torch.from_numpy(encoded.attention_mask),
        )
    port = free_port()
    cmd = [sys.executable, "-m", "fusionserve.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--bundle-dir", str(bundle.parent)]  # fmt: skip
    env = {"FUSIONSERVE_INTRA_OP_THREADS": "2"}
    with running_server(cmd, f"http://127.0.0.1:{port}", env=env, cwd=REPO_ROOT) as server:
        response = httpx.post(
            f"{server.base_url}/predict",
            params={"model": manifest.name},
            files={"image": (image.name, image.read_bytes(), "image/png")},
            data={"text": text},
            timeout=120,
        )
        response.raise_for_status()
        body = response.json()
    worst = 0.0
    for key, task in zip(("logits_modality", "logits_location"), manifest.tasks, strict=True):
        expected = torch.softmax(out[key][0] / task.temperature, dim=-1).numpy()
        served = body["predictions"][task.name]["probabilities"]
        got = np.array([served[label] for label in task.labels])
        worst = max(worst, float(np.abs(got - expected).max()))
    return {"max_abs_diff": worst, "response": body}


def run_flagship(work: Path, role: str) -> dict[str, Any]:
    yaml_path, checkpoint, model = write_research_run(work, role)
    out = work / "exported" / f"research-{role}"
    started = time.perf_counter()
    manifest = import_research(
        ImportRequest(checkpoint=checkpoint, config=yaml_path, role=role, out=out, threads=2)
    )
    import_s = time.perf_counter() - started
    sample = load_samples("medpix", MEDPIX_ROOT, "dev")[0]
    pre = manifest.preprocessing
    encoded = TextEncoder.from_file(out / TOKENIZER_FILE, pre.max_text_length).encode(
        [sample.text]
    )
    pixels = image_to_array(load_image_file(sample.image_path), pre.image_size)[None]
    feeds = graph_feeds(pixels, encoded.input_ids, encoded.attention_mask)
    trimmed = graph_feeds(pixels, *trim_padding(encoded.input_ids, encoded.attention_mask))
    served = served_parity(out, model, sample.image_path, sample.text)
    return {
        "role": role,
        **FLAGSHIPS[role],
        "parameters": count_parameters(model),
        "checkpoint_mb": round(checkpoint.stat().st_size / 1e6, 1),
        "import_s": round(import_s, 1),
        "bundle_mb": round(bundle_mb(out), 1),
        "export_parity": manifest.metrics["parity"]["max_abs_diff"],
        "ort_ms_per_sample_batch1_1thread_padded_256": round(ort_latency_ms(out, feeds), 1),
        "text_tokens": int(encoded.token_counts[0]),
        f"ort_ms_per_sample_batch1_1thread_padded_{trimmed['input_ids'].shape[1]}": round(
            ort_latency_ms(out, trimmed), 1
        ),
        "served_parity_max_abs_diff": served["max_abs_diff"],
        "served_response": served["response"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for YAMLs, .pth files, bundles")
    parser.add_argument("--which", choices=("student", "teacher", "both"), default="both")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    roles = ["student", "teacher"] if args.which == "both" else [args.which]
    results = []
    for role in roles:
        result = run_flagship(work, role)
        results.append(result)
        summary = {k: v for k, v in result.items() if k != "served_response"}
        print(json.dumps(summary, indent=1), flush=True)
    (work / "flagships.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
