import pytest
import torch

from shd.apps.parents import expert_mask, parse_source, part_indices, part_names, resolve_parents
from shd.errors import InputError


def test_sources_are_shape_ids_or_sample_seeds():
    assert parse_source("sample:7") == ("sample", 7)
    assert parse_source(" proc-airplane-00001 ") == ("shape", "proc-airplane-00001")
    with pytest.raises(InputError, match="integer"):
        parse_source("sample:x")
    with pytest.raises(InputError, match="empty"):
        parse_source("")


def test_unknown_part_names_list_the_valid_ones():
    parts = ["body", "wing", "tail", "engine"]
    assert part_indices("engine, wing,engine", parts, "airplane") == [3, 1]
    with pytest.raises(InputError, match="valid parts: body, wing, tail, engine") as err:
        part_indices("body,wheel", parts, "airplane", "keep")
    assert "'wheel'" in str(err.value) and "keep" in str(err.value)


def test_parents_resolve_from_the_weight_set_and_the_model(sampler, weights, airplanes):
    a, s = resolve_parents([airplanes[0], "sample:3"], sampler, weights, steps=2)
    assert a.category == s.category == "airplane" and a.shape_id == airplanes[0] and s.seed == 3
    assert torch.equal(a.flat, weights.load_flat([airplanes[0]])[0])
    again = resolve_parents(["sample:3"], sampler, weights, category="airplane", steps=2)[0]
    assert torch.equal(again.flat, s.flat) and again.flat.shape == (sampler.layout.dim,)
    assert part_names("chair", weights) == weights.manifest["categories"]["chair"]
    assert part_names("airplane") == ["body", "wing", "tail", "engine"]  # no weight set: the table


def test_mixing_categories_is_refused_naming_both(sampler, weights, airplanes, chairs):
    with pytest.raises(InputError, match="mix categories") as err:
        resolve_parents([airplanes[0], chairs[0]], sampler, weights)
    assert "airplane" in str(err.value) and "chair" in str(err.value)
    with pytest.raises(InputError, match="mix categories"):
        resolve_parents([chairs[0], "sample:0"], sampler, weights, category="airplane")
    with pytest.raises(InputError, match="not in the weight set"):
        resolve_parents(["no-such-shape"], sampler, weights)


def test_expert_masks_are_whole_contiguous_experts(sampler):
    mask = expert_mask(sampler, [1])
    size = sampler.layout.expert_size
    assert mask.sum() == size and mask[size : 2 * size].all()
