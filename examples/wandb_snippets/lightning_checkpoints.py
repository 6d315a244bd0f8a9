"""Sources: Lightning's `WandbLogger._scan_and_log_checkpoints` (lightning/pytorch/loggers/
wandb.py: one `model-<run id>` artifact per checkpoint, aliases latest/best), a public project's
space-efficient subclass of it (earlier checkpoints get `artifact.ttl = timedelta(...)` then
`artifact.save()`, and `download_latest_checkpoint()` walks `api.run(path).logged_artifacts()`),
and the docs' pruning of versions without aliases (delete-artifacts). The training loop is a
stand-in for Lightning's ModelCheckpoint."""

import os
from datetime import timedelta
from pathlib import Path

import artifactfs as wandb

expiration_days = 7
run = wandb.init(project="lightning", config={"lr": 1e-3})
best_score, last_artifacts = None, []
for epoch in range(4):
    p = f"epoch={epoch}.ckpt"
    with open(p, "wb") as f:
        f.write(os.urandom(512))
    score = [0.9, 0.5, 0.7, 0.6][epoch]
    is_best = best_score is None or score < best_score
    best_score = score if is_best else best_score
    run.log({"val_loss": score, "epoch": epoch})

    # -- Lightning's _scan_and_log_checkpoints
    metadata = {"score": score, "original_filename": Path(p).name}
    artifact = wandb.Artifact(name=f"model-{run.id}", type="model", metadata=metadata)
    artifact.add_file(p, name="model.ckpt")
    aliases = ["latest", "best"] if is_best else ["latest"]
    run.log_artifact(artifact, aliases=aliases)
    artifacts = [artifact]

    # -- the space-efficient logger: earlier checkpoints expire
    for artifact in last_artifacts:
        artifact.wait()
        artifact.ttl = timedelta(days=expiration_days)
        artifact.save()
    last_artifacts = artifacts
run.finish()


# -- prune checkpoints that are neither latest nor best
api = wandb.Api()
for v in api.artifacts("model", f"lightning/model-{run.id}"):
    if len(v.aliases) == 0:
        v.delete()


# -- the public project's download_latest_checkpoint
def version_to_int(artifact) -> int:
    """Convert versions of the form vX to X. For example, v12 to 12."""
    return int(artifact.version[1:])


def download_latest_checkpoint(run_path: str, download_dir: Path) -> Path:
    api = wandb.Api()
    run = api.run(run_path)

    # Find the latest saved model checkpoint.
    latest = None
    for artifact in run.logged_artifacts():
        if artifact.type != "model" or artifact.state != "COMMITTED":
            continue

        if latest is None or version_to_int(artifact) > version_to_int(latest):
            latest = artifact

    # Download the checkpoint.
    download_dir.mkdir(exist_ok=True, parents=True)
    root = download_dir / run_path
    latest.download(root=root)
    return root / "model.ckpt"


ckpt = download_latest_checkpoint(f"{run.entity}/lightning/{run.id}", Path("downloads"))

# -- checks
kept = {v.version: sorted(v.aliases) for v in api.artifacts("model", f"lightning/model-{run.id}")}
assert kept == {"v3": ["latest"], "v1": ["best"]}
assert api.artifact(f"lightning/model-{run.id}:best").ttl == timedelta(days=expiration_days)
assert ckpt.read_bytes() == Path("epoch=3.ckpt").read_bytes()
assert api.run(f"lightning/{run.id}").summary["val_loss"] == 0.6
