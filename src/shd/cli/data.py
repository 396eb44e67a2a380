"""`shd data ...`: import ShapeNetPart, generate the embedded dataset, inspect a prepared shape."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shd import paths
from shd.cli.common import clear_errors, out_folder
from shd.errors import InputError

data_app = typer.Typer(
    help="Data commands: import ShapeNetPart, generate the embedded dataset.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@data_app.command("import-shapenetpart")
@clear_errors
def import_shapenetpart(
    root: Annotated[Path, typer.Argument(help="ShapeNetPart folder (v0 or v0_normal layout).")],
    category: Annotated[
        str,
        typer.Option(help="Category name or synset, a comma list, or 'all' (every category in the folder)."),
    ] = "airplane",
    meshes: Annotated[Path | None, typer.Option(help="ShapeNetCore v2 root with the meshes.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for prepared shapes.")] = paths.PREPARED,
    limit: Annotated[int, typer.Option(help="At most this many shapes (0 = all).")] = 0,
    grid_resolution: Annotated[int, typer.Option(help="Winding-number grid for surfaces.")] = 96,
) -> None:
    """Import real ShapeNetPart shapes as prepared shapes (the `prepare` stage's output format).

    Example: shd data import-shapenetpart ~/shapenetpart_v0_normal --category airplane --limit 100
    """
    if not root.exists():
        raise InputError(root, "does not exist; expected a ShapeNetPart folder (v0 or v0_normal layout)")
    from shd.data.prepare import PrepareConfig, prepare
    from shd.stage import progress_bar

    cfg = PrepareConfig(
        source="shapenetpart",
        counts={c: limit for c in _categories(category, root)},
        shapenetpart_root=str(root),
        meshes_root=str(meshes) if meshes else None,
        grid_resolution=grid_resolution,
    )
    with out_folder(out), progress_bar("import", total=None) as advance:
        summary = prepare(cfg, out, progress=advance)
    for name, n in summary["by_category"].items():
        typer.echo(f"  {name:<12} {n['shapes']:>6} shapes  {n['errors']:>4} errors")
    n_categories = sum(1 for n in summary["by_category"].values() if n["shapes"])
    typer.echo(
        f"imported {summary['n_shapes']} shapes of {n_categories} "
        f"categories into {out} ({summary['n_errors']} per-shape errors, listed in {out / 'index.json'})"
    )


def _categories(spec: str, root: Path) -> list[str]:
    """Category names from --category: one name/synset, a comma list, or 'all' (the categories whose
    synset folder exists under `root`, in ShapeNetPart order)."""
    from shd.data.categories import CATEGORIES, get_category

    if spec.strip().lower() == "all":
        found = [c.name for c in CATEGORIES.values() if (root / c.synset).is_dir()]
        if not found:
            raise InputError(root, "no ShapeNetPart category folder (<synset>/) found for --category all")
        return found
    return [get_category(c).name for c in spec.split(",") if c.strip()]


@data_app.command("generate")
@clear_errors
def generate(
    airplane: Annotated[int, typer.Option(help="Number of airplanes.")] = 16,
    chair: Annotated[int, typer.Option(help="Number of chairs.")] = 0,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder for prepared shapes.")] = paths.PREPARED,
) -> None:
    """Generate procedural part-labelled shapes (the embedded default dataset).

    Example: shd data generate --airplane 32 --chair 8 --out /tmp/shapes
    """
    from shd.data.prepare import PrepareConfig, prepare

    cfg = PrepareConfig(source="procedural", counts={"airplane": airplane, "chair": chair}, seed=seed)
    with out_folder(out):
        summary = prepare(cfg, out)
    typer.echo(f"generated {summary['n_shapes']} shapes into {out}")


@data_app.command("show")
@clear_errors
def show(
    shape: Annotated[Path, typer.Argument(help="A prepared shape .npz.")],
) -> None:
    """Print a prepared shape's facts (category, split, faces, part shares, design parameters).

    Example: shd data show data/prepared/shapes/proc-airplane-00000.npz
    """
    import json

    from shd.data.shape import PreparedShape
    from shd.data.shape_stats import shape_stats

    s = PreparedShape.load(shape)
    info = {
        "shape_id": s.shape_id,
        "category": s.category,
        "split": s.split,
        "source": s.source,
        **shape_stats(s),
        "meta": s.meta,
    }
    typer.echo(json.dumps(info, indent=2, default=str))
