"""The Context Encoder's generator: shapes, output range, widths, what it reads."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from faceinpaint.models.context_encoder import ContextEncoderGenerator

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.mark.parametrize("size", [8, 16, 64])
def test_full_image_in_tanh_range_at_every_size(size: int) -> None:
    torch.manual_seed(0)
    generator = ContextEncoderGenerator(size, base_channels=4, max_channels=16, bottleneck=8)
    with torch.no_grad():
        output = generator(torch.randn(3, 4, size, size) * 3)
    assert output.shape == (3, 3, size, size)
    assert float(output.min()) >= -1.0 and float(output.max()) <= 1.0


def test_widths_double_to_the_cap_and_the_code_is_the_bottleneck() -> None:
    generator = ContextEncoderGenerator(64, base_channels=4, max_channels=16, bottleneck=7)
    convs = [m for m in generator.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 7]
    assert convs[0].in_channels == 4  # RGB with the hole zeroed + the mask
    code = generator.encoder(torch.zeros(2, 4, 64, 64))
    assert code.shape == (2, 7, 1, 1)
    ups = [m for m in generator.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [16, 16, 8, 4, 3]


def test_the_mask_channel_changes_the_output() -> None:
    torch.manual_seed(0)
    generator = ContextEncoderGenerator(16, base_channels=4, max_channels=8, bottleneck=8).eval()
    context = torch.zeros(1, 4, 16, 16)
    holed = context.clone()
    holed[:, 3, 4:12, 4:12] = 1.0
    assert not torch.allclose(generator(context), generator(holed))


@pytest.mark.parametrize("size", [0, 4, 48, 100])
def test_image_size_must_be_a_power_of_two_of_at_least_8(size: int) -> None:
    with pytest.raises(ValueError, match="power of two >= 8"):
        ContextEncoderGenerator(size, base_channels=4, max_channels=8, bottleneck=8)


def test_a_three_channel_input_is_refused_by_name() -> None:
    generator = ContextEncoderGenerator(16, base_channels=4, max_channels=8, bottleneck=8)
    with pytest.raises(ValueError, match=r"context must be \(B, \*\(4, 16, 16\)\)"):
        generator(torch.zeros(1, 3, 16, 16))


def test_paper_defaults_and_depth_at_128_px() -> None:
    defaults = inspect.signature(ContextEncoderGenerator).parameters
    paper = {"image_size": 128, "base_channels": 64, "max_channels": 512, "bottleneck": 4000}
    assert {name: defaults[name].default for name in paper} == paper
    generator = ContextEncoderGenerator(128, base_channels=4, max_channels=32, bottleneck=10)
    convs = [m for m in generator.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 32, 10]  # 128 -> 4 in 5 halvings
