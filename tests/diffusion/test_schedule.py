import math

import pytest
import torch

from shd.diffusion.config import ScheduleConfig
from shd.diffusion.schedule import Schedule

T = 500


def closed_form_abar() -> torch.Tensor:
    betas = torch.linspace(1e-4, 2e-2, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def test_alpha_bar_matches_the_closed_form():
    sched = Schedule(ScheduleConfig())
    assert torch.allclose(sched.alphas_cumprod.double(), closed_form_abar(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t", [0, 50, 250, 499])
def test_q_xt_given_x0_has_the_closed_form_mean_and_variance(t):
    sched = Schedule(ScheduleConfig())
    abar = float(closed_form_abar()[t])
    x0 = torch.linspace(-2.0, 2.0, 8).repeat(100_000, 1)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
    xt = sched.add_noise(x0, noise, torch.full((len(x0),), t))
    # the draw is exactly sqrt(abar) x0 + sqrt(1 - abar) eps ...
    assert torch.allclose(xt, math.sqrt(abar) * x0 + math.sqrt(1 - abar) * noise, atol=1e-5)
    # ... so its moments are the closed form's (empirically, 100k draws: ~3 standard errors)
    se = math.sqrt((1 - abar) / len(x0))
    assert torch.allclose(xt.mean(0), math.sqrt(abar) * x0[0], atol=4 * se + 1e-6)
    assert torch.allclose(xt.var(0), torch.full((8,), 1 - abar), rtol=0.02, atol=1e-6)


def test_targets_of_each_prediction_type():
    x0, noise = torch.randn(6, 5), torch.randn(6, 5)
    t = torch.tensor([0, 1, 10, 100, 300, 499])
    abar = closed_form_abar()[t].float().unsqueeze(1)
    v = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    for pred, want in (("x0", x0), ("eps", noise), ("v", v)):
        got = Schedule(ScheduleConfig(prediction=pred)).target(x0, noise, t)
        assert torch.allclose(got, want, atol=1e-5), pred


def _oracle(sched: Schedule, x0: torch.Tensor):
    """A perfect denoiser for one known x0, in the schedule's own target."""

    def fn(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = sched.alphas_cumprod[t].unsqueeze(1)
        eps = (xt - abar.sqrt() * x0) / (1 - abar).sqrt()
        return sched.target(x0, eps, t)

    return fn


@pytest.mark.parametrize("prediction", ["x0", "eps", "v"])
@pytest.mark.parametrize("steps", [1, 10, 50, 500])
def test_ddim_with_a_perfect_denoiser_recovers_x0_for_any_step_count(prediction, steps):
    sched = Schedule(ScheduleConfig(prediction=prediction))
    x0 = torch.randn(3, 7, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(1))
    out = sched.denoise(_oracle(sched, x0), x, steps=steps)
    assert torch.allclose(out, x0, atol=1e-3)


def test_trailing_timesteps_and_sdedit_start_below_s_times_T():
    sched = Schedule(ScheduleConfig())
    assert sched.timesteps(10) == [499, 449, 399, 349, 299, 249, 199, 149, 99, 49]
    tail = sched.timesteps(50, strength=0.2)
    assert tail[0] == 99 and len(tail) == 10 and all(t < 0.2 * T for t in tail)
    x0 = torch.randn(2, 4)
    seen = []

    def fn(xt, t):
        seen.append(int(t[0]))
        return _oracle(sched, x0)(xt, t)

    out = sched.sdedit(fn, x0, strength=0.2, steps=50, generator=torch.Generator().manual_seed(0))
    assert seen == tail and torch.allclose(out, x0, atol=1e-3)


def test_inpainting_callback_holds_the_known_part():
    sched = Schedule(ScheduleConfig())
    known, other = torch.randn(2, 6), torch.randn(2, 6)
    mask = torch.tensor([True, True, False, False, True, False])
    gen = torch.Generator().manual_seed(0)
    out = sched.denoise(
        _oracle(sched, other), torch.randn(2, 6), steps=20, callback=sched.keep_known(known, mask, gen)
    )
    assert torch.equal(out[:, mask], known[:, mask])
    assert torch.allclose(out[:, ~mask], other[:, ~mask], atol=1e-2)


def test_ddpm_chain_runs_all_training_steps():
    sched = Schedule(ScheduleConfig())
    assert len(sched.timesteps(T, "ddpm")) == T
    x0 = torch.randn(2, 3)
    out = sched.denoise(
        _oracle(sched, x0),
        torch.randn(2, 3),
        steps=T,
        method="ddpm",
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.allclose(out, x0, atol=1e-2)


def test_renoise_composes_with_the_forward_marginal():
    sched = Schedule(ScheduleConfig())
    x0 = torch.linspace(-1.0, 1.0, 4).repeat(100_000, 1)
    gen = torch.Generator().manual_seed(3)
    xs = sched.add_noise(x0, torch.randn(x0.shape, generator=gen), torch.full((len(x0),), 99))
    xt = sched.renoise(xs, 99, 149, gen)
    # q(x_149 | x_99) after q(x_99 | x_0) is q(x_149 | x_0): mean sqrt(abar) x0, variance 1 - abar
    abar = float(closed_form_abar()[149])
    se = math.sqrt((1 - abar) / len(x0))
    assert torch.allclose(xt.mean(0), math.sqrt(abar) * x0[0], atol=4 * se + 1e-5)
    assert torch.allclose(xt.var(0), torch.full((4,), 1 - abar), rtol=0.02)


def test_resampling_repeats_every_step_but_the_last_and_keeps_the_known_part():
    sched = Schedule(ScheduleConfig())
    known, other = torch.randn(2, 6), torch.randn(2, 6)
    mask = torch.tensor([True, False, True, False, False, True])
    seen = []

    def fn(xt, t):
        seen.append(int(t[0]))
        return _oracle(sched, other)(xt, t)

    gen = torch.Generator().manual_seed(0)
    out = sched.denoise(
        fn, torch.randn(2, 6), steps=5, callback=sched.keep_known(known, mask, gen), resample=3
    )
    assert seen == [t for t in sched.timesteps(5) for _ in range(3 if t >= 100 else 1)]
    assert torch.equal(out[:, mask], known[:, mask])
    assert torch.allclose(out[:, ~mask], other[:, ~mask], atol=1e-2)
    with pytest.raises(ValueError, match="resample"):
        sched.denoise(fn, torch.randn(2, 6), steps=5, resample=0)
