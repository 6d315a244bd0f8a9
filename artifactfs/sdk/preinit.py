"""W&B's pre-init placeholders: what `artifactfs.config` and `artifactfs.summary` are while no
run is current. A leaf module (imports only errors), so the package can set them at import time
without loading the API, and the run session can put them back at `finish()`."""

from __future__ import annotations

from typing import Any

from artifactfs.errors import UsageError


class PreInit:
    """What `artifactfs.config`/`summary` are before `init()` and after `finish()`: any use says to call init()."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise UsageError(f"call artifactfs.init() before using artifactfs.{self._name}")

    __getitem__ = __setitem__ = __iter__ = __len__ = __contains__ = _refuse

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._refuse()

    def __setattr__(self, key: str, value: Any) -> None:
        self._refuse()

    def __repr__(self) -> str:
        return f"<artifactfs.{self._name}: call artifactfs.init() first>"
