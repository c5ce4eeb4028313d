"""The two paths agree: the same tiny real ONNX bundle scored in-process and through a real
`fusionserve serve` (uvicorn subprocess, /predict/batch) gives the same report numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusionserve.evaluate.cases import load_cases
from fusionserve.evaluate.local import LocalPredictor
from tests.app.servers import free_port, running_server
from tests.fusionserve.evaluate.conftest import Evaluate
from tests.fusionserve.evaluate.test_cases import MEDPIX

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_bundles: Path) -> Iterator[str]:
    with running_server(tiny_bundles) as (_, base):
        yield base


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.0.c": leaf} for nested dicts and lists."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)  # type: ignore[assignment]
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, child in items:
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


@pytest.mark.parametrize("task_set", ["medpix", "wound"])
def test_in_process_and_http_give_the_same_numbers(
    task_set: str, tiny_bundles: Path, server: str, run_evaluate: Evaluate, request: Any
) -> None:
    data = request.getfixturevalue(f"{task_set}_root")
    common = ["--bundle", str(tiny_bundles / f"{task_set}-student"), "--data", str(data)]
    common += ["--limit", "40", "--batch-size", "16"]  # 16 + 16 + 8
    status_local, local = run_evaluate(*common, out="local")
    status_http, remote = run_evaluate(*common, "--url", server, out="http")
    assert status_local == status_http == 0 and local and remote
    assert local["source"]["via"] == "in-process" and remote["source"]["via"] == server
    assert local["dataset"]["cases"] == remote["dataset"]["cases"] == 40
    ours, theirs = flatten(local["results"]), flatten(remote["results"])
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        if isinstance(value, float):
            assert theirs[key] == pytest.approx(value, abs=2e-6), key  # 6-place rounding
        else:
            assert theirs[key] == value, key
    # Not vacuous: taking a modality away changes what the model answers.
    fused, image_only, text_only = (local["results"][c] for c in local["conditions"])
    assert fused["modality_weights"] != image_only["modality_weights"]
    assert fused["modality_weights"] != text_only["modality_weights"]


def test_image_only_is_what_the_service_does_with_an_empty_text(
    tiny_bundles: Path, medpix_root: Path
) -> None:
    image = load_cases(medpix_root, "dev", MEDPIX, limit=1)[0].image
    fallback = MEDPIX.preprocessing.empty_text
    predictor = LocalPredictor(tiny_bundles / "medpix-student")
    try:
        empty, explicit, other = predictor.predict(
            [(image, ""), (image, fallback), (image, "Axial CT of the head.")]
        )
    finally:
        predictor.close()
    for task, probs in empty.probabilities.items():
        assert probs == pytest.approx(explicit.probabilities[task], abs=1e-6)
    assert empty.probabilities != other.probabilities


def test_a_server_with_another_version_of_the_bundle_is_refused(
    server: str, medpix_root: Path, run_evaluate: Evaluate, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server's medpix-student is the tiny one; the committed bundle has the same name.
    bundle = Path(__file__).resolve().parents[3] / "exported" / "medpix-student"
    status, report = run_evaluate(
        "--bundle", str(bundle), "--data", str(medpix_root), "--url", server
    )
    assert (status, report) == (2, None)
    assert "evaluate the bundle the server serves" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "nope"], "404 unknown_model"),
        (["--url", "http://127.0.0.1:{port}"], "cannot reach http://127.0.0.1"),
    ],
)
def test_server_problems_are_reported(
    extra: list[str],
    message: str,
    server: str,
    tiny_bundles: Path,
    medpix_root: Path,
    run_evaluate: Evaluate,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--bundle", str(tiny_bundles / "medpix-student"), "--data", str(medpix_root)]
    args += ["--url", server, *(e.format(port=free_port()) for e in extra)]
    assert run_evaluate(*args) == (2, None)
    assert message in capsys.readouterr().err
