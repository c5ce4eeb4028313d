"""Checkpoint → bundle directory (model.onnx, tokenizer.json, manifest.json, self-test image,
optional model.int8.onnx), following docs/design.md §3.

Order: dev logits (PyTorch) → one temperature per head → export the calibrated graph →
judge the *graph* with onnxruntime (parity vs PyTorch, dev metrics, ECE) → optional int8,
shipped only if each task's macro-F1 drops ≤ 1 point → self-test → manifest with the sha256
of every file. The bundle is assembled in a sibling staging folder and moved into place only
when complete, so a failed export never leaves a half bundle behind.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from app.contract.graph import MODALITY_WEIGHTS_OUTPUT, prob_output
from app.contract.manifest import (
    INT8_MODEL_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    DomainSpec,
    Manifest,
    Preprocessing,
    SelfTest,
    sha256_file,
)
from app.contract.tasks import TaskSetSpec, task_set
from app.contract.text import trim_padding
from models.checkpoint import load_servable
from models.checkpoint_metadata import MetadataError
from models.export.calibrate import HeadCalibration, calibrate_head, ece
from models.export.conv_bias import conv_input_means
from models.export.dev_data import DataSource, DevSet, load_dev_set
from models.export.domain_export import DomainData, fit_bundle_domain, prepare_domain
from models.export.onnx_export import (
    LOGIT_KEYS,
    OPSET,
    CalibratedProbabilities,
    ExportError,
    export_onnx,
)
from models.export.ort_eval import (
    make_session,
    max_abs_diff,
    parity_by_batch,
    run_session,
    run_torch,
)
from models.export.probe import ProbeSet, dev_probe, synthetic_probe
from models.export.provenance import data_provenance, git_commit, pretrained_sources
from models.export.quantize import (
    MAX_MACRO_F1_DROP,
    int8_acceptable,
    macro_f1_drops,
    quantize_int8,
)
from models.export.selftest import build_self_test
from models.multitask import count_parameters
from models.servable import ServableModel
from models.training.metrics import task_metrics

PARITY_TOLERANCE = 1e-4
PARITY_BATCHES = (1, 7, 32)


@dataclass(frozen=True)
class ExportOptions:
    int8: bool = False
    name: str | None = None  # default: the output folder's name
    data_root: str | None = None  # default: the checkpoint's training config data.root
    batch_size: int = 32
    threads: int | None = None
    dev_limit: int | None = None  # first N dev samples only (tests, smoke runs)


def _labels(
    spec: TaskSetSpec, recorded: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """The contract's label order; a checkpoint recording another order is refused."""
    labels = {t: list(spec.labels(t)) for t in spec.task_names}
    if recorded is not None:
        for task, names in labels.items():
            if list(recorded.get(task, names)) != names:
                raise ExportError(
                    f"checkpoint labels for {task!r} are {list(recorded[task])}, the task set "
                    f"{spec.name!r} defines {names}"
                )
    return labels


@torch.no_grad()
def dev_logits(model: ServableModel, dev: DevSet, batch_size: int) -> list[np.ndarray]:
    model.eval()
    parts: list[list[np.ndarray]] = [[], []]
    for start in range(0, len(dev), batch_size):
        rows = slice(start, start + batch_size)
        out = model(
            torch.from_numpy(dev.pixel_values[rows]),
            torch.from_numpy(dev.input_ids[rows]),
            torch.from_numpy(dev.attention_mask[rows]),
        )
        for i, key in enumerate(LOGIT_KEYS):
            parts[i].append(out[key].float().numpy())
    return [np.concatenate(p) for p in parts]


def graph_metrics(
    outputs: Mapping[str, np.ndarray], dev: DevSet, task_names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """accuracy, macro_f1, auc and ECE per task, from a graph's (calibrated) probabilities."""
    result: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(task_names):
        probs = outputs[prob_output(task)].astype(np.float64)
        truth = dev.labels[:, i]
        scores = task_metrics(truth, probs)
        auc = scores.pop("roc_auc")
        result[task] = {
            "accuracy": round(float(scores["accuracy"] or 0.0), 6),
            "macro_f1": round(float(scores["macro_f1"] or 0.0), 6),
            "auc": None if auc is None else round(float(auc), 6),
            "ece": round(ece(probs, truth), 6),
        }
    return result


def _file_table(bundle: Path) -> tuple[dict[str, str], dict[str, int]]:
    files = sorted(p for p in bundle.iterdir() if p.is_file() and p.name != "manifest.json")
    return (
        {p.name: sha256_file(p) for p in files},
        {p.name: p.stat().st_size for p in files},
    )


@dataclass(frozen=True)
class ModelSource:
    """A loaded model and what its bundle must say about it, whoever produced the weights
    (our own training run, or a research checkpoint brought in by `import-research`)."""

    checkpoint: Path
    model: ServableModel  # one network, a seed ensemble, or a late-fused network
    task_set: str
    role: str
    labels: dict[str, list[str]]
    tokenizer_json: str
    max_length: int
    training_config: dict[str, Any]
    provenance: dict[str, Any]  # merged into the manifest's provenance
    checkpoint_metrics: Any = None
    image_size: int = 224

    @property
    def model_config(self) -> dict[str, Any]:
        return self.model.cfg.to_dict()


@dataclass(frozen=True)
class DevCalibration:
    """The dev split as model inputs and one fitted temperature per head."""

    data: DataSource
    dev: DevSet
    calibrations: list[HeadCalibration]

    @property
    def temperatures(self) -> list[float]:
        return [c.temperature for c in self.calibrations]


@dataclass
class _Job:
    """Everything one export needs, resolved from the model source and the options."""

    source: ModelSource
    name: str
    calibration: DevCalibration | None  # None: temperatures 1, no dev metrics
    probe: ProbeSet
    wrapper: CalibratedProbabilities
    options: ExportOptions
    domain: DomainData | None = None  # None: no data, no domain check

    @property
    def tasks(self) -> list[str]:
        return list(self.wrapper.task_names)


def calibrate_on_dev(
    source: ModelSource, data: DataSource, options: ExportOptions
) -> DevCalibration:
    """Encode `data`'s dev split with the source's tokenizer and fit the temperatures."""
    dev = load_dev_set(data, source.tokenizer_json, source.max_length, options.dev_limit)
    logits = dev_logits(source.model, dev, options.batch_size)
    calibrations = [calibrate_head(z, dev.labels[:, i]) for i, z in enumerate(logits)]
    return DevCalibration(data, dev, calibrations)


def checkpoint_source(checkpoint: Path) -> ModelSource:
    """A checkpoint written by `fusionserve train` as a model source."""
    model, _cfg, meta = load_servable(checkpoint)
    try:
        tokenizer_json = meta.require_tokenizer()
    except MetadataError as exc:
        raise ExportError(f"{checkpoint}: {exc}") from None
    spec = task_set(meta.task_set)
    training_config = dict(meta.training_config or {})
    return ModelSource(
        checkpoint=checkpoint,
        model=model,
        task_set=spec.name,
        role=meta.role,
        labels=_labels(spec, meta.labels),
        tokenizer_json=tokenizer_json,
        max_length=meta.max_text_length,
        training_config=training_config,
        provenance={"source": "trained", "training": meta.provenance},
        checkpoint_metrics=meta.metrics,
        image_size=meta.image_size,
    )


def prepare_job(
    source: ModelSource,
    name: str,
    options: ExportOptions,
    data: DataSource | None,
    workdir: Path,
) -> _Job:
    """Fit the temperatures on `data`'s dev split when given; else ship temperature 1 and
    judge the graph on synthetic contract inputs (their images are written to `workdir`)."""
    spec = task_set(source.task_set)
    domain = None
    if data is None:
        if options.int8:
            raise ExportError("int8 is shipped only when dev macro-F1 holds: it needs dev data")
        calibration = None
        probe = synthetic_probe(
            source.tokenizer_json, source.max_length, source.image_size, workdir
        )
        temperatures = [1.0, 1.0]
    else:
        calibration = calibrate_on_dev(source, data, options)
        probe = dev_probe(calibration.dev, source.labels)
        temperatures = calibration.temperatures
        domain = prepare_domain(
            data,
            _train_split(source.training_config),
            source.tokenizer_json,
            source.max_length,
            _vocab_size(source),
            options.dev_limit,
            source.model,
        )
    features = None if domain is None else domain.features
    wrapper = CalibratedProbabilities(source.model, spec.task_names, temperatures, features)
    return _Job(source, name, calibration, probe, wrapper, options, domain)


def _train_split(training_config: dict[str, Any]) -> str:
    """The split the domain check is fitted on: the training config's, else "train"."""
    data = training_config.get("data")
    split = data.get("train_split") if isinstance(data, dict) else None
    return str(split or "train")


def _vocab_size(source: ModelSource) -> int:
    embeddings = source.model.text.get_input_embeddings()
    if not isinstance(embeddings, nn.Embedding):
        raise ExportError(f"unexpected text embedding module {type(embeddings).__name__}")
    return embeddings.num_embeddings


def export_bundle(
    checkpoint: str | Path, out_dir: str | Path, options: ExportOptions | None = None
) -> Manifest:
    """Export a `fusionserve train` checkpoint (calibrated on its training data's dev split)."""
    options = options or ExportOptions()
    source = checkpoint_source(Path(checkpoint))
    data = DataSource.from_training_config(
        source.task_set, source.training_config, options.data_root
    )
    return write_bundle_dir(source, out_dir, options, data)


def write_bundle_dir(
    source: ModelSource, out_dir: str | Path, options: ExportOptions, data: DataSource | None
) -> Manifest:
    """Write a complete, verified bundle to `out_dir` and return its manifest."""
    out_dir = Path(out_dir)
    if options.threads:
        torch.set_num_threads(options.threads)
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix="fusionserve-probe-") as workdir:
            job = prepare_job(source, options.name or out_dir.name, options, data, Path(workdir))
            manifest = write_bundle(job, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return manifest


def _trimmed_rows(
    pixel_values: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray
) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Up to 7 of the shortest texts, cut to their bucketed length as the service runs them."""
    rows = np.argsort(attention_mask.sum(axis=1), kind="stable")[:7]
    ids, mask = trim_padding(input_ids[rows], attention_mask[rows])
    return ids.shape[1], (pixel_values[rows], ids, mask)


def _parity(job: _Job, session: ort.InferenceSession) -> dict[str, Any]:
    """max |ORT − PyTorch| at batch 1, 7, 32, over every probe row, and at a shorter
    (bucketed) text length; fails the export above PARITY_TOLERANCE."""
    arrays, bs, wrapper = job.probe.arrays(), job.options.batch_size, job.wrapper
    rows = len(arrays[0])
    parity = parity_by_batch(
        session, wrapper, *arrays, batch_sizes=[b for b in PARITY_BATCHES if b <= rows]
    )
    parity[f"all_{job.probe.origin}"] = max_abs_diff(
        run_session(session, *arrays, batch_size=bs), run_torch(wrapper, *arrays, batch_size=bs)
    )
    length, trimmed = _trimmed_rows(*arrays)
    parity[f"length_{length}"] = max_abs_diff(
        run_session(session, *trimmed, batch_size=bs), run_torch(wrapper, *trimmed, batch_size=bs)
    )
    worst = max(parity.values())
    if worst > PARITY_TOLERANCE:
        raise ExportError(
            f"onnxruntime differs from PyTorch by {worst:.2e} (> {PARITY_TOLERANCE}): {parity}"
        )
    return {
        "max_abs_diff": {k: float(f"{v:.3e}") for k, v in parity.items()},
        "tolerance": PARITY_TOLERANCE,
        "rows": rows,
        "reference": f"eager PyTorch, same calibrated wrapper, {job.probe.origin} inputs",
    }


def _dev_metrics(
    calibration: DevCalibration, session: ort.InferenceSession, job: _Job
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Dev outputs of the fp32 graph and its metrics with the calibration numbers."""
    dev = calibration.dev
    onnx_dev = run_session(
        session, dev.pixel_values, dev.input_ids, dev.attention_mask, job.options.batch_size
    )
    dev_metrics: dict[str, Any] = graph_metrics(onnx_dev, dev, job.tasks)
    for task, head in zip(job.tasks, calibration.calibrations, strict=True):
        c = head.as_dict()
        dev_metrics[task].update(
            ece_before=c["ece_before"],
            ece_cv=c["ece_cv"],
            nll_before=c["nll_before"],
            nll=c["nll"],
            temperature=c["temperature"],
        )
    return onnx_dev, {**dev_metrics, "samples": len(dev), "split": calibration.data.split}


def _int8(
    job: _Job,
    dev: DevSet,
    staging: Path,
    fp32_dev: dict[str, np.ndarray],
    fp32_metrics: dict[str, Any],
) -> tuple[ort.InferenceSession | None, dict[str, Any] | None, dict[str, Any]]:
    """Quantize, score on dev, keep the file only if macro-F1 holds: (session, info, report)."""
    means, correction = None, None
    # the training split as the domain check read it (its first `dev_limit` rows when set)
    if job.domain is not None:
        train = job.domain.train
        options = job.options
        means = conv_input_means(
            staging / MODEL_FILE, train.rows(len(train)), options.batch_size, options.threads
        )
        correction = {"split": job.domain.split, "samples": len(train)}
    details = quantize_int8(staging / MODEL_FILE, staging / INT8_MODEL_FILE, means)
    details["conv_bias_correction"] = correction
    session = make_session(staging / INT8_MODEL_FILE, job.options.threads)
    out = run_session(
        session, dev.pixel_values, dev.input_ids, dev.attention_mask, job.options.batch_size
    )
    metrics = graph_metrics(out, dev, job.tasks)
    drops = macro_f1_drops({t: fp32_metrics[t] for t in job.tasks}, metrics)
    shipped = int8_acceptable(drops)
    report = {
        "dev": metrics,
        "macro_f1_drop": drops,
        "max_macro_f1_drop": MAX_MACRO_F1_DROP,
        "shipped": shipped,
        "max_abs_diff_vs_fp32": round(max_abs_diff(out, fp32_dev), 6),
        "conv_bias_correction": correction,
    }
    if not shipped:
        del session
        (staging / INT8_MODEL_FILE).unlink()
        return None, None, report
    return session, {"file": INT8_MODEL_FILE, **details, "metrics": {"dev": metrics}}, report


def _evaluate(
    job: _Job, staging: Path, fp32: ort.InferenceSession
) -> tuple[dict[str, Any], ort.InferenceSession | None, dict[str, Any] | None]:
    """The manifest's metrics: parity always; dev metrics and int8 when calibrated on dev."""
    source, calibration = job.source, job.calibration
    metrics: dict[str, Any] = {
        "parity": _parity(job, fp32),
        "calibration": "uncalibrated" if calibration is None else "temperature scaling on dev",
        "checkpoint": source.checkpoint_metrics,
    }
    if calibration is None:
        return metrics, None, None
    fp32_dev, metrics["dev"] = _dev_metrics(calibration, fp32, job)
    if not job.options.int8:
        return metrics, None, None
    int8_session, int8_info, metrics["int8"] = _int8(
        job, calibration.dev, staging, fp32_dev, metrics["dev"]
    )
    return metrics, int8_session, int8_info


def _fit_domain(
    job: _Job,
    staging: Path,
    pre: Preprocessing,
    self_test: SelfTest,
    fp32: ort.InferenceSession,
    int8: ort.InferenceSession | None,
) -> DomainSpec | None:
    """Fit the bundle's domain check (`models.export.domain_export`) when it has data."""
    if job.domain is None or job.calibration is None:
        return None
    sessions = {"fp32": fp32} if int8 is None else {"fp32": fp32, "int8": int8}
    sample = ((staging / self_test.image).read_bytes(), self_test.text)
    return fit_bundle_domain(
        job.domain,
        job.calibration.dev,
        staging,
        pre,
        job.source.tokenizer_json,
        sessions,
        sample,
        job.options.batch_size,
    )


def write_bundle(job: _Job, staging: Path) -> Manifest:
    """Export, evaluate, self-test and describe the bundle inside `staging`."""
    source = job.source
    vocab = _vocab_size(source)
    export_onnx(job.wrapper, staging / MODEL_FILE, source.image_size, source.max_length, vocab)
    tokenizer_path = staging / TOKENIZER_FILE
    tokenizer_path.write_text(source.tokenizer_json, encoding="utf-8")

    fp32 = make_session(staging / MODEL_FILE, job.options.threads)
    metrics, int8_session, int8_info = _evaluate(job, staging, fp32)

    pre = Preprocessing(image_size=source.image_size, max_text_length=source.max_length)
    self_test = build_self_test(
        job.probe.sample,
        staging,
        tokenizer_path,
        pre,
        job.wrapper,
        fp32,
        int8_session,
        job.probe.truth,
    )

    domain = _fit_domain(job, staging, pre, self_test, fp32, int8_session)
    files, sizes = _file_table(staging)
    model_config = source.model_config
    extras: dict[str, Any] = {
        "model_config": model_config,
        "file_bytes": sizes,
        "exporter": {
            "exporter": "torch.onnx.export(dynamo=True)",
            "opset": OPSET,
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
    }
    calibration = job.calibration
    dev_provenance = (
        {"dev_split": calibration.data.split, "dev_samples": len(calibration.dev)}
        if calibration is not None
        else {"calibrated": False, "domain_check": "none fitted: exported without data"}
    )
    manifest = Manifest(
        name=job.name,
        task_set=source.task_set,  # type: ignore[arg-type]
        role=source.role,  # type: ignore[arg-type]
        fusion=str(model_config["fusion_type"]),
        backbones={"vision": model_config["vision"], "text": model_config["text"]},
        preprocessing=pre,
        tasks=job.wrapper.task_specs(source.labels),
        modality_weights_output=MODALITY_WEIGHTS_OUTPUT if job.wrapper.with_weights else None,
        files=files,
        parameter_count=count_parameters(source.model),
        metrics=metrics,
        training_config=source.training_config,
        provenance={
            **data_provenance(source.task_set),
            **dev_provenance,
            "checkpoint": source.checkpoint.name,
            "checkpoint_sha256": sha256_file(source.checkpoint),
            "pretrained": pretrained_sources(source.training_config),
            **source.provenance,
        },
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        git_commit=git_commit(),
        self_test=self_test,
        int8=int8_info,
        domain=domain,
        **extras,
    )
    manifest.save(staging)
    return manifest
