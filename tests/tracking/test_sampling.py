"""generate_surfaces: the redraw loop of `shd sample`, on the tiny project's real model."""

from dataclasses import replace

import pytest
import torch

from shd.diffusion.api import load_model
from shd.tracking.sampling import SampleRequest, generate, generate_surfaces


@pytest.fixture(scope="module")
def sampler(tiny_project):
    torch.set_num_threads(1)
    return load_model(tiny_project / "models" / "diffusion" / "model", device="cpu")


def test_empty_samples_are_redrawn_then_given_up(sampler):
    """At a level no field reaches every sample is empty: each round redraws them, then it gives up."""
    request = SampleRequest(n=2, seed=3, steps=2, resolution=8, level=1e6)
    ticks = []
    kept, discarded = generate_surfaces(sampler, request, max_rounds=3, progress=ticks.append)
    assert (kept, discarded, ticks) == ([], 6, [])


def test_without_redraw_every_sample_is_kept_as_drawn(sampler):
    request = SampleRequest(n=2, seed=3, steps=2, resolution=8, level=1e6)
    kept, discarded = generate_surfaces(sampler, request, redraw_empty=False)
    weights, _ = generate(sampler, replace(request, meshes=True))
    assert discarded == 0 and [m.ok for _, m in kept] == [False, False]
    assert torch.equal(torch.stack([row for row, _ in kept]), weights)
