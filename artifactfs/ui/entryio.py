"""One entry's bytes as a seekable file, and which entries are images (shared by the previews,
the tables and the grids).

WHY a file object: pyarrow's Parquet and Arrow readers seek to a footer and read the column
chunks they need; over this view each read is a range read through the shared cache (a big
entry is fetched by block, never whole), so a preview of a 10 GB file costs its footer and a
row group, not 10 GB.
"""

from __future__ import annotations

import io
import posixpath
from typing import Any

from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.ui.data import Browser

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def image_type(path: str) -> str | None:
    """The MIME type of a previewable image (by name; SVG is not one: it can carry script)."""
    return IMAGE_TYPES.get(posixpath.splitext(path)[1].lower())


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over one entry's bytes."""

    def __init__(self, browser: Browser, entry: ManifestEntry) -> None:
        super().__init__()
        if entry.size is None:
            raise ValueError("size unknown")
        self._browser, self._entry, self._size, self._pos = browser, entry, entry.size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._browser.read(self._entry, self._pos, len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)
