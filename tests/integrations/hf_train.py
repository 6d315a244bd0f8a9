"""Transformers' own Trainer(report_to="wandb") with WANDB_LOG_MODEL=checkpoint on a tiny BERT
made from a config, 2 epochs on the CPU, with `import wandb` answered by artifactfs, then the
last checkpoint loaded with `from_pretrained` through the mount given as argv[1] (run by
tests/test_wandb_integrations.py in a subprocess; prints the run id)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

import artifactfs

artifactfs.install_as_wandb()
os.environ["WANDB_LOG_MODEL"] = "checkpoint"
os.environ["WANDB_PROJECT"] = "hf"

from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

CONFIG = BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=16,
    num_labels=2,
)


class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        return {"input_ids": torch.randint(0, 50, (8,), generator=g), "labels": torch.tensor(i % 2)}


def main() -> None:
    import wandb

    torch.manual_seed(0)
    args = TrainingArguments(
        output_dir="out",
        report_to="wandb",
        num_train_epochs=2,
        per_device_train_batch_size=8,
        save_strategy="epoch",
        logging_steps=1,
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=BertForSequenceClassification(CONFIG), args=args, train_dataset=Tokens()).train()
    run = wandb.run
    print("RUN", run.id)
    wandb.finish()
    if len(sys.argv) > 1:  # the checkpoint of step 4, loaded through the mount
        folder = Path(sys.argv[1], run.entity, "hf", f"model-{run.id}:checkpoint_global_step_4")
        deadline = time.monotonic() + 20
        while not (folder / "model.safetensors").exists():
            assert time.monotonic() < deadline, folder
            time.sleep(0.2)
        model = BertForSequenceClassification.from_pretrained(str(folder))
        local = BertForSequenceClassification.from_pretrained("out/checkpoint-4")
        for (k, v), (k2, v2) in zip(
            model.state_dict().items(), local.state_dict().items(), strict=True
        ):
            assert k == k2 and torch.equal(v, v2), k
        print("LOADED", folder)


if __name__ == "__main__":
    main()
