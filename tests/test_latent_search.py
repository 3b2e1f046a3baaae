"""The batched latent search on a tiny DCGAN: z stays in the box, the loss falls, batching
changes nothing, no ground truth leaks, the best candidate is the minimum, the landmark hook."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from faceinpaint.latent_search import LatentSearch, SearchSettings, initial_latents, select_best
from faceinpaint.models.dcgan import Discriminator, Generator

SIZE = 8
LATENT = 8


@pytest.fixture(scope="module")
def nets() -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    generator, discriminator = Generator(LATENT, ngf=4, image_size=SIZE), Discriminator(4, SIZE)
    # Non-trivial running statistics, as after training.
    with torch.no_grad():
        generator(torch.rand(32, LATENT) * 2 - 1)
        discriminator(torch.rand(32, 3, SIZE, SIZE) * 2 - 1)
    return generator.eval(), discriminator.eval()


def _batch(generator: Generator, n: int = 3) -> tuple[Tensor, Tensor, Tensor]:
    with torch.no_grad():
        image = generator(torch.rand(n, LATENT, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    mask = torch.zeros(n, 1, SIZE, SIZE)
    mask[..., 2:6, 2:6] = 1.0
    return image, mask, torch.arange(10, 10 + n)


def _search(nets, landmark_term=None, return_all=False, record_history=False, **fields):
    """A search of 4 candidates x 20 steps at lr 0.05; ``fields`` replace SearchSettings'."""
    settings = SearchSettings(**({"candidates": 4, "iterations": 20, "lr": 0.05} | fields))
    return LatentSearch(
        *nets,
        settings=settings,
        landmark_term=landmark_term,
        return_all=return_all,
        record_history=record_history,
    )


def test_latents_stay_in_the_box_under_large_steps(nets):
    image, mask, index = _batch(nets[0])
    result = _search(nets, lr=2.0, iterations=5, return_all=True)(image, mask, index)
    assert result.all_latent.abs().max() <= 1.0
    assert (result.all_latent.abs() == 1.0).any(), "lr 2 should have pushed some z onto the clip"


def test_total_loss_falls(nets):
    image, mask, index = _batch(nets[0])
    result = _search(nets, iterations=60, record_history=True)(image, mask, index)
    start, end = result.history[0], result.candidate_loss  # (B, N) each
    assert (end < start).all(), f"loss rose for some candidates: {start} -> {end}"
    assert end.mean() < 0.5 * start.mean()


def test_an_image_alone_matches_the_same_image_inside_a_batch(nets):
    image, mask, index = _batch(nets[0], n=3)
    mask[2, :, :, :4] = 1.0  # neighbours with a different mask
    search = _search(nets, iterations=15)
    together = search(image, mask, index)
    alone = search(image[1:2], mask[1:2], index[1:2])
    assert together.best[1] == alone.best[0]
    torch.testing.assert_close(
        together.candidate_loss[1:2], alone.candidate_loss, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(together.inpainted[1:2], alone.inpainted, atol=1e-5, rtol=1e-5)


def test_initial_latents_depend_on_seed_and_index_only():
    both = initial_latents(torch.tensor([5, 7]), 3, LATENT, "uniform", seed=2)
    alone = initial_latents(torch.tensor([7]), 3, LATENT, "uniform", seed=2)
    torch.testing.assert_close(both[1], alone[0], rtol=0, atol=0)
    assert not torch.equal(both[0], both[1])
    assert not torch.equal(alone, initial_latents(torch.tensor([7]), 3, LATENT, "uniform", seed=3))
    normal = initial_latents(torch.arange(4), 16, LATENT, "normal")
    assert normal.abs().max() <= 1.0 and (normal.abs() == 1.0).any()


@pytest.mark.parametrize("poisson_iterations", [0, 64])
def test_hole_pixels_of_the_input_change_nothing(nets, poisson_iterations):
    image, mask, index = _batch(nets[0])
    tampered = torch.where(mask.bool(), torch.rand_like(image) * 2 - 1, image)
    tampered[0, 0, 3, 3] = float("nan")
    search = _search(nets, iterations=4, poisson_iterations=poisson_iterations)
    clean, dirty = search(image, mask, index), search(tampered, mask, index)
    assert torch.equal(clean.inpainted, dirty.inpainted)
    assert torch.equal(clean.candidate_loss, dirty.candidate_loss)
    known = mask == 0
    assert torch.equal(clean.inpainted.masked_select(known), image.masked_select(known))


def test_projection_reads_every_pixel_and_fits_the_whole_image(nets):
    import copy

    generator = copy.deepcopy(nets[0])
    with torch.no_grad():  # outputs that depend on z visibly, as after training
        for weight in generator.parameters():
            if weight.ndim == 4:
                weight.mul_(10)
    nets = (generator, nets[1])
    image, mask, index = _batch(generator)
    search = _search(nets, iterations=60, prior_weight=0.0)
    projected = search.project(image, index)
    # loss: L1 over every pixel and channel (weights all 1), no landmark term
    full = (projected.generated - image).abs().sum((1, 2, 3))
    torch.testing.assert_close(projected.loss, full, rtol=1e-5, atol=1e-5)
    start = nets[0](initial_latents(index, 4, LATENT, "uniform", 0).flatten(0, 1))
    start_loss = (start.view(3, 4, 3, SIZE, SIZE) - image[:, None]).abs().sum((2, 3, 4))
    assert (projected.loss < start_loss.min(dim=1).values).all()
    hole = mask.bool().expand_as(image)
    # unlike the search, it reads the hole
    tampered = torch.where(hole, -image, image)
    assert not torch.equal(search.project(tampered, index).generated, projected.generated)


def test_best_candidate_is_the_minimum_of_the_final_losses(nets):
    image, mask, index = _batch(nets[0])
    result = _search(nets, iterations=3, return_all=True)(image, mask, index)
    torch.testing.assert_close(result.loss, result.candidate_loss.min(dim=1).values, rtol=0, atol=0)
    rows = torch.arange(image.shape[0])
    assert torch.equal(result.generated, result.all_generated[rows, result.best])
    with torch.no_grad():
        regenerated = nets[0](result.latent)
    torch.testing.assert_close(result.generated, regenerated)
    torch.testing.assert_close(result.loss, sum(result.parts.values()))
    ties = torch.tensor([[3.0, 1.0, 1.0, 2.0], [0.5, 4.0, -1.0, -1.0]])
    assert select_best(ties).tolist() == [1, 2]


def test_networks_come_back_in_their_modes_with_their_grad_flags(nets):
    generator, discriminator = nets
    generator.train()
    image, mask, index = _batch(generator)
    generator.eval()
    running_mean = generator.net[1].running_mean.clone()
    generator.train()
    _search(nets, iterations=2)(image, mask, index)
    assert generator.training and not discriminator.training
    assert all(p.requires_grad for p in generator.parameters())
    assert torch.equal(generator.net[1].running_mean, running_mean), "BN statistics moved"
    assert all(p.grad is None for p in generator.parameters())
    generator.eval()


def test_refuses_to_run_under_inference_mode(nets):
    image, mask, index = _batch(nets[0])
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode: false"):
        _search(nets)(image, mask, index)


class _CountingTerm(nn.Module):
    """A landmark term scoring the mean brightness of candidates, counting its calls."""

    def __init__(self, differentiable: bool) -> None:
        super().__init__()
        self.differentiable = differentiable
        self.calls = 0
        self.target_calls = 0

    def targets(self, damaged: Tensor, mask: Tensor) -> Tensor:
        self.target_calls += 1
        return torch.zeros(damaged.shape[0], 68, 2)

    def forward(self, generated: Tensor, targets: Tensor) -> Tensor:
        self.calls += 1
        return generated.mean(dim=(2, 3, 4))  # (B, N)


def test_landmark_weight_zero_never_computes_the_term(nets):
    image, mask, index = _batch(nets[0])
    term = _CountingTerm(differentiable=True)
    result = _search(nets, iterations=3, landmark_weight=0.0, landmark_term=term)(
        image, mask, index
    )
    assert term.calls == 0 and term.target_calls == 0 and "landmark" not in result.parts


def test_differentiable_term_runs_every_step_and_steers_the_search(nets):
    image, mask, index = _batch(nets[0])
    term = _CountingTerm(differentiable=True)
    with_term = _search(nets, iterations=5, landmark_weight=50.0, landmark_term=term)
    result = with_term(image, mask, index)
    assert term.calls == 6 and term.target_calls == 1  # 5 steps + the final evaluation
    plain = _search(nets, iterations=5)(image, mask, index)
    assert result.generated.mean() < plain.generated.mean()


def test_non_differentiable_term_only_scores_the_final_candidates(nets):
    image, mask, index = _batch(nets[0])
    term = _CountingTerm(differentiable=False)
    result = _search(nets, iterations=5, landmark_weight=1e4, landmark_term=term, return_all=True)(
        image, mask, index
    )
    assert term.calls == 1
    brightness = result.all_generated.mean(dim=(2, 3, 4))  # (B, N)
    assert torch.equal(result.best, brightness.argmin(dim=1)), "a huge landmark weight decides"
    plain = _search(nets, iterations=5, return_all=True)(image, mask, index)
    torch.testing.assert_close(plain.all_latent, result.all_latent, rtol=0, atol=0)


# ----------------------------------------------------------------------------- held-out selection
def test_holdout_split_partitions_the_context_weights_per_image(nets):
    from faceinpaint.losses.latent_search import context_weights, holdout_split

    _, mask, index = _batch(nets[0], n=3)
    weights = context_weights(mask, 3)
    fit, held = holdout_split(weights, 0.25, index, seed=0)
    assert torch.equal(fit + held, weights)
    assert ((fit > 0) & (held > 0)).sum() == 0, "a pixel is either fitted or held out"
    share = (held > 0).sum() / (weights > 0).sum()
    assert 0.1 < share < 0.45
    # image 11 holds out the same pixels alone and in its batch; another seed, other pixels
    alone = holdout_split(weights[1:2], 0.25, index[1:2], seed=0)[1]
    assert torch.equal(alone, held[1:2])
    assert not torch.equal(holdout_split(weights, 0.25, index, seed=1)[1], held)
    with pytest.raises(ValueError, match=r"holdout share must be in \(0, 1\), got 1.0"):
        holdout_split(weights, 1.0, index)


def test_holdout_keeps_the_iterate_with_the_smallest_held_out_error(nets):
    from faceinpaint.losses.latent_search import (
        context_weights,
        holdout_split,
        weighted_context_loss,
    )

    image, mask, index = _batch(nets[0])
    generator = nets[0]
    damaged = image * (1 - mask)
    _, held = holdout_split(context_weights(mask, 7), 0.3, index, seed=0)
    kept = []
    for iterations in (0, 3, 10, 30):
        result = _search(nets, holdout=0.3, iterations=iterations, return_all=True)(
            image, mask, index
        )
        # the kept iterates' held-out errors, recomputed from their z
        with torch.no_grad():
            generated = generator(result.all_latent.flatten(0, 1)).view(3, 4, 3, SIZE, SIZE)
        error = weighted_context_loss(generated, damaged[:, None], held[:, None])
        torch.testing.assert_close(result.holdout_error, error)
        assert torch.equal(result.best, result.holdout_error.argmin(dim=1))
        assert (result.kept_iteration <= iterations).all()
        kept.append(result.holdout_error)
    start_only = _search(nets, holdout=0.3, iterations=0)(image, mask, index)
    assert torch.equal(start_only.kept_iteration, torch.zeros(3, 4, dtype=torch.int64))
    # a longer search can only find a better iterate: the kept error never rises
    for shorter, longer in zip(kept, kept[1:], strict=False):
        assert (longer <= shorter + 1e-6).all()
    assert (kept[-1] < kept[0]).any(), "30 iterations should beat the start somewhere"


@pytest.mark.parametrize(
    "rule", [{"holdout": 0.25}, {"discrepancy": 0.7}, {"discrepancy_curve": ((0.1, 0.6), (1, 1))}]
)
def test_a_stopping_rule_never_reads_the_hole(nets, rule):
    image, mask, index = _batch(nets[0])
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    search = _search(nets, iterations=8, **rule)
    torch.testing.assert_close(
        search(image, mask, index).generated, search(other, mask, index).generated
    )


def test_holdout_off_is_the_papers_rule(nets):
    image, mask, index = _batch(nets[0])
    result = _search(nets, iterations=8)(image, mask, index)
    assert result.holdout_error is None and result.kept_iteration is None
    assert torch.equal(result.best, select_best(result.candidate_loss))
    with pytest.raises(ValueError, match=r"holdout must be in \[0, 1\), got -0.1"):
        _search(nets, holdout=-0.1)


def test_discrepancy_stop_keeps_each_candidates_first_iterate_within_r_k_over_rho():
    from faceinpaint.latent_search import DiscrepancyStop

    def context(first: float, second: float) -> dict[str, torch.Tensor]:
        """The objective's parts for one face's two candidates (only the context is read)."""
        return {"context": torch.tensor([[first, second]]), "prior": torch.full((1, 2), 1e9)}

    unread = torch.full((1, 2, 3, 2, 2), float("nan"))  # G(z): the stop reads the parts
    # context error of candidate 0: 10, 6, 4, 3 (r_K / 0.5 = 6: iterate 1); candidate 1: flat
    errors = [(10.0, 5.0), (6.0, 5.0), (4.0, 5.0), (3.0, 5.0)]
    stop = DiscrepancyStop(torch.zeros(2, 1), ratio=torch.tensor([0.5]))
    for t, (first, second) in enumerate(errors):
        stop.update(torch.tensor([[10.0 + t], [20.0 + t]]), unread, context(first, second), t)
    assert stop.latent.flatten().tolist() == [11.0, 20.0]
    assert stop.iteration.tolist() == [[1, 0]]
    # the rule at a shorter budget: iterates 0-1 recorded, iterate 2 (error 4) as the last
    short = DiscrepancyStop(torch.zeros(2, 1), ratio=torch.tensor([0.5]))
    for t, (first, second) in enumerate(errors[:2]):
        short.update(torch.tensor([[10.0 + t], [20.0 + t]]), unread, context(first, second), t)
    kept = short.kept(torch.tensor([[12.0], [22.0]]), context(4.0, 5.0))
    assert kept.flatten().tolist() == [11.0, 20.0]
    with pytest.raises(ValueError, match="recorded after 2 iterates"):
        short.update(torch.zeros(2, 1), unread, context(4.0, 5.0), 5)
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\], got \[1.5\]"):
        DiscrepancyStop(torch.zeros(2, 1), ratio=torch.tensor([1.5]))
    with pytest.raises(ValueError, match=r"must be \(B,\) for 3 latent rows, got \(2,\)"):
        DiscrepancyStop(torch.zeros(3, 1), ratio=torch.tensor([0.5, 0.5]))


def test_discrepancy_stop_keeps_the_iterate_a_shorter_plain_search_ends_at(nets):
    image, mask, index = _batch(nets[0], n=2)
    result = _search(nets, discrepancy=0.6, iterations=30, candidates=1)(image, mask, index)
    kept = result.kept_iteration[:, 0]
    assert ((kept >= 0) & (kept <= 30)).all()
    assert (kept < 30).any(), f"rho 0.6 should stop some search early, kept {kept.tolist()}"
    for face, iterations in enumerate(kept.tolist()):  # candidates and faces are independent
        plain = _search(nets, iterations=iterations, candidates=1)(image, mask, index)
        torch.testing.assert_close(result.latent[face], plain.latent[face])


def test_a_discrepancy_out_of_range_or_beside_holdout_is_refused(nets):
    with pytest.raises(ValueError, match=r"discrepancy must be 0 \(off\) or in \(0, 1\]"):
        _search(nets, discrepancy=1.2)
    with pytest.raises(ValueError, match="two stopping rules"):
        _search(nets, discrepancy=0.5, holdout=0.25)


def test_context_coverage_counts_the_known_pixels_that_weigh_in_the_context_loss():
    from faceinpaint.losses.latent_search import context_coverage, context_weights

    mask = torch.zeros(3, 1, 64, 64)
    mask[0, :, 16:48, 16:48] = 1.0  # the thesis's centre: a 3-pixel ring of a 7 x 7 window
    mask[1, :, :, :32] = 1.0  # left half: 3 columns of the 32 known
    mask[2, :, ::2, :] = 1.0  # every other row: every known pixel borders the hole
    coverage = context_coverage(context_weights(mask, 7), mask)
    expected = [(38 * 38 - 32 * 32) / (64 * 64 - 32 * 32), 3 / 32, 1.0]
    torch.testing.assert_close(coverage, torch.tensor(expected))


def test_discrepancy_curve_interpolates_rho_at_each_faces_coverage():
    curve = ((0.1, 0.6), (0.2, 0.7), (1.0, 0.98))
    settings = SearchSettings(discrepancy_curve=[list(p) for p in curve])  # lists, as from YAML
    assert settings.discrepancy_curve == curve and settings.stops_by_discrepancy

    from faceinpaint.latent_search import rho_at

    coverage = torch.tensor([0.05, 0.1, 0.15, 0.6, 1.0])
    torch.testing.assert_close(rho_at(curve, coverage), torch.tensor([0.6, 0.6, 0.65, 0.84, 0.98]))
    torch.testing.assert_close(rho_at(((0.3, 0.8),), coverage), torch.full((5,), 0.8))
    constant = SearchSettings(discrepancy=0.7).discrepancy_ratio(
        torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    )
    torch.testing.assert_close(constant, torch.tensor([0.7, 0.7]))
    with pytest.raises(ValueError, match="not both"):
        SearchSettings(discrepancy=0.7, discrepancy_curve=curve)
    with pytest.raises(ValueError, match="increasing"):
        SearchSettings(discrepancy_curve=((0.2, 0.7), (0.1, 0.6)))
    with pytest.raises(ValueError, match=r"rho in \(0, 1\]"):
        SearchSettings(discrepancy_curve=((0.1, 1.3),))


def test_a_discrepancy_curve_gives_each_face_its_own_rho(nets):
    """Two faces, one mask each: the curve's search keeps, per face, what a constant-rho search
    at that face's rho keeps."""
    from faceinpaint.losses.latent_search import context_coverage, context_weights

    image, _, index = _batch(nets[0], n=2)
    mask = torch.zeros(2, 1, SIZE, SIZE)
    mask[0, :, 2:6, 2:6] = 1.0
    mask[1, :, :, :4] = 1.0
    coverage = context_coverage(context_weights(mask, 7), mask).tolist()
    assert coverage[0] != coverage[1]
    low, high = sorted(coverage)
    curve = ((low, 0.5), (high, 0.9))
    by_curve = _search(nets, discrepancy_curve=curve, iterations=30)(image, mask, index)
    for face, rho in enumerate(0.5 if c == low else 0.9 for c in coverage):
        alone = _search(nets, discrepancy=rho, iterations=30)(image, mask, index)
        torch.testing.assert_close(by_curve.latent[face], alone.latent[face])
        assert torch.equal(by_curve.kept_iteration[face], alone.kept_iteration[face])


def test_projection_starts_where_told_and_keeps_its_last_iterate(nets):
    image, _, index = _batch(nets[0], n=2)
    start = torch.zeros(2, 4, LATENT)
    at_start = _search(nets, iterations=0, discrepancy=0.5).project(image, index, start)
    assert torch.equal(at_start.latent, torch.zeros(2, LATENT))
    ruled = _search(nets, iterations=10, discrepancy=0.5).project(image, index, start)
    plain = _search(nets, iterations=10).project(image, index, start)
    torch.testing.assert_close(ruled.latent, plain.latent)


# ----------------------------------------------------------------------------- the objective, as specified
def _context_weights_by_hand(mask: Tensor, window: int) -> Tensor:
    """Yeh et al.'s W, pixel by pixel: a known pixel weighs the share of hole pixels among the
    ``window`` x ``window`` positions centred on it (outside the image counts as known)."""
    b, _, h, w = mask.shape
    r = window // 2
    weights = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                if mask[n, 0, y, x] == 0:
                    box = mask[n, 0, max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
                    weights[n, 0, y, x] = box.double().sum() / window**2
    return weights


@pytest.mark.parametrize("window", [3, 5])
def test_total_loss_is_the_weighted_context_plus_the_prior_term(nets, window):
    """The search's final per-candidate loss, recomputed from its z without the project's loss
    functions: ``sum |W * (G(z) - y)| + 0.003 * log(1 - D(G(z)))`` with W from the configured
    window."""
    generator, discriminator = nets
    image, mask, index = _batch(generator)
    mask[0, :, :, :3] = 1.0  # a hole on the border too
    result = _search(nets, iterations=6, context_window=window, return_all=True)(image, mask, index)
    with torch.no_grad():
        generated = generator(result.all_latent.flatten(0, 1))  # (B*N, 3, H, W)
        logits = discriminator(generated).double().view(3, 4)
    generated = generated.double().view(3, 4, 3, SIZE, SIZE)
    known = (image * (1 - mask)).double()[:, None]
    weights = _context_weights_by_hand(mask, window)[:, None]
    context = (weights * (generated - known)).abs().sum((-3, -2, -1))
    prior = 0.003 * torch.log(1.0 - torch.sigmoid(logits))
    torch.testing.assert_close(
        result.candidate_loss.double(), context + prior, rtol=1e-5, atol=1e-6
    )


def test_a_prior_only_search_makes_the_generated_faces_look_more_real_to_d(nets):
    """With no hole, W is zero and the prior term alone drives z: D's logits must rise."""
    generator, discriminator = nets
    image, _, index = _batch(generator)
    no_hole = torch.zeros(3, 1, SIZE, SIZE)
    start = _search(nets, iterations=0, prior_weight=1.0, return_all=True)(image, no_hole, index)
    end = _search(nets, iterations=40, prior_weight=1.0, return_all=True)(image, no_hole, index)
    with torch.no_grad():
        before = discriminator(generator(start.all_latent.flatten(0, 1)))
        after = discriminator(generator(end.all_latent.flatten(0, 1)))
    # the tiny untrained D's logits are small; every candidate's must still rise
    assert (after > before).all(), (before, after)


# ----------------------------------------------------------------------------- settings
def test_search_settings_are_frozen_and_read_lists_as_tuples():
    settings = SearchSettings(betas=[0.5, 0.9])
    assert settings.betas == (0.5, 0.9)
    with pytest.raises(AttributeError):
        settings.candidates = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="need candidates >= 1 and iterations >= 0, got 0 and 5"):
        SearchSettings(candidates=0, iterations=5)
    with pytest.raises(ValueError, match="poisson_iterations must be >= 0, got -1"):
        SearchSettings(poisson_iterations=-1)


def test_search_settings_load_from_a_checkpoint_without_code(tmp_path):
    settings = SearchSettings(
        candidates=3, betas=(0.5, 0.9), discrepancy_curve=((0.1, 0.6), (1, 1))
    )
    torch.save({"hyper_parameters": {"search": settings}}, tmp_path / "x.ckpt")
    loaded = torch.load(tmp_path / "x.ckpt", weights_only=True)
    assert loaded["hyper_parameters"]["search"] == settings


def test_a_landmark_weight_needs_a_landmark_term(nets):
    with pytest.raises(ValueError, match="landmark_weight is 1.0 but no landmark_term was given"):
        _search(nets, landmark_weight=1.0)


def test_bf16_runs_the_networks_in_bf16_and_keeps_z_adam_and_losses_in_fp32(nets):
    image, mask, index = _batch(nets[0])
    seen = []
    hook = nets[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        bf16 = _search(nets, iterations=30, precision="bf16", record_history=True)(
            image, mask, index
        )
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    fp32 = _search(nets, iterations=30, record_history=True)(image, mask, index)
    for result in (bf16, fp32):
        assert result.latent.dtype == result.candidate_loss.dtype == torch.float32
        assert result.inpainted.dtype == result.generated.dtype == torch.float32
    # the same search in other arithmetic: the loss falls as much, and the results are close
    assert bf16.candidate_loss.mean() < 0.6 * bf16.history[0].mean()
    assert torch.allclose(bf16.candidate_loss.mean(), fp32.candidate_loss.mean(), rtol=0.1)
    assert (bf16.inpainted - fp32.inpainted).abs().mean() < 0.05


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_runs_bf16_where_the_device_has_it(monkeypatch, native):
    monkeypatch.setattr("faceinpaint.latent_search.native_bf16", lambda device: native)
    cpu = torch.device("cpu")
    assert SearchSettings(precision="auto").runs_bf16(cpu) is native
    assert SearchSettings(precision="bf16").runs_bf16(cpu)
    assert not SearchSettings().runs_bf16(cpu)


def test_fp32_is_the_default_and_an_unknown_precision_is_refused(nets):
    assert SearchSettings().precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto, got 'fp16'"):
        SearchSettings(precision="fp16")


def test_bf16_runs_the_landmark_network_in_bf16_and_keeps_its_points_fp32():
    from faceinpaint.landmarks.network import LandmarkNet
    from faceinpaint.losses.landmark import NetworkLandmarkTerm

    torch.manual_seed(0)
    size = 32  # the landmark network halves the input five times
    nets = Generator(LATENT, ngf=4, image_size=size), Discriminator(4, size)
    net = LandmarkNet(widths=(4, 4, 4, 4, 4), heatmap_stride=4)
    seen = []
    net.head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    term = NetworkLandmarkTerm(net)
    image, mask, index = _batch(nets[0], n=2)
    image = torch.nn.functional.interpolate(image, size=size)
    mask = torch.zeros(2, 1, size, size)
    mask[..., 8:24, 8:24] = 1
    search = _search(nets, landmark_term=term, landmark_weight=1.0, precision="bf16")
    result = search(image, mask, index)
    assert torch.bfloat16 in seen  # the candidates' landmarks, under the search's autocast
    assert result.candidate_loss.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, points = net(image)
    assert logits.dtype == points.dtype == torch.float32
