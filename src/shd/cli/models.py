"""`shd sample | evaluate | promote | info | ui`: use trained models from a folder, a checkpoint, a
run or the registry (`models:/shd-airplane@champion`), and the MLflow UI over the same store."""

from __future__ import annotations

import json
import os
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from shd import paths
from shd.cli.common import (
    DEFAULT_MODEL,
    MODEL_HELP,
    Device,
    MeshFormat,
    check_choice,
    check_device,
    check_model,
    clear_errors,
    make_out_folder,
    out_folder,
)
from shd.errors import InputError

# A registry that does not answer should fail in seconds, not after MLflow's minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")


class SplitPolicy(StrEnum):
    """What `promote` does when the champion was scored on another test split (registry.POLICIES)."""

    promote = "promote"
    keep = "keep"


MAX_ROUNDS = 4  # sampling rounds that redraw empty meshes before giving up


def _part_names(layout: Any, card_names: list[str] | None = None) -> list[str] | None:
    """Expert order part names: the card's, else the layout's blocks (None for non-semantic fields)."""
    if card_names:
        return list(card_names)
    names = [next((b.part for b in layout.blocks if b.expert == e), None) for e in range(layout.n_experts)]
    return names if all(names) else None


@clear_errors
def sample(
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)] = DEFAULT_MODEL,
    n: Annotated[int, typer.Option("-n", help="Number of shapes.", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Sampling seed (same seed, same shapes on a device).")] = 0,
    steps: Annotated[int, typer.Option(help="DDIM steps.", min=1)] = 50,
    out: Annotated[Path, typer.Option(help="Output folder for the meshes (and the PNG).")] = Path("samples"),
    fmt: Annotated[
        str, typer.Option("--format", help="Mesh format: " + " | ".join(f.value for f in MeshFormat) + ".")
    ] = "obj",
    render: Annotated[bool, typer.Option("--render", help="Also render the meshes to samples.png.")] = False,
    category: Annotated[str | None, typer.Option(help="Category (conditional models).")] = None,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 1.0,
    resolution: Annotated[int, typer.Option(help="Marching-cubes resolution.", min=8)] = 64,
    redraw_empty: Annotated[bool, typer.Option(help="Redraw samples whose field has no surface.")] = True,
    device: Annotated[str, Device] = "auto",
) -> None:
    """Sample shapes from a trained model and write one part-coloured mesh per shape.

    Example: shd sample -n 4 --model models:/shd-airplane@champion --out samples/ --render
    """
    check_choice(fmt, MeshFormat, "--format")
    check_device(device)
    check_model(model)
    import torch
    from safetensors.torch import save_file

    from shd.atomic import write_with
    from shd.devices import resolve_device
    from shd.eval.export import export_mesh
    from shd.stage import progress_bar
    from shd.tracking.model_ref import load_sampler
    from shd.tracking.sampling import SampleRequest, generate_surfaces

    with out_folder(out), progress_bar("sample", total=n + 1 + int(render)) as advance:
        sampler = load_sampler(model, resolve_device(device, "--device"))
        advance(1)
        request = SampleRequest(
            n=n, seed=seed, steps=steps, category=category, guidance=guidance, resolution=resolution
        )
        kept, discarded = generate_surfaces(sampler, request, redraw_empty=redraw_empty, progress=advance)
        usable = [(row, mesh) for row, mesh in kept if mesh.ok]
        if not usable:
            raise InputError(
                model,
                f"no usable shape in {discarded + len(kept)} samples (every field was "
                "empty); try another --seed or more --steps",
            )
        names = _part_names(sampler.layout)
        written = [
            export_mesh(mesh, out / f"sample_{i:03d}.{fmt}", names) for i, (_, mesh) in enumerate(usable)
        ]
        stacked = torch.stack([row for row, _ in usable]).contiguous()
        write_with(out / "weights.safetensors", lambda tmp: save_file({"weights": stacked}, str(tmp)))
        if render:
            from shd.eval.render import render_grid

            render_grid(
                [mesh for _, mesh in usable],
                out / "samples.png",
                part_names=names,
                captions=[p.name for p in written],
                title=f"{model} (seed {seed}, {steps} steps)",
            )
            advance(1)
    extra = f"; {discarded} empty samples redrawn" if discarded else ""
    short = f"; only {len(written)} of {n} had a surface" if len(written) < n else ""
    png = f" and {out / 'samples.png'}" if render else ""
    typer.echo(f"wrote {len(written)} {fmt} meshes to {out}{png}{extra}{short}")


@clear_errors
def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)] = DEFAULT_MODEL,
    out: Annotated[
        Path,
        typer.Option(help="Metrics JSON to write; everything else (CSV, PNG, samples) goes beside it."),
    ] = Path("metrics/eval_cli.json"),
    weights: Annotated[Path, typer.Option(help="Weight set (layout, test split).")] = paths.WEIGHTS,
    samples: Annotated[Path, typer.Option(help="Sample set (test surface clouds).")] = paths.SAMPLES,
    params: Annotated[Path, typer.Option(help="params.yaml; its `evaluate` section is the protocol.")] = Path(
        "params.yaml"
    ),
    track: Annotated[bool, typer.Option(help="Also log the evaluation as an MLflow run.")] = False,
    device: Annotated[str, Device] = "auto",
) -> None:
    """Evaluate a model against the test split (MMD / COV / 1-NNA, as the `evaluate` stage does).

    Example: shd evaluate --model models:/shd-airplane@champion --out /tmp/eval.json
    """
    from dataclasses import replace

    from shd.config import load_params, section_config
    from shd.devices import resolve_device
    from shd.eval.evaluate import EvalPaths, EvaluateConfig, evaluate_generator, summary_line
    from shd.stage import progress_bar
    from shd.tracking.evaluation import log_evaluation
    from shd.tracking.model_ref import load_sampler

    if out.suffix != ".json":
        raise InputError(out, "expected a .json file for the metrics")
    make_out_folder(out.parent)
    cfg = replace(section_config(load_params(params), "evaluate", EvaluateConfig), device=device)
    with progress_bar("evaluate", total=2) as advance:
        sampler = load_sampler(model, resolve_device(device, "--device"))
        advance(1)

        def draw(count: int, category: str, seed: int):
            cat = category if sampler.conditional else None
            return sampler.sample(count, category=cat, seed=seed)

        paths = EvalPaths.beside(out)
        report = evaluate_generator(draw, weights, samples, paths, cfg, generator_name=model)
        if track:
            log_evaluation(report, weights, samples, paths, cfg)
        advance(1)
    typer.echo(summary_line(report))
    typer.echo(f"wrote {out}")


@clear_errors
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name, e.g. shd-airplane.")],
    version: Annotated[str, typer.Argument(help="Version number to promote.")],
    force: Annotated[bool, typer.Option(help="Move the alias even past a better score (never NaN).")] = False,
    on_split_mismatch: Annotated[
        str,
        typer.Option(
            help="Champion scored on another test split: "
            + " | ".join(p.value for p in SplitPolicy)
            + " (promote: the new version replaces it; keep: it stays)."
        ),
    ] = "promote",
) -> None:
    """Give a registered version the `champion` alias if it scores better (1-NNA, MMD, then COV).

    The decision (promoted, kept or refused) is printed and recorded as version tags.

    Example: shd promote shd-airplane 3
    """
    check_choice(on_split_mismatch, SplitPolicy, "--on-split-mismatch")
    from shd.tracking.registry import promote as do_promote

    decision = do_promote(name, version, force=force, on_split_mismatch=on_split_mismatch)
    if decision.outcome == "refused":
        raise InputError(f"models:/{name}/{version}", decision.reason)
    typer.echo(f"{name} version {version} {decision.outcome}: {decision.reason}")


@clear_errors
def info(
    model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)] = DEFAULT_MODEL,
) -> None:
    """Print a model card (JSON): data version, params, metrics, lineage, registry version and aliases.

    Example: shd info --model models:/shd-airplane@champion
    """
    check_model(model)
    from shd.tracking.registry import model_card

    typer.echo(json.dumps(model_card(model), indent=2, default=str))


@clear_errors
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    dry_run: Annotated[bool, typer.Option(help="Print the command instead of starting the UI.")] = False,
) -> None:
    """Start the MLflow UI over the project's tracking store (the same URI the stages log to).

    Example: shd ui --port 5000
    """
    import shutil
    import sys

    from shd.mlflow_store import tracking_uri

    uri = tracking_uri()
    mlflow_bin = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow_bin, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    typer.echo(f"MLflow UI on http://{host}:{port} (store {uri})")
    if dry_run:
        typer.echo(shlex.join(cmd))
        return
    if not Path(mlflow_bin).exists():
        raise InputError("mlflow", "the mlflow command is not installed in this environment")
    sys.stdout.flush()
    os.execv(mlflow_bin, cmd)  # become the UI: Ctrl+C and signals reach MLflow itself


def register(app: typer.Typer) -> None:
    """Add these commands to the top-level `shd` app."""
    for fn in (sample, evaluate, promote, info, ui):
        app.command(fn.__name__)(fn)
