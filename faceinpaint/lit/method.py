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

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl
from torch import Tensor

# (value in the checkpoint, value in the config, checkpoint) -> why it cannot apply, or None
ResumeRule = Callable[[Any, Any, Mapping[str, Any]], "str | None"]

_DECLARED: dict[str, type[DeclaredModule]] = {}  # kind -> class, as their modules are imported
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
    # settings replaced there (a group's field as ``group.field``), read by current_hparams
    export_overrides: ClassVar[Mapping[str, Any]] = {}
    # a checkpoint key this class's checkpoints always hold (kind of a file without _class_path)
    checkpoint_marker: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            known = _DECLARED.get(cls.kind)
            if known is not None and known.class_path() != cls.class_path():
                raise TypeError(
                    f"{cls.class_path()} declares kind {cls.kind!r}, already {known.class_path()}'s"
                )
            _DECLARED[cls.kind] = cls

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def recognizes(cls, checkpoint: Mapping[str, Any]) -> bool:
        """Whether a checkpoint that names no class (a module saved outside LightningCLI) is one
        of this class's: by the key its checkpoints always hold."""
        return cls.checkpoint_marker is not None and cls.checkpoint_marker in checkpoint

    @classmethod
    def exported(
        cls, checkpoint: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Tensor]]:
        """``(class path, constructor arguments, state)`` of the weights file of a checkpoint of
        this class: the state under ``export_prefixes``, ``export_overrides`` applied."""
        if not cls.export_prefixes:
            raise ValueError(f"a {cls.display_name or cls.class_path()} exports no weights")
        hparams = {
            k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if k[:1] != "_"
        }
        state = {
            name: value
            for name, value in checkpoint["state_dict"].items()
            if name.startswith(cls.export_prefixes)
        }
        init_args = cls.current_hparams(hparams | dict(cls.export_overrides))
        return cls.export_class or cls.class_path(), init_args, state

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
    # those of them that its oracle (:meth:`reconstruct`) uses
    oracle_settings: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # DeclaredModule refuses a kind declared twice
        if cls.__dict__.get("kind"):
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

    def trace(
        self, damaged: Tensor, mask: Tensor, index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`inpaint_parts` plus the (K,B,N) loss curves of an iterative method (None for
        a feed-forward one): what eval plots for a task's first batch."""
        raw, result = self.inpaint_parts(damaged, mask, index)
        return raw, result, None

    def check_ready(self) -> None:
        """Fail now, before any face, where inference would need what is missing (a file)."""

    def method_name(self) -> str:
        """Row name in tables: the kind, plus what its settings switch on: ``+poisson`` where
        the class takes ``poisson_iterations`` and blends (``vaegan+poisson``, ``ce+poisson``);
        a class with more to name says so itself (``dcgan+encoder``)."""
        blends = "poisson_iterations" in self.inference_settings
        if blends and self.hparams.poisson_iterations > 0:
            return f"{self.kind}+poisson"
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
        model = cls(**cls.current_hparams(dict(hparams) | dict(cls.export_overrides) | overrides))
        for prefix in cls.export_prefixes:
            part = getattr(model, prefix.rstrip("."))
            part.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True
            )
        return model.eval()


def registered_methods() -> dict[str, type[InpaintingModule]]:
    """``kind -> class`` of every inpainting method whose module has been imported
    (:func:`faceinpaint.lit.registry.methods` imports them all), by kind: the same order
    whichever module was imported first."""
    return dict(sorted(_METHODS.items()))


def declared_modules() -> dict[str, type[DeclaredModule]]:
    """``kind -> class`` of every declared module (methods, landmark network, latent encoder)
    whose module has been imported, by kind."""
    return dict(sorted(_DECLARED.items()))


def import_class(class_path: str) -> type:
    """The faceinpaint class a (possibly former) class path names."""
    module, _, name = resolve_class_path(class_path).rpartition(".")
    if not module.startswith("faceinpaint."):
        raise ValueError(f"{class_path!r} is not a faceinpaint class; only those are built")
    return getattr(importlib.import_module(module), name)


def resolve_class_path(class_path: str) -> str:
    """The current class path of ``class_path``: itself, unless a declared class of its module
    lists its name in ``former_names`` (configs, checkpoints and shipped weights name former
    classes)."""
    module_name, _, name = class_path.rpartition(".")
    if not module_name.startswith("faceinpaint."):
        return class_path
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return class_path
    current = _former(module_name, name)
    return class_path if current is None or name in vars(module) else current.class_path()


def _former(module_name: str, name: str) -> type[DeclaredModule] | None:
    for value in list(vars(sys.modules[module_name]).values()):
        if (
            isinstance(value, type)
            and issubclass(value, DeclaredModule)
            and value.__module__ == module_name
            and name in value.former_names
        ):
            return value
    return None


def former_class(module_name: str, name: str) -> type:
    """The class a former name ``module_name.name`` stands for now: a renamed class's module's
    ``__getattr__`` returns it, so configs, checkpoints and weights that name it still load."""
    current = _former(module_name, name)
    if current is None:
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return current
