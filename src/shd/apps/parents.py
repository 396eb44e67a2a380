"""Who the parents of an edit are, and which experts the named parts are.

A parent source is a shape id of the weight set (its fitted weights) or `sample:<seed>` (one shape
sampled from the model with that seed). Parents of one edit must share a category: experts are parts
only within a category (airplane expert 1 is the wing, chair expert 1 the seat), so mixing them would
stitch meaningless slices; that is refused with the categories named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from shd.data.categories import get_category
from shd.diffusion.sampler import WeightSampler
from shd.errors import InputError
from shd.fields.weight_set import WeightSet

SAMPLE_PREFIX = "sample:"
SOURCE_HELP = (
    "a shape id of the weight set (e.g. proc-airplane-00003) or sample:<seed> "
    "(one shape sampled from the model, e.g. sample:7)"
)


@dataclass
class Parent:
    """One parent: where it came from, its category and its flat weight vector (D,)."""

    source: str
    category: str
    flat: torch.Tensor
    shape_id: str | None = None
    seed: int | None = None

    def describe(self) -> dict:
        return {
            "source": self.source,
            "category": self.category,
            "shape_id": self.shape_id,
            "seed": self.seed,
        }


def parse_source(source: str) -> tuple[str, str | int]:
    """('sample', seed) for `sample:<seed>`, else ('shape', id)."""
    source = source.strip()
    if not source:
        raise InputError("parent ''", f"empty; expected {SOURCE_HELP}")
    if source.startswith(SAMPLE_PREFIX):
        seed = source[len(SAMPLE_PREFIX) :]
        try:
            return "sample", int(seed)
        except ValueError:
            raise InputError(
                f"parent '{source}'", f"the seed must be an integer; expected {SOURCE_HELP}"
            ) from None
    return "shape", source


def _shape_category(source: str, weights: WeightSet | None) -> str:
    if weights is None:
        raise InputError(f"parent '{source}'", f"a shape id needs a weight set; or give {SOURCE_HELP}")
    return weights.record(source)["category"]


def common_category(
    sources: Sequence[str], weights: WeightSet | None, sampler: WeightSampler, category: str | None = None
) -> str:
    """The one category of the parents: shape ids bring theirs, `category` (if given) must agree;
    with only sampled parents it is `category` or the model's first. Mixed categories are refused."""
    seen: dict[str, str] = {}
    for src in sources:
        kind, value = parse_source(src)
        if kind == "shape":
            seen[str(value)] = _shape_category(str(value), weights)
    if category is not None:
        seen.setdefault(f"category {category}", category)
    cats = sorted(set(seen.values()))
    if len(cats) > 1:
        listed = ", ".join(f"{k} is {v}" for k, v in seen.items())
        raise InputError(
            "parents",
            f"mix categories ({listed}); parts of different categories are "
            "different experts, so parents must share one category",
        )
    if cats:
        return cats[0]
    if not sampler.categories:
        raise InputError("parents", "the model names no category; give a shape id parent or a category")
    return sampler.categories[0]


def resolve_parents(
    sources: Sequence[str],
    sampler: WeightSampler,
    weights: WeightSet | None = None,
    *,
    category: str | None = None,
    steps: int = 50,
    guidance: float = 1.0,
) -> list[Parent]:
    """Each source as a Parent of the parents' common category (sampled ones with `steps` DDIM steps)."""
    cat = common_category(sources, weights, sampler, category)
    if weights is not None and weights.layout.dim != sampler.layout.dim:
        raise InputError(
            weights.root,
            f"its fields have {weights.layout.dim} weights, the model's "
            f"{sampler.layout.dim}: not the weight set the model was trained on",
        )
    parents = []
    for src in sources:
        kind, value = parse_source(src)
        if kind == "shape":
            flat = weights.load_flat([str(value)])[0]  # type: ignore[union-attr]  (checked above)
            parents.append(Parent(src, cat, flat, shape_id=str(value)))
        else:
            if cat not in sampler.categories:
                raise InputError(f"parent '{src}'", f"the model samples {sampler.categories}, not {cat}")
            flat = sampler.sample(1, steps=steps, category=cat, seed=int(value), guidance=guidance)[0]
            parents.append(Parent(src, cat, flat, seed=int(value)))
    return parents


def part_names(category: str, weights: WeightSet | None = None) -> list[str]:
    """Part names of a category in expert order: the weight set's manifest, else the category table."""
    if weights is not None:
        listed = weights.manifest.get("categories", {})
        if category in listed:
            return list(listed[category])
    return list(get_category(category).parts)


def split_names(names: str | Sequence[str] | None) -> list[str]:
    """'body,wing' or ['body', 'wing'] -> ['body', 'wing'] (blanks dropped)."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else list(names)
    return [n.strip() for n in items if n.strip()]


def part_indices(
    names: str | Sequence[str] | None, parts: Sequence[str], category: str, where: str = "parts"
) -> list[int]:
    """Expert indices of the named parts; an unknown name is an InputError listing the valid ones."""
    out = []
    for name in split_names(names):
        if name not in parts:
            raise InputError(
                f"{where}: part '{name}'", f"not a part of {category}; valid parts: {', '.join(parts)}"
            )
        if parts.index(name) not in out:
            out.append(parts.index(name))
    return out


def expert_mask(sampler: WeightSampler, experts: Sequence[int]) -> torch.Tensor:
    """(D,) bool: the scalars of these experts' tokens."""
    return sampler.tokens.scalar_mask(sampler.tokens.expert_tokens(list(experts)))
