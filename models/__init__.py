"""Torch side of fusionserve: model definitions, data, training, distillation, export."""
