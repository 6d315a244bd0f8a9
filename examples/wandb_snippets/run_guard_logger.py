"""Source: the `WandbLogger` helper class found in many public training repos ("Initialize a W&B
run" with `if self._wandb.run is None: self._wandb.init(project=..., config=args, name=...,
group=...)`, then `log`/`summary`/`finish`), plus the HF-transformers WandbCallback habits:
`project=os.getenv("WANDB_PROJECT", "huggingface")` and
`self._wandb.config.update(combined_dict, allow_val_change=True)`."""

import argparse
import os

import artifactfs as wandb


class WandbLogger:
    def __init__(self, args):
        try:
            import artifactfs as wandb

            self._wandb = wandb
        except ImportError:
            raise ImportError(
                "To use the Weights and Biases Logger please install wandb."
                "Run `pip install wandb` to install it."
            )

        # Initialize a W&B run
        if self._wandb.run is None:
            self._wandb.init(
                project=os.getenv("WANDB_PROJECT", "huggingface"),
                config=args,
                name=args.wandb_name,
                group=args.wandb_group,
            )
        # add config parameters (run may have been created manually)
        self._wandb.config.update({"learning_rate": args.lr * 2}, allow_val_change=True)

    def log_epoch_metrics(self, metrics, commit=True):
        self._wandb.log(metrics, commit=commit)

    def finish(self):
        if self._wandb.run is not None:
            self._wandb.run.summary["best_acc"] = 0.75
        self._wandb.finish()


# -- setup: the command line the training script parses
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--wandb_name", default="baseline")
parser.add_argument("--wandb_group", default="ablation")
args = parser.parse_args([])

# -- the pattern
assert wandb.run is None
logger = WandbLogger(args)
for epoch in range(3):
    logger.log_epoch_metrics({"train/loss": 1.0 / (epoch + 1)}, commit=False)
    logger.log_epoch_metrics({"val/acc": 0.5 + epoch / 10})
run_id = wandb.run.id
logger.finish()

# -- checks
assert wandb.run is None
stored = wandb.Api().run(f"{os.environ['WANDB_PROJECT']}/{run_id}")
assert stored.name == "baseline" and stored.group == "ablation" and stored.state == "finished"
assert stored.config["lr"] == 0.01 and stored.config["learning_rate"] == 0.02
rows = stored.history(pandas=False)
assert [r["_step"] for r in rows] == [0, 1, 2]
assert rows[2]["train/loss"] == 1.0 / 3 and rows[2]["val/acc"] == 0.7
assert stored.summary["best_acc"] == 0.75 and stored.summary["val/acc"] == 0.7
