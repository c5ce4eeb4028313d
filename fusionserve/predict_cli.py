"""`fusionserve predict`: score one case (a readable table) or a CSV/JSONL set of cases (a
progress bar, N requests in flight, resumable JSONL output) against a running server.

    fusionserve predict scan.png --text "Axial CT of the chest." [--url URL] [--model medpix]
    fusionserve predict --csv cases.csv --images DIR --out results.jsonl [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from fusionserve.client import (
    AsyncClient,
    Client,
    FusionServeError,
    Prediction,
    RetryPolicy,
)
from fusionserve.client.protocol import DEFAULT_URL
from fusionserve.predict_cases import CasesError, finished_ids, read_cases
from fusionserve.predict_set import score_cases


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0] if __doc__ else None
    parser.add_argument("image", nargs="?", type=Path, help="one image (single-case mode)")
    parser.add_argument("--text", default="", help="the case's caption / wound description")
    parser.add_argument(
        "--url",
        default=os.environ.get("FUSIONSERVE_URL", DEFAULT_URL),
        help="server base URL (default: $FUSIONSERVE_URL or %(default)s)",
    )
    parser.add_argument("--model", help="bundle name or task set (default: the server's)")
    parser.add_argument("--role", choices=["student", "teacher"], help="with a task set")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FUSIONSERVE_API_KEY"),
        help="API key (default: $FUSIONSERVE_API_KEY; prefer the variable: argv is visible)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=3, help="retries on 429/503/refused")
    parser.add_argument("--json", action="store_true", help="single case: print the raw JSON")
    batch = parser.add_argument_group("a set of cases")
    batch.add_argument("--csv", type=Path, help="cases file: .csv, or .jsonl (one object a line)")
    batch.add_argument("--images", type=Path, help="folder the image column is relative to")
    batch.add_argument("--out", type=Path, help="results, JSONL; rerunning skips cases in it")
    batch.add_argument("--image-column", default="image", help="default: %(default)s")
    batch.add_argument(
        "--text-column", default="text", help="default: %(default)s; dotted for nested JSON"
    )
    batch.add_argument("--id-column", help="unique case id (default: the image column)")
    batch.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    batch.add_argument("--retry-errors", action="store_true", help="rerun cases that failed")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")


def usage_problem(args: argparse.Namespace) -> str | None:
    if args.concurrency < 1 or args.retries < 0 or args.timeout <= 0:
        return "--concurrency must be ≥ 1, --retries ≥ 0, --timeout > 0"
    if args.csv is None:
        if args.image is None:
            return "give an IMAGE (one case) or --csv FILE --images DIR --out FILE (a set)"
        if not args.image.is_file():
            return f"image not found: {args.image}"
        return None
    if args.image is not None:
        return "give either an IMAGE or --csv, not both"
    if args.images is None or args.out is None:
        return "--csv needs --images DIR and --out results.jsonl"
    if not args.out.parent.is_dir():
        return f"folder for --out not found: {args.out.parent}"
    return None


DOMAIN_NOUNS = {
    "medpix": {"image": "a CT/MR slice", "text": "a radiology image caption"},
    "wound": {"image": "a wound photo", "text": "a wound description"},
}


def domain_lines(result: Prediction) -> list[str]:
    """A warning per side flagged out of domain, then both scores; nothing without a check."""
    if result.domain is None:
        return []
    nouns = DOMAIN_NOUNS.get(result.model.task_set, {})
    lines = [
        f"WARNING: out of domain: this {side} does not look like "
        f"{nouns.get(side, 'what the model was trained on')} "
        f"(score {result.domain[side].score:.2f} > 1); the prediction is unreliable"
        for side in result.out_of_domain
    ]
    scores = ", ".join(
        f"{side} {d.score:.2f}{'' if d.in_domain else ' OUT'}" for side, d in result.domain.items()
    )
    return [*lines, f"domain check (score, out above 1): {scores}", ""]


def table(result: Prediction) -> str:
    m = result.model
    lines = [f"model {m.name} ({m.role}, {m.fusion}, v{m.version})", ""]
    lines += domain_lines(result)
    width = max(len(label) for p in result.predictions.values() for label in p.probabilities)
    for task, p in result.predictions.items():
        flag = "  (low confidence)" if p.low_confidence else ""
        lines.append(f"{task}: {p.label} {p.probability:.3f}{flag}")
        for label, prob in sorted(p.probabilities.items(), key=lambda kv: -kv[1]):
            mark = "*" if label == p.label else " "
            bar = "█" * round(prob * 30)
            lines.append(f"  {mark} {label:<{width}}  {prob:6.3f}  {bar}".rstrip())
        lines.append("")
    if result.modality_weights:
        w = result.modality_weights
        lines.append(f"leaned on: image {w['image']:.2f} / text {w['text']:.2f}")
    lines.append(f"server time: {result.timing_ms.get('total', 0.0):.1f} ms")
    return "\n".join(lines)


def run_one(args: argparse.Namespace, retry: RetryPolicy) -> int:
    with Client(args.url, api_key=args.api_key, timeout=args.timeout, retry=retry) as client:
        result = client.predict(args.image, args.text, args.model, args.role)
    print(json.dumps(result.raw, indent=2) if args.json else table(result))
    return 0


async def run_set(args: argparse.Namespace, retry: RetryPolicy) -> int:
    cases = read_cases(args.csv, args.images, args.image_column, args.text_column, args.id_column)
    done = finished_ids(args.out, args.retry_errors)
    todo = [case for case in cases if case.id not in done]
    async with AsyncClient(
        args.url, api_key=args.api_key, timeout=args.timeout, retry=retry
    ) as client:
        await client.models()  # fail fast: unreachable server or wrong key, not N case errors
        summary = await score_cases(
            client,
            todo,
            args.out,
            concurrency=args.concurrency,
            model=args.model,
            role=args.role,
            progress=not args.no_progress,
        )
    summary.skipped = len(cases) - len(todo)
    print(summary.line(args.out), file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    problem = usage_problem(args)
    if problem:
        print(f"fusionserve predict: {problem}", file=sys.stderr)
        return 2
    retry = RetryPolicy(max_retries=args.retries)
    try:
        return asyncio.run(run_set(args, retry)) if args.csv else run_one(args, retry)
    except CasesError as exc:
        print(f"fusionserve predict: {exc}", file=sys.stderr)
        return 2
    except FusionServeError as exc:
        print(f"fusionserve predict: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
