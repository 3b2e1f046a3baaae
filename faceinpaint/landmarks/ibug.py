"""The 68-point iBUG / dlib landmark scheme: index ranges, mirror permutation, eye corners."""

from __future__ import annotations

NUM_POINTS = 68

JAW = range(0, 17)
RIGHT_BROW = range(17, 22)  # the subject's right, on the image's left
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_BOTTOM = range(31, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)

# Outer eye corners: the inter-ocular distance used by NME.
RIGHT_EYE_OUTER = 36
LEFT_EYE_OUTER = 45


def _flip_permutation() -> list[int]:
    """Index map for a horizontal flip: point i of the flipped face is point perm[i] of the original."""
    pairs = (
        [(i, 16 - i) for i in range(17)]
        + [(17 + i, 26 - i) for i in range(5)]
        + [(27 + i, 27 + i) for i in range(4)]
        + [(31 + i, 35 - i) for i in range(5)]
        + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
        + [(48 + i, 54 - i) for i in range(7)]
        + [(55 + i, 59 - i) for i in range(5)]
        + [(60 + i, 64 - i) for i in range(5)]
        + [(65 + i, 67 - i) for i in range(3)]
    )
    perm = list(range(NUM_POINTS))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


FLIP_PERMUTATION: list[int] = _flip_permutation()
