"""seed_summary: mean ± std of the kept epoch's fused / image-only / text-only dev metrics."""

from __future__ import annotations

import json
from pathlib import Path

from models.training.seed_summary import collect, main


def _scores(f1: float) -> dict[str, object]:
    return {
        "type": {"macro_f1": f1, "accuracy": f1 + 0.1},
        "severity": {"macro_f1": 0.9, "accuracy": 0.9},
        "mean_macro_f1": (f1 + 0.9) / 2,
    }


def _run(root: Path, name: str, f1_by_epoch: tuple[float, float], best_epoch: int) -> Path:
    run = root / name
    run.mkdir()
    epochs = [
        {"epoch": e, "dev": _scores(f1), "dev_image_only": _scores(f1 / 2), "dev_text_only": {}}
        for e, f1 in enumerate(f1_by_epoch, start=1)
    ]
    (run / "metrics.json").write_text(json.dumps({"best_epoch": best_epoch, "epochs": epochs}))
    return run


def test_kept_epoch_values_are_collected_per_view(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", (0.1, 0.5), 2), _run(tmp_path, "b", (0.7, 0.2), 1)]
    values = collect(runs)
    assert values[("fused", "type", "macro_f1")] == [0.5, 0.7]
    assert values[("image only", "type", "macro_f1")] == [0.25, 0.35]
    assert ("text only", "type", "macro_f1") not in values


def test_markdown_shows_mean_and_sample_std(tmp_path: Path, capsys) -> None:
    runs = [_run(tmp_path, "a", (0.1, 0.5), 2), _run(tmp_path, "b", (0.2, 0.7), 2)]
    assert main([str(r) for r in runs]) == 0
    out = capsys.readouterr().out
    assert "| task (n = 2 runs) | fused | image only | text only |" in out
    assert "| type macro-f1 | 0.600 ± 0.141 | 0.300 ± 0.071 | – |" in out


def test_a_late_fused_run_is_its_own_record(tmp_path: Path) -> None:
    run = tmp_path / "late"
    run.mkdir()
    record = {"late_fusion": {"weights": {}}, "dev": _scores(0.72), "dev_image_only": _scores(0.6)}
    (run / "metrics.json").write_text(json.dumps(record))
    values = collect([run, _run(tmp_path, "network", (0.1, 0.5), 2)])
    assert values[("fused", "type", "macro_f1")] == [0.72, 0.5]
    assert values[("image only", "type", "accuracy")] == [0.7, 0.35]
