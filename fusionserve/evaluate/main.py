"""One evaluation end to end: check the arguments, read the cases, score them through the
chosen path, write report.json, report.md and the plots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.contract.manifest import MANIFEST_FILE, Manifest
from fusionserve.evaluate.cases import load_cases
from fusionserve.evaluate.domain import domain_report
from fusionserve.evaluate.errors import EvaluateError
from fusionserve.evaluate.outputs import ItemOutput, Predictor
from fusionserve.evaluate.report import build_report, render_markdown, write_json
from fusionserve.evaluate.run_conditions import score_all


def load_manifest(bundle: Path) -> Manifest:
    if not (bundle / MANIFEST_FILE).is_file():
        raise EvaluateError(
            f"bundle not found: {bundle} has no {MANIFEST_FILE} (expected a bundle folder such "
            "as exported/medpix-student)"
        )
    try:
        return Manifest.load(bundle)
    except ValueError as exc:
        raise EvaluateError(f"{bundle / MANIFEST_FILE} is not a valid manifest: {exc}") from None


def open_predictor(args: argparse.Namespace, manifest: Manifest) -> Predictor:
    """The HTTP path with --url, else the in-process one."""
    if args.url:
        if args.precision is not None:
            raise EvaluateError(
                "--precision applies in-process only; the server's own "
                "FUSIONSERVE_PRECISION decides with --url"
            )
        from fusionserve.evaluate.remote import HttpPredictor

        model = args.model or args.bundle.resolve().name
        return HttpPredictor(args.url, model, manifest, args.api_key)
    if args.model:
        raise EvaluateError("--model names a model on a server; it needs --url")
    from fusionserve.evaluate.local import LocalPredictor

    return LocalPredictor(args.bundle, args.precision or "fp32", args.threads)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation `args` describe (see cli.add_arguments); returns the report."""
    manifest = load_manifest(args.bundle)
    cases = load_cases(args.data, args.split, manifest, args.limit)
    predictor = open_predictor(args, manifest)
    kept: dict[str, list[ItemOutput]] = {}
    try:
        results = score_all(predictor, manifest, cases, args.batch_size, not args.no_progress, kept)
        ood_data = getattr(args, "ood_data", None)
        domain = domain_report(
            predictor, kept["fused"], ood_data, args.split, args.batch_size, args.limit
        )
    finally:
        predictor.close()
    dataset = {"name": args.data.resolve().name, "split": args.split, "cases": len(cases)}
    report = build_report(manifest, str(args.bundle), predictor.source, dataset, results)
    report["domain"] = domain
    from fusionserve.evaluate.plots import write_plots

    args.out.mkdir(parents=True, exist_ok=True)
    labels = {t.name: list(t.labels) for t in manifest.tasks}
    plots = write_plots(report, labels, args.out)
    write_json(report, args.out / "report.json")
    (args.out / "report.md").write_text(render_markdown(report, plots), encoding="utf-8")
    return report
