"""A frozen VGG-19 feature extractor for the feature reconstruction (perceptual) loss."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import VGG19_Weights, vgg19
from torchvision.models.vgg import cfgs, make_layers

from faceinpaint.safe_load import load_without_code

# Index of each ReLU's output in torchvision's ``vgg19().features``.
VGG19_RELU = {
    "relu1_1": 1,
    "relu1_2": 3,
    "relu2_1": 6,
    "relu2_2": 8,
    "relu3_1": 11,
    "relu3_2": 13,
    "relu3_3": 15,
    "relu3_4": 17,
    "relu4_1": 20,
    "relu4_2": 22,
    "relu4_3": 24,
    "relu4_4": 26,
    "relu5_1": 29,
}
# Output channels of each ReLU (C_l in eq. 5).
VGG19_CHANNELS = {
    name: 64 if i < 4 else 128 if i < 9 else 256 if i < 18 else 512
    for name, i in VGG19_RELU.items()
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DFC_VAE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


def load_vgg19_features(weights: str, depth: int = 37) -> nn.Sequential:
    """The first ``depth`` modules of torchvision VGG-19's ``features`` with ``weights``: "imagenet", "random", or a state-dict file.

    "imagenet" uses ``VGG19_Weights.IMAGENET1K_V1`` (downloaded once into the torch hub cache);
    a failed download raises ``RuntimeError`` naming the alternatives. A file may hold the
    state dict of the full model (torchvision's ``vgg19-dcbb9e9d.pth``) or of ``.features``.
    "random" is torchvision's initialisation of the convolutions, for tests and smoke runs only.
    """
    if weights == "imagenet":
        try:
            return vgg19(weights=VGG19_Weights.IMAGENET1K_V1).features[:depth]
        except Exception as error:  # urllib / OS / hash errors all mean "no usable weights"
            raise RuntimeError(
                "could not load the ImageNet VGG-19 weights "
                f"({VGG19_Weights.IMAGENET1K_V1.url}): {error}. Download that file and set "
                "vgg_weights: /path/to/vgg19-dcbb9e9d.pth, or set vgg_weights: random "
                "explicitly (tests and smoke runs only: the feature loss is then meaningless)"
            ) from error
    features = make_layers(cfgs["E"], batch_norm=False)[:depth]  # no 120M-weight classifier
    for module in features.modules():
        if isinstance(module, nn.Conv2d):  # as torchvision.models.VGG initialises them
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    if weights == "random":
        return features
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"vgg_weights must be 'imagenet', 'random' or an existing file, got {weights!r}"
        )
    state = load_without_code(path)
    if any(key.startswith("features.") for key in state):
        state = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
    state = {k: v for k, v in state.items() if int(k.split(".")[0]) < depth}
    missing, unexpected = features.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} is not a VGG-19 state dict: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    return features


class VGGFeatures(nn.Module):
    """Frozen VGG-19 truncated after the deepest requested ReLU; input in [-1, 1].

    ImageNet normalisation is applied inside. Parameters never require grad and the module
    stays in eval mode whatever ``train()`` is called with; gradients still flow to the input.
    """

    def __init__(self, layers: Sequence[str] = DFC_VAE_LAYERS, weights: str = "imagenet") -> None:
        """
        Args:
            layers: ReLU outputs to return, by name (``relu1_1`` ...), shallow to deep.
            weights: "imagenet", "random" (tests only) or a path to a state-dict file.
        """
        super().__init__()
        unknown = [name for name in layers if name not in VGG19_RELU]
        if not layers or unknown:
            raise ValueError(f"layers must be names from {sorted(VGG19_RELU)}, got {list(layers)}")
        self.layers = tuple(layers)
        self.channels = tuple(VGG19_CHANNELS[name] for name in self.layers)
        indices = [VGG19_RELU[name] for name in self.layers]
        if indices != sorted(indices):
            raise ValueError(f"layers must be ordered shallow to deep, got {list(layers)}")
        self.net = load_vgg19_features(weights, indices[-1] + 1)
        self.taps = set(indices)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode (VGG-19 has no BN or dropout in ``features``, but be explicit)."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B,3,H,W) in [-1, 1] -> one (B,C_l,H_l,W_l) feature map per requested layer."""
        h = ((x + 1.0) * 0.5 - self.mean) / self.std
        features = []
        for index, module in enumerate(self.net):
            h = module(h)
            if index in self.taps:
                features.append(h)
        return features
