"""Evaluation: meshing fields, sampling point clouds, distance metrics, renders.

Modules are imported directly (`shd.eval.meshing`, `shd.eval.metrics`, ...) so that a caller that
only needs metrics does not pay for matplotlib or trimesh.
"""
