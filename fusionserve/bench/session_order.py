"""The order in which a bench opens several sessions of two graphs it compares.

One onnxruntime session of a graph runs some 0.5-1.7 % faster or slower than another session of
the very same file, for its whole life (where its weights and buffers landed), and in a process
a later session tends to differ from an earlier one. So a bench that compares two graphs opens
several sessions of each, in mirrored order (A, B, B, A, A, B, ...): for an even count neither
graph opens earlier on average (for an odd one, A by half a place), and the luck of any one
session is averaged over the others.
"""

from __future__ import annotations


def mirrored(count: int) -> list[bool]:
    """For `count` sessions of each of two graphs: True where graph A's next session opens,
    False where B's does (A, B, B, A, A, B, ...)."""
    return [index % 4 in (0, 3) for index in range(2 * count)]
