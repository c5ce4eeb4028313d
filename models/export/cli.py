"""`fusionserve export --checkpoint PATH --out exported/<name> [--int8]` (torch imported in run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by train (best.pt)")
    parser.add_argument("--out", required=True, help="bundle folder to write, e.g. exported/x")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx (MatMul/Gemm dynamic int8; shipped only if each "
        "task's dev macro-F1 drops <= 1 point)",
    )
    parser.add_argument("--name", help="bundle name in the manifest (default: the --out folder)")
    parser.add_argument(
        "--data-root", help="dataset folder for the dev split (default: the training config's)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="dev evaluation batch size")
    parser.add_argument("--threads", type=int, help="torch/onnxruntime intra-op threads")
    parser.add_argument(
        "--dev-limit", type=int, help="use only the first N dev samples (smoke runs; N >= 32)"
    )


def run(args: argparse.Namespace) -> int:
    from models.data import DataError
    from models.export.bundle import ExportOptions, export_bundle
    from models.export.onnx_export import ExportError

    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        print(f"fusionserve export: checkpoint not found: {checkpoint}", file=sys.stderr)
        return 2
    if args.dev_limit is not None and args.dev_limit < 32:
        print("fusionserve export: --dev-limit must be >= 32 (parity at batch 32)", file=sys.stderr)
        return 2
    options = ExportOptions(
        int8=args.int8,
        name=args.name,
        data_root=args.data_root,
        batch_size=args.batch_size,
        threads=args.threads,
        dev_limit=args.dev_limit,
    )
    try:
        manifest = export_bundle(checkpoint, args.out, options)
    except (ExportError, DataError, ValueError) as exc:
        print(f"fusionserve export: {exc}", file=sys.stderr)
        return 1
    print(summary(manifest.model_dump(mode="json"), Path(args.out)))
    return 0


def summary(manifest: dict[str, object], out: Path) -> str:
    """One human-readable paragraph: size, parameters, dev metrics, calibration, int8."""
    metrics = manifest["metrics"]
    assert isinstance(metrics, dict)
    sizes = manifest.get("file_bytes") or {}
    assert isinstance(sizes, dict)
    lines = [
        f"wrote {out}: {sum(sizes.values()) / 1e6:.1f} MB, "
        f"{manifest['parameter_count']:,} parameters",
    ]
    int8 = metrics.get("int8") or {}
    dev = metrics.get("dev") or {}
    if not dev:
        lines.append("  uncalibrated (temperatures 1): no dev metrics")
    for task in [t["name"] for t in manifest["tasks"]]:  # type: ignore[attr-defined]
        if task not in dev:
            continue
        d = dev[task]
        line = (
            f"  {task}: acc {d['accuracy']:.3f} macro-F1 {d['macro_f1']:.3f} AUC {d['auc']} "
            f"ECE {d['ece_before']:.3f} -> {d['ece']:.3f} (cv {d['ece_cv']:.3f}, "
            f"T {d['temperature']:.3f})"
        )
        if int8:
            i = int8["dev"][task]
            line += f" | int8 acc {i['accuracy']:.3f} macro-F1 {i['macro_f1']:.3f}"
        lines.append(line)
    parity = metrics["parity"]["max_abs_diff"]
    lines.append(f"  parity max |dprob| ORT vs torch: {parity}")
    if int8:
        lines.append(f"  int8 shipped: {int8['shipped']} (macro-F1 drop {int8['macro_f1_drop']})")
    lines.append(domain_line(manifest.get("domain")))
    return "\n".join(lines)


def domain_line(domain: object) -> str:
    """What the bundle's domain check flags (own dev, synthetic images), or that none ships."""
    if not isinstance(domain, dict):
        return "  domain check: NONE FITTED (exported without data: answers carry no domain flag)"
    metrics = domain["metrics"]
    own, synthetic = metrics["own_dev"], metrics["synthetic_images"]
    return (
        f"  domain check: own dev flagged {own['either']:.1%} (image {own['image']:.1%}, text "
        f"{own['text']:.1%}; target <= {domain['false_flag_rate']:.0%}), synthetic images "
        f"flagged {synthetic['image']:.0%}"
    )
