"""What a LightningModule of faceinpaint says about itself, on its class (STYLE habit 13).

:class:`DeclaredModule` is every trained module's base: its ``kind`` and display name, which
constructor settings are architecture (equal to the checkpoint's on any resume) or optimizer
(equal under ``fit``, whose optimizer state would override them), the rules for settings that
may move on resume only within limits, what it exports as safetensors and how a checkpoint's
former flat hyperparameters read today. :class:`InpaintingModule` adds the inference contract of
an inpainting method: ``inpaint(damaged, mask, index)``, its raw output, its row name in
tables, the settings an evaluation may override, and how it is built from a file.

Loading (:mod:`faceinpaint.lit.loading`), resume rules (:mod:`faceinpaint.lit.checkpoint`),
weight export (:mod:`faceinpaint.lit.weights`), eval and the demo read these attributes from the
class a checkpoint names; no table elsewhere lists the methods. A class registers as a method by
subclassing :class:`InpaintingModule` with a ``kind``; :mod:`faceinpaint.lit.registry` imports
the modules that define them (its one line per method is the registration).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl
from torch import Tensor

# (value in the checkpoint, value in the config, checkpoint) -> why it cannot apply, or None
ResumeRule = Callable[[Any, Any, Mapping[str, Any]], "str | None"]

_METHODS: dict[str, type[InpaintingModule]] = {}


class DeclaredModule(pl.LightningModule):
    """A LightningModule that declares what it is (class attributes, read without building it)."""

    kind: ClassVar[str] = ""  # short name: checkpoint kind, eval row prefix, CLI hints
    display_name: ClassVar[str] = ""  # e.g. "VAE-GAN", in messages and tables
    former_names: ClassVar[tuple[str, ...]] = ()  # former class names in this class's module
    architecture: ClassVar[tuple[str, ...]] = ()  # settings that shape the weights
    optimizer_settings: ClassVar[tuple[str, ...]] = ()  # settings restored by optimizer state
    resume_rules: ClassVar[Mapping[str, ResumeRule]] = {}  # settings that move within a rule
    export_class: ClassVar[str | None] = None  # class path the weights file builds; None: this
    export_prefixes: ClassVar[tuple[str, ...]] = ()  # state-dict prefixes exported; (): none
    export_overrides: ClassVar[Mapping[str, Any]] = {}  # constructor arguments replaced there
    # a checkpoint key this class's checkpoints always hold (kind of a file without _class_path)
    checkpoint_marker: ClassVar[str | None] = None

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def current_hparams(cls, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """``hparams`` (a checkpoint's, LightningCLI's private ``_`` entries removed) as this
        class's constructor takes them now: former names and flat settings translated."""
        return dict(hparams)


class InpaintingModule(DeclaredModule):
    """An inpainting method: ``inpaint(damaged, mask, index) -> (B,3,H,W)`` composited result.

    A subclass with a ``kind`` registers itself; :mod:`faceinpaint.eval`, the demo, ``faceinpaint
    inpaint`` and the contract test (``tests/lit/test_method_contract.py``) reach it through
    :func:`registered_methods`.
    """

    # settings an evaluation or a photo may override at inference (``eval --checkpoints``)
    inference_settings: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            known = _METHODS.get(cls.kind)
            if known is not None and known.class_path() != cls.class_path():
                raise TypeError(
                    f"{cls.class_path()} declares kind {cls.kind!r}, already {known.class_path()}'s"
                )
            _METHODS[cls.kind] = cls

    def inpaint(self, damaged: Tensor, mask: Tensor, index: Tensor) -> Tensor:
        """(B,3,H,W) results in [-1, 1], known pixels those of ``damaged``; (B,3,H,W) damaged
        faces (hole pixels never read), (B,1,H,W) masks (1 = hole), (B,) int64 indices seeding
        any randomness."""
        return self.inpaint_parts(damaged, mask, index)[1]

    def inpaint_parts(self, damaged: Tensor, mask: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(raw network output, composited result)``, each (B,3,H,W)."""
        raise NotImplementedError

    def reconstruct(self, image: Tensor, index: Tensor) -> Tensor:
        """The method's closest output to the whole ``image`` (no hole): the eval ``oracle``."""
        raise NotImplementedError(f"{self.display_name} has no oracle")

    def method_name(self) -> str:
        """Row name in tables: the kind, plus what its settings switch on (``dcgan+encoder``)."""
        return self.kind

    def landmark_checkpoint_in_use(self) -> str | None:
        """The landmark network file the method runs at inference (its frame must be the task's)."""
        return None

    @classmethod
    def for_inference(
        cls, hparams: Mapping[str, Any], state: Mapping[str, Tensor], **overrides: Any
    ) -> InpaintingModule:
        """The module for inference, from a checkpoint's hyperparameters and state dict:
        ``overrides`` (names in ``inference_settings``) replace settings; the state of
        ``export_prefixes`` is loaded strictly, the rest keeps its initial values."""
        unknown = sorted(set(overrides) - set(cls.inference_settings))
        if unknown:
            raise ValueError(
                f"a {cls.display_name} takes only {sorted(cls.inference_settings)} at "
                f"inference, got {unknown}"
            )
        model = cls(**(cls.current_hparams(hparams) | dict(cls.export_overrides) | overrides))
        for prefix in cls.export_prefixes:
            part = getattr(model, prefix.rstrip("."))
            part.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
            )
        return model.eval()


def registered_methods() -> dict[str, type[InpaintingModule]]:
    """``kind -> class`` of every inpainting method whose module has been imported
    (:func:`faceinpaint.lit.registry.methods` imports them all)."""
    return dict(_METHODS)
