"""Latent search: ms per iteration and images/s at 1000 iterations, with and without a landmark
term, for B images searched together; every variant timed in one interleaved run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from faceinpaint.bench.rows import Row
from faceinpaint.bench.sizes import THESIS_LANDMARK_NET, Sizes, synthetic_batch
from faceinpaint.bench.timing import Spread, interleave, paired_ratios
from faceinpaint.device import native_bf16

NO_LANDMARK = "no landmark"
NETWORK = "landmark network"
DLIB = "dlib every iteration"
BF16 = "bf16 search, "  # prefix of the label of the first network's setting under bf16 autocast


class _EveryIteration(nn.Module):
    """The thesis's way: a non-differentiable landmark term evaluated at every search iteration."""

    differentiable = True

    def __init__(self, term: nn.Module) -> None:
        super().__init__()
        self.term = term

    def targets(self, damaged: Tensor, mask: Tensor) -> Tensor:
        return self.term.targets(damaged, mask)

    def forward(self, generated: Tensor, targets: Tensor) -> Tensor:
        return self.term(generated.detach(), targets)


def landmark_net(spec: str | Path) -> tuple[str, nn.Module]:
    """``(label, LandmarkNet)`` of a landmarks config (its model's ``widths`` and
    ``heatmap_stride``; random weights) or of a ``LandmarkNet`` checkpoint; the label names the
    architecture, e.g. ``landmark network s4 w16-32-48-64-96``."""
    from faceinpaint.landmarks.network import LandmarkNet

    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        init = (yaml.safe_load(path.read_text()).get("model") or {}).get("init_args") or {}
        if "class_path" in init or not ({"widths", "heatmap_stride"} & set(init)):
            raise ValueError(
                f"{str(path)!r} is not a landmarks config: expected model.init_args with widths "
                f"and/or heatmap_stride (configs/landmarks/*.yaml), got keys {sorted(init)}"
            )
        # LandmarkNet's defaults are the Lightning module's
        net = LandmarkNet(**{k: init[k] for k in ("widths", "heatmap_stride") if k in init})
    else:
        net = LandmarkNet.from_checkpoint(path)
    config = net.config
    label = f"{NETWORK} s{config['heatmap_stride']} w{'-'.join(map(str, config['widths']))}"
    return label, net


def landmark_terms(
    with_dlib: bool, nets: Sequence[str | Path] | None = None
) -> dict[str, nn.Module | None]:
    """The search's landmark settings: none, the landmark network (random weights: speed does not
    depend on them), and (``with_dlib``) dlib on every candidate at every iteration (CPU).

    Args:
        with_dlib: include dlib on every candidate.
        nets: landmark networks to time instead of the thesis configs' (``THESIS_LANDMARK_NET``,
            labelled ``landmark network``): landmarks configs or checkpoints, see ``landmark_net``.
    """
    from faceinpaint.landmarks.network import LandmarkNet
    from faceinpaint.losses.landmark import NetworkLandmarkTerm

    terms: dict[str, nn.Module | None] = {NO_LANDMARK: None}
    if not nets:
        terms[NETWORK] = NetworkLandmarkTerm(LandmarkNet(**THESIS_LANDMARK_NET))
    for spec in nets or ():
        label, net = landmark_net(spec)
        if label in terms:
            raise ValueError(f"landmark network {str(spec)!r} is a second {label!r}: time it once")
        terms[label] = NetworkLandmarkTerm(net)
    if with_dlib:
        from faceinpaint.landmarks.teacher import CELEBA_CROP_BOX, DlibTeacher
        from faceinpaint.losses.landmark import DlibLandmarkTerm

        teacher = DlibTeacher(fallback_box=CELEBA_CROP_BOX)  # the predictor runs on every candidate
        terms[DLIB] = _EveryIteration(DlibLandmarkTerm(teacher))
    return terms


def bench_search(
    device: torch.device,
    sizes: Sizes,
    warmup: int,
    repeats: int,
    with_dlib: bool,
    landmark_nets: Sequence[str | Path] | None = None,
) -> Iterator[Row]:
    """Each (landmark setting, B) is timed as a search of K iterations and one of 0 (set-up and
    the final evaluation), all interleaved; per round, ms/iteration = (T_K - min T_0) / K and a
    1000-iteration search takes min T_0 + 1000 ms/iteration (extrapolated). Ratios pair the
    rounds of T_K. ``landmark_nets``: see ``landmark_terms``."""
    from faceinpaint.latent_search import LatentSearch, SearchSettings
    from faceinpaint.models.dcgan import Discriminator, Generator

    generator = Generator(sizes.dcgan["latent_dim"], sizes.dcgan["ngf"], sizes.dcgan["image_size"])
    discriminator = Discriminator(sizes.dcgan["ndf"], sizes.dcgan["image_size"])
    generator.to(device)
    discriminator.to(device)
    k = sizes.search_iterations
    keys: list[tuple[str, int]] = []
    fns = {}
    terms = landmark_terms(with_dlib, landmark_nets)
    networks = [label for label in terms if label.startswith(NETWORK)]
    # the first network's search again under bf16 autocast, where the device runs bf16 natively
    bf16 = {BF16 + networks[0]: terms[networks[0]]} if native_bf16(device) and networks else {}
    for label, term in (terms | bf16).items():
        term = term.to(device) if term is not None else None
        for images in sizes.dlib_search_images if label == DLIB else sizes.search_images:
            keys.append((label, images))
            batch = synthetic_batch(images, sizes.dcgan["image_size"], device)
            for iterations in (0, k):
                search = LatentSearch(
                    generator,
                    discriminator,
                    settings=SearchSettings(
                        candidates=sizes.candidates,
                        iterations=iterations,
                        landmark_weight=1.0 if term is not None else 0.0,
                        precision="bf16" if label in bf16 else "fp32",
                    ),
                    landmark_term=term,
                )
                fns[f"{label}, B={images}, K={iterations}"] = lambda s=search, b=batch: s(
                    b["image"], b["mask"], b["index"]
                )
    times = interleave(fns, device, warmup, repeats)
    per_iteration: dict[tuple[str, int], list[float]] = {}
    per_image: dict[tuple[str, int], list[float]] = {}  # seconds per image at 1000 iterations
    for label, images in keys:
        # T_0 (set-up and the final evaluation, no backward) is short, and a burst of load in
        # one round can make it longer than that round's T_K: its fastest round stands for it
        t0 = min(times[f"{label}, B={images}, K=0"])
        tk = times[f"{label}, B={images}, K={k}"]
        per_iteration[(label, images)] = [max(t - t0, 1e-9) / k for t in tk]
        per_image[(label, images)] = [
            (t0 + 1000 * it) / images for it in per_iteration[(label, images)]
        ]
        ms = Spread.of(per_iteration[(label, images)]).map(lambda s: s * 1e3)
        yield Row.measured(
            "latent search",
            device.type,
            f"{label}, B={images}",
            Spread.of(per_image[(label, images)]).map(lambda s: 1 / s),
            "images/s @1000 it",
            note=f"{sizes.candidates} candidates; {ms.median:.3g} ms/iteration "
            f"({ms.low:.3g}-{ms.high:.3g}) timed over {k} iterations, extrapolated to 1000",
            extra={
                "images": images,
                "landmark": networks[0] if label in bf16 else label,  # its FLOPs' key
                "ms_per_iteration": ms.median,
                "iterations_timed": k,
            },
        )
    for label, images in keys:
        if label in networks and (NO_LANDMARK, images) in per_iteration:
            yield Row.measured(
                "latent search ratio",
                device.type,
                f"{label} / {NO_LANDMARK}, B={images}",
                paired_ratios(per_iteration[(label, images)], per_iteration[(NO_LANDMARK, images)]),
                "x time/iteration",
                note="cost of the landmark term; target <= 1.3; paired by round",
            )
        if images > 1 and (label, 1) in per_image:
            yield Row.measured(
                "latent search ratio",
                device.type,
                f"B={images} / B=1 per-image rate, {label}",
                paired_ratios(per_image[(label, 1)], per_image[(label, images)]),
                "x images/s",
                note=">1 = batching pays; paired by round",
            )
        if label in bf16:
            yield Row.measured(
                "latent search ratio",
                device.type,
                f"bf16 / fp32, {networks[0]}, B={images}",
                paired_ratios(per_iteration[(networks[0], images)], per_iteration[(label, images)]),
                "x speed",
                note="bf16 autocast on G, D and the landmark network (z, Adam, points and losses "
                "fp32); >1 = bf16 is faster; paired by round",
            )
        if label == DLIB and (networks[0], images) in per_iteration:
            yield Row.measured(
                "latent search ratio",
                device.type,
                f"{DLIB} / {networks[0]}, B={images}",
                paired_ratios(per_iteration[(label, images)], per_iteration[(networks[0], images)]),
                "x time/iteration",
                note="the thesis's dlib loss against the network; paired by round",
            )
