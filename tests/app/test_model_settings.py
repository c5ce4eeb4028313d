"""Per-model serving settings: env over serving.json over the global default, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.model_settings import ModelSettingsError, env_name, resolve_model_settings
from tests.app.helpers import tiny_settings


def _bundle(tmp_path: Path, name: str = "medpix-student", serving: object = None) -> Path:
    bundle = tmp_path / name
    bundle.mkdir()
    if serving is not None:
        text = serving if isinstance(serving, str) else json.dumps(serving)
        (bundle / "serving.json").write_text(text)
    return bundle


def test_env_beats_file_beats_global_default(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path, max_batch_size=32, queue_size=256, precision="fp32")
    bundle = _bundle(tmp_path, serving={"max_batch_size": 8, "queue_size": 64})
    environ = {
        "FUSIONSERVE_MODEL__MEDPIX_STUDENT__MAX_BATCH_SIZE": "4",
        "FUSIONSERVE_MODEL__MEDPIX_STUDENT__PROVIDERS": "CUDAExecutionProvider, CPU",
        "FUSIONSERVE_MODEL__MEDPIX_TEACHER__MAX_BATCH_SIZE": "2",  # another bundle's
    }
    resolved = resolve_model_settings(bundle, settings, environ)
    assert resolved.max_batch_size == 4  # env
    assert resolved.queue_size == 64  # file
    assert resolved.precision == "fp32" and resolved.intra_op_threads == 1  # global
    assert resolved.providers == ["CUDAExecutionProvider", "CPU"]  # a comma list
    assert resolve_model_settings(_bundle(tmp_path, "other"), settings, {}).max_batch_size == 32


def test_names_upper_case_with_underscores() -> None:
    assert env_name("medpix-student") == "MEDPIX_STUDENT"
    assert env_name("wound-teacher-v2") == "WOUND_TEACHER_V2"


@pytest.mark.parametrize(
    ("serving", "message"),
    [
        ("{not json", "serving.json is not valid JSON"),
        ("[1, 2]", "serving.json must hold a JSON object"),
        (
            {"max_batchsize": 8},
            "serving.json: max_batchsize: unknown setting; valid: max_batch_size",
        ),
        ({"max_batch_size": -1}, "serving.json: max_batch_size: Input should be greater than"),
        ({"precision": "fp16"}, "serving.json: precision: Input should be 'fp32' or 'int8'"),
    ],
)
def test_bad_settings_file_names_the_file_and_key(
    tmp_path: Path, serving: object, message: str
) -> None:
    bundle = _bundle(tmp_path, serving=serving)
    with pytest.raises(ModelSettingsError) as caught:
        resolve_model_settings(bundle, tiny_settings(tmp_path), {})
    assert message in str(caught.value)
    assert str(bundle / "serving.json") in str(caught.value)


def test_bad_variable_names_the_variable(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    variable = "FUSIONSERVE_MODEL__MEDPIX_STUDENT__QUEUE_SIZE"
    with pytest.raises(ModelSettingsError, match=f"{variable}: Input should be a valid integer"):
        resolve_model_settings(bundle, tiny_settings(tmp_path), {variable: "many"})
    unknown = "FUSIONSERVE_MODEL__MEDPIX_STUDENT__BATCH"
    with pytest.raises(ModelSettingsError, match=f"{unknown}: unknown setting"):
        resolve_model_settings(bundle, tiny_settings(tmp_path), {unknown: "8"})
