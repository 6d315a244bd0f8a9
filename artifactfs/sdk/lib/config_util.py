"""W&B's `wandb.sdk.lib.config_util`: only its `ConfigError`, which Transformers' callback
catches around `wandb.config[...] = ...`. It is our ConfigError (a `wandb.Error`), the error
`run.config` raises when a key's value changes without `allow_val_change=True`."""

from __future__ import annotations

from artifactfs.errors import ConfigError

__all__ = ["ConfigError"]
