"""Which registry a draft belongs to, and a resolver for it whatever the configuration says now.

A draft is made against one registry (DESIGN §3): its base version, its `committing.json` and
the version it becomes all live there. The draft's state records that registry (`Binding`: the
registry URL and the settings that select the same store, never credentials) when it is first
written, and everything that later acts on the draft (commit, recovery of an interrupted
commit, status, diff) opens *that* registry: a mount started with `--registry A` that crashed
leaves drafts that `artifactfs commit --all` under the default configuration still commits into
A. Drafts written before drafts recorded their registry are taken to belong to the one
configured when they are first opened again, which is what happened to them before.

Apart from the state so that the workspace, recovery and the CLI pick resolvers one way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from artifactfs.drafts.layout import STATE_FILE
from artifactfs.resolver.resolver import Resolver
from artifactfs.settings import Config

log = logging.getLogger(__name__)


def _normal_url(url: str) -> str:
    if "://" in url and not url.startswith("file://"):
        return url.rstrip("/")
    path = url[len("file://") :] if url.startswith("file://") else url
    return os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True)
class Binding:
    """The registry of a draft: its URL and the settings that pick the same store."""

    registry: str
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_profile: str | None = None

    @classmethod
    def of(cls, config: Config) -> Binding:
        s3 = config.registry.startswith("s3://")
        return cls(
            _normal_url(config.registry),
            config.s3_endpoint_url if s3 else None,
            config.s3_region if s3 else None,
            config.s3_profile if s3 else None,
        )

    @classmethod
    def from_json(cls, data: Any) -> Binding | None:
        if not isinstance(data, dict) or not isinstance(data.get("registry"), str):
            return None
        return cls(
            data["registry"],
            data.get("s3_endpoint_url"),
            data.get("s3_region"),
            data.get("s3_profile"),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def config(self, base: Config) -> Config:
        """`base` pointed at this registry (cache, write dir and timeouts stay)."""
        return replace(
            base,
            registry=self.registry,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            s3_profile=self.s3_profile,
        )

    def describe(self) -> str:
        if self.s3_endpoint_url:
            return f"{self.registry} (endpoint {self.s3_endpoint_url})"
        return self.registry


def read_binding(root: Path) -> Binding | None:
    """The registry recorded in the draft dir `root` (None: none recorded, or no state)."""
    try:
        data = json.loads((root / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return Binding.from_json(data.get("registry") if isinstance(data, dict) else None)


class Resolvers:
    """The workspace's resolver, plus one opened on demand per other registry drafts name."""

    def __init__(self, resolver: Resolver) -> None:
        self.home = resolver
        self.home_binding = Binding.of(resolver.config)
        self._others: dict[Binding, Resolver] = {}
        self._lock = threading.Lock()

    def is_home(self, binding: Binding | None) -> bool:
        return binding is None or binding == self.home_binding

    def get(self, binding: Binding | None) -> Resolver:
        """The resolver of `binding`'s registry (the home one for None)."""
        if self.is_home(binding):
            return self.home
        assert binding is not None
        with self._lock:
            found = self._others.get(binding)
            if found is None:
                log.info("opening registry %s for its drafts", binding.describe())
                found = Resolver.open(binding.config(self.home.config), ttl=0)
                self._others[binding] = found
            return found

    def for_draft(self, root: Path) -> Resolver:
        return self.get(read_binding(root))

    def close(self) -> None:
        """Close the resolvers opened here (the home one belongs to the caller)."""
        with self._lock:
            others, self._others = list(self._others.values()), {}
        for r in others:
            r.close()
