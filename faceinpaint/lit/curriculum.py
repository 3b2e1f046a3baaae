"""The VAE-GAN's three-stage curriculum as a pure function of the generator step.

Stage 1: KL + feature reconstruction; stage 2: + local and global adversarial losses;
stage 3: + landmark loss. The clock is the number of generator updates already done (one per
training batch in stage 1, one per ``n_critic`` batches later); it is neither the batch count
nor Lightning's ``global_step``, which under manual optimization counts every optimizer step,
critic steps included.
"""

from __future__ import annotations

from collections.abc import Sequence

PAPER_BOUNDARIES = (15_000, 25_000, 40_000)


def check_boundaries(boundaries: Sequence[int]) -> tuple[int, int, int]:
    """``(end of stage 1, end of stage 2, end of training)`` as non-decreasing ints >= 0."""
    values = tuple(int(b) for b in boundaries)
    if len(values) != 3 or values[0] < 0 or not values[0] <= values[1] <= values[2]:
        raise ValueError(
            "stage boundaries must be 3 non-decreasing generator steps >= 0 "
            f"(end of stage 1, end of stage 2, end of training), got {tuple(boundaries)}"
        )
    return values  # type: ignore[return-value]


def stage_at(step: int, boundaries: Sequence[int] = PAPER_BOUNDARIES) -> int:
    """The stage (1, 2 or 3) of the generator update with 0-based index ``step``.

    Updates ``[0, b1)`` are stage 1, ``[b1, b2)`` stage 2, ``[b2, ...)`` stage 3; ``b3`` only
    ends training, so a step past it stays in stage 3.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    end_1, end_2, _ = check_boundaries(boundaries)
    if step < end_1:
        return 1
    if step < end_2:
        return 2
    return 3
