"""The VAE-GAN LightningModule: update pattern, clipping, curriculum, resume, overfit."""

import copy
import itertools

import lightning.pytorch as pl
import pytest
import torch
from helpers import tiny_vaegan
from torch.utils.data import DataLoader, Dataset

from faceinpaint.batch import IMAGE, INDEX, MASK, composite, to_unit
from faceinpaint.lit.vaegan import CHECKPOINT_KEY, VAEGANModule
from faceinpaint.losses.vaegan import CriticSettings, LossWeights
from faceinpaint.metrics import hole_psnr_per_sample
from faceinpaint.models.vaegan import InpaintingVAE

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # tiny CPU networks: one thread

SIZE = 32


def tiny_model(**overrides) -> VAEGANModule:
    return tiny_vaegan(image_size=SIZE, **overrides)


class Faces(Dataset):
    """Smooth random images with one 16x16 hole each, in the batch contract."""

    def __init__(self, n: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        low = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
        self.images = torch.nn.functional.interpolate(low, size=SIZE, mode="bilinear")
        self.corners = torch.randint(0, SIZE - 16 + 1, (n, 2), generator=g)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        mask = torch.zeros(1, SIZE, SIZE)
        top, left = self.corners[i].tolist()
        mask[:, top : top + 16, left : left + 16] = 1
        return {IMAGE: self.images[i], MASK: mask, INDEX: torch.tensor(i)}


def trainer(callbacks=(), **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=list(callbacks), **options)


class StepRecorder(pl.Callback):
    """Records every optimizer step and checks which networks it changed."""

    def __init__(self):
        self.steps: list[str] = []
        self.stages: list[int] = []

    def on_train_start(self, trainer, module):
        generator_opt, critic_opt = (o.optimizer for o in module.optimizers())
        for name, opt, frozen in (
            ("G", generator_opt, [module.global_critic, module.local_critic]),
            ("C", critic_opt, [module.generator]),
        ):
            snapshot = {}

            def before(opt, args, kwargs, frozen=frozen, snapshot=snapshot):
                snapshot["params"] = [p.detach().clone() for m in frozen for p in m.parameters()]
                snapshot["own"] = [
                    p.detach().clone() for g in opt.param_groups for p in g["params"]
                ]

            def after(opt, args, kwargs, name=name, frozen=frozen, snapshot=snapshot):
                now = [p.detach() for m in frozen for p in m.parameters()]
                assert all(
                    torch.equal(a, b) for a, b in zip(snapshot["params"], now, strict=True)
                ), f"a {name} step changed the other networks"
                own = [p.detach() for g in opt.param_groups for p in g["params"]]
                assert any(not torch.equal(a, b) for a, b in zip(snapshot["own"], own, strict=True))
                self.steps.append(name)

            opt.register_step_pre_hook(before)
            opt.register_step_post_hook(after)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.stages.append(module.curriculum_stage)


@pytest.mark.parametrize(
    "options, precision",
    [
        ({}, "32-true"),
        (
            dict(
                critic={"clip_value": None, "gp_weight": 10.0},
                critic_norm="instance",
                channels_last=True,
            ),
            "bf16-mixed",
        ),
    ],
)
def test_update_pattern_stages_and_clipping(options, precision):
    torch.manual_seed(0)
    model = tiny_model(**options)
    recorder = StepRecorder()
    trainer([recorder], precision=precision).fit(model, DataLoader(Faces(8), batch_size=2))
    # stage 1: one generator update per batch; then a critic update per batch and a generator
    # update on every 5th batch, after its critic update
    assert recorder.stages == [1, 1] + [2] * 10 + [3] * 10
    assert "".join(recorder.steps) == "GG" + "CCCCCG" * 4
    assert (model.generator_updates, model.critic_updates) == (6, 20)
    largest = max(
        p.abs().max() for c in (model.global_critic, model.local_critic) for p in c.parameters()
    )
    assert (largest <= 0.01) == (model.critic.clip_value == 0.01)


class CriticGradients(pl.Callback):
    """The largest critic gradient each critic step applies."""

    def __init__(self):
        self.largest: list[float] = []

    def on_train_start(self, trainer, module):
        def before(opt, args, kwargs):
            grads = [p.grad.abs().max() for g in opt.param_groups for p in g["params"]]
            self.largest.append(max(grads).item())

        module.optimizers()[1].optimizer.register_step_pre_hook(before)


@pytest.mark.parametrize("clip_mode", ["weights", "gradients"])
def test_clip_mode_clips_weights_after_or_gradients_before_the_critic_step(clip_mode):
    torch.manual_seed(0)
    model = tiny_model(critic={"clip_mode": clip_mode}, stage_boundaries=(1, 3, 3))
    seen = CriticGradients()
    trainer([seen]).fit(model, DataLoader(Faces(8), batch_size=2))
    assert len(seen.largest) == 10
    critics = [p for c in (model.global_critic, model.local_critic) for p in c.parameters()]
    largest_weight = max(p.abs().max().item() for p in critics)
    if clip_mode == "gradients":
        assert all(g == pytest.approx(0.01) for g in seen.largest)
        assert largest_weight > 0.5  # BN scales start at 1: no weight was clipped
    else:
        assert max(seen.largest) > 0.01
        assert largest_weight <= 0.01


def test_clip_mode_must_be_known():
    with pytest.raises(ValueError, match="clip_mode must be one of .*got 'gradient'"):
        tiny_model(critic={"clip_mode": "gradient"})


def test_the_vgg_variant_and_layers_reach_the_feature_loss():
    layers = ("conv1_1", "conv1_2", "conv2_1", "relu4_1")
    model = tiny_model(vgg_variant="vgg16", feature_layers=layers)
    assert model.objective.vgg is model.vgg and model.vgg.layers == layers
    assert len(model.vgg.net) == 19  # VGG-16 up to relu4_1 (VGG-19: 21)
    assert model.feature_weights == [100 / 64**2, 100 / 64**2, 100 / 128**2, 100 / 512**2]


def trained_state(**settings) -> dict[str, torch.Tensor]:
    """Every trained weight after a seeded tiny run through all three stages."""
    torch.manual_seed(0)
    model = tiny_model(stage_boundaries=(1, 2, 3), **settings)
    trainer().fit(model, DataLoader(Faces(8), batch_size=2))
    return model.state_dict()


# Each reading of the papers that is a setting, at its default.
READING_DEFAULTS = dict(
    critic={"clip_mode": "weights"}, vgg_variant="vgg19", residual_second_norm=True
)


def test_checkpoints_without_the_reading_settings_load_with_their_defaults(tmp_path):
    """A checkpoint saved before a reading became a setting rebuilds the same networks."""
    from faceinpaint.lit.inference import load_inpainter

    torch.manual_seed(0)
    model = tiny_model()
    # flat, as checkpoints held their settings before the groups, and without the readings
    hparams = {k: v for k, v in model.hparams.items() if k not in READING_DEFAULTS}
    hparams |= {f"{k}_weight": v for k, v in vars(model.weights).items()}
    hparams |= {"n_critic": 5, "clip_value": 0.01, "critic_noise_std": 0.01, "label_scale": 1.0}
    hparams.pop("weights")
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": hparams,
        "pytorch-lightning_version": pl.__version__,
        CHECKPOINT_KEY: {"generator_updates": 0, "critic_updates": 0},
    }
    path = tmp_path / "former.ckpt"
    torch.save(checkpoint, path)
    loaded = load_inpainter(path)
    assert loaded.critic == model.critic
    assert loaded.weights == LossWeights(**(vars(model.weights) | {"feat": 0.0}))
    assert (loaded.hparams.vgg_variant, loaded.hparams.residual_second_norm) == ("vgg19", True)
    state = loaded.generator.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.generator.state_dict().items())


def test_readings_at_their_defaults_train_as_without_the_settings():
    """Naming every reading's default changes no bit of a run (old configs are unchanged)."""
    implicit, explicit = trained_state(), trained_state(**READING_DEFAULTS)
    assert implicit.keys() == explicit.keys()
    assert all(torch.equal(implicit[key], explicit[key]) for key in implicit)


class CriticInputs(pl.Callback):
    """Records each critic update's real images and fakes, and the fakes that the generator as
    it is at that moment makes from the input (and latent noise) of its last forward."""

    def __init__(self):
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        self.current: list[torch.Tensor] = []

    def on_train_start(self, trainer, module):
        generator_forward, critic_losses = module.generator.forward, module.critic_losses

        def recording_forward(x):
            self.last_forward = (x.clone(), torch.get_rng_state())
            return generator_forward(x)

        def spy(image, fake, windows):
            x, rng_state = self.last_forward
            generator = copy.deepcopy(module.generator)  # train mode, as in the step
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.set_rng_state(rng_state)  # the same eps of z = mu + sigma * eps
                output, _, _ = InpaintingVAE.forward(generator, x)
            self.real.append(image.clone())
            self.fake.append(fake.clone())
            self.current.append(composite(output, image, self.mask))
            return critic_losses(image, fake, windows)

        module.generator.forward, module.critic_losses = recording_forward, spy

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.mask = batch[MASK]


def test_each_critic_update_sees_its_own_real_batch_and_current_fakes():
    """WGAN's Algorithm 1: a fresh real batch per critic update, fakes of the current generator
    (the former schedule reused one batch and one pre-update fake for all 5 critic updates)."""
    torch.manual_seed(0)
    model = tiny_model(stage_boundaries=(1, 3, 3))
    spy = CriticInputs()
    trainer([spy]).fit(model, DataLoader(Faces(8), batch_size=2))
    assert len(spy.real) == 10
    for before, after in itertools.pairwise(spy.real):
        assert not torch.equal(before, after)
    for fake, current in zip(spy.fake, spy.current, strict=True):
        torch.testing.assert_close(fake, current)


def test_losses_stay_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = tiny_model()
    batch = next(iter(DataLoader(Faces(2), batch_size=2)))
    image = batch[IMAGE]
    windows = torch.zeros(2, 2, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, mu, logvar = model.generator(image)
        total, parts = model.generator_loss(2, image, output, output, mu, logvar, windows)
        critic_total, critic_parts = model.critic_losses(image, output.detach(), windows)
        features = model.objective.vgg_features(image)
    assert output.dtype == torch.bfloat16 and mu.dtype == torch.float32
    assert all(f.dtype == torch.bfloat16 for f in features)  # VGG runs in bf16 like the rest
    assert all(
        v.dtype == torch.float32
        for v in [total, critic_total, *parts.values(), *critic_parts.values()]
    )


def test_terms_follow_stage_and_zero_weights_are_never_computed(monkeypatch):
    torch.manual_seed(0)
    model = tiny_model(weights={"global_adv": 0.0, "kl": 0.0})
    monkeypatch.setattr(model.global_critic, "forward", lambda x: pytest.fail("global critic ran"))
    batch = next(iter(DataLoader(Faces(2), batch_size=2)))
    image = batch[IMAGE]
    output, mu, logvar = model.generator(image)
    windows = torch.zeros(2, 2, dtype=torch.long)
    _, stage_1 = model.generator_loss(1, image, output, output, mu, logvar, windows)
    _, stage_2 = model.generator_loss(2, image, output, output, mu, logvar, windows)
    assert set(stage_1) == {"feat", "feat_relu1_1", "feat_relu2_1"}
    assert set(stage_2) == set(stage_1) | {"local_adv"}
    assert set(model.critic_losses(image, output.detach(), windows)[1]) == {"critic_local"}


def test_stage_3_without_landmark_net_fails_at_init():
    with pytest.raises(ValueError, match="landmark_checkpoint"):
        tiny_model(weights={"landmark": 0.1})
    assert tiny_model(weights={"landmark": 0.1}, stage_boundaries=(2, 4, 4)).landmark_loss is None


def test_stage_3_trains_with_a_landmark_net():
    torch.manual_seed(0)
    model = tiny_model(
        weights={"landmark": 0.1}, landmark_checkpoint="random", stage_boundaries=(0, 0, 1)
    )
    batch = next(iter(DataLoader(Faces(2), batch_size=2)))
    output, mu, logvar = model.generator(batch[IMAGE])
    total, parts = model.generator_loss(
        3, batch[IMAGE], output, output, mu, logvar, torch.zeros(2, 2, dtype=torch.long)
    )
    assert parts["landmark"] > 0
    total.backward()
    assert all(p.grad is None for p in model.landmark_loss.parameters())
    assert model.generator.decoder.to_image[0].weight.grad.abs().sum() > 0


class SaveAt(pl.Callback):
    """Saves and stops after the batch that leaves ``at`` = (generator, critic) updates done."""

    def __init__(self, path, at):
        self.path, self.at = path, at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (module.generator_updates, module.critic_updates) == self.at:
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True


class CheckResumed(pl.Callback):
    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self.stages: list[int] = []

    def on_train_start(self, trainer, module):
        assert (module.generator_updates, module.critic_updates, module.curriculum_stage) == (
            3,
            7,
            2,
        )
        saved = self.checkpoint["optimizer_states"]
        for opt, state in zip(module.optimizers(), saved, strict=True):
            live = opt.optimizer.state_dict()["state"]
            assert live.keys() == state["state"].keys() and len(live) > 0
            for key, values in state["state"].items():
                for name, value in values.items():
                    torch.testing.assert_close(live[key][name], value)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.stages.append(module.curriculum_stage)


def test_resume_mid_stage_restores_stage_cycle_and_optimizers(tmp_path):
    """Saved 2 critic updates into a cycle of stage 2: the resumed run makes the 3 missing
    critic updates before its next generator update, then full cycles, and ends on time."""
    path = tmp_path / "mid.ckpt"
    torch.manual_seed(0)
    first = tiny_model()
    trainer([SaveAt(path, (3, 7))]).fit(first, DataLoader(Faces(8), batch_size=2))
    state = torch.load(path, weights_only=False)
    assert state[CHECKPOINT_KEY] == {
        "generator_updates": 3,
        "critic_updates": 7,
        "stage": 2,
        "boundaries": [2, 4, 6],
    }
    assert len(state["optimizer_states"][1]["state"]) > 0  # RMSProp has seen critic steps

    torch.manual_seed(1)
    resumed = tiny_model()
    check, recorder = CheckResumed(state), StepRecorder()
    trainer([check, recorder]).fit(resumed, DataLoader(Faces(8), batch_size=2), ckpt_path=path)
    assert "".join(recorder.steps) == "CCCG" + "CCCCCG" * 2
    assert check.stages == [2] * 3 + [3] * 10
    assert (resumed.generator_updates, resumed.critic_updates) == (6, 20)


def hole_psnr(model, batch):
    model.eval()
    with torch.no_grad():
        _, _, result = model.network_parts(
            batch[IMAGE], batch[MASK], torch.Generator().manual_seed(0)
        )
    model.train()
    return hole_psnr_per_sample(to_unit(result), to_unit(batch[IMAGE]), batch[MASK]).mean()


def test_tiny_overfit_raises_hole_psnr():
    torch.manual_seed(0)
    steps = 60
    model = tiny_model(
        stage_boundaries=(steps, steps, steps),
        weights={"l1": 1.0},
        generator_lr=1e-3,
        base_channels=8,
        max_channels=32,
        latent_dim=32,
    )
    data = Faces(4)
    batch = next(iter(DataLoader(data, batch_size=4)))
    before = hole_psnr(model, batch)
    loader = DataLoader(torch.utils.data.Subset(data, [0, 1, 2, 3]), batch_size=4)
    trainer().fit(model, loader)
    after = hole_psnr(model, batch)
    assert after > before + 3.0, f"hole PSNR {before:.2f} -> {after:.2f} dB"


@pytest.mark.slow
def test_smoke_config_crosses_every_stage(tmp_path, monkeypatch):
    from pathlib import Path

    from faceinpaint.cli import cli_main

    config = Path(__file__).resolve().parents[2] / "configs/vaegan/smoke.yaml"
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(config), "--trainer.enable_progress_bar=false"])
    (last,) = tmp_path.glob("runs/vaegan-smoke/last.ckpt")
    state = torch.load(last, weights_only=False)[CHECKPOINT_KEY]
    assert state == {
        "generator_updates": 12,
        "critic_updates": 40,
        "stage": 3,
        "boundaries": [4, 8, 12],
    }
    images = sorted(p.name for p in tmp_path.glob("runs/vaegan-smoke/version_0/images/*.png"))
    assert images[:2] == ["train_images_000000.png", "train_images_000006.png"]


def test_eval_noise_of_a_sample_does_not_depend_on_its_batch() -> None:
    from faceinpaint.batch import fill_hole

    image = torch.zeros(4, 3, 8, 8)
    mask = torch.ones(4, 1, 8, 8)
    together = fill_hole(image, mask, "noise", index=torch.tensor([5, 6, 7, 8]), seed=3)
    alone = fill_hole(image[:1], mask[:1], "noise", index=torch.tensor([7]), seed=3)
    torch.testing.assert_close(together[2:3], alone)
    assert not torch.equal(together[0], together[1])
    other_seed = fill_hole(image[:1], mask[:1], "noise", index=torch.tensor([7]), seed=4)
    assert not torch.equal(other_seed, alone)


def test_curriculum_end_between_validations_writes_the_final_checkpoint(tmp_path):
    """The run stops at update 6, mid-epoch (batch 22 of 4-batch epochs); the validation at
    the end of each epoch never sees that state."""
    from faceinpaint.lit.checkpoint import ModelCheckpoint

    torch.manual_seed(0)
    model = tiny_model()
    callback = ModelCheckpoint(
        dirpath=tmp_path, monitor="val/psnr_hole", mode="max", save_last=True
    )
    loader = DataLoader(Faces(8), batch_size=2)
    run = trainer([callback], enable_checkpointing=True, limit_val_batches=1)
    run.fit(model, loader, loader)
    final = torch.load(tmp_path / "last.ckpt", weights_only=False)[CHECKPOINT_KEY]
    assert final == {
        "generator_updates": 6,
        "critic_updates": 20,
        "stage": 3,
        "boundaries": [2, 4, 6],
    }
    best = torch.load(callback.best_model_path, weights_only=False)[CHECKPOINT_KEY]
    assert best["generator_updates"] < 6


def test_checkpoints_leave_the_frozen_networks_out_and_former_ones_still_load() -> None:
    """The landmark network and VGG-19 are not training state: a checkpoint without them fits
    a module with them (stage 3 appearing on resume), and a former checkpoint with them fits a
    module without them (weights.landmark 0)."""
    from faceinpaint.lit.vaegan import FROZEN_PARTS

    with_landmarks = tiny_vaegan(weights={"landmark": 0.1}, landmark_checkpoint="random")
    former = torch.nn.Module.state_dict(with_landmarks)  # what checkpoints held before
    assert {key.split(".")[0] for key in former} >= {"landmark_loss", "vgg"}
    assert not [key for key in with_landmarks.state_dict() if key.startswith(FROZEN_PARTS)]

    without = tiny_vaegan()
    without.load_state_dict(former)  # strict
    landmark_weights = copy.deepcopy(with_landmarks.landmark_loss.state_dict())
    with_landmarks.load_state_dict(without.state_dict())  # strict
    after = with_landmarks.landmark_loss.state_dict()
    assert all(torch.equal(landmark_weights[key], after[key]) for key in landmark_weights)
    trained = {k: v for k, v in without.state_dict().items() if not k.startswith("generator.")}
    with pytest.raises(RuntimeError, match=r"missing keys \['generator\."):
        with_landmarks.load_state_dict(trained)


# ----------------------------------------------------------------------------- settings groups
FORMER_FLAT = dict(
    kl_weight=1e-4,
    feat_weight=0.5,
    local_adv_weight=2e-2,
    global_adv_weight=3e-2,
    landmark_weight=0.0,
    l1_weight=1.0,
    n_critic=3,
    clip_value=None,
    clip_mode="gradients",
    gp_weight=0.0,
    critic_noise_std=0.02,
    label_scale=10.0,
)


def test_former_flat_hparams_read_as_the_weights_and_critic_groups():
    architecture = dict(tiny_model().hparams)
    flat = {k: v for k, v in architecture.items() if k not in ("weights", "critic")} | FORMER_FLAT
    current = VAEGANModule.current_hparams(flat)
    assert not set(FORMER_FLAT) & set(current)
    assert current["weights"] == LossWeights(
        kl=1e-4, feat=0.5, local_adv=2e-2, global_adv=3e-2, landmark=0.0, l1=1.0
    )
    assert current["critic"] == CriticSettings(
        n_critic=3, clip_value=None, clip_mode="gradients", noise_std=0.02, label_scale=10.0
    )
    # the same module: same settings, same output and losses on a seeded batch
    torch.manual_seed(0)
    former = VAEGANModule(**current)
    torch.manual_seed(0)
    grouped = tiny_model(weights=vars(current["weights"]), critic=vars(current["critic"]))
    assert dict(former.hparams) == dict(grouped.hparams)
    batch = next(iter(DataLoader(Faces(2), batch_size=2)))
    for model in (former, grouped):
        model.eval()
    index = batch[INDEX]
    assert torch.equal(
        former.inpaint(batch[IMAGE], batch[MASK], index),
        grouped.inpaint(batch[IMAGE], batch[MASK], index),
    )


def test_groups_read_from_mappings_and_dotted_names():
    """JSON metadata holds a group as a mapping; one field can be given by its dotted name."""
    current = VAEGANModule.current_hparams(
        {"weights": {"kl": 0.5}, "critic": {"n_critic": 2}, "weights.l1": 1.0}
    )
    assert current == {
        "weights": LossWeights(kl=0.5, l1=1.0),
        "critic": CriticSettings(n_critic=2),
    }
    assert VAEGANModule.current_hparams({"image_size": 32}) == {"image_size": 32}


def test_settings_groups_load_from_a_checkpoint_without_code(tmp_path):
    torch.save({"weights": LossWeights(kl=0.5), "critic": CriticSettings()}, tmp_path / "g.ckpt")
    loaded = torch.load(tmp_path / "g.ckpt", weights_only=True)
    assert loaded == {"weights": LossWeights(kl=0.5), "critic": CriticSettings()}
