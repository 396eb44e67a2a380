"""Sampling weight vectors from a trained denoiser: normalization, guidance, SDEdit and inpainting.

Everything a caller touches is in the weight space of the fields (flat (n, D) vectors in the
weight-set layout); normalization and the schedule's target stay inside. Noise comes from a generator
on the sampler's device seeded per call (no host-to-device copy a step), so the same seed gives the
same samples on a given device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from shd.diffusion.denoiser import Denoiser
from shd.diffusion.normalization import Normalizer
from shd.diffusion.schedule import ModelFn, Schedule
from shd.errors import InputError
from shd.fields.config import FieldConfig


class WeightSampler:
    """A denoiser (usually the EMA weights), its schedule, normalization and category names."""

    def __init__(
        self,
        net: Denoiser,
        schedule: Schedule,
        normalizer: Normalizer,
        field: FieldConfig,
        categories: Sequence[str] = (),
        device: torch.device | str | None = None,
    ):
        self.net = net.eval()
        self.schedule = schedule
        self.normalizer = normalizer
        self.field = field
        self.categories = list(categories)
        self.tokens = net.tokens
        self.layout = net.tokens.layout
        self.device = torch.device(device) if device is not None else next(net.parameters()).device
        # bf16 autocast on CUDA, as in training; fp32 elsewhere
        self.bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.net.to(self.device)
        self.normalizer.to(self.device)

    @property
    def conditional(self) -> bool:
        return self.net.category is not None

    def category_ids(self, category: str | int | Sequence[str | int] | None, n: int) -> torch.Tensor | None:
        """Category names or indices -> (n,) ids; None -> the null class (or None if unconditional)."""
        if not self.conditional:
            asked = [category] if isinstance(category, (str, int)) else list(category or [])
            # a model of one category samples that category when asked for it (by name or index 0)
            if not asked or (len(self.categories) <= 1 and all(c in (*self.categories, 0) for c in asked)):
                return None
            raise InputError(
                f"category {category!r}",
                f"this model was trained without category conditioning on {self.categories}",
            )
        if category is None:
            return torch.full((n,), self.net.null_category, dtype=torch.int64, device=self.device)
        items = [category] * n if isinstance(category, (str, int)) else list(category)
        if len(items) != n:
            raise InputError("category", f"{len(items)} categories given for {n} samples")
        ids = []
        for c in items:
            if isinstance(c, str):
                if c not in self.categories:
                    raise InputError(f"category {c!r}", f"not one of the model's {self.categories}")
                c = self.categories.index(c)
            ids.append(int(c))
        return torch.tensor(ids, dtype=torch.int64, device=self.device)

    def model_fn(self, category: torch.Tensor | None, guidance: float = 1.0) -> ModelFn:
        """The net as the schedule calls it; with guidance != 1, classifier-free guidance
        (uncond + g * (cond - uncond)) with both halves in one batched forward."""

        def net(x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                return self.net(x, t, c).float()

        if category is None or guidance == 1.0:
            return lambda x, t: net(x, t, category)
        null = torch.full_like(category, self.net.null_category)

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            out = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([category, null]))
            cond, uncond = out.chunk(2)
            return uncond + guidance * (cond - uncond)

        return guided

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(int(seed))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        steps: int = 50,
        category: str | int | Sequence | None = None,
        seed: int = 0,
        guidance: float = 1.0,
        method: str = "ddim",
        eta: float = 0.0,
    ) -> torch.Tensor:
        """`n` new weight vectors (n, D) float32 on the CPU, from pure noise (DDIM by default)."""
        gen = self._generator(seed)
        x = torch.randn(n, self.layout.dim, generator=gen, device=self.device)
        fn = self.model_fn(self.category_ids(category, n), guidance)
        out = self.schedule.denoise(fn, x, steps, method, eta=eta, generator=gen)
        return self.normalizer.denormalize(out).float().cpu()

    @torch.no_grad()
    def sdedit(
        self,
        flat: torch.Tensor,
        strength: float = 0.2,
        steps: int = 50,
        category: str | int | Sequence | None = None,
        seed: int = 0,
        guidance: float = 1.0,
        keep: torch.Tensor | None = None,
        method: str = "ddim",
        resample: int = 1,
    ) -> torch.Tensor:
        """Noise given weight vectors (n, D) to t = strength*T and denoise back (hybrids: harmonize).

        `keep` (D,) bool marks scalars held to the inputs at every step (RePaint-style inpainting);
        `resample` repeats each step that many times (RePaint resampling).
        """
        gen = self._generator(seed)
        x0 = self.normalizer.normalize(flat.to(self.device).float())
        fn = self.model_fn(self.category_ids(category, len(flat)), guidance)
        cb = self.schedule.keep_known(x0, keep.to(self.device), gen) if keep is not None else None
        out = self.schedule.sdedit(fn, x0, strength, steps, method, gen, cb, resample=resample)
        return self.normalizer.denormalize(out).float().cpu()

    @torch.no_grad()
    def inpaint(
        self,
        flat: torch.Tensor,
        keep: torch.Tensor,
        steps: int = 50,
        category: str | int | Sequence | None = None,
        seed: int = 0,
        guidance: float = 1.0,
        method: str = "ddim",
        resample: int = 1,
    ) -> torch.Tensor:
        """Generate the scalars outside `keep` (D,) bool from pure noise, holding the rest to `flat`.

        `resample` R > 1 is RePaint's resampling: each step is taken R times (noised back in between),
        so the generated scalars adapt to the kept ones over several passes.
        """
        gen = self._generator(seed)
        x0 = self.normalizer.normalize(flat.to(self.device).float())
        x = torch.randn(x0.shape, generator=gen, device=self.device)
        fn = self.model_fn(self.category_ids(category, len(flat)), guidance)
        cb = self.schedule.keep_known(x0, keep.to(self.device), gen)
        out = self.schedule.denoise(fn, x, steps, method, generator=gen, callback=cb, resample=resample)
        return self.normalizer.denormalize(out).float().cpu()
