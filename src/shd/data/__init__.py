"""Data layer: part-labelled shapes (procedural or ShapeNetPart), validation, occupancy samples."""
