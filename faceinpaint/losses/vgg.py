"""A frozen VGG feature extractor (VGG-19 or VGG-16) for the feature reconstruction loss."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights, VGG19_Weights, vgg16, vgg19
from torchvision.models.vgg import cfgs, make_layers

from faceinpaint.safe_load import load_without_code

# The paper's "VGG-Net": torchvision's VGG-19 (configuration E) or VGG-16 (configuration D).
VGGVariant = Literal["vgg19", "vgg16"]
CONFIGURATION = {"vgg19": "E", "vgg16": "D"}
IMAGENET_WEIGHTS = {"vgg19": VGG19_Weights.IMAGENET1K_V1, "vgg16": VGG16_Weights.IMAGENET1K_V1}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DFC_VAE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


def vgg_layers(variant: VGGVariant = "vgg19") -> dict[str, tuple[int, int]]:
    """``{name: (index in torchvision's features, output channels)}`` of every convolution
    (``conv1_1`` ...) and ReLU (``relu1_1`` ...) of ``variant``; channels are C_l of eq. 5."""
    if variant not in CONFIGURATION:
        raise ValueError(f"vgg_variant must be one of {get_args(VGGVariant)}, got {variant!r}")
    layers: dict[str, tuple[int, int]] = {}
    index, block, conv = 0, 1, 1
    for item in cfgs[CONFIGURATION[variant]]:
        if item == "M":  # max pooling ends a block
            index, block, conv = index + 1, block + 1, 1
            continue
        layers[f"conv{block}_{conv}"] = (index, int(item))
        layers[f"relu{block}_{conv}"] = (index + 1, int(item))
        index, conv = index + 2, conv + 1
    return layers


def _imagenet_features(variant: VGGVariant) -> nn.Sequential:
    """torchvision's ImageNet model of ``variant`` (downloaded once into the torch hub cache)."""
    build = {"vgg19": vgg19, "vgg16": vgg16}[variant]
    return build(weights=IMAGENET_WEIGHTS[variant]).features


def load_vgg_features(weights: str, depth: int, variant: VGGVariant = "vgg19") -> nn.Sequential:
    """The first ``depth`` modules of torchvision's ``variant`` ``features`` with ``weights``: "imagenet", "random", or a state-dict file.

    "imagenet" uses torchvision's ``IMAGENET1K_V1`` weights (downloaded once into the torch hub
    cache); a failed download raises ``RuntimeError`` naming the alternatives. A file may hold the
    state dict of the full model (torchvision's ``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``)
    or of ``.features``. "random" is torchvision's initialisation of the convolutions, for tests
    and smoke runs only. The ReLUs do not work in place, so a convolution's output can be tapped.
    """
    vgg_layers(variant)  # checks the variant
    if weights == "imagenet":
        url = IMAGENET_WEIGHTS[variant].url
        try:
            features = _imagenet_features(variant)[:depth]
        except Exception as error:  # urllib / OS / hash errors all mean "no usable weights"
            raise RuntimeError(
                f"could not load the ImageNet {variant} weights ({url}): {error}. Download that "
                f"file and set vgg_weights: /path/to/{url.rsplit('/', 1)[-1]}, or set "
                "vgg_weights: random explicitly (tests and smoke runs only: the feature loss is "
                "then meaningless)"
            ) from error
        return _not_in_place(features)
    # no 120M-weight classifier
    features = make_layers(cfgs[CONFIGURATION[variant]], batch_norm=False)[:depth]
    for module in features.modules():
        if isinstance(module, nn.Conv2d):  # as torchvision.models.VGG initialises them
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    if weights == "random":
        return _not_in_place(features)
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
    try:
        missing, unexpected = features.load_state_dict(state, strict=False)
    except RuntimeError as error:  # the other variant's shapes
        raise ValueError(f"{path} is not a {variant} state dict: {error}") from error
    if missing or unexpected:
        raise ValueError(
            f"{path} is not a {variant} state dict: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}"
        )
    return _not_in_place(features)


def _not_in_place(features: nn.Sequential) -> nn.Sequential:
    for module in features:
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return features


class VGGFeatures(nn.Module):
    """Frozen VGG-19 or VGG-16 truncated after the deepest requested layer; input in [-1, 1].

    ImageNet normalisation is applied inside. Parameters never require grad and the module
    stays in eval mode whatever ``train()`` is called with; gradients still flow to the input.
    """

    def __init__(
        self,
        layers: Sequence[str] = DFC_VAE_LAYERS,
        weights: str = "imagenet",
        variant: VGGVariant = "vgg19",
    ) -> None:
        """
        Args:
            layers: outputs to return, by name, shallow to deep: a ReLU's (``relu1_1`` ...) or
                a convolution's before its ReLU (``conv1_1`` ...).
            weights: "imagenet", "random" (tests only) or a path to a state-dict file.
            variant: "vgg19" or "vgg16".
        """
        super().__init__()
        table = vgg_layers(variant)
        unknown = [name for name in layers if name not in table]
        if not layers or unknown:
            raise ValueError(
                f"layers must be names from {variant}'s {sorted(table)}, got {list(layers)}"
            )
        self.layers = tuple(layers)
        self.channels = tuple(table[name][1] for name in self.layers)
        indices = [table[name][0] for name in self.layers]
        if indices != sorted(set(indices)):
            raise ValueError(f"layers must be ordered shallow to deep, got {list(layers)}")
        self.net = load_vgg_features(weights, indices[-1] + 1, variant)
        self.taps = set(indices)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode (VGG has no BN or dropout in ``features``, but be explicit)."""
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
