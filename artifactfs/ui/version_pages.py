"""The pages of one version: its folders (file table, image grid, README), its files (table
pages, images with previous/next, rendered markdown), downloads and thumbnails.

WHY apart from web.py: these are the routes that grew with the dataset viewer (grids, table
paging, snippets), and each is a thin mapping onto the data modules (gallery.py, tables.py,
thumbs.py, previews.py, usage.py), so a route can be read next to the module it calls.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, render_template, request
from werkzeug.wrappers.response import Response as BaseResponse

from artifactfs.errors import ArtifactFSError
from artifactfs.resolver.manifest import ManifestEntry
from artifactfs.resolver.records import VersionRecord
from artifactfs.ui import previews, usage
from artifactfs.ui.data import Browser
from artifactfs.ui.entryio import image_type
from artifactfs.ui.gallery import Gallery
from artifactfs.ui.markdown import render_markdown
from artifactfs.ui.tables import Tables
from artifactfs.ui.thumbs import GRID_SIZE, SIZES, ThumbnailError, Thumbnails

CHUNK = 1 << 20
RAW_CSP = "default-src 'none'; sandbox"
README_NAMES = ("README.md", "readme.md", "README.markdown", "Readme.md")
README_LIMIT = 1 << 20
IMMUTABLE = "private, max-age=31536000, immutable"
"""A `vN` URL's bytes never change (the version is immutable)."""


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path so far) for each folder of `path`."""
    parts = path.split("/") if path else []
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


def register(app: Flask, browser: Browser, record_for: Callable[..., Any]) -> None:
    gallery = Gallery(browser)
    tables = Tables(browser)
    thumbs = Thumbnails(browser, browser.resolver.config.cache_dir / "thumbnails")
    app.extensions["artifactfs.thumbnails"] = thumbs

    def version(entity: str, project: str, artifact: str, path: str = "") -> Any:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        rec = found
        path = path.strip("/")
        if path and not browser.is_dir(rec, path):
            return file_page(rec, path)
        listing = browser.listing(rec, path, _int_arg("page", 1))
        images = gallery.images(rec, path)
        grid = gallery.page(rec, path, _int_arg("gpage", 1)) if len(images) else None
        if grid is not None and grid.has_next:  # its thumbnails, made while this one is seen
            thumbs.make_ahead(gallery.page_entries(rec, path, grid.number + 1), GRID_SIZE)
        registry = browser.registry
        return render_template(
            "version.html",
            v=rec,
            aliases=registry.version_aliases(rec),
            collection_aliases=sorted(registry.aliases(rec.entity, rec.project, rec.name).items()),
            producer=_producer(rec),
            users=registry.users(rec),
            path=path,
            crumbs=_crumbs(path),
            page=listing,
            images=images,
            grid=grid,
            readme=_readme(rec, path),
            snippets=usage.snippets(rec, path, folder=True),
        )

    app.add_url_rule("/a/<entity>/<project>/<artifact>/files/", "version", version)
    app.add_url_rule("/a/<entity>/<project>/<artifact>/files/<path:path>", "files", version)

    def _producer(rec: VersionRecord) -> tuple[str, str, str] | None:
        if not rec.logged_by:
            return None
        src = rec.link_source
        if browser.registry.run(rec.entity, rec.project, rec.logged_by) is None and src:
            return src["entity"], src["project"], rec.logged_by
        return rec.entity, rec.project, rec.logged_by

    def _readme(rec: VersionRecord, folder: str) -> str | None:
        """The folder's README.md rendered (as GitHub and the HF Hub show it under a listing)."""
        index = browser.index(rec)
        for name in README_NAMES:
            i = index.find(f"{folder}/{name}" if folder else name)
            if i >= 0:
                entry = index.entry(i)
                if entry.size is not None and entry.size > README_LIMIT:
                    return None
                try:
                    text = browser.read(entry, 0, entry.size or README_LIMIT)
                except (ArtifactFSError, OSError):
                    return None
                return render_markdown(text.decode("utf-8", "replace"))
        return None

    def find_image(rec: VersionRecord) -> Callable[[str], str | None]:
        index = browser.index(rec)
        return lambda p: p if image_type(p) and index.find(p) >= 0 else None

    def file_page(rec: VersionRecord, path: str) -> str:
        entry = browser.entry(rec, path)
        preview = previews.preview(
            browser,
            entry,
            tables,
            page=_int_arg("page", 1),
            col_start=_int_arg("c", 0),
            find_image=find_image(rec),
        )
        neighbours = gallery.neighbours(rec, path) if preview.kind == "image" else None
        return render_template(
            "file.html",
            v=rec,
            e=entry,
            path=path,
            crumbs=_crumbs(path),
            preview=preview,
            neighbours=neighbours,
            snippets=usage.snippets(rec, path),
            ref_is_link=bool(entry.ref and urlsplit(entry.ref).scheme in ("http", "https")),
        )

    @app.get("/a/<entity>/<project>/<artifact>/raw/<path:path>")
    def raw(entity: str, project: str, artifact: str, path: str) -> BaseResponse:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        entry = browser.entry(found, path)
        return _download(browser, entry, inline=request.args.get("inline") == "1")

    @app.get("/a/<entity>/<project>/<artifact>/thumb/<path:path>")
    def thumb(entity: str, project: str, artifact: str, path: str) -> BaseResponse:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        size = _int_arg("s", 256)
        if size not in SIZES or not image_type(path):
            abort(404)
        entry = browser.entry(found, path)
        try:
            data = thumbs.get(entry, size)
        except ThumbnailError as e:
            abort(415, str(e))
        response = Response(data, mimetype="image/webp")
        response.headers["Cache-Control"] = IMMUTABLE
        response.set_etag(f"{entry.digest}-{size}")
        return response


def _download(browser: Browser, entry: ManifestEntry, *, inline: bool) -> BaseResponse:
    """One file's bytes, streamed through the cache by chunk. Only images are ever shown
    inline; everything else is an attachment under a sandbox policy, so a file in an artifact
    can never run script on this page's origin."""
    image = image_type(entry.path)

    def body() -> Iterator[bytes]:
        offset = 0
        while True:
            chunk = browser.read(entry, offset, CHUNK)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk
            if entry.size is not None and offset >= entry.size:
                return

    response = Response(body(), mimetype=image if inline and image else "application/octet-stream")
    if entry.size is not None:
        response.content_length = entry.size
    filename = posixpath.basename(entry.path)
    disposition = "inline" if inline and image else "attachment"
    response.headers.set("Content-Disposition", disposition, filename=filename)
    response.headers["Content-Security-Policy"] = RAW_CSP
    response.headers["Cache-Control"] = IMMUTABLE
    response.set_etag(entry.digest)
    return response
