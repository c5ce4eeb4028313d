"""The one way a bundle folder becomes a `LoadedBundle`, for the service and the bench.

Steps: the bundle's serving settings resolve (`app.model_settings`); the manifest parses; the
graph and tokenizer are listed and every listed file matches its sha256 (a `BundleError` saying
which, otherwise); the tokenizer and the preprocessing spec are built; the session opens with
the bundle's runtime settings and the contract's signature (onnxruntime's own errors pass
through); the domain check, when the manifest lists one, loads and fits the graph's outputs;
the warm-up self-test passes (`app.warm_up`).
"""

from __future__ import annotations

import time
from pathlib import Path

from app.bundle_error import BundleError
from app.contract.domain import DomainModelError
from app.contract.domain_bundle import load_bundle_domain
from app.contract.image import ImageLimits
from app.contract.manifest import MODEL_FILE, TOKENIZER_FILE, Manifest, checksum_mismatches
from app.contract.text import TextEncoder
from app.loaded_bundle import LoadedBundle
from app.model_settings import resolve_model_settings
from app.preprocess import InputSpec
from app.runtime import load_onnx_model
from app.settings import Settings
from app.warm_up import warm_up


def load_bundle(bundle_dir: Path, settings: Settings) -> LoadedBundle:
    """Verify, open and warm up the bundle in `bundle_dir` (blocking: seconds for a teacher)."""
    start = time.perf_counter()
    model_settings = resolve_model_settings(bundle_dir, settings)
    manifest = read_manifest(bundle_dir)
    if unlisted := [f for f in (MODEL_FILE, TOKENIZER_FILE) if f not in manifest.files]:
        raise BundleError(f"manifest has no sha256 for {unlisted}")
    if problems := checksum_mismatches(bundle_dir, manifest):
        raise BundleError("checksum mismatch: " + "; ".join(problems))
    inputs = input_spec(bundle_dir, manifest, settings)
    try:
        domain = load_bundle_domain(bundle_dir, manifest)
    except DomainModelError as exc:
        raise BundleError(f"domain check: {exc}") from None
    onnx = load_onnx_model(bundle_dir, manifest, model_settings)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    warm_up(bundle_dir, manifest, inputs, onnx, domain)
    warmup_s = time.perf_counter() - start
    return LoadedBundle(
        bundle_dir.name,
        bundle_dir,
        manifest,
        model_settings,
        inputs,
        onnx,
        load_s,
        warmup_s,
        domain,
    )


def read_manifest(bundle_dir: Path) -> Manifest:
    try:
        return Manifest.load(bundle_dir)
    except Exception as exc:
        raise BundleError(f"manifest unreadable: {exc}") from None


def input_spec(bundle_dir: Path, manifest: Manifest, settings: Settings) -> InputSpec:
    """The bundle's preprocessing with its own tokenizer, under the service's client limits."""
    pre = manifest.preprocessing
    encoder = TextEncoder.from_file(
        bundle_dir / TOKENIZER_FILE, pre.max_text_length, pre.empty_text
    )
    limits = ImageLimits(max_pixels=settings.max_image_pixels, min_side=settings.min_image_side)
    return InputSpec.from_manifest(manifest, encoder, limits)
