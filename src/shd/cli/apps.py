"""`shd hybrid | interpolate | complete`: part-level edits of shapes in weight space; `shd apps`: all three

Options left unset take their defaults from the `apps` section of params.yaml (`--params`), so the
command line and the pipeline agree; each command writes its folder (`--out`) with meshes, renders,
the edited weights and `summary.json`, and prints where.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from shd import paths
from shd.cli.common import (
    DEFAULT_MODEL,
    MODEL_HELP,
    PARENT_HELP,
    check_device,
    check_model,
    clear_errors,
    out_folder,
)

Model = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]
Weights = Annotated[Path, typer.Option("--weights", help="Weight set for shape-id parents.")]
Params = Annotated[
    Path,
    typer.Option(
        "--params",
        help="params.yaml whose `apps` section gives the defaults (built-in defaults when absent).",
    ),
]
Device = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda[:index] [apps.device].")]
Steps = Annotated[
    int | None,
    typer.Option("--steps", help="DDIM steps of a full chain [apps.steps].", min=1),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of sampling / harmonizing [apps.seed].")]
Resolution = Annotated[int | None, typer.Option("--resolution", help="Mesh grid [apps.resolution].", min=8)]
Category = Annotated[
    str | None,
    typer.Option(
        "--category",
        help="Category of sampled parents (default: the shape-id parent's, or the model's first).",
    ),
]


def _check(model: str, device: str | None) -> None:
    """What the arguments alone can tell, before torch is imported (seconds)."""
    check_device(device)
    check_model(model)


def _config(params: Path, **overrides: Any):
    """The `apps` section of `params` (defaults if the file is absent) with the given options set."""
    from shd.apps.config import AppsConfig
    from shd.config import load_params, section_config

    cfg = AppsConfig()
    if params.exists():
        cfg = section_config(load_params(params), "apps", AppsConfig, str(params))
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def _open(model: str, weights: Path, cfg, sources: list[str]):
    """The sampler (on the configured device) and the weight set (None when absent and not needed)."""
    from shd.apps.parents import parse_source
    from shd.devices import resolve_device
    from shd.fields.weight_set import WeightSet
    from shd.tracking.model_ref import load_sampler

    needs_weights = any(parse_source(s)[0] == "shape" for s in sources)
    weight_set = WeightSet.open(weights) if (needs_weights or weights.exists()) else None
    return load_sampler(model, resolve_device(cfg.device, "--device")), weight_set


def _done(summary: dict, out: Path) -> None:
    typer.echo(f"wrote {out} ({len([m for m in _meshes(summary) if m['file']])} meshes, summary.json)")


def _meshes(summary: dict) -> list[dict]:
    if "methods" in summary:
        return [m for r in summary["methods"].values() for m in r["meshes"]]
    return summary["meshes"]


def _cd(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


@clear_errors
def hybrid(
    parts_a: Annotated[
        str | None,
        typer.Option("--parts-a", help="Parts taken from parent A, comma-separated (unnamed parts: A)."),
    ] = None,
    parts_b: Annotated[
        str | None, typer.Option("--parts-b", help="Parts taken from parent B, comma-separated.")
    ] = None,
    parent_a: Annotated[str, typer.Option("--parent-a", help="Parent A: " + PARENT_HELP)] = "sample:0",
    parent_b: Annotated[str, typer.Option("--parent-b", help="Parent B: " + PARENT_HELP)] = "sample:1",
    harmonize: Annotated[
        float | None,
        typer.Option(
            "--harmonize",
            help="SDEdit strength s: noise the "
            "stitched weights to t = s*T and "
            "denoise; 0 = stitched as is "
            "[apps.harmonize].",
        ),
    ] = None,
    n: Annotated[int, typer.Option("-n", help="Harmonized variants (seeds seed..seed+n-1).")] = 1,
    model: Model = DEFAULT_MODEL,
    weights: Weights = paths.WEIGHTS,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = paths.APPS_REPORTS / "hybrid",
    category: Category = None,
    steps: Steps = None,
    seed: Seed = None,
    resolution: Resolution = None,
    device: Device = None,
    params: Params = Path("params.yaml"),
) -> None:
    """A hybrid shape: each part's expert from parent A or B, optionally harmonized.

    Writes parent/hybrid meshes, strip.png (parent A | parent B | stitched | harmonized), the weights
    and summary.json (which part from where, CD of each hybrid part to the part it came from).

    Examples:

      shd hybrid --parts-a engine --parts-b body,wing,tail --harmonize 0.2 -n 2

      shd hybrid --parent-a proc-airplane-00003 --parent-b sample:7 --parts-b wing --harmonize 0
    """
    _check(model, device)
    from shd.apps.hybrid import run_hybrid

    cfg = _config(params, steps=steps, seed=seed, resolution=resolution, device=device)
    with out_folder(out):
        sampler, weight_set = _open(model, weights, cfg, [parent_a, parent_b])
        summary = run_hybrid(
            sampler,
            out,
            parts_a=parts_a,
            parts_b=parts_b,
            parent_a=parent_a,
            parent_b=parent_b,
            weights=weight_set,
            n=n,
            harmonize=harmonize,
            category=category,
            cfg=cfg,
        )
    fid = summary["part_cd_to_source"]
    typer.echo(
        "part CD to its source (stitched): "
        + ", ".join(f"{p} [{summary['sources'][p].upper()}] {_cd(c)}" for p, c in fid["stitched"].items())
    )
    for i, row in enumerate(fid["harmonized"]):
        typer.echo(
            f"part CD to its source (harmonized #{i}): " + ", ".join(f"{p} {_cd(c)}" for p, c in row.items())
        )
    _done(summary, out)


@clear_errors
def interpolate(
    parent_a: Annotated[str, typer.Option("--parent-a", help="Start parent: " + PARENT_HELP)],
    parent_b: Annotated[str, typer.Option("--parent-b", help="End parent: " + PARENT_HELP)],
    part: Annotated[
        str, typer.Option("--part", help="The part whose expert is blended (others fixed to parent A's).")
    ],
    frames: Annotated[
        int | None,
        typer.Option("--frames", help="Frames, both parents included [apps.interp_steps].", min=2),
    ] = None,
    model: Model = DEFAULT_MODEL,
    weights: Weights = paths.WEIGHTS,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = paths.APPS_REPORTS / "interpolate",
    category: Category = None,
    steps: Steps = None,
    resolution: Resolution = None,
    device: Device = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Blend one part's expert from parent A to parent B (linear and slerp in the model's normalized
    space), all other parts fixed to A's; writes meshes, a PNG strip and a GIF per method and the CD
    between consecutive frames (jump = largest step CD / mean step CD) in summary.json.

    Examples:

      shd interpolate --parent-a proc-airplane-00000 --parent-b proc-airplane-00005 --part wing --frames 8

      shd interpolate --parent-a sample:0 --parent-b sample:1 --part engine
    """
    _check(model, device)
    from shd.apps.interpolate import run_interpolate

    cfg = _config(params, steps=steps, resolution=resolution, device=device)
    with out_folder(out):
        sampler, weight_set = _open(model, weights, cfg, [parent_a, parent_b])
        summary = run_interpolate(
            sampler,
            out,
            a=parent_a,
            b=parent_b,
            part=part,
            weights=weight_set,
            frames=frames,
            category=category,
            cfg=cfg,
        )
    for method, r in summary["methods"].items():
        done = [c for c in r["step_cd"] if c is not None]  # None: a frame without a mesh
        typer.echo(
            f"{method}: step CD max {_cd(max(done, default=None))} over {len(done)}/"
            f"{len(r['step_cd'])} steps, jump {_cd(r['jump'])}"
        )
    _done(summary, out)


@clear_errors
def complete(
    parent: Annotated[str, typer.Option("--parent", help="The shape to complete: " + PARENT_HELP)],
    keep: Annotated[
        str, typer.Option("--keep", help="Parts kept (comma-separated); the others are generated.")
    ],
    n: Annotated[int, typer.Option("-n", help="Completions (one batch, seeded by --seed).")] = 1,
    resample: Annotated[
        int | None,
        typer.Option(
            "--resample", help="RePaint resampling: each denoising step taken R times [apps.resample]."
        ),
    ] = None,
    harmonize: Annotated[
        float,
        typer.Option("--harmonize", help="Optional SDEdit pass afterwards (then kept parts change too)."),
    ] = 0.0,
    model: Model = DEFAULT_MODEL,
    weights: Weights = paths.WEIGHTS,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = paths.APPS_REPORTS / "complete",
    category: Category = None,
    steps: Steps = None,
    seed: Seed = None,
    resolution: Resolution = None,
    device: Device = None,
    params: Params = Path("params.yaml"),
) -> None:
    """Keep some parts of a shape and generate the others to fit them (inpainting on expert tokens:
    at every step the kept tokens are the forward-noised originals, RePaint-style). Kept parts stay
    bit-identical in the output weights (unless --harmonize > 0).

    Examples:

      shd complete --parent proc-airplane-00002 --keep body,wing -n 4

      shd complete --parent sample:3 --keep body --resample 5
    """
    _check(model, device)
    from shd.apps.complete import run_complete

    cfg = _config(params, steps=steps, seed=seed, resolution=resolution, device=device)
    with out_folder(out):
        sampler, weight_set = _open(model, weights, cfg, [parent])
        summary = run_complete(
            sampler,
            out,
            source=parent,
            keep=keep,
            weights=weight_set,
            n=n,
            resample=resample,
            harmonize=harmonize,
            category=category,
            cfg=cfg,
        )
    visible = [p for p in summary["generated"] if p not in summary["empty_generated"]]
    typer.echo(
        f"kept {', '.join(summary['kept'])} (bit-identical: {summary['kept_bit_identical']}), "
        f"generated {', '.join(visible) or 'no visible part'}"
    )
    if summary["warning"]:
        typer.echo(f"warning: {summary['warning']}", err=True)
    _done(summary, out)


@clear_errors
def apps(
    model: Model = DEFAULT_MODEL,
    weights: Weights = paths.WEIGHTS,
    samples: Annotated[
        Path, typer.Option("--samples", help="Sample set (the completion test split).")
    ] = paths.SAMPLES,
    out: Annotated[Path, typer.Option("--out", help="Folder of the example folders.")] = paths.APPS_REPORTS,
    metrics: Annotated[Path, typer.Option("--metrics", help="Quality figures JSON.")] = paths.APPS_METRICS,
    device: Device = None,
    params: Params = Path("params.yaml"),
) -> None:
    """All three applications on the trained model for the evaluation report (`make apps`; not a DVC
    stage: minutes of meshing on a CPU). Writes one example folder per command under --out (meshes,
    PNG strips, GIFs, summary.json) and, last, the quality figures to --metrics: hybrid part fidelity,
    completion 1-NNA against the test split (kept experts bit-identical), interpolation smoothness.
    """
    _check(model, device)
    from shd.apps.examples import write_examples
    from shd.apps.quality import quality_figures, write_quality
    from shd.data.sample_store import SampleSet
    from shd.devices import resolve_device
    from shd.fields.weight_set import WeightSet
    from shd.tracking.model_ref import load_sampler

    cfg = _config(params, device=device)
    sampler, weight_set = load_sampler(model, resolve_device(cfg.device, "--device")), WeightSet.open(weights)
    write_examples(sampler, weight_set, out, cfg=cfg)
    report = quality_figures(sampler, weight_set, SampleSet.open(samples), cfg=cfg)
    write_quality(metrics, report)
    stitched = report["hybrid"]["variants"]["stitched"]["mean_part_cd"]
    comp = report["completion"]
    typer.echo(
        f"apps ({report['category']}): hybrid part CD to source {stitched}, completion 1-NNA "
        f"{comp['completion']['nna']} (kept bit-identical: {comp['kept_bit_identical']}), "
        f"interpolation jump linear {report['interpolation']['linear']['mean_jump']}; wrote {out}, {metrics}"
    )


def register(app: typer.Typer) -> None:
    """Add the four commands at the top level of `app`."""
    for fn in (hybrid, interpolate, complete, apps):
        app.command(fn.__name__)(fn)
