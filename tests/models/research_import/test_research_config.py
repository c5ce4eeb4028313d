"""Research YAML → architecture: the spec's configs rebuild the exact published models, and
every way a YAML can fail to describe one is refused with the choices named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from models.multitask import MultiTaskModel, count_parameters
from models.research_import.research_config import (
    ResearchConfigError,
    parse_research_config,
    read_research_config,
)

# Spec §7 Example B (wound, tuned cross_attention run), verbatim values.
EXAMPLE_B: dict[str, Any] = {
    "data": {"type": "wound", "root": "datasets/Wound-1-0", "batch_size": 32,
             "task1_label": "type", "task2_label": "severity"},
    "teacher": {"vision": "vit-base", "text": "bio-clinical-bert", "fusion_layers": 3,
                "fusion_dim": 256, "fusion_heads": 4, "dropout": 0.09621361388138176},
    "student": {"vision": "mobilevit-xx-small", "text": "bert-mini", "fusion_layers": 1,
                "fusion_dim": 256, "fusion_heads": 8, "dropout": 0.29239615694113963},
    "training": {"teacher_epochs": 3, "student_epochs": 10, "alpha": 0.9569206537600561},
    "fusion": {"type": "cross_attention"},
    "loss": {"type": "combined"},
    "device": "cuda:0",
}  # fmt: skip


def _with(**sections: Any) -> dict[str, Any]:
    return {**EXAMPLE_B, **sections}


def test_example_b_student_rebuilds_the_published_flagship() -> None:
    config, task_set, text, ignored = parse_research_config(EXAMPLE_B, "student")
    assert (task_set, text, ignored) == ("wound", "bert-mini", ())
    assert config.vision == "mobilevit-xx-small" and config.fusion_type == "cross_attention"
    assert (config.fusion_dim, config.fusion_heads, config.fusion_layers) == (256, 8, 1)
    assert config.num_classes == (10, 3)
    # 13,061,111 is the MedPix count (2/5 classes); wound heads add 6 × 257 parameters.
    assert count_parameters(MultiTaskModel(config)) == 13_061_111 + 6 * 257


def test_example_b_teacher_rebuilds_the_published_teacher() -> None:
    config, _, text, _ = parse_research_config(EXAMPLE_B, "teacher")
    assert text == "bio-clinical-bert" and config.fusion_layers == 3
    assert count_parameters(MultiTaskModel(config)) == 195_886_349  # docs/spec.md §2.6, wound


def test_defaults_follow_the_research_constructors() -> None:
    student = {"vision": "deit-small", "text": "distilbert", "fusion_dim": 384}
    config, task_set, _, _ = parse_research_config(
        _with(student=student, data={"type": "medpix"}, fusion={"type": "gated"}), "student"
    )
    assert (config.fusion_heads, config.fusion_layers, config.dropout) == (8, 1, 0.1)
    assert task_set == "medpix" and config.num_classes == (2, 5)
    # docs/spec.md §2.6's deit-small + distilbert D=384 (cross_attention: 12D² + 13D) with a gated
    # fusion (2D² + D) instead
    cross_attention, gated = 12 * 384**2 + 13 * 384, 2 * 384**2 + 384
    assert count_parameters(MultiTaskModel(config)) == 90_396_679 - cross_attention + gated


def test_fusion_params_pass_through_and_unread_keys_are_reported() -> None:
    fusion = {"type": "modality_dropout", "p_img": 0.2, "p_txt": 0.4, "note": "x"}
    config, _, _, ignored = parse_research_config(_with(fusion=fusion), "student")
    assert config.fusion_params == {"p_img": 0.2, "p_txt": 0.4}
    assert ignored == ("note",)


def test_task_set_comes_from_data_type_or_the_flag() -> None:
    without = {k: v for k, v in EXAMPLE_B.items() if k != "data"}
    with pytest.raises(ResearchConfigError, match="pass --task-set"):
        parse_research_config(without, "student")
    assert parse_research_config(without, "student", "medpix")[1] == "medpix"
    with pytest.raises(ResearchConfigError, match="contradicts"):
        parse_research_config(EXAMPLE_B, "student", "medpix")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"student": {**EXAMPLE_B["student"], "vision": "mobilevit_xx_small"}},
         "unknown vision backbone 'mobilevit_xx_small'.*supported: vit-base"),
        ({"student": {**EXAMPLE_B["student"], "text": "pubmedbert"}},
         "unknown text backbone 'pubmedbert'.*bert-mini"),
        ({"fusion": {"type": "simple"}}, "'simple' is not supported"),
        ({"fusion": {}}, "'simple' is not supported"),  # the research default
        ({"fusion": {"type": "cross_attention", "hidden": 3}}, None),  # ignored, not fatal
        ({"student": {**EXAMPLE_B["student"], "arch": "custom_tiny"}}, "StudentCustom"),
        ({"student": {**EXAMPLE_B["student"], "fusion_heads": 7}}, "divisible"),
        ({"student": {k: v for k, v in EXAMPLE_B["student"].items() if k != "fusion_dim"}},
         "'student.fusion_dim' is required"),
        ({"data": {"type": "chestxray"}}, "supported datasets: medpix, wound"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_with_the_choices_named(
    change: dict[str, Any], message: str | None
) -> None:
    if message is None:
        parse_research_config(_with(**change), "student")
        return
    with pytest.raises(ResearchConfigError, match=message):
        parse_research_config(_with(**change), "student")


def test_missing_section_and_unreadable_files(tmp_path: Path) -> None:
    no_teacher = {k: v for k, v in EXAMPLE_B.items() if k != "teacher"}
    with pytest.raises(ResearchConfigError, match="no 'teacher' section"):
        parse_research_config(no_teacher, "teacher")
    with pytest.raises(ResearchConfigError, match="not found"):
        read_research_config(tmp_path / "absent.yaml", "student")
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: [unclosed", encoding="utf-8")
    with pytest.raises(ResearchConfigError, match="not valid YAML"):
        read_research_config(bad, "student")


def test_read_records_the_file_and_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "wound-mobilevit_xx_small-bert-mini-cross_attention-combined.yaml"
    path.write_text(yaml.safe_dump(EXAMPLE_B), encoding="utf-8")
    run = read_research_config(path, "student")
    assert run.file_name == path.name and len(run.sha256) == 64
    assert run.raw == EXAMPLE_B and run.role == "student" and run.task_set == "wound"
