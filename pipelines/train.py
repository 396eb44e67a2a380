"""DVC stage `train`: DDPM over the structured weight tokens (Lightning), logged to MLflow."""

from shd import paths
from shd.config import load_params
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.progress import StepProgress
from shd.diffusion.train import train
from shd.stage import console, main, write_metrics

# the whole summary (run id, timings, generation check) -> reports/train.json; these -> metrics/train.json
HEADLINE = {k: k for k in ("epochs", "train_loss", "val_loss")}


def run() -> None:
    cfg = DiffusionConfig.from_dict(load_params().get("diffusion"))
    summary = train(
        paths.WEIGHTS,
        cfg,
        paths.DIFFUSION,
        sample_dir=paths.SAMPLES,
        metrics_path=paths.TRAIN_REPORT,
        run_name="train",
        callbacks=[StepProgress()],
    )
    if summary:
        write_metrics(paths.TRAIN_METRICS, summary, HEADLINE)
        console.print(
            f"train: {summary.get('epochs')} epochs, train loss {summary.get('train_loss')}, "
            f"val loss {summary.get('val_loss')}; model exported to {paths.MODEL}",
            highlight=False,
        )


if __name__ == "__main__":
    main(run)
