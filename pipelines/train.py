"""DVC stage `train`: DDPM over the structured weight tokens (Lightning), logged to MLflow."""

from shd import paths
from shd.config import load_params
from shd.diffusion.config import DiffusionConfig
from shd.diffusion.train import train
from shd.stage import console, main


def run() -> None:
    cfg = DiffusionConfig.from_dict(load_params().get("diffusion"))
    summary = train(
        paths.WEIGHTS,
        cfg,
        paths.DIFFUSION,
        sample_dir=paths.SAMPLES,
        metrics_path=paths.TRAIN_METRICS,
        run_name="train",
    )
    if summary:
        console.print(
            f"train: {summary.get('epochs')} epochs, train loss {summary.get('train_loss')}, "
            f"val loss {summary.get('val_loss')}; model exported to {paths.MODEL}",
            highlight=False,
        )


if __name__ == "__main__":
    main(run)
