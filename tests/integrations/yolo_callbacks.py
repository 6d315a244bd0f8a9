"""Ultralytics-style W&B callbacks on a tiny torch model, with `import wandb` answered by
artifactfs (run by tests/test_wandb_integrations.py in a subprocess; prints the run id).

The callbacks are written in the spirit of ultralytics/utils/callbacks/wb.py (`wb.init(project=,
name=, config=vars(args))`, `wb.run.log(metrics, step=epoch + 1)`, the best weights logged as
`run_<id>_model` with alias `best`, `wb.run.finish()`) and of YOLOv5's WandbLogger.log_model
(aliases `latest`, `last`, `epoch N`, and `"best" if best_model else ""`), plus the
`define_metric` calls trackers make to plot metrics against the epoch. Ultralytics itself is
not installed: the point is the W&B calls, on a real torch checkpoint.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import artifactfs

artifactfs.install_as_wandb()

import wandb as wb  # noqa: E402


def on_pretrain_routine_start(trainer: SimpleNamespace) -> None:
    if not wb.run:
        wb.init(
            project=str(trainer.args.project).replace("/", "-"),
            name=str(trainer.args.name).replace("/", "-"),
            config=vars(trainer.args),
        )
    wb.run.define_metric("epoch")
    wb.run.define_metric("metrics/*", step_metric="epoch", summary="max")


def on_fit_epoch_end(trainer: SimpleNamespace) -> None:
    wb.run.log({**trainer.metrics, "epoch": trainer.epoch + 1}, step=trainer.epoch + 1)


def log_model(trainer: SimpleNamespace, best_model: bool) -> None:
    """YOLOv5's WandbLogger.log_model, as its source calls W&B."""
    model_artifact = wb.Artifact(
        "run_" + wb.run.id + "_model",
        type="model",
        metadata={
            "original_url": str(trainer.save_dir),
            "epochs_trained": trainer.epoch + 1,
            "total_epochs": trainer.args.epochs,
            "fitness_score": trainer.fitness,
        },
    )
    model_artifact.add_file(str(trainer.save_dir / "last.pt"), name="last.pt")
    wb.log_artifact(
        model_artifact,
        aliases=["latest", "last", "epoch " + str(trainer.epoch), "best" if best_model else ""],
    )


def on_train_end(trainer: SimpleNamespace) -> None:
    art = wb.Artifact(type="model", name=f"run_{wb.run.id}_model")
    if trainer.best.exists():
        art.add_file(trainer.best)
        wb.run.log_artifact(art, aliases=["best"])
    wb.run.finish()


def main(save_dir: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    args = SimpleNamespace(project="yolo", name="exp/1", epochs=2, imgsz=32)
    trainer = SimpleNamespace(args=args, epoch=0, metrics={}, save_dir=save_dir, fitness=0.0)
    trainer.best = save_dir / "best.pt"
    save_dir.mkdir(parents=True, exist_ok=True)
    on_pretrain_routine_start(trainer)
    print("RUN", wb.run.id)
    best = -1.0
    for epoch in range(args.epochs):
        trainer.epoch = epoch
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        trainer.fitness = 0.3 + 0.2 * epoch
        trainer.metrics = {"metrics/mAP50(B)": trainer.fitness, "val/box_loss": 1.0 - epoch}
        on_fit_epoch_end(trainer)
        ckpt = {"epoch": epoch, "model": model.state_dict(), "train_args": vars(args)}
        torch.save(ckpt, save_dir / "last.pt")
        is_best = trainer.fitness > best
        if is_best:
            best = trainer.fitness
            torch.save(ckpt, trainer.best)
        log_model(trainer, best_model=is_best)
    run = wb.run
    on_train_end(trainer)
    if len(sys.argv) > 2:  # the checkpoints, loaded with torch through the mount
        folder = Path(sys.argv[2], run.entity, "yolo")
        last_pt = folder / f"run_{run.id}_model:epoch 1" / "last.pt"
        best_pt = folder / f"run_{run.id}_model:best" / "best.pt"
        deadline = time.monotonic() + 20
        while not (last_pt.exists() and best_pt.exists()):
            assert time.monotonic() < deadline, folder
            time.sleep(0.2)
        assert torch.load(last_pt, weights_only=True)["epoch"] == 1
        best = torch.load(best_pt, weights_only=True)["model"]
        local = torch.load(trainer.best, weights_only=True)["model"]
        assert all(torch.equal(best[k], v) for k, v in local.items())
        print("LOADED", folder)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
