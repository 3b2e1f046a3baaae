"""The curriculum: stage transitions at the configured generator steps."""

import pytest

from faceinpaint.lit.curriculum import stage_at

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny CPU networks: one thread


def test_paper_schedule():
    assert [stage_at(s) for s in (0, 14_999, 15_000, 24_999, 25_000, 39_999, 40_000)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        3,
    ]


def test_configured_boundaries():
    assert [stage_at(s, (2, 4, 6)) for s in range(7)] == [1, 1, 2, 2, 3, 3, 3]
    assert [stage_at(s, (0, 0, 3)) for s in range(3)] == [3, 3, 3]


@pytest.mark.parametrize("boundaries", [(5, 4, 6), (1, 2), (-1, 2, 3)])
def test_bad_boundaries_are_rejected(boundaries):
    with pytest.raises(ValueError, match="boundaries"):
        stage_at(0, boundaries)
