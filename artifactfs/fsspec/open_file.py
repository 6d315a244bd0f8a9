"""An open `artifact://` file: reads through the shared blob cache, pinned to one version."""

from __future__ import annotations

import os
from typing import Any

from fsspec.spec import AbstractBufferedFile

from artifactfs.errors import CacheError
from artifactfs.resolver.manifest import ManifestEntry


class ArtifactFile(AbstractBufferedFile):
    """An open entry, pinned to the version it was opened at. Reads go through the blob cache:
    held fds on its cached bytes when present (like the mount's open files), else a ranged
    fetch that fills the cache. fsspec's own read cache is off by default ("none"): the blob
    cache already is one, on local disk."""

    def __init__(self, fs: Any, path: str, entry: ManifestEntry, **kwargs: Any):
        self.entry = entry
        self._resolver = fs.resolver
        self._handle: Any = None
        self._handle_tried = False
        size = entry.size if entry.size is not None else fs._local_size(entry)
        super().__init__(fs, path, mode="rb", size=size, **kwargs)

    def _spans(self, start: int, length: int) -> list[tuple[int, int, int]] | None:
        if not self._handle_tried:
            self._handle_tried = True
            cache = self._resolver.cache
            if self.size < cache.block_threshold:  # small entries are cached whole anyway
                try:
                    self._resolver.fetch(self.entry)
                except CacheError:
                    pass  # the cache cannot store it: ranged reads fetch straight from source
            self._handle = self._resolver.open_handle(self.entry)
        return None if self._handle is None else self._handle.spans(start, length)

    def _fetch_range(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        if end <= start:
            return b""
        spans = self._spans(start, end - start)
        if spans is None:
            return self._resolver.read(self.entry, start, end - start)
        if len(spans) == 1:
            fd, pos, n = spans[0]
            return os.pread(fd, n, pos)
        return b"".join(os.pread(fd, n, pos) for fd, pos, n in spans)

    def close(self) -> None:
        super().close()
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
