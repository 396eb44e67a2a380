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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from shd import paths
from shd.atomic import write_json
from shd.devices import resolve_device
from shd.diffusion.callbacks import RUN_FILE, FiniteLoss, GenerationCheck, RunIdFile, Throughput, read_run_id
from shd.diffusion.config import SPEED_OPTIONS, DiffusionConfig, TrainConfig
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


# TrainConfig options that a resume may change: how long to train, how the run is watched and how the
# same steps are computed. Any other change (data, lr, seed, batch, optimizer, EMA, normalization...)
# would continue a trajectory that the new settings never asked for, so it trains afresh.
RESUMABLE_OPTIONS = (
    "max_epochs",
    "max_steps",
    "val_check_every",
    "val_every",
    "val_samples",
    "val_steps",
    "val_resolution",
    "val_guidance",
    "val_normalization",
    "log_every",
    "checkpoint_every",
    "precision",  # the resolved precision is fingerprinted instead ("auto" differs by device)
    "compile",
    "accelerator",
    "strategy",
    "data_on_device",
    "num_workers",
    "experiment",
    "log_model",
)


# the run's length: a decaying lr schedule spans it, so with one a longer run is another trajectory
LENGTH_OPTIONS = ("max_epochs", "max_steps")


def training_fingerprint(cfg: DiffusionConfig, layout_json: Any, data_fp: str) -> str:
    """What a checkpoint's trajectory depends on: the net and schedule (speed options aside), the weight
    layout, the training data and every training option outside RESUMABLE_OPTIONS (and the run's length
    when the lr decays over it). A checkpoint whose fingerprint differs is never resumed, so an export
    never claims data or settings it was not trained with."""
    net = {k: v for k, v in asdict(cfg.net).items() if k not in SPEED_OPTIONS}
    resumable = set(RESUMABLE_OPTIONS)
    if cfg.train.lr_schedule != "constant":
        resumable -= set(LENGTH_OPTIONS)
    train = {k: v for k, v in asdict(cfg.train).items() if k not in resumable}
    return fingerprint(net, asdict(cfg.schedule), layout_json, data_fp, train, _precision(cfg))


def _checkpoint_progress(path: Path) -> tuple[int, int]:
    """(epochs finished, global step) of a Lightning checkpoint, read as plain tensors (weights_only):
    a pickle carrying code, or a damaged file, is refused here with its name instead of deep inside
    Lightning. mmap: no second copy."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(
            path,
            f"refused as a resume checkpoint: not a plain-tensor (weights_only) torch "
            f"checkpoint ({cause}); delete it to train from scratch",
        ) from None
    # an end-of-epoch checkpoint is written before the loop counts the epoch "completed": "processed"
    # counts the epochs whose training batches all ran
    epochs = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
    return int(epochs.get("processed", ckpt.get("epoch", 0))), int(ckpt.get("global_step", 0))


def _move_aside(ckpt_dir: Path, recorded: str | None, why: str) -> None:
    """Keep checkpoints that cannot be continued (renamed, not deleted) so that training starts afresh.
    Under DDP only rank zero moves them (every rank reaches the same decision from the same files; a
    second rank's rmtree of the aside folder would delete what rank zero just moved there)."""
    if rank_zero_only.rank != 0:
        return
    aside = ckpt_dir.with_name(f"{ckpt_dir.name}-{recorded or 'unknown'}")
    shutil.rmtree(aside, ignore_errors=True)
    ckpt_dir.rename(aside)
    log.warning("checkpoints moved to %s (%s); training afresh", aside, why)


def _resume_point(
    ckpt_dir: Path, resume: bool, training_fp: str, tc: TrainConfig
) -> tuple[Path | None, str | None]:
    """(checkpoint to continue, its MLflow run id), or (None, None) to train afresh.

    Continuing is right only for the same training (`training_fingerprint`: same data, net, optimizer,
    seed...) that has not gone past the requested length: raising max_epochs continues, anything else
    moves the old checkpoints aside. A run file without a fingerprint (an older shd) counts as another
    training: what it was trained on is unknown."""
    last = ckpt_dir / "last.ckpt"
    if not (resume and last.exists()):
        return None, None
    epochs, steps = _checkpoint_progress(last)  # first: a file that is no plain checkpoint is refused
    run_file = ckpt_dir / RUN_FILE
    recorded = json.loads(run_file.read_text()).get("training_fingerprint") if run_file.exists() else None
    if recorded != training_fp:
        _move_aside(ckpt_dir, recorded, "the data or training params changed since they were written")
        return None, None
    if epochs > tc.max_epochs or (tc.max_steps > 0 and steps > tc.max_steps):
        _move_aside(
            ckpt_dir, recorded, f"{epochs} epochs / {steps} steps trained, more than max_epochs/max_steps ask"
        )
        return None, None
    return last, read_run_id(ckpt_dir)


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


@dataclass
class TrainingData:
    """The weight set as this training sees it: its splits, categories, the net config with the
    conditioning resolved, the normalizer fitted on the train split and the data fingerprint."""

    weights: WeightSet
    train: Split
    val: Split
    categories: list[str]
    conditional: bool
    cfg: DiffusionConfig
    normalizer: Normalizer
    fingerprint: str


def load_training_data(weight_set_dir: str | Path, cfg: DiffusionConfig) -> TrainingData:
    """Open the weight set and resolve what depends on it (conditioning, normalization, fingerprint)."""
    tc = cfg.train
    weights = WeightSet.open(weight_set_dir)
    train_split, val_split = load_split(weights, "train"), load_split(weights, "val")
    if not len(train_split):
        raise InputError(weight_set_dir, "no good fits (status ok) in the train split")
    categories = categories_of(weights)
    conditional = tc.conditioning == "on" or (tc.conditioning == "auto" and len(categories) > 1)
    cfg = replace(cfg, net=replace(cfg.net, n_categories=len(categories) if conditional else 0))
    return TrainingData(
        weights,
        train_split,
        val_split,
        categories,
        conditional,
        cfg,
        Normalizer.fit(train_split.flat, weights.layout, tc.normalization, tc.norm_floor),
        data_fingerprint(weights, train_split, val_split),
    )


def build_module(data: TrainingData) -> DiffusionModule:
    cfg = data.cfg
    module = DiffusionModule(
        asdict(cfg.net),
        asdict(cfg.schedule),
        asdict(cfg.train),
        data.weights.layout.to_json(),
        asdict(data.weights.field),
        data.categories,
        cfg.train.normalization,
    )
    module.set_normalization(data.normalizer)
    return module


def build_datamodule(data: TrainingData) -> WeightSetDataModule:
    tc = data.cfg.train
    return WeightSetDataModule.of_splits(
        data.train,
        data.val,
        tc.batch_size,
        num_workers=tc.num_workers,
        repeat=tc.epoch_repeat,
        on_device=tc.data_on_device,
        seed=tc.seed,
    )


def build_logger(
    data: TrainingData, tracking_root: str | Path | None, run_name: str | None, run_id: str | None
) -> MLFlowLogger:
    """The MLflow logger of `run_id` (a resumed or given run) or of a new run."""
    tc = data.cfg.train
    ensure_experiment(tc.experiment, tracking_root)
    return MLFlowLogger(
        experiment_name=tc.experiment,
        tracking_uri=tracking_uri(tracking_root),
        run_name=run_name,
        run_id=run_id,
        artifact_location=artifact_root(tracking_root),
        tags={"stage": "diffusion", "data_fingerprint": data.fingerprint},
    )


@dataclass
class Monitors:
    """The built-in callbacks whose results the summary reads."""

    throughput: Throughput
    generation: GenerationCheck


def build_trainer(
    data: TrainingData,
    out_dir: Path,
    logger: MLFlowLogger,
    training_fp: str,
    sample_dir: str | Path | None,
    callbacks: Sequence[pl.Callback],
) -> tuple[pl.Trainer, Monitors]:
    """The Lightning trainer with the built-in callbacks (the caller's run after them)."""
    cfg, tc = data.cfg, data.cfg.train
    ckpt_dir = out_dir / CHECKPOINTS
    monitors = Monitors(
        Throughput(),
        GenerationCheck(
            _references(data.weights, data.val, data.categories, data.conditional, cfg, sample_dir),
            every=tc.val_every if len(data.val) else 0,
            n=tc.val_samples,
            steps=tc.val_steps,
            resolution=tc.val_resolution,
            guidance=tc.val_guidance,
            normalization=tc.val_normalization,
            out_dir=out_dir / RENDERS,
            part_names={c: data.weights.manifest["categories"][c] for c in data.categories},
            seed=tc.seed,
        ),
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
            RunIdFile(ckpt_dir, {"training_fingerprint": training_fp, "data_fingerprint": data.fingerprint}),
            monitors.throughput,
            monitors.generation,
            *callbacks,
        ],
        limit_val_batches=1.0 if len(data.val) else 0,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=tc.val_check_every,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
    )
    return trainer, monitors


def export(
    data: TrainingData, module: DiffusionModule, out_dir: Path, summary: dict[str, Any], logger: MLFlowLogger
) -> Path:
    """The EMA model folder with the data fingerprint it was trained on, logged to MLflow if asked."""
    folder = export_model(
        out_dir / MODEL,
        module.ema.module,
        data.cfg.schedule,
        module.normalizer,
        data.weights.field,
        data.categories,
        data.fingerprint,
        extra={"train": asdict(data.cfg.train), "summary": summary},
    )
    if data.cfg.train.log_model:
        logger.experiment.log_artifacts(logger.run_id, str(folder), MODEL)
    return folder


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
    an existing `out_dir/checkpoints/last.ckpt` of the same training (same data and params, see
    `training_fingerprint`; a raised max_epochs continues) is continued in the same MLflow run;
    otherwise those checkpoints are moved aside and training starts afresh. The summary is also
    written to `metrics_path` (JSON) when given. `run_id` logs a fresh (not resumed) training into an
    existing MLflow run (a sweep's trial run); `callbacks` run after the built-in ones (they see the
    generation check's result of the same epoch, e.g. for pruning). Under DDP every rank calls this;
    rank zero exports and writes, the others return {}.
    """
    t0 = time.perf_counter()
    cfg = config if isinstance(config, DiffusionConfig) else DiffusionConfig.from_dict(config)
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    data = load_training_data(weight_set_dir, cfg)
    training_fp = training_fingerprint(data.cfg, data.weights.layout.to_json(), data.fingerprint)
    out_dir = Path(out_dir)
    resume_from, resumed_run = _resume_point(out_dir / CHECKPOINTS, resume, training_fp, data.cfg.train)

    module = build_module(data)
    logger = build_logger(data, tracking_root, run_name, resumed_run or run_id)
    trainer, monitors = build_trainer(data, out_dir, logger, training_fp, sample_dir, callbacks)
    if resumed_run is None:
        logger.log_hyperparams(_flat_params(data, module))
    trainer.fit(module, datamodule=build_datamodule(data), ckpt_path=resume_from, weights_only=True)
    if not trainer.is_global_zero:
        return {}
    summary = _summary(trainer, monitors, data, module, logger, out_dir, t0, resumed=resume_from is not None)
    export(data, module, out_dir, summary, logger)
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
    monitors: Monitors,
    data: TrainingData,
    module: DiffusionModule,
    logger: MLFlowLogger,
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
        "samples_per_s": monitors.throughput.samples_per_s,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "categories": ",".join(data.categories),  # a string: DVC metrics take no lists
        "conditional": data.conditional,
        "normalization": module.normalizer.mode,
        "n_params": sum(p.numel() for p in module.net.parameters()),
        "precision": str(trainer.precision),
        "run_id": logger.run_id,
        "experiment_id": logger.experiment_id,
        "model_dir": str(out_dir / MODEL),
        "data_fingerprint": data.fingerprint,
        "resumed": resumed,
        "seconds": time.perf_counter() - t0,
    }
    generation = monitors.generation
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


def _flat_params(data: TrainingData, module: DiffusionModule) -> dict[str, Any]:
    """Concise run parameters for MLflow (sections flattened as `net.width`, `train.lr`, ...)."""
    sections = data.cfg.to_dict().items()
    params = {f"{section}.{k}": v for section, values in sections for k, v in values.items()}
    return {
        **params,
        "data.n_train": len(data.train),
        "data.n_val": len(data.val),
        "data.categories": ",".join(data.categories),
        "data.dim": module.net.tokens.dim,
        "data.fingerprint": data.fingerprint,
        "net.n_params": sum(p.numel() for p in module.net.parameters()),
    }
