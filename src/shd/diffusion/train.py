"""`train`: the library entry of the diffusion stage (the pipeline script is a thin wrapper).

Writes under `out_dir`: `checkpoints/` (Lightning checkpoints, `last.ckpt`, `mlflow_run.json` with
the run id so a rerun resumes the same MLflow run and global step), `renders/` (generation-check
grids) and `model/` (the exported EMA model, see `export`). Everything is logged to the MLflow store
that `shd.mlflow_store` decides.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from shd import paths
from shd.atomic import write_json
from shd.devices import resolve_device
from shd.diffusion.callbacks import RUN_FILE, FiniteLoss, GenerationCheck, RunIdFile, Throughput, read_run_id
from shd.diffusion.config import SPEED_OPTIONS, DiffusionConfig
from shd.diffusion.datamodule import Split, WeightSetDataModule, categories_of, data_fingerprint, load_split
from shd.diffusion.evaluate import reference_clouds
from shd.diffusion.export import export_model
from shd.diffusion.module import DiffusionModule
from shd.diffusion.normalization import Normalizer
from shd.errors import InputError
from shd.fields.weight_set import WeightSet
from shd.mlflow_store import artifact_root, ensure_experiment, tracking_uri
from shd.shards import fingerprint

log = logging.getLogger(__name__)

CHECKPOINTS, MODEL, RENDERS = "checkpoints", "model", "renders"
FINAL_METRICS = ("train_loss", "val_loss", "val_loss_raw", "samples_per_s", "seconds")


def _precision(cfg: DiffusionConfig) -> str:
    """bf16 autocast on CUDA (the reference-size model's speed), fp32 on CPU."""
    if cfg.train.precision != "auto":
        return cfg.train.precision
    cuda = train_device(cfg).type == "cuda"
    return "bf16-mixed" if cuda else "32-true"


def train_device(cfg: DiffusionConfig) -> torch.device:
    """The device of `train.accelerator` (Lightning's `gpu` is CUDA here)."""
    accelerator = cfg.train.accelerator
    return resolve_device("cuda" if accelerator == "gpu" else accelerator, "diffusion.train.accelerator")


def _model_fingerprint(cfg: DiffusionConfig, weights: WeightSet, n_categories: int) -> str:
    """What a checkpoint's tensors depend on: a resume with another net or layout is refused."""
    net = {k: v for k, v in asdict(cfg.net).items() if k not in SPEED_OPTIONS}
    return fingerprint(
        net, asdict(cfg.schedule), cfg.train.normalization, n_categories, weights.layout.to_json()
    )


def _resume_point(ckpt_dir: Path, resume: bool, model_fp: str) -> tuple[Path | None, str | None]:
    last = ckpt_dir / "last.ckpt"
    if not (resume and last.exists()):
        return None, None
    run_file = ckpt_dir / RUN_FILE
    recorded = json.loads(run_file.read_text()).get("model_fingerprint") if run_file.exists() else None
    if recorded not in (None, model_fp):
        # the params changed the net, schedule or layout (dvc repro after an edit): these checkpoints
        # cannot be resumed; they are kept aside, not deleted, and training starts afresh
        aside = ckpt_dir.with_name(f"{ckpt_dir.name}-{recorded}")
        shutil.rmtree(aside, ignore_errors=True)
        ckpt_dir.rename(aside)
        log.warning(
            "checkpoints of another net/schedule/layout (%s) moved to %s; training afresh", recorded, aside
        )
        return None, None
    _check_checkpoint(last)
    return last, read_run_id(ckpt_dir)


def _check_checkpoint(path: Path) -> None:
    """Open the resume checkpoint as plain tensors only (weights_only): a pickle carrying code, or a
    damaged file, is refused here with its name instead of deep inside Lightning. mmap: no second copy."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(
            path,
            f"refused as a resume checkpoint: not a plain-tensor (weights_only) torch "
            f"checkpoint ({cause}); delete it to train from scratch",
        ) from None


def _references(
    weights: WeightSet,
    val: Split,
    categories: list[str],
    conditional: bool,
    cfg: DiffusionConfig,
    sample_dir: str | Path | None,
):
    """Lazy loader of the validation clouds, per category when the model is conditional."""

    def load() -> dict[str | None, Any]:
        device = train_device(cfg)
        groups = (
            {c: val.category == i for i, c in enumerate(categories)}
            if conditional
            else {None: torch.ones(len(val), dtype=torch.bool)}
        )
        out = {}
        for c, mask in groups.items():
            ids = [s for s, m in zip(val.ids, mask.tolist(), strict=True) if m]
            if ids:
                out[c] = reference_clouds(
                    ids,
                    val.flat[mask],
                    weights.layout,
                    weights.field,
                    cfg.train.val_resolution,
                    sample_dir,
                    device,
                )
        return out

    return load


def train(
    weight_set_dir: str | Path,
    config: DiffusionConfig | dict | None = None,
    out_dir: str | Path = paths.DIFFUSION,
    *,
    sample_dir: str | Path | None = None,
    resume: bool = True,
    tracking_root: str | Path | None = None,
    run_name: str | None = None,
    metrics_path: str | Path | None = None,
    run_id: str | None = None,
    callbacks: Sequence[pl.Callback] = (),
) -> dict[str, Any]:
    """Train a weight-space diffusion model on a weight set's train split; returns the summary dict.

    `sample_dir` (the sample set the weights were fitted on) gives the validation surface clouds for
    the generation check; without it the fitted validation fields are meshed instead. With `resume`,
    an existing `out_dir/checkpoints/last.ckpt` is continued in the same MLflow run. The summary is
    also written to `metrics_path` (JSON) when given. `run_id` logs a fresh (not resumed) training
    into an existing MLflow run (a sweep's trial run); `callbacks` run after the built-in ones (they
    see the generation check's result of the same epoch, e.g. for pruning). Under DDP every rank
    calls this; rank zero exports and writes, the others return {}.
    """
    t0 = time.perf_counter()
    cfg = config if isinstance(config, DiffusionConfig) else DiffusionConfig.from_dict(config)
    tc = cfg.train
    pl.seed_everything(tc.seed, workers=True, verbose=False)
    weights = WeightSet.open(weight_set_dir)
    train_split, val_split = load_split(weights, "train"), load_split(weights, "val")
    if not len(train_split):
        raise InputError(weight_set_dir, "no good fits (status ok) in the train split")
    categories = categories_of(weights)
    conditional = tc.conditioning == "on" or (tc.conditioning == "auto" and len(categories) > 1)
    net_cfg = replace(cfg.net, n_categories=len(categories) if conditional else 0)
    cfg = replace(cfg, net=net_cfg)
    normalizer = Normalizer.fit(train_split.flat, weights.layout, tc.normalization, tc.norm_floor)
    data_fp = data_fingerprint(weights, train_split, val_split)
    model_fp = _model_fingerprint(cfg, weights, net_cfg.n_categories)

    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINTS
    resume_from, resumed_run = _resume_point(ckpt_dir, resume, model_fp)

    module = DiffusionModule(
        asdict(net_cfg),
        asdict(cfg.schedule),
        asdict(tc),
        weights.layout.to_json(),
        asdict(weights.field),
        categories,
        tc.normalization,
    )
    module.set_normalization(normalizer)
    datamodule = WeightSetDataModule.of_splits(
        train_split,
        val_split,
        tc.batch_size,
        num_workers=tc.num_workers,
        repeat=tc.epoch_repeat,
        on_device=tc.data_on_device,
        seed=tc.seed,
    )

    ensure_experiment(tc.experiment, tracking_root)
    logger = MLFlowLogger(
        experiment_name=tc.experiment,
        tracking_uri=tracking_uri(tracking_root),
        run_name=run_name,
        run_id=resumed_run or run_id,
        artifact_location=artifact_root(tracking_root),
        tags={"stage": "diffusion", "data_fingerprint": data_fp},
    )
    throughput = Throughput()
    generation = GenerationCheck(
        _references(weights, val_split, categories, conditional, cfg, sample_dir),
        every=tc.val_every if len(val_split) else 0,
        n=tc.val_samples,
        steps=tc.val_steps,
        resolution=tc.val_resolution,
        guidance=tc.val_guidance,
        normalization=tc.val_normalization,
        out_dir=out_dir / RENDERS,
        part_names={c: weights.manifest["categories"][c] for c in categories},
        seed=tc.seed,
    )
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="epoch{epoch:04d}-step{step}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=1,
        every_n_epochs=tc.checkpoint_every,
    )
    trainer = pl.Trainer(
        accelerator=tc.accelerator,
        devices=tc.devices,
        strategy=tc.strategy,
        precision=_precision(cfg),
        max_epochs=tc.max_epochs,
        max_steps=tc.max_steps,
        gradient_clip_val=tc.grad_clip or None,
        accumulate_grad_batches=tc.accumulate,
        logger=logger,
        log_every_n_steps=tc.log_every,
        callbacks=[
            FiniteLoss(ckpt_dir, every=tc.log_every),
            checkpoint,
            RunIdFile(ckpt_dir, {"model_fingerprint": model_fp}),
            throughput,
            generation,
            *callbacks,
        ],
        limit_val_batches=1.0 if len(val_split) else 0,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=tc.val_check_every,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
    )
    if resumed_run is None:
        logger.log_hyperparams(_flat_params(cfg, train_split, val_split, categories, module, data_fp))
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    if not trainer.is_global_zero:
        return {}
    summary = _summary(
        trainer,
        throughput,
        generation,
        train_split,
        val_split,
        categories,
        conditional,
        module,
        logger,
        data_fp,
        out_dir,
        t0,
        resumed=resume_from is not None,
    )
    folder = export_model(
        out_dir / MODEL,
        module.ema.module,
        cfg.schedule,
        module.normalizer,
        weights.field,
        categories,
        data_fp,
        extra={"train": asdict(tc), "summary": summary},
    )
    if tc.log_model:
        logger.experiment.log_artifacts(logger.run_id, str(folder), MODEL)
    final = {k: summary[k] for k in FINAL_METRICS if summary[k] is not None}
    logger.log_metrics(final, step=trainer.global_step)
    if metrics_path is not None:
        write_json(metrics_path, summary)
    return summary


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return float(value) if value is not None else None


def _summary(
    trainer: pl.Trainer,
    throughput: Throughput,
    generation: GenerationCheck,
    train_split: Split,
    val_split: Split,
    categories: list[str],
    conditional: bool,
    module: DiffusionModule,
    logger: MLFlowLogger,
    data_fp: str,
    out_dir: Path,
    t0: float,
    resumed: bool,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "train_loss": _metric(trainer, "train/loss_epoch"),
        "val_loss": _metric(trainer, "val/loss"),
        "val_loss_raw": _metric(trainer, "val/loss_raw"),
        "samples_per_s": throughput.samples_per_s,
        "n_train": len(train_split),
        "n_val": len(val_split),
        "categories": ",".join(categories),  # a string: DVC metrics take no lists
        "conditional": conditional,
        "normalization": module.normalizer.mode,
        "n_params": sum(p.numel() for p in module.net.parameters()),
        "precision": str(trainer.precision),
        "run_id": logger.run_id,
        "experiment_id": logger.experiment_id,
        "model_dir": str(out_dir / MODEL),
        "data_fingerprint": data_fp,
        "resumed": resumed,
        "seconds": time.perf_counter() - t0,
    }
    if generation.last:
        summary["val_generation"] = {
            name: {
                k: rep.get(k)
                for k in (
                    "mmd",
                    "cov",
                    "1-nna",
                    "n_usable",
                    "n_samples",
                    "mesh_status",
                    "resolution",
                    "steps",
                    "normalization",
                )
            }
            for name, rep in generation.last["reports"].items()
        }
    return summary


def _flat_params(
    cfg: DiffusionConfig,
    train_split: Split,
    val_split: Split,
    categories: list[str],
    module: DiffusionModule,
    data_fp: str,
) -> dict[str, Any]:
    """Concise run parameters for MLflow (sections flattened as `net.width`, `train.lr`, ...)."""
    params = {f"{section}.{k}": v for section, values in cfg.to_dict().items() for k, v in values.items()}
    return {
        **params,
        "data.n_train": len(train_split),
        "data.n_val": len(val_split),
        "data.categories": ",".join(categories),
        "data.dim": module.net.tokens.dim,
        "data.fingerprint": data_fp,
        "net.n_params": sum(p.numel() for p in module.net.parameters()),
    }
