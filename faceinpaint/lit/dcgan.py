"""Method 2: a DCGAN trained on faces (``fit``), then inpainting by latent search (``test`` /
``predict``), after Yeh et al. (2017) with the thesis's landmark term.

``fit`` alternates a discriminator step and a generator step per batch (manual optimization,
non-saturating BCE-with-logits losses), logging a grid of samples from fixed latents.
``test`` and ``predict`` run :class:`faceinpaint.latent_search.LatentSearch` on each batch's damaged
faces; the module's :class:`faceinpaint.lit.writers.InpaintingWriter` writes, per image, the
inpainted PNG, the mask PNG and a JSON line with the chosen loss; ``test`` also logs :class:`faceinpaint.metrics.DefaultMetrics` as ``test/<name>``
(and, through :class:`faceinpaint.lit.fill_metrics.ClassicalFillMetrics`, the same metrics of
the classical fills named in ``baselines`` as ``test/<fill>/<name>``).

The search needs autograd: Lightning runs test/predict under ``torch.inference_mode`` unless
the config sets ``trainer.inference_mode: false``; the search raises if it finds itself
under inference mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor
from torchvision.utils import make_grid

from faceinpaint.batch import IMAGE, INDEX, MASK, to_unit
from faceinpaint.latent_search import LatentSearch, SearchResult, SearchSettings, encoder_starts
from faceinpaint.lit.fill_metrics import ClassicalFillMetrics
from faceinpaint.lit.images import log_image
from faceinpaint.lit.landmarks import check_landmark_frame
from faceinpaint.lit.loading import load_latent_encoder
from faceinpaint.lit.method import InpaintingModule, former_class
from faceinpaint.lit.run_dir import shared_run_directory
from faceinpaint.lit.writers import ROWS, InpaintingWriter
from faceinpaint.losses.dcgan import discriminator_loss, generator_loss
from faceinpaint.losses.landmark import LandmarkCandidates, LandmarkTerm, build_landmark_term
from faceinpaint.metrics import DefaultMetrics
from faceinpaint.models.dcgan import (
    Activation,
    Discriminator,
    Generator,
    LatentPrior,
    sample_latent,
)
from faceinpaint.settings import as_group, fold_group

# The flat constructor arguments of checkpoints written before ``search`` -> its fields.
FORMER_SEARCH_NAMES = {
    "num_candidates": "candidates",
    "iterations": "iterations",
    "search_lr": "lr",
    "search_betas": "betas",
    "prior_weight": "prior_weight",
    "context_window": "context_window",
    "landmark_weight": "landmark_weight",
    "poisson_iterations": "poisson_iterations",
    "search_holdout": "holdout",
    "search_seed": "seed",
    "encoder_perturbation": "encoder_perturbation",
}
SEARCH_FIELDS = tuple(field.name for field in fields(SearchSettings))


class DCGANModule(InpaintingModule):
    """DCGAN training and latent-search inpainting at ``image_size`` (64 in the thesis)."""

    kind = "dcgan"
    display_name = "DCGAN latent-search"
    former_names = ("DCGANInpainter",)
    architecture = (
        "latent_dim",
        "ngf",
        "generator_activation",
        "ndf",
        "image_size",
        "latent_prior",
    )
    optimizer_settings = ("lr", "betas")
    export_prefixes: ClassVar[tuple[str, ...]] = (
        "generator.",
        "discriminator.",
    )  # the prior needs D
    # SearchSettings fields (into ``search``) and the networks the search runs with
    inference_settings: ClassVar[tuple[str, ...]] = (
        *SEARCH_FIELDS,
        "encoder_checkpoint",
        "landmark_loss",
        "landmark_checkpoint",
        "landmark_candidates",
    )
    oracle_settings = ("candidates", "iterations")

    @classmethod
    def recognizes(cls, checkpoint: Mapping[str, Any]) -> bool:
        prefixes = {key.split(".", 1)[0] for key in checkpoint.get("state_dict") or {}}
        hparams = checkpoint.get("hyper_parameters") or {}
        return {"generator", "discriminator"} <= prefixes and "latent_prior" in hparams

    @classmethod
    def current_hparams(cls, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """``search`` a :class:`SearchSettings`, from the former flat names (``num_candidates``,
        ``search_lr`` ... :data:`FORMER_SEARCH_NAMES`), a mapping (JSON metadata) or dotted
        ``search.<field>`` entries."""
        return fold_group(hparams, "search", SearchSettings, FORMER_SEARCH_NAMES)

    @classmethod
    def for_inference(
        cls, hparams: Mapping[str, Any], state: Mapping[str, Tensor], **overrides: Any
    ) -> DCGANModule:
        """:meth:`InpaintingModule.for_inference`; ``overrides`` named as
        :class:`SearchSettings` fields (``candidates=4, iterations=10``) replace the search's."""
        search = {f"search.{k}": overrides.pop(k) for k in list(overrides) if k in SEARCH_FIELDS}
        return super().for_inference({**hparams, **search}, state, **overrides)

    def __init__(
        self,
        latent_dim: int = 100,
        ngf: int = 64,
        generator_activation: Activation = "relu",
        ndf: int = 64,
        image_size: int = 64,
        latent_prior: LatentPrior = "uniform",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        num_samples: int = 64,
        sample_every_n_batches: int = 500,
        sample_seed: int = 0,
        search: SearchSettings = SearchSettings(),
        landmark_loss: Literal["network", "dlib"] = "network",
        landmark_checkpoint: str | None = None,
        landmark_candidates: LandmarkCandidates = "masked",
        encoder_checkpoint: str | None = None,
        return_all: bool = False,
        baselines: list[str] | None = None,
        output_dir: str | None = None,
        val_candidates: int = 8,
        val_iterations: int = 50,
        channels_last: bool = False,
    ) -> None:
        """
        Args:
            latent_dim: size of z (100 in DCGAN).
            ngf: generator width (channels of its last hidden layer).
            generator_activation: the generator's hidden non-linearity, ``relu`` (DCGAN; what
                checkpoints without this entry were trained with) or ``leaky_relu`` (0.2, the
                thesis's "LeakyReLU in the nodes" of G as well).
            ndf: discriminator width (channels of its first layer).
            image_size: side of the faces in pixels, a power of two.
            latent_prior: the z prior of training, ``uniform`` in [-1, 1] or ``normal``; saved in
                the checkpoint and used by the search (which clips z to [-1, 1]).
            lr: Adam learning rate of both networks (2e-4 in DCGAN, 1e-3 in the thesis).
            betas: Adam's moment decays for training (beta1 0.5 in DCGAN).
            num_samples: faces in the logged sample grid.
            sample_every_n_batches: training batches between sample grids (also at each epoch's
                end); 0 = epoch ends only.
            sample_seed: seed of the grid's fixed latents.
            search: the latent search's settings (``faceinpaint.latent_search.SearchSettings``:
                candidates, iterations, lr, betas, prior_weight, context_window,
                landmark_weight, poisson_iterations, holdout, discrepancy, discrepancy_curve, seed,
                encoder_perturbation, precision).
            landmark_loss: ``network`` (differentiable, through the landmark network of
                ``landmark_checkpoint``) or ``dlib`` (the thesis's thresholded loss: zero
                gradient, so it only takes part in choosing the final candidate).
            landmark_checkpoint: landmark network checkpoint, needed by ``network``.
            landmark_candidates: ``masked`` (the thesis: each candidate is scored with the
                input's hole zeroed, like the damaged input it is compared with) or
                ``unmasked`` (the whole G(z)).
            encoder_checkpoint: a latent encoder (``faceinpaint.lit.encoder``; ``.ckpt`` or
                ``.safetensors``) for this generator: the search starts from E(damaged, mask)
                instead of random draws from the prior. None = random starts (the thesis);
                ``search.encoder_perturbation`` spreads the other candidates around E's latent.
            return_all: ``predict`` also returns every candidate.
            baselines: classical fills (names in ``faceinpaint.ops.fills.BASELINES``) whose
                metrics ``test`` logs beside the search's, on the same batches.
            output_dir: where test/predict write images and JSON lines; None = the logger's
                directory (or the trainer's root) + ``/inpainted``.
            val_candidates / val_iterations: the short search that scores the generator as an
                inpainter during ``fit`` (``val/psnr_hole`` and the other
                ``InpaintingMetrics``; needs ``trainer.limit_val_batches`` > 0): random starts
                seeded by each face's index, no landmark term, plain composite, no held-out
                share (the rest of ``search`` as configured), so values of one run at different
                steps compare (a learning curve).
            channels_last: train G and D in channels_last memory format (and the real batch):
                on a CPU 1.09x in fp32, and with bf16 1.84x against 1.72x for bf16 alone
                (scripts/train_bf16_ab.py).
        """
        super().__init__()
        search = as_group(SearchSettings, search)  # a mapping where a checkpoint's YAML gave one
        self.save_hyperparameters()
        # the search's settings as a SearchSettings (under LightningCLI, hparams hold the
        # config's mapping)
        self.search_settings = search
        self.automatic_optimization = False
        self.generator = Generator(latent_dim, ngf, image_size, activation=generator_activation)
        self.discriminator = Discriminator(ndf, image_size)
        fixed = sample_latent(
            latent_prior, num_samples, latent_dim, torch.Generator().manual_seed(sample_seed)
        )
        self.register_buffer("fixed_latent", fixed, persistent=False)  # (num_samples, latent_dim)
        self.val_metrics = DefaultMetrics()
        self.test_metrics = DefaultMetrics()
        self._landmark_term: LandmarkTerm | None = None
        self._encoder: torch.nn.Module | None = None

    # ------------------------------------------------------------------------ training
    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas)
        return opt_g, opt_d

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """D's BCE on real and detached fake images (``faceinpaint.losses.dcgan``)."""
        return discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))

    def generator_loss(self, fake: Tensor) -> Tensor:
        """G's non-saturating loss on D(fake) (``faceinpaint.losses.dcgan``)."""
        return generator_loss(self.discriminator(fake))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real = batch[IMAGE]  # (B, 3, S, S)
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        latent = sample_latent(
            self.hparams.latent_prior, real.shape[0], self.hparams.latent_dim, device=real.device
        )
        fake = self.generator(latent)

        self.toggle_optimizer(opt_d)
        d_loss, d_parts = self.discriminator_loss(real, fake)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        g_loss = self.generator_loss(fake)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.log_dict(
            {"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}
            | {f"train/{name}": value for name, value in d_parts.items()},
            prog_bar=True,
        )
        every = self.hparams.sample_every_n_batches
        if every > 0 and self.trainer.fit_loop.epoch_loop.total_batch_idx % every == 0:
            self.log_samples()

    def on_train_epoch_end(self) -> None:
        self.log_samples()

    @torch.no_grad()
    def log_samples(self) -> None:
        """Grid of G(fixed z) in eval mode: a PNG under the log directory, and the logger's image."""
        was_training = self.generator.training
        self.generator.eval()
        grid = make_grid(to_unit(self.generator(self.fixed_latent)), nrow=8, padding=1)
        self.generator.train(was_training)
        step = self.global_step
        png = self._log_dir() / "images" / f"samples_{step:07d}.png"
        log_image(self._trainer, "samples", grid, step, wandb_step=step, png_path=png)

    def setup(self, stage: str) -> None:
        if self.hparams.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        # a collective under DDP (a broadcast from rank 0): found once here, on every rank, never
        # from code that only rank 0 runs
        self._log_directory = shared_run_directory(self.trainer)
        if self.search_settings.landmark_weight > 0 and self.hparams.landmark_loss == "network":
            check_landmark_frame(
                self.hparams.landmark_checkpoint, self.trainer.datamodule, "the latent search"
            )

    def _log_dir(self) -> Path:
        if self._trainer is None:
            return Path("runs")
        return self._log_directory

    def configure_callbacks(self) -> list[pl.Callback]:
        """The writer of test / predict files (images, masks, JSON lines) and the classical
        fills' test metrics (``baselines``)."""
        callbacks: list[pl.Callback] = [InpaintingWriter(self.hparams.output_dir)]
        if self.hparams.baselines:
            callbacks.append(ClassicalFillMetrics(self.hparams.baselines))
        return callbacks

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {}).get("latent_prior")
        if saved is not None and saved != self.hparams.latent_prior:
            raise ValueError(
                f"the checkpoint's generator was trained with latent_prior={saved!r} but this "
                f"model is configured with {self.hparams.latent_prior!r}; set model.init_args."
                f"latent_prior: {saved}"
            )

    # ----------------------------------------------------------------------- the search
    def landmark_term(self) -> LandmarkTerm | None:
        """The configured landmark term on this module's device (None when its weight is 0)."""
        if self.search_settings.landmark_weight == 0:
            return None
        if self._landmark_term is None:
            self._landmark_term = build_landmark_term(
                self.hparams.landmark_loss,
                self.hparams.landmark_checkpoint,
                candidates=self.hparams.landmark_candidates,
            )
        return self._landmark_term.to(self.device)

    def latent_search(self, validation: bool = False, record_history: bool = False) -> LatentSearch:
        """The configured search; ``validation``: the short one of ``validation_step``
        (``val_candidates`` x ``val_iterations``, no landmark term, plain composite, no held-out
        share, no discrepancy stop)."""
        settings = self.search_settings
        if validation:
            settings = replace(
                settings,
                candidates=self.hparams.val_candidates,
                iterations=self.hparams.val_iterations,
                landmark_weight=0.0,
                poisson_iterations=0,
                holdout=0.0,
                discrepancy=0.0,
                discrepancy_curve=(),
            )
        return LatentSearch(
            self.generator,
            self.discriminator,
            self.hparams.latent_prior,
            settings,
            landmark_term=None if validation else self.landmark_term(),
            return_all=self.hparams.return_all and not validation,
            record_history=record_history,
        )

    def encoder(self) -> torch.nn.Module | None:
        """The latent encoder of ``encoder_checkpoint`` on this module's device (None: random
        starts)."""
        if self.hparams.encoder_checkpoint is None:
            return None
        if self._encoder is None:
            self._encoder = load_latent_encoder(self.hparams.encoder_checkpoint)
        return self._encoder.to(self.device)

    def search(
        self, damaged: Tensor, mask: Tensor, index: Tensor, record_history: bool = False
    ) -> SearchResult:
        """The latent search of a batch, with its extras (best G(z) and z, losses, candidates):
        (B,3,H,W) faces in [-1, 1] (hole pixels never read), (B,1,H,W) masks (1 = hole), (B,)
        int64 indices seeding the starting points."""
        search = self.latent_search(record_history=record_history)
        settings = search.settings
        encoder = self.encoder()
        start = None
        if encoder is not None:
            hole = mask.to(damaged.dtype)
            start = encoder_starts(
                encoder,
                damaged * (1.0 - hole),
                hole,
                index,
                settings.candidates,
                settings.encoder_perturbation,
                settings.seed,
            )
        return search(damaged, mask, index, start)

    def inpaint(self, damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        """(B,3,H,W) composited results of the latent search (see :meth:`search`)."""
        return self.search(damaged, mask, index).inpainted

    def inpaint_parts(self, damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(G(z) of the chosen candidate, result)``."""
        result = self.search(damaged, mask, index)
        return result.generated, result.inpainted

    def trace(
        self, damaged: Tensor, mask: Tensor, index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`inpaint_parts` and the search's (K,B,N) loss curves, from the same starts."""
        result = self.search(damaged, mask, index, record_history=True)
        return result.generated, result.inpainted, result.history

    def reconstruct(self, image: Tensor, index: Tensor) -> Tensor:
        """The generator's closest image to the whole ``image`` (``LatentSearch.project``, the
        configured candidates and iterations)."""
        return self.latent_search().project(image, index).generated

    def method_name(self) -> str:
        """``dcgan``, with ``+encoder`` (starts from a latent encoder), ``+landmark`` (the
        landmark term on), ``+holdout`` (held-out stopping), ``+discrepancy`` (the discrepancy
        stop), ``+poisson`` (blended) and ``+bf16``
        (the networks under bf16 autocast: ``bf16``, or ``auto`` on a device with native bf16)."""
        hp = self.hparams
        name = "dcgan"
        search = self.search_settings
        name += "+encoder" if hp.encoder_checkpoint is not None else ""
        name += "+landmark" if search.landmark_weight > 0 else ""
        name += "+holdout" if search.holdout > 0 else ""
        name += "+discrepancy" if search.stops_by_discrepancy else ""
        name += "+poisson" if search.poisson_iterations > 0 else ""
        name += "+bf16" if search.runs_bf16(self.device) else ""
        return name

    def check_ready(self) -> None:
        self.landmark_term()  # a missing landmark checkpoint fails here, before any search

    def landmark_checkpoint_in_use(self) -> str | None:
        hp = self.hparams
        on = self.search_settings.landmark_weight > 0 and hp.landmark_loss == "network"
        return hp.landmark_checkpoint if on else None

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        image, mask = batch[IMAGE], batch[MASK]
        result = self.latent_search(validation=True)(image, mask, batch[INDEX])
        self.val_metrics.update(result.inpainted, image, mask, raw=result.generated)

    def on_validation_epoch_end(self) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.val_metrics.compute().items()})
        self.val_metrics.reset()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        result = self.search(batch[IMAGE], batch[MASK], batch[INDEX])
        image, mask = batch[IMAGE], batch[MASK]
        self.test_metrics.update(result.inpainted, image, mask, raw=result.generated)
        self.log("test/search_loss", result.loss.mean(), batch_size=image.shape[0], sync_dist=True)
        return {"index": batch[INDEX], "inpainted": result.inpainted, ROWS: result_rows(result)}

    def on_test_epoch_end(self) -> None:
        self.log_dict({f"test/{k}": v for k, v in self.test_metrics.compute().items()})
        self.test_metrics.reset()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        result = self.search(batch[IMAGE], batch[MASK], batch[INDEX])
        output = {
            "index": batch[INDEX],
            "inpainted": result.inpainted,
            "generated": result.generated,
            "latent": result.latent,
            "loss": result.loss,
            "candidate_loss": result.candidate_loss,
        }
        if result.all_generated is not None:
            output["all_generated"] = result.all_generated
            output["all_latent"] = result.all_latent
        return {name: value.detach().cpu() for name, value in output.items()} | {
            ROWS: result_rows(result)
        }


def result_rows(result: SearchResult) -> dict[str, list[Any]]:
    """Per-image values of a search for the results' JSON lines: the chosen candidate's loss, its
    parts, and which candidate it was."""
    parts = {name: value.tolist() for name, value in result.parts.items()}
    rows = {"loss": result.loss.tolist(), **parts, "candidate": result.best.tolist()}
    if result.kept_iteration is not None:
        chosen = torch.arange(result.best.shape[0], device=result.best.device)
        rows["kept_iteration"] = result.kept_iteration[chosen, result.best].tolist()
    return rows


def __getattr__(name: str) -> type:
    """A former class name of this module (its class's ``former_names``)."""
    return former_class(__name__, name)
