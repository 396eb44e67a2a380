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

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import manifold3d as m
import numpy as np

from shd.data.categories import PROCEDURAL_CATEGORIES, get_category
from shd.data.geometry import apply_normalization, normalization
from shd.data.shape import SPLITS, PartMesh, PreparedShape
from shd.errors import InputError

GENERATOR_VERSION = 1
WING_TYPES = ("straight", "swept", "delta")
TAIL_TYPES = ("conventional", "t_tail", "fin_only")
ENGINE_PLACEMENTS = ("none", "under_wing", "rear_fuselage")
CHAIR_BASES = ("four_legs", "pedestal", "sled")
SEAT_SHAPES = ("rectangular", "rounded")
BACK_STYLES = ("panel", "slats")
ARM_STYLES = ("post", "panel")

_SEGMENTS = 24  # circle resolution of bodies of revolution: smooth enough, a few thousand triangles
_SMALL_SEGMENTS = 12  # tubes, casters, legs
_EX = np.array([1.0, 0.0, 0.0])
_EY = np.array([0.0, 1.0, 0.0])
_EZ = np.array([0.0, 0.0, 1.0])
_SPLIT_SALT = 0x5EED  # keeps the split shuffle stream apart from the per-shape design streams

Pieces = list[list[m.Manifold]]  # per part index, the solids whose union is that part


# ----------------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------------


class _Sampler:
    """Thin wrapper over a numpy Generator returning plain Python values (JSON-serializable meta)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
        return options[int(self.rng.choice(len(options), p=p))]

    def coin(self, p: float) -> bool:
        return bool(self.rng.uniform() < p)


def _shape_rng(seed: int, category: str, index: int) -> np.random.Generator:
    """Per-shape stream: depends only on (seed, category, index), never on generation order."""
    return np.random.default_rng([seed, zlib.crc32(category.encode("utf-8")), index])


# ----------------------------------------------------------------------------------------------------
# Geometry primitives
# ----------------------------------------------------------------------------------------------------


def _hull(points: np.ndarray) -> m.Manifold:
    return m.Manifold.hull_points(np.ascontiguousarray(points, dtype=np.float64))


def _ring(
    center: np.ndarray, radius: float, u: np.ndarray, v: np.ndarray, sides: int, phase: float = 0.0
) -> np.ndarray:
    ang = phase + np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    return center + radius * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)


def _perpendicular_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = direction / np.linalg.norm(direction)
    helper = _EY if abs(d[1]) < 0.9 else _EX
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def _strut(
    p0: Sequence[float],
    p1: Sequence[float],
    r0: float,
    r1: float | None = None,
    sides: int = _SMALL_SEGMENTS,
    horizontal_ends: bool = False,
) -> m.Manifold:
    """Convex rod between two points: hull of two regular polygons.

    `horizontal_ends` puts the end polygons in the xz plane (legs standing flat on the floor);
    otherwise they are perpendicular to the rod. `sides=4` gives a square section.
    """
    a, b = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    u, v = (_EX, _EZ) if horizontal_ends else _perpendicular_basis(b - a)
    phase = np.pi / 4 if sides == 4 else 0.0
    r1 = r0 if r1 is None else r1
    return _hull(np.vstack([_ring(a, r0, u, v, sides, phase), _ring(b, r1, u, v, sides, phase)]))


def _box(lo: Sequence[float], hi: Sequence[float]) -> m.Manifold:
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return m.Manifold.cube(hi_a - lo_a).translate(lo_a)


def _ball(center: Sequence[float], radius: float) -> m.Manifold:
    return m.Manifold.sphere(radius, _SMALL_SEGMENTS).translate(np.asarray(center, dtype=np.float64))


def _revolve_x(xs: np.ndarray, rs: np.ndarray, segments: int) -> m.Manifold:
    """Body of revolution about the x axis from a radius profile r(x), xs increasing, rs >= 0.

    The profile is closed along the axis, so an end with r > 0 is a flat cap and one with r = 0 a tip.
    """
    keep = rs > 1e-9
    profile = np.vstack([[0.0, xs[0]], np.column_stack([rs[keep], xs[keep]]), [0.0, xs[-1]]])  # CCW
    solid = m.CrossSection([profile]).revolve(segments)  # axis along z
    # (X, Y, Z) -> (y, z, x): a proper rotation taking the revolution axis onto x.
    return solid.transform([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


def _superellipse(a: float, b: float, p: float, n: int = 40) -> np.ndarray:
    """CCW outline |x/a|^p + |y/b|^p = 1: p~2 is an ellipse, large p a rounded rectangle."""
    ang = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(ang), np.sin(ang)
    return np.column_stack([a * np.sign(c) * np.abs(c) ** (2 / p), b * np.sign(s) * np.abs(s) ** (2 / p)])


def _superellipse_y(a: float, b: float, p: float, x: float) -> float:
    """Half height of a superellipse outline at abscissa x (|x| < a)."""
    return b * (1.0 - abs(x / a) ** p) ** (1.0 / p)


def _airfoil(n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Chord stations in [0, 1] (cosine spaced) and NACA 00xx half thickness per unit thickness ratio."""
    xc = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, n)))
    yt = 5.0 * (0.2969 * np.sqrt(xc) - 0.1260 * xc - 0.3516 * xc**2 + 0.2843 * xc**3 - 0.1036 * xc**4)
    return xc, yt


_AIRFOIL_X, _AIRFOIL_T = _airfoil()
_AIRFOIL_MAX_HALF = float(_AIRFOIL_T.max())  # ~0.5: max half thickness per unit thickness ratio


@dataclass(frozen=True)
class _Planform:
    """A tapered, swept lifting surface (wing half, stabilizer half or fin) as a loft of airfoils.

    Stations s run along `span_dir` from the root leading edge `le_root`; the leading edge moves aft
    (-x) by s*tan(sweep) and along `thick_dir` by s*tan(rise) (dihedral).
    """

    le_root: np.ndarray
    span_dir: np.ndarray
    thick_dir: np.ndarray
    semispan: float
    c_root: float
    c_tip: float
    sweep_deg: float
    rise_deg: float
    t_ratio: float

    def le(self, s: float) -> np.ndarray:
        sweep, rise = math.tan(math.radians(self.sweep_deg)), math.tan(math.radians(self.rise_deg))
        return self.le_root + s * self.span_dir - s * sweep * _EX + s * rise * self.thick_dir

    def chord(self, s: float) -> float:
        return self.c_root + (self.c_tip - self.c_root) * s / self.semispan

    def half_thickness(self, s: float) -> float:
        return self.t_ratio * self.chord(s) * _AIRFOIL_MAX_HALF

    def _section(self, s: float) -> np.ndarray:
        c = self.chord(s)
        base = self.le(s) - np.outer(c * _AIRFOIL_X, _EX)
        off = np.outer(c * self.t_ratio * _AIRFOIL_T, self.thick_dir)
        return np.vstack([base + off, base - off])

    def solid(self, root_overlap: float) -> m.Manifold:
        """Half surface from s = -root_overlap (buried in whatever it attaches to) to the tip."""
        return _hull(np.vstack([self._section(-root_overlap), self._section(self.semispan)]))

    def pair(self, root_overlap: float) -> m.Manifold:
        """Both halves, mirrored across z = 0 (they overlap on the buried root stub)."""
        half = self.solid(root_overlap)
        return half + half.mirror(_EZ)


# ----------------------------------------------------------------------------------------------------
# Airplane
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fuselage:
    """Fuselage of length 1 along x (nose at +0.5): nose cone, cylinder, tapered and upswept tail cone."""

    radius: float
    nose_len: float
    nose_shape: float
    tail_len: float
    tail_taper: float
    upsweep: float

    x_nose = 0.5
    x_tail = -0.5

    def _tail_t(self, x: np.ndarray) -> np.ndarray:
        return np.clip((self.x_tail + self.tail_len - x) / self.tail_len, 0.0, 1.0)

    def radius_at(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        t_nose = np.clip((self.x_nose - x) / self.nose_len, 0.0, 1.0)
        k = self.nose_shape
        nose = (1.0 - (1.0 - t_nose) ** k) ** (1.0 / k)
        tail = 1.0 - (1.0 - self.tail_taper) * self._tail_t(x) ** 1.5
        return self.radius * np.minimum(nose, tail)

    def center_y(self, x: np.ndarray | float) -> np.ndarray:
        return self.upsweep * self.radius * self._tail_t(np.asarray(x, dtype=np.float64)) ** 2

    def solid(self) -> m.Manifold:
        tail = np.linspace(self.x_tail, self.x_tail + self.tail_len, 8)
        nose = self.x_nose - self.nose_len * (1.0 - np.sin(np.linspace(0.0, np.pi / 2, 10)))  # dense at tip
        xs = np.concatenate([tail, nose])
        solid = _revolve_x(xs, self.radius_at(xs), _SEGMENTS)

        def upsweep(v: np.ndarray) -> np.ndarray:
            out = np.array(v, dtype=np.float64)
            out[:, 1] += self.center_y(out[:, 0])
            return out

        return solid.warp_batch(upsweep)


def _sample_wing(s: _Sampler) -> dict[str, Any]:
    wing_type = s.pick(WING_TYPES, [0.35, 0.4, 0.25])
    ranges = {  # sweep, taper, semispan, root chord, thickness ratio, root leading-edge x
        "straight": ((0, 6), (0.45, 1.0), (0.42, 0.6), (0.1, 0.16), (0.11, 0.15), (0.0, 0.12)),
        "swept": ((22, 38), (0.22, 0.4), (0.36, 0.52), (0.16, 0.24), (0.09, 0.13), (0.08, 0.18)),
        "delta": ((50, 62), (0.03, 0.12), (0.22, 0.32), (0.4, 0.5), (0.04, 0.06), (0.12, 0.2)),
    }[wing_type]
    sweep, taper, semispan, chord, thickness, le_x = (s.u(*r) for r in ranges)
    mount = s.pick(("low", "mid", "high"))
    dihedral = s.u(-3, 2) if mount == "high" else s.u(-1, 7)
    return {
        "wing_type": wing_type,
        "wing_sweep_deg": sweep,
        "wing_taper": taper,
        "wing_semispan": semispan,
        "wing_root_chord": chord,
        "wing_thickness": thickness,
        "wing_le_x": le_x,
        "wing_mount": mount,
        "wing_dihedral_deg": dihedral,
    }


def _sample_airplane(s: _Sampler) -> dict[str, Any]:
    d: dict[str, Any] = {
        "fuselage_length": 1.0,
        "fuselage_radius": s.u(0.042, 0.072),
        "nose_length": s.u(0.08, 0.17),
        "nose_shape": s.u(1.6, 2.6),
        "tail_cone_length": s.u(0.2, 0.32),
        "tail_taper": s.u(0.1, 0.35),
        "tail_upsweep": s.u(0.0, 0.8),
    }
    d.update(_sample_wing(s))
    d["n_engines"] = s.pick((0, 2, 4), [0.25, 0.5, 0.25])
    rear = d["n_engines"] == 2 and d["wing_type"] != "delta" and s.coin(0.4)  # a delta root is in the way
    d["engine_placement"] = "none" if d["n_engines"] == 0 else ("rear_fuselage" if rear else "under_wing")
    d["nacelle_radius"] = s.u(0.022, 0.034)
    d["nacelle_length"] = s.u(0.1, 0.16)
    d["engine_spans"] = [s.u(0.3, 0.4)] if d["n_engines"] == 2 else [s.u(0.25, 0.33), s.u(0.55, 0.65)]
    d["engine_forward"] = s.u(0.25, 0.45)  # fraction of the nacelle ahead of the wing leading edge
    if rear:
        tail = "t_tail"
    elif d["wing_type"] == "delta":
        tail = s.pick(TAIL_TYPES, [0.2, 0.2, 0.6])
    else:
        tail = s.pick(TAIL_TYPES[:2], [0.6, 0.4])
    d["tail_type"] = tail
    big_fin = tail == "fin_only"
    d["fin_height"] = s.u(0.14, 0.2) if big_fin else s.u(0.1, 0.16)
    d["fin_root_chord"] = s.u(0.16, 0.24) if big_fin else s.u(0.12, 0.18)
    d["fin_sweep_deg"] = s.u(35, 55)
    d["fin_taper"] = s.u(0.6, 0.85) if tail == "t_tail" else s.u(0.3, 0.6)
    d["stab_semispan"] = s.u(0.12, 0.2)
    d["stab_root_chord"] = s.u(0.08, 0.12)
    d["stab_sweep_deg"] = s.u(0, 12) if d["wing_type"] == "straight" else s.u(20, 38)
    d["stab_taper"] = s.u(0.4, 0.7)
    d["stab_dihedral_deg"] = s.u(0, 3) if tail == "t_tail" else s.u(-2, 6)
    return d


def _fuselage_of(d: dict[str, Any]) -> _Fuselage:
    return _Fuselage(
        d["fuselage_radius"],
        d["nose_length"],
        d["nose_shape"],
        d["tail_cone_length"],
        d["tail_taper"],
        d["tail_upsweep"],
    )


def _wing_of(d: dict[str, Any], body: _Fuselage) -> _Planform:
    mount_y = {"low": -0.45, "mid": 0.0, "high": 0.45}[d["wing_mount"]] * body.radius
    return _Planform(
        le_root=np.array([d["wing_le_x"], mount_y, 0.0]),
        span_dir=_EZ,
        thick_dir=_EY,
        semispan=d["wing_semispan"],
        c_root=d["wing_root_chord"],
        c_tip=d["wing_root_chord"] * d["wing_taper"],
        sweep_deg=d["wing_sweep_deg"],
        rise_deg=d["wing_dihedral_deg"],
        t_ratio=d["wing_thickness"],
    )


def _fin_of(d: dict[str, Any], body: _Fuselage) -> _Planform:
    chord = d["fin_root_chord"]
    le_x = body.x_tail + 0.03 + chord
    root_y = float(body.center_y(le_x - chord))  # the highest centreline point under the fin root
    return _Planform(
        le_root=np.array([le_x, root_y, 0.0]),
        span_dir=_EY,
        thick_dir=_EZ,
        semispan=d["fin_height"],
        c_root=chord,
        c_tip=chord * d["fin_taper"],
        sweep_deg=d["fin_sweep_deg"],
        rise_deg=0.0,
        t_ratio=0.1,
    )


def _tail_pieces(d: dict[str, Any], body: _Fuselage) -> list[m.Manifold]:
    fin = _fin_of(d, body)
    pieces = [fin.solid(root_overlap=0.0)]
    if d["tail_type"] == "fin_only":
        return pieces
    chord = d["stab_root_chord"]
    if d["tail_type"] == "t_tail":
        tip_le = fin.le(fin.semispan)
        le = tip_le + np.array([0.1 * fin.c_tip, 0.0, 0.0])
        overlap = 2.0 * fin.half_thickness(fin.semispan)
    else:
        le_x = body.x_tail + 0.02 + chord
        le = np.array([le_x, float(body.center_y(le_x - 0.5 * chord)), 0.0])
        overlap = 0.5 * float(body.radius_at(le_x - 0.5 * chord))
    stab = _Planform(
        le_root=le,
        span_dir=_EZ,
        thick_dir=_EY,
        semispan=d["stab_semispan"],
        c_root=chord,
        c_tip=chord * d["stab_taper"],
        sweep_deg=d["stab_sweep_deg"],
        rise_deg=d["stab_dihedral_deg"],
        t_ratio=0.1,
    )
    if d["tail_type"] == "t_tail":  # sink the stabilizer so its lower half wraps the fin tip
        stab = replace(stab, le_root=le - 0.4 * stab.half_thickness(0.0) * _EY)
    pieces.append(stab.pair(overlap))
    return pieces


def _nacelle(front: np.ndarray, radius: float, length: float) -> m.Manifold:
    rel = np.array([1.0, 0.92, 0.7, 0.35, 0.15, 0.03, 0.0])
    scale = np.array([0.55, 0.7, 0.9, 1.0, 1.0, 0.93, 0.85])
    return _revolve_x(front[0] - length * rel, radius * scale, 16).translate([0.0, front[1], front[2]])


def _wing_engines(d: dict[str, Any], wing: _Planform) -> list[m.Manifold]:
    r, length = d["nacelle_radius"], d["nacelle_length"]
    pieces = []
    for eta in d["engine_spans"]:
        span = eta * wing.semispan
        le, chord = wing.le(span), wing.chord(span)
        center_y = le[1] - wing.half_thickness(span) - r * 1.35
        front = np.array([le[0] + d["engine_forward"] * length, center_y, span])
        x_hi = le[0] - 0.05 * chord
        x_lo = max(x_hi - 0.5 * chord, front[0] - 0.95 * length)
        half_w = 0.25 * r
        pylon = _box([x_lo, center_y, span - half_w], [x_hi, le[1], span + half_w])
        half = _nacelle(front, r, length) + pylon
        pieces += [half, half.mirror(_EZ)]
    return pieces


def _rear_engines(d: dict[str, Any], body: _Fuselage) -> list[m.Manifold]:
    r, length = d["nacelle_radius"], d["nacelle_length"]
    fin = _fin_of(d, body)
    front_x = fin.le_root[0] - 0.2 * fin.c_root + length  # beside the fin root, as on a DC-9
    mid_x = front_x - 0.5 * length
    local_r = float(body.radius_at(mid_x))
    y = float(body.center_y(mid_x)) + 0.3 * local_r
    z = local_r + 0.45 * r + r
    pylon = _box([mid_x - 0.3 * length, y - 0.15 * r, 0.0], [mid_x + 0.3 * length, y + 0.15 * r, z])
    half = _nacelle(np.array([front_x, y, z]), r, length) + pylon
    return [half, half.mirror(_EZ)]


def _build_airplane(d: dict[str, Any]) -> Pieces:
    """Parts in category order: body, wing, tail, engine."""
    body = _fuselage_of(d)
    wing = _wing_of(d, body)
    wing_overlap = 0.3 * body.radius
    engines: list[m.Manifold] = []
    if d["engine_placement"] == "under_wing":
        engines = _wing_engines(d, wing)
    elif d["engine_placement"] == "rear_fuselage":
        engines = _rear_engines(d, body)
    return [[body.solid()], [wing.pair(wing_overlap)], _tail_pieces(d, body), engines]


# ----------------------------------------------------------------------------------------------------
# Chair
# ----------------------------------------------------------------------------------------------------


def _sample_chair(s: _Sampler) -> dict[str, Any]:
    d: dict[str, Any] = {
        "seat_width": s.u(0.42, 0.56),
        "seat_depth": s.u(0.4, 0.52),
        "seat_height": s.u(0.4, 0.48),
        "seat_thickness": s.u(0.03, 0.08),
        "seat_shape": s.pick(SEAT_SHAPES, [0.6, 0.4]),
        "back_style": s.pick(BACK_STYLES, [0.6, 0.4]),
        "back_height": s.u(0.3, 0.6),
        "back_tilt_deg": s.u(0, 18),
        "back_thickness": s.u(0.025, 0.05),
        "back_width_ratio": s.u(0.85, 1.0),
        "back_top_round": s.u(0.0, 0.35),
        "n_slats": s.pick((2, 3, 4, 5)),
        "base_type": s.pick(CHAIR_BASES, [0.45, 0.3, 0.25]),
        "leg_profile": s.pick(("square", "round")),
        "leg_thickness": s.u(0.022, 0.04),
        "leg_taper": s.u(0.6, 1.0),
        "leg_splay_deg": s.u(0, 7),
        "leg_inset": s.u(0.04, 0.12),
        "has_stretchers": s.coin(0.4),
        "star_arms": s.pick((4, 5), [0.3, 0.7]),
        "star_radius": s.u(0.22, 0.3),
        "has_casters": s.coin(0.6),
        "column_radius": s.u(0.02, 0.035),
        "tube_radius": s.u(0.011, 0.018),
        "has_arms": s.coin(0.45),
        "arm_style": s.pick(ARM_STYLES, [0.7, 0.3]),
        "arm_height": s.u(0.16, 0.26),
        "arm_width": s.u(0.04, 0.065),
    }
    d["seat_roundness"] = s.u(6, 10) if d["seat_shape"] == "rectangular" else s.u(2.2, 3.5)
    return d


@dataclass(frozen=True)
class _ChairFrame:
    """Derived chair dimensions shared by the part builders."""

    half_w: float
    half_d: float
    top: float  # seat top height
    bottom: float  # seat bottom height
    roundness: float
    back_z: float  # back mid-plane z at seat level
    tilt: float  # radians, backwards

    def back_z_at(self, height: float) -> float:
        """Back mid-plane z at a height above the seat top."""
        return self.back_z - height * math.tan(self.tilt)

    def corner(self, sx: float, sz: float, inset: float) -> tuple[float, float]:
        """A point near a seat corner, inside the (possibly rounded) outline."""
        pts = _superellipse(self.half_w, self.half_d, self.roundness, 8)[1]  # the 45 degree point
        k = 1.0 - inset / min(self.half_w, self.half_d)
        return sx * pts[0] * k, sz * pts[1] * k


def _chair_frame(d: dict[str, Any]) -> _ChairFrame:
    half_w, half_d, p = d["seat_width"] / 2, d["seat_depth"] / 2, d["seat_roundness"]
    back_half_w = half_w * d["back_width_ratio"]
    edge = _superellipse_y(half_w, half_d, p, 0.5 * back_half_w)
    return _ChairFrame(
        half_w,
        half_d,
        d["seat_height"],
        d["seat_height"] - d["seat_thickness"],
        p,
        -edge + 0.5 * d["back_thickness"],
        math.radians(d["back_tilt_deg"]),
    )


def _extrude_xz(outline: np.ndarray, y0: float, thickness: float) -> m.Manifold:
    """A slab with an (x, z) outline between heights y0 and y0 + thickness."""
    slab = m.CrossSection([outline]).extrude(thickness)  # (a, b, c) -> (x, y=c, z=-b): a rotation
    return slab.transform([[1, 0, 0, 0], [0, 0, 1, y0], [0, -1, 0, 0]])


def _seat(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    return [_extrude_xz(_superellipse(f.half_w, f.half_d, f.roundness), f.bottom, d["seat_thickness"])]


def _back_outline(width: float, height: float, round_frac: float) -> m.CrossSection:
    """Rectangle with a rounded top (a superellipse cap of height round_frac * height)."""
    cap = max(round_frac * height, 1e-3)
    rect = m.CrossSection.square([width, height - cap]).translate([-width / 2, 0.0])
    top = m.CrossSection([_superellipse(width / 2, cap, 3.0)]).translate([0.0, height - cap])
    return rect + top


def _back(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    width = 2 * f.half_w * d["back_width_ratio"]
    height, t = d["back_height"], d["back_thickness"]
    sink = 0.8 * d["seat_thickness"]  # bury the bottom of the back in the seat
    total = height + sink
    if d["back_style"] == "panel":
        outline = _back_outline(width, total, d["back_top_round"])
    else:
        post, rail = 0.12 * width, 0.18 * height
        frame = [
            m.CrossSection.square([post, total]).translate([side, 0.0])
            for side in (-width / 2, width / 2 - post)
        ]
        frame.append(m.CrossSection.square([width, rail]).translate([-width / 2, total - rail]))
        n = d["n_slats"]
        gap = (width - 2 * post) / (n + 1)
        slat_w = 0.45 * gap
        frame += [
            m.CrossSection.square([slat_w, total]).translate(
                [-width / 2 + post + gap * (i + 1) - slat_w / 2, 0.0]
            )
            for i in range(n)
        ]
        outline = m.CrossSection.batch_boolean(frame, m.OpType.Add)
    panel = outline.extrude(t).translate([0.0, -sink, -t / 2])
    c, s = math.cos(f.tilt), math.sin(f.tilt)  # lean back about the x axis, then move to the seat rear
    return [panel.transform([[1, 0, 0, 0], [0, c, s, f.top], [0, -s, c, f.back_z]])]


def _four_legs(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    r0 = d["leg_thickness"]
    sides = 4 if d["leg_profile"] == "square" else _SMALL_SEGMENTS
    spread = f.bottom * math.tan(math.radians(d["leg_splay_deg"]))
    tops, feet = {}, {}
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = f.corner(sx, sz, d["leg_inset"])
            tops[sx, sz] = np.array([x, f.bottom + 0.5 * d["seat_thickness"], z])
            feet[sx, sz] = np.array([x + sx * spread, 0.0, z + sz * spread])
    legs = [_strut(feet[k], tops[k], r0 * d["leg_taper"], r0, sides, horizontal_ends=True) for k in tops]
    if d["has_stretchers"]:
        h = 0.3 * f.bottom

        def at(k: tuple[int, int]) -> np.ndarray:
            return feet[k] + (tops[k] - feet[k]) * h / (tops[k][1] - feet[k][1])

        rod = 0.45 * r0
        sides_bars = [_strut(at((sx, -1)), at((sx, 1)), rod) for sx in (-1, 1)]
        cross = _strut(0.5 * (at((-1, -1)) + at((-1, 1))), 0.5 * (at((1, -1)) + at((1, 1))), rod)
        legs += sides_bars + [cross]
    return legs


def _pedestal(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    caster = 0.025 if d["has_casters"] else 0.0
    arm_y = caster + 0.02
    hub_r = 2.0 * d["column_radius"]
    parts = [
        _strut([0, arm_y, 0], [0, f.bottom + 0.5 * d["seat_thickness"], 0], d["column_radius"]),
        _strut([0, arm_y - 0.02, 0], [0, arm_y + 0.035, 0], hub_r),
        _strut([0, f.bottom - 0.02, 0], [0, f.bottom + 0.01, 0], 2.5 * d["column_radius"], sides=4),
    ]
    n, reach = d["star_arms"], d["star_radius"]
    for i in range(n):
        ang = 2 * np.pi * (i + 0.5) / n
        tip = np.array([reach * math.sin(ang), arm_y, reach * math.cos(ang)])
        parts.append(_strut([0, arm_y + 0.01, 0], tip, 0.022, 0.013, sides=6))
        if caster:
            parts.append(_ball(tip - np.array([0.0, caster - 0.003, 0.0]), caster))
    return parts


def _sled(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    r = d["tube_radius"]
    top_y = f.bottom + 0.5 * d["seat_thickness"]
    tubes: list[m.Manifold] = []
    for sx in (-1, 1):
        x, z = f.corner(sx, 1, d["leg_inset"])
        path = [
            np.array(p)
            for p in ([x, top_y, z], [x, r, z + 0.06], [x, r, -f.half_d - 0.04], [x, top_y, -0.6 * f.half_d])
        ]
        tubes += [_strut(a, b, r) for a, b in zip(path[:-1], path[1:], strict=True)]
        tubes += [_ball(p, r) for p in path[1:-1]]
    return tubes


def _arms(d: dict[str, Any], f: _ChairFrame) -> list[m.Manifold]:
    h, w = d["arm_height"], d["arm_width"]
    y_top, pad = f.top + h, 0.03
    z_back = f.back_z_at(h)
    z_front = f.half_d - 0.02
    pieces = []
    for sx in (-1, 1):
        x = sx * (f.corner(1, 1, 0.0)[0] - w / 2)
        rest = _box([x - w / 2, y_top - pad, z_back], [x + w / 2, y_top, z_front])
        if d["arm_style"] == "panel":
            support = _box([x - 0.3 * w, f.bottom + 0.01, z_back], [x + 0.3 * w, y_top - 0.5 * pad, z_front])
        else:
            post_z = z_front - 0.03
            post_r = 0.2 * w + 0.008
            support = _strut([x, f.bottom + 0.01, post_z], [x, y_top - 0.5 * pad, post_z], post_r)
        pieces.append(rest + support)
    return pieces


_BASES: dict[str, Callable[[dict[str, Any], _ChairFrame], list[m.Manifold]]] = {
    "four_legs": _four_legs,
    "pedestal": _pedestal,
    "sled": _sled,
}


def _build_chair(d: dict[str, Any]) -> Pieces:
    """Parts in category order: back, seat, leg, arm."""
    f = _chair_frame(d)
    arms = _arms(d, f) if d["has_arms"] else []
    return [_back(d, f), _seat(d, f), _BASES[d["base_type"]](d, f), arms]


_DESIGNS: dict[str, tuple[Callable[[_Sampler], dict[str, Any]], Callable[[dict[str, Any]], Pieces]]] = {
    "airplane": (_sample_airplane, _build_airplane),
    "chair": (_sample_chair, _build_chair),
}


# ----------------------------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------------------------


def _checked(solid: m.Manifold, what: str) -> m.Manifold:
    if solid.status() != m.Error.NoError or solid.is_empty():
        raise RuntimeError(f"procedural {what}: manifold3d produced an invalid solid ({solid.status()})")
    return solid


def _mesh_arrays(mesh: m.Mesh64) -> tuple[np.ndarray, np.ndarray]:
    return (np.array(mesh.vert_properties[:, :3], dtype=np.float64), np.array(mesh.tri_verts, dtype=np.int64))


def _union_with_labels(pieces: Pieces) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[m.Manifold | None]]:
    """Exact union of the parts; each face labelled by the part it came from (manifold provenance)."""
    parts: list[m.Manifold | None] = []
    label_of_id: dict[int, int] = {}
    for i, group in enumerate(pieces):
        if not group:
            parts.append(None)
            continue
        part = _checked(m.Manifold.batch_boolean(group, m.OpType.Add), f"part {i}").as_original()
        label_of_id[part.original_id()] = i
        parts.append(part)
    union = _checked(m.Manifold.batch_boolean([p for p in parts if p is not None], m.OpType.Add), "union")
    mesh = union.to_mesh64()
    vertices, faces = _mesh_arrays(mesh)
    labels = np.full(len(faces), -1, dtype=np.int64)
    bounds = np.asarray(mesh.run_index, dtype=np.int64) // 3
    for k, original in enumerate(np.asarray(mesh.run_original_id).tolist()):
        labels[bounds[k] : bounds[k + 1]] = label_of_id.get(original, -1)
    if (labels < 0).any():
        raise RuntimeError("procedural union: faces without part provenance")
    return vertices, faces, labels, parts


def _validate_generation_args(category: str, index: int, seed: int) -> str:
    name = get_category(category).name
    if name not in PROCEDURAL_CATEGORIES:
        raise InputError(
            f"category '{category}'",
            f"no procedural generator; expected one of {', '.join(PROCEDURAL_CATEGORIES)}",
        )
    for label, value in (("index", index), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise InputError(label, f"expected a non-negative integer, got {value!r}")
    return name


def generate_shape(category: str, index: int, seed: int, split: str = "train") -> PreparedShape:
    """One procedural shape, a pure function of (category, index, seed) so datasets are reproducible.

    The surface is the exact boolean union of the part volumes with per-face part labels; `parts`
    holds each part's closed volume (None for parts this design lacks), all normalized with the same
    bbox-centred transform into [-0.475, 0.475]^3. `meta` records the sampled design parameters.
    """
    name = _validate_generation_args(category, index, seed)
    if split not in SPLITS:
        raise InputError("split", f"expected one of {', '.join(SPLITS)}, got {split!r}")
    sample, build = _DESIGNS[name]
    design = sample(_Sampler(_shape_rng(int(seed), name, int(index))))
    vertices, faces, labels, parts = _union_with_labels(build(design))
    centre, scale = normalization(vertices, center="bbox")
    part_meshes: list[PartMesh | None] = []
    for part in parts:
        if part is None:
            part_meshes.append(None)
            continue
        pv, pf = _mesh_arrays(part.to_mesh64())
        part_meshes.append(PartMesh(apply_normalization(pv, centre, scale), pf))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "index": int(index),
        **design,
        "normalization_center": [float(c) for c in centre],
        "normalization_scale": float(scale),
    }
    return PreparedShape(
        shape_id=f"proc-{name}-{int(index):05d}",
        category=name,
        split=split,
        source="procedural",
        vertices=apply_normalization(vertices, centre, scale),
        faces=faces,
        face_labels=labels,
        parts=part_meshes,
        meta=meta,
    )


# ----------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------


def _validate_ratios(split_ratios: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(split_ratios) - set(SPLITS))
    if unknown:
        raise InputError("split_ratios", f"unknown split(s) {unknown}; expected keys among {list(SPLITS)}")
    ratios = {k: float(split_ratios.get(k, 0.0)) for k in SPLITS}
    if any(not math.isfinite(r) or r < 0 for r in ratios.values()):
        raise InputError("split_ratios", f"ratios must be finite and >= 0, got {split_ratios}")
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise InputError("split_ratios", f"ratios must sum to 1, got {sum(ratios.values()):.6g}")
    return ratios


def _split_sizes(n: int, ratios: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding; then every split with a positive ratio gets >= 1 shape if n allows."""
    exact = {k: n * r for k, r in ratios.items()}
    sizes = {k: int(math.floor(v)) for k, v in exact.items()}
    by_remainder = sorted(SPLITS, key=lambda k: (-(exact[k] - sizes[k]), SPLITS.index(k)))
    for k in by_remainder[: n - sum(sizes.values())]:
        sizes[k] += 1
    wanted = [k for k in SPLITS if ratios[k] > 0]
    if n >= len(wanted):
        for k in wanted:
            if sizes[k] == 0:
                donor = max(SPLITS, key=lambda j: sizes[j])
                sizes[donor] -= 1
                sizes[k] += 1
    return sizes


def exact_split_sizes(n: int, split_sizes: dict[str, int], where: str = "split_sizes") -> dict[str, int]:
    """Exact shapes per split (e.g. the reference's 3,237 / 202 / 606), checked against the count."""
    unknown = sorted(set(split_sizes) - set(SPLITS))
    if unknown:
        raise InputError(where, f"unknown split(s) {unknown}; expected keys among {list(SPLITS)}")
    sizes = {k: split_sizes.get(k, 0) for k in SPLITS}
    if any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in sizes.values()):
        raise InputError(where, f"expected non-negative integers, got {split_sizes}")
    if sum(sizes.values()) != n:
        raise InputError(where, f"sizes {sizes} sum to {sum(sizes.values())}, but the count is {n}")
    return {k: int(v) for k, v in sizes.items()}


def assign_splits(
    category: str,
    n: int,
    seed: int,
    split_ratios: dict[str, float],
    split_sizes: dict[str, int] | None = None,
) -> list[str]:
    """Split of each index 0..n-1: a seeded shuffle of the indices cut by the ratios, or by `split_sizes`
    (exact shapes per split, summing to n) when given."""
    if split_sizes is not None:
        sizes = exact_split_sizes(n, split_sizes)
    else:
        sizes = _split_sizes(n, _validate_ratios(split_ratios))
    order = np.random.default_rng([seed, zlib.crc32(category.encode("utf-8")), _SPLIT_SALT]).permutation(n)
    out = [""] * n
    start = 0
    for k in SPLITS:
        for idx in order[start : start + sizes[k]]:
            out[int(idx)] = k
        start += sizes[k]
    return out


def generate_dataset(
    counts: dict[str, int],
    seed: int,
    split_ratios: dict[str, float],
    split_sizes: dict[str, int] | None = None,
) -> Iterator[PreparedShape]:
    """Yield `counts[category]` shapes per category with deterministic split assignment (by the ratios, or
    exactly `split_sizes` shapes per split of each category).

    Arguments are all validated before the first shape is generated, so a bad call fails fast.
    """
    ratios = _validate_ratios(split_ratios)
    plan: list[tuple[str, list[str]]] = []
    for category, count in counts.items():
        name = _validate_generation_args(category, 0, seed)
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise InputError(f"counts['{category}']", f"expected a non-negative integer, got {count!r}")
        plan.append((name, assign_splits(name, int(count), int(seed), ratios, split_sizes)))
    for name, splits in plan:
        for index, split in enumerate(splits):
            yield generate_shape(name, index, seed, split)
