"""Our small API over diffusers' DDPM/DDIM schedulers: noising, targets, and sampling loops.

diffusers keeps the numerics (betas, alpha-bar, the DDPM posterior, the DDIM update); this wrapper
adds what the project needs on top: any number of DDIM steps, SDEdit-style partial noising to
t = s*T and denoising from there, and a per-step callback that may overwrite part of the sample
(RePaint-style inpainting: keep chosen tokens equal to forward-noised originals). Timesteps are
"trailing" spaced, so a full chain starts at t = T-1 (pure noise) whatever the step count.
RePaint's resampling (`resample` R > 1) repeats each step R times, noising the sample back up by one
step in between, so the generated and the kept scalars have several passes to agree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

from shd.diffusion.config import ScheduleConfig

METHODS = ("ddim", "ddpm")
_PREDICTION_TYPE = {"x0": "sample", "eps": "epsilon", "v": "v_prediction"}

# model_fn(x_t (B, D), t (B,) int64) -> the schedule's prediction target (B, D)
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# callback(step index, timestep the sample is now at (-1: clean), sample) -> sample
StepCallback = Callable[[int, int, torch.Tensor], torch.Tensor]


class Schedule:
    def __init__(self, cfg: ScheduleConfig):
        self.cfg = cfg
        self._train = self._scheduler("ddpm")
        self.alphas_cumprod = self._train.alphas_cumprod.clone()

    def to(self, device: torch.device | str) -> Schedule:
        """Keep the training scheduler's alpha-bar table on `device`: diffusers' add_noise moves it there
        on each call otherwise (in a compiled loss, a host-to-device copy that syncs every step)."""
        self._train.alphas_cumprod = self._train.alphas_cumprod.to(device)
        return self

    @property
    def T(self) -> int:  # noqa: N802 (the usual symbol)
        return self.cfg.timesteps

    def _scheduler(self, method: str) -> DDPMScheduler | DDIMScheduler:
        common = dict(
            num_train_timesteps=self.cfg.timesteps,
            beta_start=self.cfg.beta_start,
            beta_end=self.cfg.beta_end,
            beta_schedule=self.cfg.beta_schedule,
            prediction_type=_PREDICTION_TYPE[self.cfg.prediction],
            clip_sample=False,
            timestep_spacing="trailing",
        )
        if method == "ddpm":
            return DDPMScheduler(variance_type="fixed_small", **common)
        if method == "ddim":
            return DDIMScheduler(set_alpha_to_one=True, **common)
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def sample_t(
        self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Training timesteps, uniform over [0, T) (drawn on the device unless a CPU generator is given)."""
        if generator is None:
            return torch.randint(0, self.T, (n,), device=device)
        return torch.randint(0, self.T, (n,), generator=generator).to(device)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A draw of q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I) for the given noise."""
        return self._train.add_noise(x0, noise, t)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the net is trained to predict: x0, eps, or v = sqrt(abar) eps - sqrt(1 - abar) x0."""
        if self.cfg.prediction == "x0":
            return x0
        if self.cfg.prediction == "eps":
            return noise
        return self._train.get_velocity(x0, noise, t)

    def timesteps(self, steps: int, method: str = "ddim", strength: float = 1.0) -> list[int]:
        """The chain's timesteps: `steps` for a full chain from T-1, only those below strength*T kept."""
        sched = self._scheduler(method)
        sched.set_timesteps(steps)
        return [int(t) for t in sched.timesteps if t < strength * self.T]

    @torch.no_grad()
    def denoise(
        self,
        model_fn: ModelFn,
        x: torch.Tensor,
        steps: int = 50,
        method: str = "ddim",
        strength: float = 1.0,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
        resample: int = 1,
    ) -> torch.Tensor:
        """Run the reverse chain on x (at the chain's first timestep) down to a clean sample.

        `steps` counts the steps of a full chain (T-1 -> 0); `strength` < 1 runs only its tail below
        strength*T (SDEdit), so `x` must then already be noised to `timesteps(...)[0]`. `resample` R
        (RePaint): every step but the last is taken R times, the result (after the callback) noised
        back to the step's timestep in between; R = 1 is the plain chain.
        """
        if resample < 1:
            raise ValueError(f"resample must be >= 1, got {resample}")
        sched = self._scheduler(method)
        sched.set_timesteps(steps)
        ts = [t for t in sched.timesteps.tolist() if t < strength * self.T]
        if not ts:
            raise ValueError(
                f"strength {strength} with {steps} steps leaves no timestep below {strength * self.T}"
            )
        extra = {"eta": eta} if method == "ddim" else {}
        for i, t in enumerate(ts):
            t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.int64)
            prev = _previous(sched, method, t, steps, self.T)
            for r in range(resample if prev >= 0 else 1):
                if r:
                    x = self.renoise(x, prev, t, generator)
                out = model_fn(x, t_batch).float()
                x = sched.step(out, t, x, generator=generator, **extra).prev_sample
                if callback is not None:
                    x = callback(i, prev, x)
        return x

    def renoise(
        self, x: torch.Tensor, t_from: int, t_to: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A draw of q(x_{t_to} | x_{t_from}) for t_from < t_to: the forward chain over those steps."""
        ratio = float(self.alphas_cumprod[t_to] / self.alphas_cumprod[t_from])
        return ratio**0.5 * x + (1.0 - ratio) ** 0.5 * self.noise_like(x, generator)

    def noise_like(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Gaussian noise from the generator, drawn on the generator's device (x's without one)."""
        device = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, device=device).to(x.device, x.dtype)

    def sdedit(
        self,
        model_fn: ModelFn,
        x0: torch.Tensor,
        strength: float,
        steps: int = 50,
        method: str = "ddim",
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
        resample: int = 1,
    ) -> torch.Tensor:
        """Noise clean x0 to t ~ strength*T, then denoise back (harmonizes edited weights)."""
        start = self.timesteps(steps, method, strength)
        if not start:
            raise ValueError(f"strength {strength} with {steps} steps leaves no timestep")
        t0 = torch.full((x0.shape[0],), start[0], device=x0.device, dtype=torch.int64)
        x = self.add_noise(x0, self.noise_like(x0, generator), t0)
        return self.denoise(
            model_fn, x, steps, method, strength, generator=generator, callback=callback, resample=resample
        )

    def keep_known(
        self, known: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> StepCallback:
        """Inpainting callback: scalars under `mask` become `known` forward-noised to the current step
        (exactly `known` once the chain is clean), the others stay as the model made them."""
        mask = mask.to(known.device)

        def callback(_: int, t: int, x: torch.Tensor) -> torch.Tensor:
            if t < 0:
                ref = known
            else:
                t_batch = torch.full((known.shape[0],), t, device=known.device, dtype=torch.int64)
                ref = self.add_noise(known, self.noise_like(known, generator), t_batch)
            return torch.where(mask, ref.to(x.dtype), x)

        return callback


def _previous(sched, method: str, t: int, steps: int, T: int) -> int:  # noqa: N803
    """The timestep the scheduler's step moved the sample to (-1: the clean sample)."""
    if method == "ddim":
        prev = t - T // steps
    else:
        prev = int(sched.previous_timestep(t))
    return prev if prev >= 0 else -1
