"""The batched latent search of Yeh et al. (2017), with the thesis's landmark term: a plain
class, usable without Lightning.

For each damaged image y (hole pixels zeroed before anything reads them) and mask M (1 = hole),
N candidate latents start from the training prior, drawn from a generator seeded by
``(seed, index)`` so an image gets the same start whatever batch it is in. All B x N candidates
form one (B*N, latent_dim) leaf optimised by Adam for K iterations, z clipped to [-1, 1] after
every step. Each candidate's loss

    weighted context (L1 near the hole)  +  prior_weight * log(1 - D(G(z)))  +  landmark_weight * landmark

is computed on its own and the losses are summed, so a candidate's gradient is that of its own
loss; Adam works per element, so batching images and candidates changes no number. G and D run
in eval mode (BatchNorm from running statistics) with their parameters frozen, and the loop reads
nothing back to the host. After the last step every candidate's loss is evaluated once more at
its final z, and the candidate with the smallest total is kept.

With ``holdout`` > 0 (off in the paper-faithful configs), the search also decides when to stop
and which candidate to keep without looking at the hole: a random share of the pixels that weigh
in the context loss (the known pixels nearest the hole) is held out of the objective, every
candidate keeps the iterate (the start included) whose G(z) has the smallest weighted L1 on the
held-out pixels, and the candidate with the smallest such error is chosen. This is early
stopping on a validation set, the held-out ring standing in for the hole it borders: minimising
the thesis objective further fits the known pixels at the hole's expense (docs/RESULTS.md).

With ``discrepancy`` = rho in (0, 1] (off by default and in the paper-faithful configs), the
search keeps each candidate's iterate by Morozov's discrepancy principle (Morozov 1966; the
early-stopping rule of regularised inverse problems, there with a known noise level): do not fit
the data more closely than the model can fit the truth. The search runs its K iterations as
before, recording every candidate's weighted context error r_t (t = 0 is the start); the level
the generator could reach on the whole face is estimated from the final fit as r_K / rho, and
each candidate keeps its first iterate with r_t <= r_K / rho; the candidate with the smallest
total loss at its kept iterate is chosen. rho is the median ratio r_K / delta on *training*
faces, where delta is the context error of the same search with the hole revealed
(:meth:`LatentSearch.project`): ``scripts/calibrate_discrepancy.py``. rho follows the mask
(0.57-0.70 for the thesis's squares and halves, 0.98 for random pixels), so
``discrepancy_curve`` gives it as (coverage, rho) points instead, each face's rho interpolated
at its mask's :func:`context_coverage`. The hole is never read. Memory: the K + 1 iterates of
every candidate, (K + 1) x B x N x latent_dim values.

With a ``normal`` training prior, the clip to [-1, 1] restricts the search to the central cube of
the prior (about 68 % of its mass per coordinate); the starting points are normal draws clipped
the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from faceinpaint.batch import sample_generator
from faceinpaint.device import bf16_autocast, native_bf16
from faceinpaint.losses.landmark import LandmarkTerm
from faceinpaint.losses.latent_search import (
    context_coverage,
    context_weights,
    holdout_split,
    prior_loss,
    weighted_context_loss,
)
from faceinpaint.models.dcgan import LatentPrior, sample_latent
from faceinpaint.ops.poisson import paste_or_blend
from faceinpaint.settings import checkpoint_safe


@dataclass
class SearchResult:
    """What the search returns for a batch of B images with N candidates each."""

    inpainted: (
        Tensor  # (B,3,H,W) best candidate composited into the known pixels (blended if asked)
    )
    generated: Tensor  # (B,3,H,W) G(z) of the best candidate
    latent: Tensor  # (B,latent_dim) best z
    loss: Tensor  # (B,) final total loss of the best candidate
    parts: dict[str, Tensor]  # each term of ``loss``, (B,)
    candidate_loss: Tensor  # (B,N) final total loss of every candidate
    best: Tensor  # (B,) int64 index of the chosen candidate
    all_generated: Tensor | None = None  # (B,N,3,H,W) when ``return_all``
    all_latent: Tensor | None = None  # (B,N,latent_dim) when ``return_all``
    history: Tensor | None = None  # (K,B,N) total loss before each step, when ``record_history``
    holdout_error: Tensor | None = None  # (B,N) held-out error of each kept iterate (``holdout``)
    kept_iteration: Tensor | None = None  # (B,N) int64 iteration of each kept iterate (0 = start)


def initial_latents(
    index: Tensor, num_candidates: int, latent_dim: int, prior: LatentPrior, seed: int = 0
) -> Tensor:
    """(B, N, latent_dim) starting points on ``index.device``, image b's from a CPU generator
    seeded by ``(seed, index[b])`` (same on every device and in every batch), clipped to [-1, 1]."""
    starts = []
    for sample_index in index.tolist():
        rng = sample_generator(seed, sample_index)
        starts.append(sample_latent(prior, num_candidates, latent_dim, generator=rng))
    return torch.stack(starts).clamp_(-1.0, 1.0).to(index.device)


@torch.no_grad()
def encoder_starts(
    encoder: nn.Module,
    damaged: Tensor,
    mask: Tensor,
    index: Tensor,
    num_candidates: int,
    perturbation: float,
    seed: int = 0,
) -> Tensor:
    """(B, N, latent_dim) search starts: E(y) for candidate 0, E(y) plus ``perturbation`` times
    N(0, 1) noise (seeded by ``(seed, index)``, as the random starts are) for the others;
    clipped to [-1, 1]."""
    centre = encoder(damaged, mask)  # (B, latent_dim)
    noise = initial_latents(index, num_candidates, centre.shape[1], "normal", seed)
    noise = noise.to(centre)
    noise[:, 0] = 0.0
    return (centre[:, None] + perturbation * noise).clamp_(-1.0, 1.0)


@contextmanager
def frozen_eval(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode with parameters not requiring grad; both restored on exit."""
    states = [(m, m.training, [p.requires_grad for p in m.parameters()]) for m in modules]
    for module in modules:
        module.eval().requires_grad_(False)
    try:
        yield
    finally:
        for module, training, flags in states:
            module.train(training)
            for parameter, flag in zip(module.parameters(), flags, strict=True):
                parameter.requires_grad_(flag)


class HeldOutSelection:
    """Each candidate's iterate with the smallest error on the held-out pixels, as the search runs.

    Args:
        damaged: (B,3,H,W) the damaged input.
        held_out: (B,1,H,W) context weights of the held-out pixels (:func:`holdout_split`).
        latent: (B*N, latent_dim) the starts.
    """

    def __init__(self, damaged: Tensor, held_out: Tensor, latent: Tensor) -> None:
        b = damaged.shape[0]
        n = latent.shape[0] // b
        self.damaged = damaged[:, None]  # (B, 1, 3, H, W)
        self.held_out = held_out[:, None]  # (B, 1, 1, H, W)
        self.error = torch.full((b, n), float("inf"), device=damaged.device)  # (B, N)
        self.latent = latent.detach().clone()  # (B*N, latent_dim)
        self.iteration = torch.zeros(b, n, dtype=torch.int64, device=damaged.device)

    @torch.no_grad()
    def update(
        self, latent: Tensor, generated: Tensor, parts: dict[str, Tensor], iteration: int
    ) -> None:
        """Keep ``latent`` (B*N, latent_dim) where its G(z) ``generated`` (B,N,3,H,W) beats the
        kept iterate on the held-out pixels (strictly: on ties the earlier iterate stays);
        ``parts``, the objective's, are not read."""
        error = weighted_context_loss(generated, self.damaged, self.held_out)  # (B, N)
        better = error < self.error
        self.error = torch.where(better, error, self.error)
        self.iteration[better] = iteration
        rows = better.flatten()
        self.latent[rows] = latent.detach()[rows]

    def choose(self, total: Tensor) -> Tensor:
        """(B,) the candidate with the smallest held-out error (``total`` is not read)."""
        return select_best(self.error)


class DiscrepancyStop:
    """Each candidate's first iterate whose context error is within ``r_K / ratio`` (module
    docstring, the discrepancy principle), from the iterates recorded as the search runs.

    Args:
        latent: (B*N, latent_dim) the starts.
        ratio: (B,) each face's rho in (0, 1], the calibrated ratio of the final context error
            to the level a fit of the whole face reaches.
    """

    def __init__(self, latent: Tensor, ratio: Tensor) -> None:
        if ratio.dim() != 1 or latent.shape[0] % max(len(ratio), 1):
            raise ValueError(
                f"the discrepancy ratio must be (B,) for {latent.shape[0]} latent rows, "
                f"got {tuple(ratio.shape)}"
            )
        if not ((ratio > 0) & (ratio <= 1)).all():
            raise ValueError(f"the discrepancy ratio must be in (0, 1], got {ratio.tolist()}")
        self.ratio = ratio.float()[:, None]  # (B, 1)
        self.residuals: list[Tensor] = []  # each (B, N)
        self.latents: list[Tensor] = []  # each (B*N, latent_dim)
        b = len(ratio)
        self.iteration = torch.zeros(
            b, latent.shape[0] // b, dtype=torch.int64, device=latent.device
        )

    @torch.no_grad()
    def update(
        self, latent: Tensor, generated: Tensor, parts: dict[str, Tensor], iteration: int
    ) -> None:
        """Record iterate ``iteration`` (B*N, latent_dim) and its context error, the objective's
        ``parts["context"]`` (B, N); iterations arrive in order from 0. ``generated`` is not
        read."""
        if iteration != len(self.latents):
            raise ValueError(f"iterate {iteration} recorded after {len(self.latents)} iterates")
        self.residuals.append(parts["context"].detach().float())
        self.latents.append(latent.detach().clone())

    @property
    def latent(self) -> Tensor:
        """(B*N, latent_dim) each candidate's kept iterate, the last one recorded playing r_K;
        sets ``iteration`` (B, N)."""
        return self._keep(self.residuals, self.latents)

    @torch.no_grad()
    def kept(self, latent: Tensor, parts: dict[str, Tensor]) -> Tensor:
        """What :attr:`latent` would be with ``latent`` (its objective's ``parts``) recorded as
        the last iterate, without recording it: the rule's choice at a budget the search runs
        past (``scripts/search_curves.py``)."""
        residual = parts["context"].detach().float()
        return self._keep([*self.residuals, residual], [*self.latents, latent.detach()])

    def _keep(self, residuals: list[Tensor], latents: list[Tensor]) -> Tensor:
        stacked = torch.stack(residuals)  # (T+1, B, N)
        reached = stacked <= stacked[-1] / self.ratio.to(stacked.dtype)  # the last always does
        self.iteration = reached.to(torch.uint8).argmax(dim=0)  # the first that does, (B, N)
        rows = torch.arange(latents[0].shape[0], device=latents[0].device)
        return torch.stack(latents)[self.iteration.flatten(), rows]

    def choose(self, total: Tensor) -> Tensor:
        """(B,) the candidate with the smallest total loss ``total`` (B, N) at its kept iterate."""
        return select_best(total)


def rho_at(curve: tuple[tuple[float, float], ...], coverage: Tensor) -> Tensor:
    """(B,) rho of a (coverage, rho) ``curve`` (coverages increasing) at each ``coverage`` (B,):
    piecewise linear between its points, constant beyond its ends."""
    xs, ys = (torch.tensor(column, dtype=torch.float64) for column in zip(*curve, strict=True))
    if len(xs) == 1:
        return torch.full(coverage.shape, ys[0].item(), device=coverage.device)
    at = coverage.detach().double().cpu().clamp(xs[0].item(), xs[-1].item())
    right = torch.searchsorted(xs, at).clamp(1, len(xs) - 1)  # the segment [right - 1, right]
    left = right - 1
    rho = ys[left] + (at - xs[left]) / (xs[right] - xs[left]) * (ys[right] - ys[left])
    return rho.float().to(coverage.device)


def select_best(candidate_loss: Tensor) -> Tensor:
    """(B,) int64 index of the smallest loss of each row of (B, N); the first one on ties."""
    return candidate_loss.argmin(dim=1)


SEARCH_PRECISIONS = ("fp32", "bf16", "auto")


@checkpoint_safe
@dataclass(frozen=True)
class SearchSettings:
    """The latent search's settings, one name each wherever they travel (``LatentSearch``, the
    DCGAN module's ``search``, eval overrides, the photo command, benchmarks)."""

    candidates: int = 64  # N, latents searched per image
    iterations: int = 1000  # K, Adam steps
    lr: float = 0.01  # Adam step size, in latent units
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's moment decays
    prior_weight: float = 0.003  # lambda of the prior loss log(1 - D(G(z))); 0 = not computed
    context_window: int = 7  # side of the context-weight window, pixels (7 in Yeh et al.)
    landmark_weight: float = 0.0  # weight of the landmark term; 0 = not computed
    poisson_iterations: int = 0  # CG iterations of Poisson blending; 0 = plain composite
    # share of the context pixels held out to choose each candidate's iterate and the candidate
    # (module docstring); 0 = the paper's rule: the last iterate, the smallest total loss
    holdout: float = 0.0
    # rho of the discrepancy stop (module docstring; scripts/calibrate_discrepancy.py): each
    # candidate keeps its first iterate whose context error is within r_K / rho; 0 = off
    discrepancy: float = 0.0
    # the same stop with rho following the mask: (context coverage, rho) points, each face's rho
    # interpolated at its mask's coverage (clamped at the ends); () = off
    discrepancy_curve: tuple[tuple[float, float], ...] = ()
    seed: int = 0  # base seed of the starting points (with each image's index) and the held-out
    # std of the N(0, 1) noise added to an encoder's latent for candidates after the first
    encoder_perturbation: float = 0.1
    # "bf16": G, D and the landmark network run under bf16 autocast (z, Adam's state, the
    # landmark points and the losses stay fp32); "fp32": the paper's arithmetic; "auto": bf16
    # where the device runs it natively (faceinpaint.device.native_bf16), else fp32
    precision: str = "fp32"

    @property
    def stops_by_discrepancy(self) -> bool:
        """Whether the discrepancy stop is on (``discrepancy`` or ``discrepancy_curve``)."""
        return self.discrepancy > 0 or bool(self.discrepancy_curve)

    def discrepancy_ratio(self, weights: Tensor, mask: Tensor) -> Tensor:
        """(B,) each face's rho: ``discrepancy``, or ``discrepancy_curve`` interpolated at the
        :func:`context_coverage` of its mask (``weights``, ``mask`` (B,1,H,W))."""
        if not self.discrepancy_curve:
            return torch.full((mask.shape[0],), self.discrepancy, device=mask.device)
        return rho_at(self.discrepancy_curve, context_coverage(weights, mask))

    def runs_bf16(self, device: torch.device) -> bool:
        """Whether a search on ``device`` runs its networks in bf16."""
        return self.precision == "bf16" or (self.precision == "auto" and native_bf16(device))

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))  # a YAML / JSON list
        curve = tuple(tuple(float(v) for v in point) for point in self.discrepancy_curve)
        object.__setattr__(self, "discrepancy_curve", curve)
        if self.candidates < 1 or self.iterations < 0:
            raise ValueError(
                f"need candidates >= 1 and iterations >= 0, got {self.candidates} and "
                f"{self.iterations}"
            )
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")
        if not (self.discrepancy == 0.0 or 0.0 < self.discrepancy <= 1.0):
            raise ValueError(f"discrepancy must be 0 (off) or in (0, 1], got {self.discrepancy}")
        coverages = [point[0] for point in curve]
        if any(
            len(point) != 2 or not 0 <= point[0] <= 1 or not 0 < point[1] <= 1 for point in curve
        ) or coverages != sorted(set(coverages)):
            raise ValueError(
                "discrepancy_curve must be (coverage, rho) points with coverage in [0, 1], "
                f"increasing, and rho in (0, 1], got {list(curve)}"
            )
        if self.discrepancy > 0 and curve:
            raise ValueError(
                "set discrepancy (one rho) or discrepancy_curve (rho by mask), not both"
            )
        if self.holdout > 0 and self.stops_by_discrepancy:
            raise ValueError("holdout and discrepancy are two stopping rules: set one of them")
        if self.poisson_iterations < 0:
            raise ValueError(f"poisson_iterations must be >= 0, got {self.poisson_iterations}")
        if self.landmark_weight < 0:
            raise ValueError(f"landmark_weight must be >= 0, got {self.landmark_weight}")
        if self.precision not in SEARCH_PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(SEARCH_PRECISIONS)}, got {self.precision!r}"
            )


class LatentSearch:
    """Inpaint damaged images by searching a trained DCGAN's latent space.

    Args:
        generator: G, z (M, latent_dim) -> (M, 3, H, W) in [-1, 1].
        discriminator: D, (M, 3, H, W) -> (M,) logits.
        latent_prior: the prior G was trained with (``uniform`` in [-1, 1] or ``normal``).
        settings: candidates, iterations, Adam, loss weights, blending, held-out share, seed.
        landmark_term: the landmark loss (required when ``settings.landmark_weight`` > 0).
        return_all: also return every candidate's G(z) and z.
        record_history: also return every candidate's loss before each step (K, B, N).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_prior: LatentPrior = "uniform",
        settings: SearchSettings = SearchSettings(),
        landmark_term: LandmarkTerm | None = None,
        return_all: bool = False,
        record_history: bool = False,
    ) -> None:
        if settings.landmark_weight > 0 and landmark_term is None:
            raise ValueError(
                f"landmark_weight is {settings.landmark_weight} but no landmark_term was given"
            )
        self.generator = generator
        self.discriminator = discriminator
        self.latent_prior = latent_prior
        self.settings = settings
        self.landmark_term = landmark_term if settings.landmark_weight > 0 else None
        self.return_all = return_all
        self.record_history = record_history

    def step(
        self,
        latent: Tensor,
        optimizer: torch.optim.Optimizer,
        damaged: Tensor,
        weights: Tensor,
        landmark_targets: object,
        landmark_term: LandmarkTerm | None,
        selection: HeldOutSelection | DiscrepancyStop | None = None,
        iteration: int = 0,
    ) -> Tensor:
        """One Adam step of the search on ``latent`` (B*N, latent_dim), then the clip to [-1, 1];
        returns the (B, N) total loss before the step, detached. Arguments as :meth:`objective`;
        ``selection`` sees the iterate before the step, as iteration ``iteration``."""
        total, parts, generated = self.objective(
            latent, damaged, weights, landmark_targets, final=False, landmark_term=landmark_term
        )
        if selection is not None:
            selection.update(latent, generated, parts, iteration)
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        optimizer.step()
        with torch.no_grad():
            latent.clamp_(-1.0, 1.0)
        return total.detach()

    def _networks_precision(self, like: Tensor) -> torch.autocast:
        """bf16 autocast on ``like``'s device for G, D and the landmark network when the
        settings run bf16 there."""
        return bf16_autocast(like.device, self.settings.runs_bf16(like.device))

    def objective(
        self,
        latent: Tensor,
        damaged: Tensor,
        weights: Tensor,
        landmark_targets: object,
        final: bool,
        landmark_term: LandmarkTerm | None,
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Total loss (B, N), its parts (B, N) each, and G(z) (B, N, 3, H, W).

        Args:
            latent: (B*N, latent_dim).
            damaged: (B,3,H,W) with the hole zeroed.
            weights: (B,1,H,W) context weights.
            landmark_targets: what ``landmark_term.targets`` returned (None when off).
            final: evaluating the final candidates (adds a non-differentiable landmark term).
            landmark_term: the landmark term of this search (None: no landmark term).
        """
        b = damaged.shape[0]
        n = latent.shape[0] // b  # N candidates per image, as ``latent`` holds them
        with self._networks_precision(latent):
            generated = self.generator(latent).to(latent.dtype)  # (B*N, 3, H, W)
        per_image = generated.view(b, n, *generated.shape[1:])  # (B, N, 3, H, W)
        context = weighted_context_loss(per_image, damaged[:, None], weights[:, None])  # (B, N)
        parts = {"context": context}
        total = context
        prior_weight = self.settings.prior_weight
        if prior_weight > 0:
            with self._networks_precision(latent):
                logits = self.discriminator(generated).to(latent.dtype)
            parts["prior"] = prior_loss(logits, prior_weight).view(b, n)
            total = total + parts["prior"]
        term = landmark_term
        if term is not None and (term.differentiable or final):
            with self._networks_precision(latent):  # the landmark network's; its points are fp32
                landmark = term(per_image, landmark_targets)
            parts["landmark"] = self.settings.landmark_weight * landmark
            total = total + parts["landmark"]
        return total, parts, per_image

    def __call__(
        self, image: Tensor, mask: Tensor, index: Tensor, start: Tensor | None = None
    ) -> SearchResult:
        """Search a batch.

        Args:
            image: (B,3,H,W) in [-1, 1]; only its known pixels are read.
            mask: (B,1,H,W), 1 = hole.
            index: (B,) int64 dataset indices, seeding each image's starting points.
            start: (B,N,latent_dim) starting points (e.g. from an encoder, clipped to [-1, 1]
                here); None draws them from the prior with :func:`initial_latents`.
        """
        hole = mask.to(image.dtype)
        damaged = torch.where(hole.bool(), torch.zeros_like(image), image)  # (B, 3, H, W)
        settings = self.settings
        weights = context_weights(hole, settings.context_window)
        held_out = None
        if settings.holdout > 0:
            weights, held_out = holdout_split(weights, settings.holdout, index, settings.seed)
        return self._search(damaged, hole, weights, index, self.landmark_term, start, held_out)

    def project(self, image: Tensor, index: Tensor, start: Tensor | None = None) -> SearchResult:
        """The generator's closest image to ``image`` when every pixel is known: the same search
        (from ``start`` as in :meth:`__call__`) with weight 1 on every pixel, the prior term, no
        landmark term, and the last iterate kept (no stopping rule).

        A diagnostic, not inpainting: it reads the whole image, hole included. Its error in a
        hole bounds from above how well any latent search through this generator can fill it
        (up to the search budget).
        """
        weights = torch.ones_like(image[:, :1])
        zeros = torch.zeros_like(weights)
        return self._search(image, zeros, weights, index, None, start, stop_rule=False)

    def _search(
        self,
        damaged: Tensor,
        hole: Tensor,
        weights: Tensor,
        index: Tensor,
        landmark_term: LandmarkTerm | None,
        start: Tensor | None = None,
        held_out: Tensor | None = None,
        stop_rule: bool = True,
    ) -> SearchResult:
        """The search itself: ``damaged`` (B,3,H,W) with the hole zeroed, ``hole`` (B,1,H,W)
        1 = hole, ``weights`` (B,1,H,W) context weights, ``start`` (B,N,latent_dim) or None,
        ``held_out`` (B,1,H,W) weights of the held-out pixels or None (the paper's rule);
        ``stop_rule`` False ignores the settings' discrepancy stop."""
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "the latent search needs autograd but runs under torch.inference_mode(): "
                "set `trainer.inference_mode: false` in the config"
            )
        settings = self.settings
        b, n = damaged.shape[0], settings.candidates
        latent_dim = self.generator.latent_dim
        if start is None:
            start = initial_latents(index, n, latent_dim, self.latent_prior, settings.seed)
        elif tuple(start.shape) != (b, n, latent_dim):
            raise ValueError(
                f"start must be (B, N, latent_dim) = {(b, n, latent_dim)}, got {tuple(start.shape)}"
            )
        else:
            start = start.detach().clamp(-1.0, 1.0)
        history = (
            torch.empty(settings.iterations, b, n, device=damaged.device)
            if self.record_history
            else None
        )
        with frozen_eval(self.generator, self.discriminator), torch.enable_grad():
            targets = None
            if landmark_term is not None:
                targets = landmark_term.targets(damaged, hole)
            latent = start.to(damaged.dtype).flatten(0, 1).requires_grad_(True)  # (B*N, latent_dim)
            optimizer = torch.optim.Adam([latent], lr=settings.lr, betas=settings.betas)
            selection: HeldOutSelection | DiscrepancyStop | None = None
            if held_out is not None:
                selection = HeldOutSelection(damaged, held_out, latent)
            elif settings.stops_by_discrepancy and stop_rule:
                ratio = settings.discrepancy_ratio(weights, hole)
                selection = DiscrepancyStop(latent, ratio)
            for step in range(settings.iterations):
                total = self.step(
                    latent, optimizer, damaged, weights, targets, landmark_term, selection, step
                )
                if history is not None:
                    history[step] = total
            with torch.no_grad():
                total, parts, generated = self.objective(
                    latent, damaged, weights, targets, final=True, landmark_term=landmark_term
                )
                if selection is not None:
                    selection.update(latent, generated, parts, settings.iterations)
                    latent = selection.latent
                    total, parts, generated = self.objective(
                        latent, damaged, weights, targets, final=True, landmark_term=landmark_term
                    )
        latent = latent.detach().view(b, n, latent_dim)
        best = select_best(total) if selection is None else selection.choose(total)
        rows = torch.arange(b, device=damaged.device)
        best_generated = generated[rows, best]  # (B, 3, H, W)
        inpainted = paste_or_blend(best_generated, damaged, hole, settings.poisson_iterations)
        return SearchResult(
            inpainted=inpainted,
            generated=best_generated,
            latent=latent[rows, best],
            loss=total[rows, best],
            parts={name: part[rows, best] for name, part in parts.items()},
            candidate_loss=total,
            best=best,
            all_generated=generated if self.return_all else None,
            all_latent=latent if self.return_all else None,
            history=history,
            holdout_error=selection.error if isinstance(selection, HeldOutSelection) else None,
            kept_iteration=None if selection is None else selection.iteration,
        )
