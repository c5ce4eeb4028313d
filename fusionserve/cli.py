"""`fusionserve` console script.

Each subcommand lives in its own module exposing `add_arguments(parser)` (cheap, torch-free)
and `run(args) -> int` (may import heavy dependencies). Modules are imported lazily so a
serve-only install never touches torch, and a missing extra fails with a clear message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, help, extra that provides it)
    "train": ("models.training.cli", "train a teacher or distil a student", "train"),
    "export": ("models.export.cli", "export a checkpoint to an ONNX bundle", "train"),
    "verify": ("app.verify_cli", "verify a bundle's checksums and self-test", "serve"),
    "serve": ("app.serve_cli", "run the HTTP inference service", "serve"),
    "bench": (
        "fusionserve.bench.cli",
        "benchmark the service against its ceiling and baselines",
        "serve",
    ),
    "import-research": (
        "models.research_import.cli",
        "turn a research checkpoint (.pth + YAML) into a bundle",
        "train",
    ),
    "evaluate": (
        "fusionserve.evaluate.cli",
        "score a bundle or a running server on a dataset split (report + plots)",
        "train",
    ),
    "predict": ("fusionserve.predict_cli", "predict one case or a CSV of cases", "serve"),
}


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name.split(".")[0]):
            return None  # subcommand not part of this install
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusionserve", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text, _extra) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        module = _load(module_name)
        if module is not None:
            module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name = args._module
    extra = SUBCOMMANDS[args.command][2]
    try:
        module = importlib.import_module(module_name)
        return int(module.run(args) or 0)
    except ModuleNotFoundError as exc:
        print(
            f"fusionserve {args.command}: missing dependency {exc.name!r}; "
            f"install the '{extra}' extra: pip install 'fusionserve[{extra}]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
