"""Procedural airplanes: a sampled `AirplaneDesign`, then its part volumes (body, wing, tail, engine).

Frame: up is +y, fuselage along x with the nose at +x, span along z.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import manifold3d as m
import numpy as np

from shd.data.procedural.primitives import EY, EZ, SEGMENTS, Pieces, Planform, box, revolve_x
from shd.data.procedural.rng import Sampler

WING_TYPES = ("straight", "swept", "delta")
TAIL_TYPES = ("conventional", "t_tail", "fin_only")
ENGINE_PLACEMENTS = ("none", "under_wing", "rear_fuselage")


@dataclass(frozen=True)
class AirplaneDesign:
    """The sampled parameters of one airplane (lengths in fuselage lengths, angles in degrees); kept in
    the shape's `meta` so a user can see why a shape looks as it does."""

    fuselage_length: float
    fuselage_radius: float
    nose_length: float
    nose_shape: float
    tail_cone_length: float
    tail_taper: float
    tail_upsweep: float
    wing_type: Literal["straight", "swept", "delta"]
    wing_sweep_deg: float
    wing_taper: float
    wing_semispan: float
    wing_root_chord: float
    wing_thickness: float
    wing_le_x: float
    wing_mount: Literal["low", "mid", "high"]
    wing_dihedral_deg: float
    n_engines: int
    engine_placement: Literal["none", "under_wing", "rear_fuselage"]
    nacelle_radius: float
    nacelle_length: float
    engine_spans: tuple[float, ...]
    engine_forward: float
    tail_type: Literal["conventional", "t_tail", "fin_only"]
    fin_height: float
    fin_root_chord: float
    fin_sweep_deg: float
    fin_taper: float
    stab_semispan: float
    stab_root_chord: float
    stab_sweep_deg: float
    stab_taper: float
    stab_dihedral_deg: float


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
        solid = revolve_x(xs, self.radius_at(xs), SEGMENTS)

        def upsweep(v: np.ndarray) -> np.ndarray:
            out = np.array(v, dtype=np.float64)
            out[:, 1] += self.center_y(out[:, 0])
            return out

        return solid.warp_batch(upsweep)


def _sample_wing(s: Sampler) -> dict[str, Any]:
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


def sample_airplane(s: Sampler) -> AirplaneDesign:
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
    d["engine_spans"] = (s.u(0.3, 0.4),) if d["n_engines"] == 2 else (s.u(0.25, 0.33), s.u(0.55, 0.65))
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
    return AirplaneDesign(**d)


def _fuselage_of(d: AirplaneDesign) -> _Fuselage:
    return _Fuselage(
        d.fuselage_radius,
        d.nose_length,
        d.nose_shape,
        d.tail_cone_length,
        d.tail_taper,
        d.tail_upsweep,
    )


def _wing_of(d: AirplaneDesign, body: _Fuselage) -> Planform:
    mount_y = {"low": -0.45, "mid": 0.0, "high": 0.45}[d.wing_mount] * body.radius
    return Planform(
        le_root=np.array([d.wing_le_x, mount_y, 0.0]),
        span_dir=EZ,
        thick_dir=EY,
        semispan=d.wing_semispan,
        c_root=d.wing_root_chord,
        c_tip=d.wing_root_chord * d.wing_taper,
        sweep_deg=d.wing_sweep_deg,
        rise_deg=d.wing_dihedral_deg,
        t_ratio=d.wing_thickness,
    )


def _fin_of(d: AirplaneDesign, body: _Fuselage) -> Planform:
    chord = d.fin_root_chord
    le_x = body.x_tail + 0.03 + chord
    root_y = float(body.center_y(le_x - chord))  # the highest centreline point under the fin root
    return Planform(
        le_root=np.array([le_x, root_y, 0.0]),
        span_dir=EY,
        thick_dir=EZ,
        semispan=d.fin_height,
        c_root=chord,
        c_tip=chord * d.fin_taper,
        sweep_deg=d.fin_sweep_deg,
        rise_deg=0.0,
        t_ratio=0.1,
    )


def _tail_pieces(d: AirplaneDesign, body: _Fuselage) -> list[m.Manifold]:
    fin = _fin_of(d, body)
    pieces = [fin.solid(root_overlap=0.0)]
    if d.tail_type == "fin_only":
        return pieces
    chord = d.stab_root_chord
    if d.tail_type == "t_tail":
        tip_le = fin.le(fin.semispan)
        le = tip_le + np.array([0.1 * fin.c_tip, 0.0, 0.0])
        overlap = 2.0 * fin.half_thickness(fin.semispan)
    else:
        le_x = body.x_tail + 0.02 + chord
        le = np.array([le_x, float(body.center_y(le_x - 0.5 * chord)), 0.0])
        overlap = 0.5 * float(body.radius_at(le_x - 0.5 * chord))
    stab = Planform(
        le_root=le,
        span_dir=EZ,
        thick_dir=EY,
        semispan=d.stab_semispan,
        c_root=chord,
        c_tip=chord * d.stab_taper,
        sweep_deg=d.stab_sweep_deg,
        rise_deg=d.stab_dihedral_deg,
        t_ratio=0.1,
    )
    if d.tail_type == "t_tail":  # sink the stabilizer so its lower half wraps the fin tip
        stab = replace(stab, le_root=le - 0.4 * stab.half_thickness(0.0) * EY)
    pieces.append(stab.pair(overlap))
    return pieces


def _nacelle(front: np.ndarray, radius: float, length: float) -> m.Manifold:
    rel = np.array([1.0, 0.92, 0.7, 0.35, 0.15, 0.03, 0.0])
    scale = np.array([0.55, 0.7, 0.9, 1.0, 1.0, 0.93, 0.85])
    return revolve_x(front[0] - length * rel, radius * scale, 16).translate([0.0, front[1], front[2]])


def _wing_engines(d: AirplaneDesign, wing: Planform) -> list[m.Manifold]:
    r, length = d.nacelle_radius, d.nacelle_length
    pieces = []
    for eta in d.engine_spans:
        span = eta * wing.semispan
        le, chord = wing.le(span), wing.chord(span)
        center_y = le[1] - wing.half_thickness(span) - r * 1.35
        front = np.array([le[0] + d.engine_forward * length, center_y, span])
        x_hi = le[0] - 0.05 * chord
        x_lo = max(x_hi - 0.5 * chord, front[0] - 0.95 * length)
        half_w = 0.25 * r
        pylon = box([x_lo, center_y, span - half_w], [x_hi, le[1], span + half_w])
        half = _nacelle(front, r, length) + pylon
        pieces += [half, half.mirror(EZ)]
    return pieces


def _rear_engines(d: AirplaneDesign, body: _Fuselage) -> list[m.Manifold]:
    r, length = d.nacelle_radius, d.nacelle_length
    fin = _fin_of(d, body)
    front_x = fin.le_root[0] - 0.2 * fin.c_root + length  # beside the fin root, as on a DC-9
    mid_x = front_x - 0.5 * length
    local_r = float(body.radius_at(mid_x))
    y = float(body.center_y(mid_x)) + 0.3 * local_r
    z = local_r + 0.45 * r + r
    pylon = box([mid_x - 0.3 * length, y - 0.15 * r, 0.0], [mid_x + 0.3 * length, y + 0.15 * r, z])
    half = _nacelle(np.array([front_x, y, z]), r, length) + pylon
    return [half, half.mirror(EZ)]


def build_airplane(d: AirplaneDesign) -> Pieces:
    """Parts in category order: body, wing, tail, engine."""
    body = _fuselage_of(d)
    wing = _wing_of(d, body)
    wing_overlap = 0.3 * body.radius
    engines: list[m.Manifold] = []
    if d.engine_placement == "under_wing":
        engines = _wing_engines(d, wing)
    elif d.engine_placement == "rear_fuselage":
        engines = _rear_engines(d, body)
    return [[body.solid()], [wing.pair(wing_overlap)], _tail_pieces(d, body), engines]
