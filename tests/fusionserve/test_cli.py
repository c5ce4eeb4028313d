"""The `fusionserve` command builds every subcommand's parser without torch, so a serve-only
install (no torch, no transformers) runs `serve`, `verify`, `predict` and shows every --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from fusionserve.cli import build_parser
build_parser()
banned = ("torch", "transformers")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
"""


def test_building_the_parser_imports_no_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_import_research_arguments_parse() -> None:
    from fusionserve.cli import build_parser

    args = build_parser().parse_args(
        ["import-research", "--checkpoint", "a.pth", "--config", "a.yaml", "--role", "teacher",
         "--out", "exported/x", "--task-set", "wound"]
    )  # fmt: skip
    assert (args.role, args.task_set, args.int8) == ("teacher", "wound", False)
    assert args.calibrate is None and args.tokenizer is None
