"""Seeded procedural airplanes and chairs: the embedded dataset used when no real data is on disk.

Each shape is assembled from closed part volumes (fuselage, wings, tail, nacelles; seat, back, legs,
arms) built with `manifold3d`, then unioned with exact booleans. Every face of the union keeps the
provenance of the part it came from, so face labels are exact rather than guessed from nearest
neighbours. Design parameters are sampled from a per-shape generator seeded by
(seed, category, index), so a shape never depends on which other shapes are generated, and they are
kept in `meta` so a user can see why a shape looks as it does.

Frame (shared with ShapeNetPart points): up is +y. Airplanes: fuselage along x with the nose at +x,
span along z. Chairs: width along x, the back at -z and the front at +z.
"""

from shd.data.procedural.airplane import ENGINE_PLACEMENTS, TAIL_TYPES, WING_TYPES, AirplaneDesign
from shd.data.procedural.assembly import GENERATOR_VERSION, generate_shape
from shd.data.procedural.chair import ARM_STYLES, BACK_STYLES, CHAIR_BASES, SEAT_SHAPES, ChairDesign
from shd.data.procedural.dataset import assign_splits, exact_split_sizes, generate_dataset

__all__ = [
    "ARM_STYLES",
    "BACK_STYLES",
    "CHAIR_BASES",
    "ENGINE_PLACEMENTS",
    "GENERATOR_VERSION",
    "SEAT_SHAPES",
    "TAIL_TYPES",
    "WING_TYPES",
    "AirplaneDesign",
    "ChairDesign",
    "assign_splits",
    "exact_split_sizes",
    "generate_dataset",
    "generate_shape",
]
