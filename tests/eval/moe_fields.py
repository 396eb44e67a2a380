"""Mixture-of-experts fields made of real weights for meshing tests: random, hand-built, tiny fits."""

from __future__ import annotations

import torch

from shd.eval.field_bounds import MoEField
from shd.fields import engine
from shd.fields.config import FieldConfig, OverfitConfig
from shd.fields.layout import make_layout, unflatten
from shd.fields.moe import init_params
from shd.fields.synthetic import sample_shapes

SMALL = FieldConfig(n_experts=3, hidden=(16, 16), n_freqs=2)


def random_flat(config: FieldConfig, n: int, seed: int = 0) -> torch.Tensor:
    """Random weight vectors (N, D): the shared init with a per-shape Gaussian on top, so shapes differ."""
    gen = torch.Generator().manual_seed(seed)
    base = init_params(config, seed)
    return base + 0.5 * torch.randn(n, base.numel(), generator=gen) * base.abs().mean()


def random_field(config: FieldConfig, n: int, seed: int = 0) -> MoEField:
    """Random fields whose shape logit has median 0 over a coarse grid: level 0 is a busy level set."""
    field = MoEField.from_flat(random_flat(config, n, seed), make_layout(config), config)
    g = torch.linspace(-0.5, 0.5, 9)
    pts = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), dim=-1).reshape(1, -1, 3).expand(n, -1, -1)
    median = field.combine(field(pts)).median(dim=1).values  # (B,)
    last = f"layer{len(config.hidden)}.bias"
    field.params[last] -= median.view(n, 1, 1)  # the same shift of every expert shifts max and lse alike
    return field


def slab_field(resolution: int, level: float) -> MoEField:
    """Expert 0 is one grid plane thick: logit k (w - |x - c|) - k relu(|y| - 0.3) - k relu(|z| - 0.3) with
    c on the grid's middle plane and w a third of a voxel, so only that plane's points are inside; expert 1
    is empty. A ReLU MLP on the encoding's raw x, y, z inputs (hidden 6 x 6), every other weight zero."""
    config = FieldConfig(n_experts=2, hidden=(6, 6), n_freqs=1)
    layout = make_layout(config)
    params = {k: torch.zeros_like(v) for k, v in unflatten(torch.zeros(1, layout.dim), layout).items()}
    h = 1.0 / (resolution - 1)
    c = float(torch.linspace(-0.5, 0.5, resolution)[(resolution - 1) // 2])
    k = 3 * level / h  # k w = level: the plane is well inside, its neighbours (|x - c| = h) far outside
    w0, b0 = params["layer0.weight"][0, 0], params["layer0.bias"][0, 0]
    for unit, (axis, sign, offset) in enumerate(
        [(0, 1, -c), (0, -1, c), (1, 1, -0.3), (1, -1, -0.3), (2, 1, -0.3), (2, -1, -0.3)]
    ):
        w0[unit, axis] = sign
        b0[unit] = offset
    params["layer1.weight"][0, 0] = torch.eye(6)
    params["layer2.weight"][0, 0, 0] = -k
    params["layer2.bias"][0, 0, 0] = k * (h / 3) + level
    params["layer2.bias"][0, 1, 0] = -10.0
    return MoEField(params, config)


def fitted_airplanes(n: int, steps: int = 150, seed: int = 0) -> MoEField:
    """`n` procedural airplanes fitted for `steps` Adam steps on CPU with the small field (seconds)."""
    cfg = OverfitConfig(
        field=SMALL, points_per_step=1024, max_steps=steps, warmup_steps=10, lr=0.01, schedule="plateau"
    )
    data = sample_shapes(
        "airplane", n, seed=seed, n_near=2000, n_uniform=2000, n_eval_near=8, n_eval_uniform=8, n_surface=8
    )
    layout = make_layout(SMALL)
    active = engine.new_active(
        [str(i) for i in range(n)],
        {k: data[k] for k in engine.TRAIN_KEYS},
        init_params(SMALL, seed),
        cfg,
        torch.device("cpu"),
    )
    for _ in range(steps):
        engine.train_step(active, *engine.draw_batch(active, cfg.points_per_step), layout, cfg)
    return MoEField.from_flat(active.flat, layout, SMALL)
