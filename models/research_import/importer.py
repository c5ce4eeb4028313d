"""Research `.pth` + its YAML → an ordinary bundle (`fusionserve verify` and `serve` as is).

Steps: read the YAML for the role → build the exact architecture offline → load the bare
state_dict strictly (missing, unexpected and mis-shaped keys listed) → find the research text
model's own tokenizer → write the bundle through the same exporter as trained checkpoints
(parity against PyTorch at batch 1, 7, 32; self-test; sha256 of every file). With a dataset
root the temperatures are fitted on its dev split and dev metrics recorded, and the domain check
is fitted (train split, thresholds on dev); without one they stay 1, the manifest says
"uncalibrated" and has no domain check (`domain: null`, provenance says none was fitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from app.contract.manifest import Manifest
from app.contract.tasks import task_set
from models.checkpoint import load_research_checkpoint
from models.export.bundle import ExportOptions, ModelSource, write_bundle_dir
from models.export.dev_data import DataSource
from models.research_import.research_config import read_research_config
from models.research_import.tokenizer_source import check_vocabulary, resolve_tokenizer

# Research tokenisation: truncation + padding to 256 (docs/spec.md §3.3). With the attention
# mask the outputs do not depend on the padding length, so 256 only caps the text, as there.
RESEARCH_MAX_LENGTH = 256
RESEARCH_IMAGE_SIZE = 224


@dataclass(frozen=True)
class ImportRequest:
    checkpoint: Path
    config: Path
    role: str
    out: Path
    task_set: str | None = None
    tokenizer: Path | None = None
    calibrate: Path | None = None  # dataset root: fit temperatures on its dev split
    int8: bool = False
    name: str | None = None
    threads: int | None = None
    batch_size: int = 32
    dev_limit: int | None = None


def model_source(request: ImportRequest) -> ModelSource:
    """Everything the exporter needs, resolved and checked before any export work."""
    run = read_research_config(request.config, request.role, request.task_set)
    resolved = resolve_tokenizer(run.text_backbone, request.tokenizer)
    model = load_research_checkpoint(request.checkpoint, run.model_config)
    embeddings = model.text.get_input_embeddings()
    assert isinstance(embeddings, nn.Embedding)
    check_vocabulary(resolved.tokenizer, embeddings.num_embeddings, run.text_backbone)
    spec = task_set(run.task_set)
    return ModelSource(
        checkpoint=request.checkpoint,
        model=model,
        task_set=run.task_set,
        role=run.role,
        labels={t: list(spec.labels(t)) for t in spec.task_names},
        tokenizer_json=resolved.tokenizer.to_str(),
        max_length=RESEARCH_MAX_LENGTH,
        training_config=run.raw,
        provenance={
            "source": "imported",
            "calibrated": request.calibrate is not None,
            "research_config": run.file_name,
            "research_config_sha256": run.sha256,
            "research_config_ignored_fusion_keys": list(run.ignored_fusion_keys),
            "tokenizer": resolved.provenance,
            "weights": f"research checkpoint {request.checkpoint.name}, imported unchanged",
        },
        image_size=RESEARCH_IMAGE_SIZE,
    )


def import_research(request: ImportRequest) -> Manifest:
    """Write the bundle for `request` and return its manifest."""
    source = model_source(request)
    data = (
        DataSource(task_set=source.task_set, root=request.calibrate, split="dev")
        if request.calibrate is not None
        else None
    )
    options = ExportOptions(
        int8=request.int8,
        name=request.name,
        batch_size=request.batch_size,
        threads=request.threads,
        dev_limit=request.dev_limit,
    )
    return write_bundle_dir(source, request.out, options, data)
