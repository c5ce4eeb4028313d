"""The bundle graph's signature (docs/design.md §3): the one place naming its inputs and outputs.

Export writes graphs with these names, and serve, verify, bench and the OIP v2 protocol read
them; keeping the names here (torch-free) means the two sides cannot drift.
"""

from __future__ import annotations

INPUT_NAMES = ("pixel_values", "input_ids", "attention_mask")  # f32[B,3,H,W], i64[B,L] ×2
MODALITY_WEIGHTS_OUTPUT = "modality_weights"  # f32[B,2]: image, text (fusions that have them)


def prob_output(task: str) -> str:
    """Graph output holding one task's calibrated probabilities, f32[B, classes]."""
    return f"probs_{task}"
