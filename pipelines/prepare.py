"""DVC stage `prepare`: make the part-labelled shapes (procedural default, or ShapeNetPart import)."""

from shd import paths
from shd.config import load_params, section_config
from shd.data.prepare import PrepareConfig, prepare
from shd.stage import console, main, progress_bar


def run() -> None:
    cfg = section_config(load_params(), "prepare", PrepareConfig)
    total = sum(cfg.counts.values()) if cfg.source == "procedural" else None
    with progress_bar("prepare", total=total) as advance:
        summary = prepare(cfg, paths.PREPARED, progress=advance)
    console.print(f"prepared {summary['n_shapes']} shapes, {summary['n_errors']} per-shape errors")


if __name__ == "__main__":
    main(run)
