"""Thumbnails of a version's images, made on the server with Pillow and kept in the cache's space.

WHY on the server: a grid of 60 full-size images would move tens of megabytes to the browser
and decode them all there; a 256-pixel WebP is a few kilobytes. WHY Pillow: the long-kept
imaging library of Python, with `draft()` (JPEG decodes at 1/2..1/8 scale, so a big photo is
not decoded whole) and `thumbnail()`. Thumbnails live in `cache_dir/thumbnails/`, beside the
blob cache's objects, keyed by what the bytes are (digest and reference) and the thumbnail's
size, so every version holding the same image shares one. The directory is bounded: past
`max_bytes` the least recently used thumbnails (by mtime, touched on use) are removed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from pathlib import Path

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.ui.data import Browser

log = logging.getLogger(__name__)

SIZES = (128, 256, 512)
"""Thumbnail edges the page asks for (table cell, grid, large); others are refused."""
GRID_SIZE = 256
"""The edge of a grid's thumbnails (templates/_macros.html asks for it)."""
DEFAULT_MAX_BYTES = 256 << 20
SOURCE_LIMIT = 64 << 20
"""Images bigger than this get no thumbnail (the page shows a placeholder)."""
MAX_PIXELS = 64_000_000
"""Decompression-bomb guard: a small file declaring more pixels than this is not decoded."""
TOUCH_EVERY = 600.0
"""A thumbnail's mtime is refreshed on use at most this often (seconds)."""
SWEEP_EVERY = 200
"""Thumbnails written between two checks of the directory's size."""
AHEAD_LIMIT = 120
"""Thumbnails made ahead for one page view at most (the next grid page is 60)."""


class ThumbnailError(ArtifactFSError):
    """An image that cannot be thumbnailed (not an image, too big, damaged)."""


def thumbnail_key(entry: ManifestEntry, size: int) -> str:
    """What the thumbnail depends on: the bytes (digest, and reference for external ones) and
    the edge length; two entries with the same bytes share one thumbnail."""
    return hashlib.sha256(f"{entry.digest}\n{entry.ref or ''}\n{size}".encode()).hexdigest()


def make_thumbnail(data: bytes, size: int) -> bytes:
    """`data` (any image Pillow reads) as a WebP no larger than size x size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ThumbnailError(f"image of {opened.width}x{opened.height} pixels: too large")
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img: Image.Image = ImageOps.exif_transpose(opened)
            if img.mode not in ("RGB", "RGBA"):
                img = img.convert(
                    "RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB"
                )
            # bicubic with a reducing gap (a cheap box reduction first) and WebP's fastest method:
            # a fifth of Lanczos plus method 4's time, and a thumbnail cannot tell the difference
            img.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
            out = io.BytesIO()
            img.save(out, "WEBP", quality=80, method=0)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ThumbnailError(f"not a readable image: {e}") from e


class Thumbnails:
    """The thumbnail directory of one cache: get-or-make, bounded by size."""

    def __init__(self, browser: Browser, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.browser = browser
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._written = 0
        self._making: dict[str, threading.Lock] = {}
        self._ahead: list[tuple[ManifestEntry, int]] = []
        """What a page view asked to have ready next (newest view only: paging on drops it)."""
        self._ahead_wake = threading.Condition(self._lock)
        self._ahead_thread: threading.Thread | None = None

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key[2:]}.webp"

    def get(self, entry: ManifestEntry, size: int) -> bytes:
        """The thumbnail of `entry` at edge `size`: from disk, or made once (concurrent asks for
        the same one wait for the first rather than decoding it twice)."""
        if size not in SIZES:
            raise ThumbnailError(f"thumbnail size {size} is not one of {SIZES}")
        key = thumbnail_key(entry, size)
        path = self.path(key)
        data = self._read(path)
        if data is not None:
            return data
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            data = self._read(path)
            if data is None:
                data = self._make(entry, size, path)
        with self._lock:
            self._making.pop(key, None)
        return data

    def make_ahead(self, entries: list[ManifestEntry], size: int) -> None:
        """Make these thumbnails in the background, one at a time, so the next grid page's are
        on disk before it is asked for (a cold page costs a decode per image; while one page is
        looked at, the server is idle). A later call replaces what an earlier one left undone:
        only the page after the newest one viewed is worth the CPU. One thread, so page
        requests keep the other core."""
        if size not in SIZES:
            return
        with self._lock:
            self._ahead = [(e, size) for e in entries[:AHEAD_LIMIT]]
            if self._ahead_thread is None:
                self._ahead_thread = threading.Thread(
                    target=self._ahead_loop, name="afs-thumbs-ahead", daemon=True
                )
                self._ahead_thread.start()
            self._ahead_wake.notify()

    def _ahead_loop(self) -> None:
        while True:
            with self._lock:
                while not self._ahead:
                    self._ahead_wake.wait()
                entry, size = self._ahead.pop(0)
            if self.path(thumbnail_key(entry, size)).exists():
                continue
            try:
                self.get(entry, size)
            except Exception as e:  # ahead of need: the page asks again, and says why
                log.debug("thumbnail of %s not made ahead: %s", entry.path, e)

    def _read(self, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
            if time.time() - path.stat().st_mtime > TOUCH_EVERY:
                os.utime(path)
            return data
        except OSError:
            return None

    def _make(self, entry: ManifestEntry, size: int, path: Path) -> bytes:
        if entry.size is not None and entry.size > SOURCE_LIMIT:
            raise ThumbnailError(f"image of {entry.size} bytes: too large for a thumbnail")
        source = self.browser.read(entry, 0, entry.size if entry.size is not None else SOURCE_LIMIT)
        data = make_thumbnail(source, size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as e:  # a full or read-only cache costs speed, never the page
            log.info("cannot keep a thumbnail in %s: %s", self.root, e)
            return data
        with self._lock:
            self._written += 1
            sweep = self._written % SWEEP_EVERY == 0
        if sweep:
            self.sweep()
        return data

    def sweep(self) -> int:
        """Remove the least recently used thumbnails until the directory fits `max_bytes`;
        returns how many were removed."""
        files: list[tuple[float, int, Path]] = []
        total = 0
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                p = Path(dirpath, name)
                try:
                    st = p.stat()
                except OSError:
                    continue
                files.append((st.st_mtime, st.st_size, p))
                total += st.st_size
        removed = 0
        for _, size, p in sorted(files):
            if total <= self.max_bytes:
                break
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        return removed
