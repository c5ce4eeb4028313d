"""CheckpointMetadata: typed access to what a checkpoint says, and round trips of the plain
dicts that checkpoints (old and new) store."""

from __future__ import annotations

from typing import Any

import pytest

from models.checkpoint_metadata import CheckpointMetadata, MetadataError

# The keys `fusionserve train` wrote before the class existed (as in artifacts/checkpoints).
OLD_STYLE: dict[str, Any] = {
    "task_set": "wound",
    "role": "student",
    "tokenizer_json": '{"version": "1.0"}',
    "max_text_length": 64,
    "labels": {"type": ["Abrasion", "Burn"], "severity": ["Mild", "Severe"]},
    "training_config": {
        "name": "wound-student",
        "data": {"type": "wound", "root": "../shared/datasets/wound-1-0", "image_size": 112},
        "provenance": {"weights": "trained here"},
    },
    "metrics": {"epoch": 3, "dev": {"mean_macro_f1": 0.6}},
}


def test_old_style_dict_reads_as_typed_fields() -> None:
    meta = CheckpointMetadata.from_dict(OLD_STYLE)
    assert (meta.task_set, meta.role, meta.max_text_length) == ("wound", "student", 64)
    assert meta.require_tokenizer() == OLD_STYLE["tokenizer_json"]
    assert meta.labels == OLD_STYLE["labels"]
    assert meta.image_size == 112
    assert meta.provenance == {"weights": "trained here"}
    assert meta.metrics == {"epoch": 3, "dev": {"mean_macro_f1": 0.6}}


def test_round_trip_keeps_every_key_and_unknown_ones() -> None:
    raw = {**OLD_STYLE, "expected_int8": [0.1, 0.9]}
    meta = CheckpointMetadata.from_dict(raw)
    assert meta.other == {"expected_int8": [0.1, 0.9]}
    assert meta.to_dict() == raw
    assert CheckpointMetadata.from_dict(meta.to_dict()) == meta


def test_minimal_metadata_leaves_optional_keys_absent() -> None:
    """A checkpoint with only the identifying keys (as the benchmark's tiny one) still loads."""
    raw = {"task_set": "medpix", "role": "student", "max_text_length": 32}
    meta = CheckpointMetadata.from_dict(raw)
    assert meta.to_dict() == raw
    assert meta.image_size == 224 and meta.provenance is None and meta.data_config == {}
    with pytest.raises(MetadataError, match="checkpoint lacks 'tokenizer_json'"):
        meta.require_tokenizer()


@pytest.mark.parametrize("key", ["task_set", "role", "max_text_length"])
def test_missing_identifying_key_is_named(key: str) -> None:
    raw = {k: v for k, v in OLD_STYLE.items() if k != key}
    with pytest.raises(MetadataError, match=f"checkpoint lacks '{key}'"):
        CheckpointMetadata.from_dict(raw)


def test_wrongly_typed_section_is_named() -> None:
    with pytest.raises(MetadataError, match="checkpoint 'labels': expected dict"):
        CheckpointMetadata.from_dict({**OLD_STYLE, "labels": ["CT", "MR"]})
