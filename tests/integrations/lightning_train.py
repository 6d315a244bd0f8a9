"""Lightning's own WandbLogger(log_model="all") on a tiny model, 2 epochs on the CPU, with
`import wandb` answered by artifactfs, then the `best` checkpoint loaded with Lightning through
the mount given as argv[1] (run by tests/test_wandb_integrations.py in a subprocess, which
mounts the registry first, so the frameworks are imported once; prints the run id)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import artifactfs

artifactfs.install_as_wandb()

import lightning as L  # noqa: E402
from lightning.pytorch.loggers import WandbLogger  # noqa: E402


class TinyRegressor(L.LightningModule):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main() -> None:
    import wandb

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    logger = WandbLogger(project="lightning", log_model="all")
    trainer = L.Trainer(
        max_epochs=2,
        logger=logger,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(TinyRegressor(), loader, loader)
    run = wandb.run
    print("RUN", run.id)
    wandb.finish()
    if len(sys.argv) > 1:  # load the best checkpoint with Lightning, through the mount
        ckpt = Path(sys.argv[1], run.entity, "lightning", f"model-{run.id}:best", "model.ckpt")
        wait_for(ckpt)
        model = TinyRegressor.load_from_checkpoint(str(ckpt))
        local = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=False)
        assert torch.equal(model.layer.weight, local["state_dict"]["layer.weight"])
        assert model.hparams.width == 4
        print("LOADED", ckpt)


def wait_for(path: Path, timeout: float = 20.0) -> None:
    """The mount re-reads listings after its TTL: a version logged a moment ago shows soon."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise FileNotFoundError(path)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
