"""Image grids of a version's folders: which entries are images, grouped by class folder, paged.

WHY from the manifest index: a folder of 100k images is one contiguous run of the sorted paths
(`ManifestIndex.under`), so finding its images is one scan of mapped path bytes, done once per
(version, folder) and kept as an array of entry numbers (4 bytes an image); a grid page is then
a slice of that array, and an image's previous/next a binary search in it. A folder whose
images sit in sub-folders (`train/cat/1.jpg`, the ImageFolder layout) is labelled by those
sub-folders: each thumbnail carries its class, and the classes are listed with their counts.
"""

from __future__ import annotations

import bisect
import posixpath
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field

from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.manifest_index import ManifestIndex
from artifactfs.resolver.records import VersionRecord
from artifactfs.ui.data import Browser, Page
from artifactfs.ui.previews import IMAGE_TYPES

KEPT_FOLDERS = 64
"""Folders whose image lists are kept (a 100k-image folder's list is 400 KB)."""
PER_PAGE = 60
_SUFFIXES = tuple(s.encode() for s in IMAGE_TYPES) + tuple(s.upper().encode() for s in IMAGE_TYPES)


@dataclass
class FolderImages:
    """The images at any depth below one folder of a version, in path order."""

    entries: array[int]
    """Entry numbers, ascending."""
    classes: list[tuple[str, int]] = field(default_factory=list)
    """(sub-folder, images in it), for images below a sub-folder; empty when all are direct."""
    direct: int = 0
    """Images directly in the folder, not in a sub-folder."""

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class GridItem:
    path: str
    name: str
    label: str
    """The class: the sub-folder of the grid's folder the image is in ("" for a direct one)."""
    size: int | None


def scan_images(index: ManifestIndex, rel: str) -> FolderImages:
    """One pass over the paths below `rel`: image entry numbers and per-class counts."""
    span = index.under(rel)
    plen = len(rel.encode("utf-8", "surrogateescape")) + 1 if rel else 0
    found = array("I")
    counts: dict[bytes, int] = {}
    direct = 0
    pb = index.path_bytes
    for i in span:
        p = pb(i)
        if not p.endswith(_SUFFIXES):
            continue
        found.append(i)
        slash = p.find(b"/", plen)
        if slash < 0:
            direct += 1
        else:
            name = p[plen:slash]
            counts[name] = counts.get(name, 0) + 1
    classes = [(k.decode("utf-8", "surrogateescape"), n) for k, n in counts.items()]
    return FolderImages(found, classes, direct)


class Gallery:
    """Image lists of folders, kept for the most recently viewed folders."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], FolderImages] = OrderedDict()

    def images(self, record: VersionRecord, rel: str) -> FolderImages:
        rel = rel.strip("/")
        key = (record.manifest_key, rel)
        with self._lock:
            hit = self._kept.get(key)
            if hit is not None:
                self._kept.move_to_end(key)
                return hit
        found = scan_images(self.browser.index(record), rel)
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > KEPT_FOLDERS:
                self._kept.popitem(last=False)
        return found

    def page(
        self, record: VersionRecord, rel: str, number: int = 1, per_page: int | None = None
    ) -> Page[GridItem]:
        """One page of the folder's image grid, each image labelled with its class folder."""
        rel = rel.strip("/")
        found = self.images(record, rel)
        index = self.browser.index(record)
        number, shown, per_page = self._slice(found, number, per_page)
        plen = len(rel) + 1 if rel else 0
        items = []
        for i in shown:
            path = index.path(i)
            below = path[plen:]
            label = below.split("/", 1)[0] if "/" in below else ""
            items.append(GridItem(path, posixpath.basename(path), label, index.size(i)))
        return Page(items, number, per_page, len(found))

    def page_entries(
        self, record: VersionRecord, rel: str, number: int, per_page: int | None = None
    ) -> list[ManifestEntry]:
        """The manifest entries page `number` shows ([] past the last page): what its
        thumbnails are made from, without a path lookup per image."""
        found = self.images(record, rel.strip("/"))
        clamped, shown, _ = self._slice(found, number, per_page)
        if clamped != number:
            return []
        index = self.browser.index(record)
        return [index.entry(i) for i in shown]

    @staticmethod
    def _slice(
        found: FolderImages, number: int, per_page: int | None
    ) -> tuple[int, array[int], int]:
        """(page number clamped to the pages there are, its entry numbers, page size)."""
        per_page = per_page or PER_PAGE
        number = max(1, min(number, -(-len(found) // per_page) or 1))
        start = (number - 1) * per_page
        return number, found.entries[start : start + per_page], per_page

    def neighbours(
        self, record: VersionRecord, path: str
    ) -> tuple[str | None, str | None, int, int]:
        """(previous, next, position from 1, count) of an image among its folder's images."""
        folder = posixpath.dirname(path)
        found = self.images(record, folder)
        index = self.browser.index(record)
        i = index.find(path)
        pos = bisect.bisect_left(found.entries, i)
        if i < 0 or pos >= len(found) or found.entries[pos] != i:
            return None, None, 0, len(found)
        prev = index.path(found.entries[pos - 1]) if pos > 0 else None
        nxt = index.path(found.entries[pos + 1]) if pos + 1 < len(found) else None
        return prev, nxt, pos + 1, len(found)
