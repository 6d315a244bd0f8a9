"""Source: YOLOv5's `utils/loggers/wandb/wandb_utils.py` `WandbLogger.log_model` (a model
artifact `run_<id>_model` per save, with the aliases `latest`, `last`, `epoch N` and
`"best" if best_model else ""`) and `finish_run`, as its source calls W&B."""

from pathlib import Path

import wandb


class Opt:
    save_period = 1
    project = "runs/train"
    epochs = 3


def log_model(path, opt, epoch, fitness_score, best_model=False):
    model_artifact = wandb.Artifact(
        "run_" + wandb.run.id + "_model",
        type="model",
        metadata={
            "original_url": str(path),
            "epochs_trained": epoch + 1,
            "save period": opt.save_period,
            "project": opt.project,
            "total_epochs": opt.epochs,
            "fitness_score": fitness_score,
        },
    )
    model_artifact.add_file(str(path / "last.pt"), name="last.pt")
    wandb.log_artifact(
        model_artifact,
        aliases=["latest", "last", "epoch " + str(epoch), "best" if best_model else ""],
    )
    print("Saving model artifact on epoch ", epoch + 1)


# -- setup: the weights directory training writes
weights = Path("runs/train/exp/weights")
weights.mkdir(parents=True)

wandb.init(project="YOLOv5", config={"epochs": Opt.epochs}, job_type="Training")
best = 0.0
for epoch in range(Opt.epochs):
    (weights / "last.pt").write_bytes(bytes([epoch]) * 128)
    fitness = [0.2, 0.5, 0.4][epoch]
    wandb.log({"metrics/mAP_0.5": fitness, "epoch": epoch})
    log_model(weights, Opt, epoch, fitness, best_model=fitness > best)
    best = max(best, fitness)
run_id = wandb.run.id
wandb.run.finish()

# -- checks: what W&B does (aliases with spaces are fine; "" names nothing)
api = wandb.Api()
by_epoch = api.artifact(f"YOLOv5/run_{run_id}_model:epoch 1")
assert by_epoch.version == "v1" and by_epoch.metadata["fitness_score"] == 0.5
assert api.artifact(f"YOLOv5/run_{run_id}_model:best").version == "v1"
assert set(api.artifact(f"YOLOv5/run_{run_id}_model:latest").aliases) == {
    "latest",
    "last",
    "epoch 2",
}
