"""Geometry primitives of the part volumes (closed `manifold3d` solids): hulls, struts, boxes, bodies of
revolution, superellipse outlines and lofted airfoil planforms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import manifold3d as m
import numpy as np

SEGMENTS = 24  # circle resolution of bodies of revolution: smooth enough, a few thousand triangles
SMALL_SEGMENTS = 12  # tubes, casters, legs
EX = np.array([1.0, 0.0, 0.0])
EY = np.array([0.0, 1.0, 0.0])
EZ = np.array([0.0, 0.0, 1.0])

Pieces = list[list[m.Manifold]]  # per part index, the solids whose union is that part


def hull(points: np.ndarray) -> m.Manifold:
    return m.Manifold.hull_points(np.ascontiguousarray(points, dtype=np.float64))


def ring(
    center: np.ndarray, radius: float, u: np.ndarray, v: np.ndarray, sides: int, phase: float = 0.0
) -> np.ndarray:
    ang = phase + np.linspace(0.0, 2.0 * np.pi, sides, endpoint=False)
    return center + radius * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)


def _perpendicular_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = direction / np.linalg.norm(direction)
    helper = EY if abs(d[1]) < 0.9 else EX
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def strut(
    p0: Sequence[float],
    p1: Sequence[float],
    r0: float,
    r1: float | None = None,
    sides: int = SMALL_SEGMENTS,
    horizontal_ends: bool = False,
) -> m.Manifold:
    """Convex rod between two points: hull of two regular polygons.

    `horizontal_ends` puts the end polygons in the xz plane (legs standing flat on the floor);
    otherwise they are perpendicular to the rod. `sides=4` gives a square section.
    """
    a, b = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    u, v = (EX, EZ) if horizontal_ends else _perpendicular_basis(b - a)
    phase = np.pi / 4 if sides == 4 else 0.0
    r1 = r0 if r1 is None else r1
    return hull(np.vstack([ring(a, r0, u, v, sides, phase), ring(b, r1, u, v, sides, phase)]))


def box(lo: Sequence[float], hi: Sequence[float]) -> m.Manifold:
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return m.Manifold.cube(hi_a - lo_a).translate(lo_a)


def ball(center: Sequence[float], radius: float) -> m.Manifold:
    return m.Manifold.sphere(radius, SMALL_SEGMENTS).translate(np.asarray(center, dtype=np.float64))


def revolve_x(xs: np.ndarray, rs: np.ndarray, segments: int) -> m.Manifold:
    """Body of revolution about the x axis from a radius profile r(x), xs increasing, rs >= 0.

    The profile is closed along the axis, so an end with r > 0 is a flat cap and one with r = 0 a tip.
    """
    keep = rs > 1e-9
    profile = np.vstack([[0.0, xs[0]], np.column_stack([rs[keep], xs[keep]]), [0.0, xs[-1]]])  # CCW
    solid = m.CrossSection([profile]).revolve(segments)  # axis along z
    # (X, Y, Z) -> (y, z, x): a proper rotation taking the revolution axis onto x.
    return solid.transform([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


def superellipse(a: float, b: float, p: float, n: int = 40) -> np.ndarray:
    """CCW outline |x/a|^p + |y/b|^p = 1: p~2 is an ellipse, large p a rounded rectangle."""
    ang = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(ang), np.sin(ang)
    return np.column_stack([a * np.sign(c) * np.abs(c) ** (2 / p), b * np.sign(s) * np.abs(s) ** (2 / p)])


def superellipse_y(a: float, b: float, p: float, x: float) -> float:
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
class Planform:
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
        return self.le_root + s * self.span_dir - s * sweep * EX + s * rise * self.thick_dir

    def chord(self, s: float) -> float:
        return self.c_root + (self.c_tip - self.c_root) * s / self.semispan

    def half_thickness(self, s: float) -> float:
        return self.t_ratio * self.chord(s) * _AIRFOIL_MAX_HALF

    def _section(self, s: float) -> np.ndarray:
        c = self.chord(s)
        base = self.le(s) - np.outer(c * _AIRFOIL_X, EX)
        off = np.outer(c * self.t_ratio * _AIRFOIL_T, self.thick_dir)
        return np.vstack([base + off, base - off])

    def solid(self, root_overlap: float) -> m.Manifold:
        """Half surface from s = -root_overlap (buried in whatever it attaches to) to the tip."""
        return hull(np.vstack([self._section(-root_overlap), self._section(self.semispan)]))

    def pair(self, root_overlap: float) -> m.Manifold:
        """Both halves, mirrored across z = 0 (they overlap on the buried root stub)."""
        half = self.solid(root_overlap)
        return half + half.mirror(EZ)
