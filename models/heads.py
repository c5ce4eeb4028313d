"""Classification head with the research layout (keys ``<name>.head.1.weight``)."""

from __future__ import annotations

from torch import Tensor, nn

HEAD_DROPOUT = 0.1  # fixed in the research code, not configurable


class ClassificationHead(nn.Module):
    """[Dropout(0.1), Linear(in_dim → num_classes)] → raw logits."""

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classification head needs >= 2 classes, got {num_classes}")
        self.head = nn.Sequential(nn.Dropout(HEAD_DROPOUT), nn.Linear(in_dim, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x)
