"""DVC stage `train`: DDPM over the structured weight tokens (Lightning), logged to MLflow."""

from shd.config import load_params
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.progress import StepProgress
from shd.diffusion.train import train
from shd.stage import console, main, write_metrics

REPORT = "reports/train.json"  # the whole summary: run id, timings, throughput, generation check
METRICS = "metrics/train.json"  # its deterministic numbers (DVC metrics, tracked by git)
HEADLINE = {k: k for k in ("epochs", "train_loss", "val_loss")}


def run() -> None:
    cfg = DiffusionConfig.from_dict(load_params().get("diffusion"))
    summary = train(
        "data/weights",
        cfg,
        "models/diffusion",
        sample_dir="data/samples",
        metrics_path=REPORT,
        run_name="train",
        callbacks=[StepProgress()],
    )
    if summary:
        write_metrics(METRICS, summary, HEADLINE)
        console.print(
            f"train: {summary.get('epochs')} epochs, train loss {summary.get('train_loss')}, "
            f"val loss {summary.get('val_loss')}; model exported to models/diffusion/model",
            highlight=False,
        )


if __name__ == "__main__":
    main(run)
