"""Lightning's own WandbLogger(log_model="all") on a tiny model, 2 epochs on the CPU, with
`import wandb` answered by artifactfs (run by tests/test_wandb_integrations.py in a subprocess;
prints the run id)."""

from __future__ import annotations

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
    print("RUN", wandb.run.id)
    print("BEST", trainer.checkpoint_callback.best_model_path)
    wandb.finish()


if __name__ == "__main__":
    main()
