"""Procedural chairs: a sampled `ChairDesign`, then its part volumes (back, seat, base, arms).

Frame: up is +y, width along x, the back at -z and the front at +z.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import manifold3d as m
import numpy as np

from shd.data.procedural.primitives import (
    SMALL_SEGMENTS,
    Pieces,
    ball,
    box,
    strut,
    superellipse,
    superellipse_y,
)
from shd.data.procedural.rng import Sampler

CHAIR_BASES = ("four_legs", "pedestal", "sled")
SEAT_SHAPES = ("rectangular", "rounded")
BACK_STYLES = ("panel", "slats")
ARM_STYLES = ("post", "panel")


@dataclass(frozen=True)
class ChairDesign:
    """The sampled parameters of one chair (lengths in metres-like units, angles in degrees); kept in the
    shape's `meta` so a user can see why a shape looks as it does."""

    seat_width: float
    seat_depth: float
    seat_height: float
    seat_thickness: float
    seat_shape: Literal["rectangular", "rounded"]
    back_style: Literal["panel", "slats"]
    back_height: float
    back_tilt_deg: float
    back_thickness: float
    back_width_ratio: float
    back_top_round: float
    n_slats: int
    base_type: Literal["four_legs", "pedestal", "sled"]
    leg_profile: Literal["square", "round"]
    leg_thickness: float
    leg_taper: float
    leg_splay_deg: float
    leg_inset: float
    has_stretchers: bool
    star_arms: int
    star_radius: float
    has_casters: bool
    column_radius: float
    tube_radius: float
    has_arms: bool
    arm_style: Literal["post", "panel"]
    arm_height: float
    arm_width: float
    seat_roundness: float


def sample_chair(s: Sampler) -> ChairDesign:
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
    return ChairDesign(**d)


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
        pts = superellipse(self.half_w, self.half_d, self.roundness, 8)[1]  # the 45 degree point
        k = 1.0 - inset / min(self.half_w, self.half_d)
        return sx * pts[0] * k, sz * pts[1] * k


def _chair_frame(d: ChairDesign) -> _ChairFrame:
    half_w, half_d, p = d.seat_width / 2, d.seat_depth / 2, d.seat_roundness
    back_half_w = half_w * d.back_width_ratio
    edge = superellipse_y(half_w, half_d, p, 0.5 * back_half_w)
    return _ChairFrame(
        half_w,
        half_d,
        d.seat_height,
        d.seat_height - d.seat_thickness,
        p,
        -edge + 0.5 * d.back_thickness,
        math.radians(d.back_tilt_deg),
    )


def _extrude_xz(outline: np.ndarray, y0: float, thickness: float) -> m.Manifold:
    """A slab with an (x, z) outline between heights y0 and y0 + thickness."""
    slab = m.CrossSection([outline]).extrude(thickness)  # (a, b, c) -> (x, y=c, z=-b): a rotation
    return slab.transform([[1, 0, 0, 0], [0, 0, 1, y0], [0, -1, 0, 0]])


def _seat(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    return [_extrude_xz(superellipse(f.half_w, f.half_d, f.roundness), f.bottom, d.seat_thickness)]


def _back_outline(width: float, height: float, round_frac: float) -> m.CrossSection:
    """Rectangle with a rounded top (a superellipse cap of height round_frac * height)."""
    cap = max(round_frac * height, 1e-3)
    rect = m.CrossSection.square([width, height - cap]).translate([-width / 2, 0.0])
    top = m.CrossSection([superellipse(width / 2, cap, 3.0)]).translate([0.0, height - cap])
    return rect + top


def _back(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    width = 2 * f.half_w * d.back_width_ratio
    height, t = d.back_height, d.back_thickness
    sink = 0.8 * d.seat_thickness  # bury the bottom of the back in the seat
    total = height + sink
    if d.back_style == "panel":
        outline = _back_outline(width, total, d.back_top_round)
    else:
        post, rail = 0.12 * width, 0.18 * height
        frame = [
            m.CrossSection.square([post, total]).translate([side, 0.0])
            for side in (-width / 2, width / 2 - post)
        ]
        frame.append(m.CrossSection.square([width, rail]).translate([-width / 2, total - rail]))
        n = d.n_slats
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


def _four_legs(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    r0 = d.leg_thickness
    sides = 4 if d.leg_profile == "square" else SMALL_SEGMENTS
    spread = f.bottom * math.tan(math.radians(d.leg_splay_deg))
    tops, feet = {}, {}
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = f.corner(sx, sz, d.leg_inset)
            tops[sx, sz] = np.array([x, f.bottom + 0.5 * d.seat_thickness, z])
            feet[sx, sz] = np.array([x + sx * spread, 0.0, z + sz * spread])
    legs = [strut(feet[k], tops[k], r0 * d.leg_taper, r0, sides, horizontal_ends=True) for k in tops]
    if d.has_stretchers:
        h = 0.3 * f.bottom

        def at(k: tuple[int, int]) -> np.ndarray:
            return feet[k] + (tops[k] - feet[k]) * h / (tops[k][1] - feet[k][1])

        rod = 0.45 * r0
        sides_bars = [strut(at((sx, -1)), at((sx, 1)), rod) for sx in (-1, 1)]
        cross = strut(0.5 * (at((-1, -1)) + at((-1, 1))), 0.5 * (at((1, -1)) + at((1, 1))), rod)
        legs += sides_bars + [cross]
    return legs


def _pedestal(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    caster = 0.025 if d.has_casters else 0.0
    arm_y = caster + 0.02
    hub_r = 2.0 * d.column_radius
    parts = [
        strut([0, arm_y, 0], [0, f.bottom + 0.5 * d.seat_thickness, 0], d.column_radius),
        strut([0, arm_y - 0.02, 0], [0, arm_y + 0.035, 0], hub_r),
        strut([0, f.bottom - 0.02, 0], [0, f.bottom + 0.01, 0], 2.5 * d.column_radius, sides=4),
    ]
    n, reach = d.star_arms, d.star_radius
    for i in range(n):
        ang = 2 * np.pi * (i + 0.5) / n
        tip = np.array([reach * math.sin(ang), arm_y, reach * math.cos(ang)])
        parts.append(strut([0, arm_y + 0.01, 0], tip, 0.022, 0.013, sides=6))
        if caster:
            parts.append(ball(tip - np.array([0.0, caster - 0.003, 0.0]), caster))
    return parts


def _sled(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    r = d.tube_radius
    top_y = f.bottom + 0.5 * d.seat_thickness
    tubes: list[m.Manifold] = []
    for sx in (-1, 1):
        x, z = f.corner(sx, 1, d.leg_inset)
        path = [
            np.array(p)
            for p in ([x, top_y, z], [x, r, z + 0.06], [x, r, -f.half_d - 0.04], [x, top_y, -0.6 * f.half_d])
        ]
        tubes += [strut(a, b, r) for a, b in zip(path[:-1], path[1:], strict=True)]
        tubes += [ball(p, r) for p in path[1:-1]]
    return tubes


def _arms(d: ChairDesign, f: _ChairFrame) -> list[m.Manifold]:
    h, w = d.arm_height, d.arm_width
    y_top, pad = f.top + h, 0.03
    z_back = f.back_z_at(h)
    z_front = f.half_d - 0.02
    pieces = []
    for sx in (-1, 1):
        x = sx * (f.corner(1, 1, 0.0)[0] - w / 2)
        rest = box([x - w / 2, y_top - pad, z_back], [x + w / 2, y_top, z_front])
        if d.arm_style == "panel":
            support = box([x - 0.3 * w, f.bottom + 0.01, z_back], [x + 0.3 * w, y_top - 0.5 * pad, z_front])
        else:
            post_z = z_front - 0.03
            post_r = 0.2 * w + 0.008
            support = strut([x, f.bottom + 0.01, post_z], [x, y_top - 0.5 * pad, post_z], post_r)
        pieces.append(rest + support)
    return pieces


_BASES: dict[str, Callable[[ChairDesign, _ChairFrame], list[m.Manifold]]] = {
    "four_legs": _four_legs,
    "pedestal": _pedestal,
    "sled": _sled,
}


def build_chair(d: ChairDesign) -> Pieces:
    """Parts in category order: back, seat, leg, arm."""
    f = _chair_frame(d)
    arms = _arms(d, f) if d.has_arms else []
    return [_back(d, f), _seat(d, f), _BASES[d.base_type](d, f), arms]
