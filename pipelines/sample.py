"""DVC stage `sample`: occupancy points with part labels + evaluation surface clouds, in shards."""

import json

from shd import paths
from shd.config import load_params, section_config
from shd.data.sampling import SamplingConfig, sample_shapes
from shd.stage import console, main, progress_bar


def run() -> None:
    cfg = section_config(load_params(), "sample", SamplingConfig)
    validated = json.loads((paths.VALIDATED / "shapes.json").read_text(encoding="utf-8"))
    shapes = [paths.PREPARED / s["file"] for s in validated["shapes"]]
    with progress_bar("sample", total=len(shapes)) as advance:
        summary = sample_shapes(shapes, paths.SAMPLES, cfg, validated["categories"], progress=advance)
    console.print(
        f"sampled {summary['n_shapes']} shapes into {summary['n_shards']} shards "
        f"({summary['reused_shards']} reused from an earlier run)"
    )


if __name__ == "__main__":
    main(run)
