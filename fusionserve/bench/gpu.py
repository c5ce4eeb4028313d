"""`python -m fusionserve.bench.gpu`: GPU readiness, measured — the student graph on
onnxruntime's CUDA execution provider with and without I/O binding against the CPU across batch
sizes, its outputs against the CPU's, and the served pipeline on CUDA against max_batch_size.
Run by bench/gpu.sh on a host with an NVIDIA GPU; never by CI. Prints a Markdown report and can
write it as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import onnxruntime as ort

from app.contract.manifest import Manifest
from app.settings import Settings
from fusionserve.bench import gpu_graph, gpu_served
from fusionserve.bench.samples import Sample, load_dev_samples, multipart_body

CPU = ["CPUExecutionProvider"]
CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def int_list(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def samples_for(task_set: str, datasets_root: Path, limit: int) -> list[Sample]:
    """Dev samples when the datasets are here, else the repository's example image with the
    example request texts (a GPU host often has the code but not the data)."""
    try:
        return load_dev_samples(task_set, datasets_root, limit)
    except (FileNotFoundError, OSError):
        pass
    image = next(EXAMPLES.glob(f"{task_set}-*"))
    texts = [
        item["text"]
        for item in json.loads((EXAMPLES / "predict-batch.json").read_text())["items"]
        if item.get("text")
    ]
    content_type = "image/png" if image.suffix == ".png" else "image/jpeg"
    data = image.read_bytes()
    return [Sample(f"{image.stem}-{i}", data, content_type, t) for i, t in enumerate(texts)]


def require(wanted: str, actual: str) -> None:
    """A session that fell back to the CPU would make a GPU report a CPU one: stop instead."""
    if actual != wanted:
        raise SystemExit(f"the session runs on {actual}, not {wanted}: check the CUDA libraries")


def measure(args: argparse.Namespace) -> dict[str, object]:
    threads = max(1, (os.cpu_count() or 2) // 2)
    base = Settings(intra_op_threads=threads, preprocess_workers=args.preprocess_workers)
    report: dict[str, object] = {
        "onnxruntime": ort.__version__,
        "available_providers": ort.get_available_providers(),
        "host": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    parity: dict[str, float] = {}
    graph_rows: list[gpu_graph.GraphRow] = []
    served_rows: list[gpu_served.ServedRow] = []
    for name in args.bundles:
        bundle_dir = args.bundle_dir / name
        manifest = Manifest.load(bundle_dir)
        samples = samples_for(manifest.task_set, args.datasets_root, 64)
        items = gpu_graph.prepared(bundle_dir, base, samples, 64)
        variants = [
            base.model_copy(update={"providers": CUDA, "io_binding": "on"}),
            base.model_copy(update={"providers": CUDA, "io_binding": "off"}),
            base.model_copy(update={"providers": CPU}),
        ]
        for settings in variants:
            batches = args.batches if settings.providers != CPU else args.cpu_batches
            rows = gpu_graph.sweep(bundle_dir, settings, items, batches, args.min_seconds)
            if settings.providers != CPU and args.require_provider:
                require(args.require_provider, rows[0].provider)
            graph_rows += rows
        parity[name] = gpu_graph.max_abs_difference(bundle_dir, variants[0], variants[2], items[:8])
        if args.served_batches:
            env = {
                "FUSIONSERVE_PROVIDERS": ",".join(CUDA),
                "FUSIONSERVE_PREPROCESS_WORKERS": str(args.preprocess_workers),
                "FUSIONSERVE_WORKERS": str(args.workers),
                "FUSIONSERVE_LOG_LEVEL": "warning",
            }
            bodies = [multipart_body(s) for s in samples]
            served_rows += gpu_served.sweep(
                args.bundle_dir, name, args.served_batches, bodies, args.concurrency,
                args.requests, args.clients, env,
            )  # fmt: skip
    report["parity"] = parity
    report["graph"] = [asdict(r) for r in graph_rows]
    report["served"] = [asdict(r) for r in served_rows]
    return report


def render(report: dict[str, object], command: str) -> str:
    lines = [
        "# GPU readiness",
        "",
        f"`{command}` at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; onnxruntime "
        f"{report['onnxruntime']}, providers {report['available_providers']}; "
        f"{report['cpu_count']} CPUs.",
        "",
        "## The graph alone (prepared inputs, one session, back-to-back runs)",
        "",
        "| bundle | provider | I/O binding | batch | runs | items/s | median ms per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["graph"]:  # type: ignore[attr-defined]
        lines.append(
            f"| {row['bundle']} | {row['provider']} | {'on' if row['io_binding'] else 'off'} | "
            f"{row['batch']} | {row['runs']} | {row['items_per_s']:.0f} | {row['median_ms']:.2f} |"
        )
    lines += ["", "Largest |output difference|, CUDA (I/O binding) vs CPU, batch of 8:", ""]
    for name, diff in report["parity"].items():  # type: ignore[attr-defined]
        lines.append(f"- {name}: {diff:.2e}")
    if report["served"]:
        lines += [
            "",
            "## Served on CUDA against max_batch_size (HTTP on loopback, client processes on "
            "the same host)",
            "",
            "| bundle | provider | max_batch_size | concurrency | requests | failures | req/s | "
            "p50 ms | p99 ms | mean batch |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in report["served"]:  # type: ignore[attr-defined]
            batch = "—" if row["mean_batch"] is None else f"{row['mean_batch']:.1f}"
            lines.append(
                f"| {row['bundle']} | {row['provider']} | {row['max_batch_size']} | "
                f"{row['concurrency']} | {row['requests']} | {row['failures']} | "
                f"{row['requests_per_s']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                f"{batch} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionserve.bench.gpu", description=__doc__)
    parser.add_argument("--bundle-dir", type=Path, default=Path("exported"))
    parser.add_argument("--bundles", type=lambda v: v.split(","), default=["medpix-student"])
    parser.add_argument("--datasets-root", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--batches", type=int_list, default=int_list("1,8,32,64,128,256"))
    parser.add_argument("--cpu-batches", type=int_list, default=int_list("1,32"))
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timed per batch size")
    parser.add_argument("--served-batches", type=int_list, default=int_list("1,8,32,64"))
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--preprocess-workers", type=int, default=8)
    parser.add_argument(
        "--require-provider", help="stop unless the GPU sessions run on this provider"
    )
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the measurements as JSON here")
    args = parser.parse_args(argv)
    report = measure(args)
    command = ["python", "-m", "fusionserve.bench.gpu", *(sys.argv[1:] if argv is None else argv)]
    text = render(report, shlex.join(command))
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
