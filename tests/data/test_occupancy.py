import numpy as np

from shd.data.occupancy import OUTSIDE, inside, label_by_nearest_point, occupancy_and_labels


def test_inside_matches_box_geometry(plane):
    s = plane.meta["scale"]
    q = np.array(
        [
            [0.0, 0.0, 0.0],  # centre: body and wing overlap
            [0.4 * s, 0.0, 0.0],  # in the body, near its nose
            [0.0, 0.0, 0.7 * s],  # in the wing, far out
            [0.0, 0.3 * s, 0.0],  # above everything
            [0.45, 0.45, 0.45],
        ]
    )  # corner of the cube
    assert inside(plane.vertices, plane.faces, q).tolist() == [True, True, True, False, False]


def test_labels_follow_part_volumes(plane):
    s = plane.meta["scale"]
    q = np.array(
        [
            [0.4 * s, 0.0, 0.0],
            [0.0, 0.0, 0.7 * s],
            [0.0, 0.3 * s, 0.0],
            [0.0, 0.09 * s, 0.0],  # inside body only (above the thin wing)
            [0.0, 0.0, 0.15 * s],
        ]
    )  # in the wing, just outside the body (body half-width 0.1)
    occ, labels = occupancy_and_labels(plane, q, np.random.default_rng(0))
    assert occ.tolist() == [True, True, False, True, True]
    assert labels[:4].tolist() == [0, 1, OUTSIDE, 0]
    assert labels[4] == 1


def test_overlap_goes_to_nearest_part_surface(plane):
    s = plane.meta["scale"]
    # Inside both volumes; the wing's top face (y = 0.02) is nearer than any body face (>= 0.08 away).
    q = np.array([[0.0, 0.015 * s, 0.0]])
    _, labels = occupancy_and_labels(plane, q, np.random.default_rng(0))
    assert labels.tolist() == [1]


def test_nearest_point_labels():
    pts = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    vals = np.array([2, 3])
    q = np.array([[0.1, 0, 0], [0.9, 0.1, 0]])
    assert label_by_nearest_point(pts, vals, q).tolist() == [2, 3]
