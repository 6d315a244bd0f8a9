"""W&B's `wandb.sdk.lib` as integrations import it: `RunDisabled` (Lightning checks
`isinstance(experiment, (Run, RunDisabled))`) and `config_util` (Transformers catches its
ConfigError)."""

from __future__ import annotations

from typing import Any

from artifactfs.errors import MIGRATION_DOC, NotSupportedAttributeError


class RunDisabled:
    """W&B's run object under `mode="disabled"`. artifactfs never returns one: `init(mode=
    "disabled")` returns a real run whose `disabled` is True. Defined so integrations'
    `isinstance` checks work; any use of an instance says so."""

    def __getattr__(self, name: str) -> Any:
        raise NotSupportedAttributeError(
            f"RunDisabled.{name}: artifactfs has no disabled run object (see {MIGRATION_DOC})"
        )


class SummaryDisabled(dict[str, Any]):
    """W&B's summary of a disabled run: a plain dict."""


__all__ = ["RunDisabled", "SummaryDisabled"]
