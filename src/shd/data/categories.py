"""Shape categories in ShapeNetPart label order.

Part indices are local to a category and 0-based (airplane: 0 body, 1 wing, 2 tail, 3 engine), which
is the order the experts of a mixture-of-experts field follow. `global_offset` maps to the 0-based
global ShapeNetPart part ids that the `v0_normal` layout stores (chair parts are 12..15 there).
"""

from __future__ import annotations

from dataclasses import dataclass

from shd.errors import InputError


@dataclass(frozen=True)
class Category:
    name: str
    synset: str
    parts: tuple[str, ...]
    global_offset: int

    @property
    def n_parts(self) -> int:
        return len(self.parts)

    def part_index(self, part: str) -> int:
        """Index of a part by name; the error lists the valid names."""
        try:
            return self.parts.index(part)
        except ValueError:
            raise InputError(
                f"part '{part}'", f"not a part of {self.name}; valid parts: {', '.join(self.parts)}"
            ) from None


# Global part-id offsets follow the ShapeNetPart benchmark's category order (16 categories, 50 parts).
CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("airplane", "02691156", ("body", "wing", "tail", "engine"), 0),
        Category("bag", "02773838", ("handle", "body"), 4),
        Category("cap", "02954340", ("panels", "peak"), 6),
        Category("car", "02958343", ("roof", "hood", "wheel", "body"), 8),
        Category("chair", "03001627", ("back", "seat", "leg", "arm"), 12),
        Category("earphone", "03261776", ("earphone", "headband", "mic"), 16),
        Category("guitar", "03467517", ("head", "neck", "body"), 19),
        Category("knife", "03624134", ("blade", "handle"), 22),
        Category("lamp", "03636649", ("base", "lampshade", "canopy", "tube"), 24),
        Category("laptop", "03642806", ("keyboard", "screen"), 28),
        Category("motorbike", "03790512", ("gas_tank", "seat", "wheel", "handle", "light", "frame"), 30),
        Category("mug", "03797390", ("handle", "body"), 36),
        Category("pistol", "03948459", ("barrel", "handle", "trigger"), 38),
        Category("rocket", "04099429", ("body", "fin", "nose"), 41),
        Category("skateboard", "04225987", ("wheel", "deck", "belt"), 44),
        Category("table", "04379243", ("desktop", "leg", "support"), 47),
    )
}
SYNSET_TO_NAME = {c.synset: c.name for c in CATEGORIES.values()}

# Categories the procedural generator can make (the embedded default dataset).
PROCEDURAL_CATEGORIES = ("airplane", "chair")


def get_category(name_or_synset: str) -> Category:
    """Look a category up by name (case-insensitive) or synset id; the error lists the valid names."""
    key = name_or_synset.strip().lower()
    if key in CATEGORIES:
        return CATEGORIES[key]
    if key in SYNSET_TO_NAME:
        return CATEGORIES[SYNSET_TO_NAME[key]]
    raise InputError(
        f"category '{name_or_synset}'", f"unknown; expected one of {', '.join(sorted(CATEGORIES))}"
    )
