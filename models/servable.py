"""What export, evaluation and checkpoints accept: one network, a seed ensemble of them, or a
network late-fused with a bag-of-words text model."""

from __future__ import annotations

from models.ensemble import SeedEnsemble
from models.late_fusion import LateFusionModel
from models.multitask import MultiTaskModel

ServableModel = MultiTaskModel | SeedEnsemble | LateFusionModel
