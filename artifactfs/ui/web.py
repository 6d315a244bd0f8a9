"""The web layer: URLs to data-layer calls to Jinja2 templates (Flask), and single-file downloads.

WHY Flask: a small, long-kept WSGI framework whose routing, Jinja2 templates (autoescaped, so a
description or metadata value is text, never markup), static files and `TRUSTED_HOSTS` check
are exactly what a read-only page needs; serving is waitress's (server.py). Every page is HTML
rendered here; the browser runs no script. URLs mirror the mount's names:

    /                                        entities and their projects
    /p/ENTITY/PROJECT                        collections (and runs when the API lists them)
    /a/ENTITY/PROJECT/NAME                   a collection's versions; /diff?a=vN&b=vM
    /a/ENTITY/PROJECT/NAME:vN[/files/PATH]   a version and its file tree, or one file's preview
    /a/ENTITY/PROJECT/NAME:vN/raw/PATH       one file's bytes (a download)
    /a/ENTITY/PROJECT/NAME:vN/lineage        the lineage picture (?hops=N)
    /r/ENTITY/PROJECT/RUN_ID                 a run

An alias in place of `vN` redirects to the version it names, so every page after it is a
version's, which never changes.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.wrappers.response import Response as BaseResponse

from artifactfs.cli.output import human_date, human_size
from artifactfs.errors import (
    ArtifactFSError,
    ArtifactNotFoundError,
    BackendError,
    InvalidNameError,
    InvalidPathError,
)
from artifactfs.resolver.manifest import ManifestEntry, b64_to_hex
from artifactfs.resolver.names import version_number
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver
from artifactfs.sdk.api import Api
from artifactfs.ui import pictures, previews, runs
from artifactfs.ui.data import Browser, page_of
from artifactfs.ui.lineage import DEFAULT_HOPS, MAX_HOPS, Node, lineage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
RAW_CSP = "default-src 'none'; sandbox"
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"]


def display_url(url: str) -> str:
    """A registry location without any user:password part."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def create_app(
    resolver: Resolver,
    *,
    lineage_hops: int = DEFAULT_HOPS,
    trusted_hosts: list[str] | None = LOOPBACK_NAMES,
) -> Flask:
    """The read-only site over `resolver`. `trusted_hosts` are the Host header values accepted
    (None: any; the loopback default stops DNS-rebinding pages from reading the registry)."""
    app = Flask("artifactfs.ui")
    app.config["TRUSTED_HOSTS"] = trusted_hosts
    browser = Browser(resolver)
    api = Api(resolver=resolver)
    app.extensions["artifactfs.browser"] = browser
    app.jinja_env.filters.update(size=human_size, date=human_date, pretty=_pretty, md5=b64_to_hex)
    app.jinja_env.globals.update(registry=display_url(resolver.config.registry))

    def record_for(entity: str, project: str, artifact: str) -> VersionRecord | BaseResponse:
        """The version `name:spec` names, or a redirect from an alias to its `vN` URL."""
        name, _, spec = artifact.partition(":")
        if not spec:
            abort(404)
        info = browser.version(entity, project, name, spec)
        if version_number(spec) is None:
            endpoint = request.endpoint or "version"
            args = {**request.args.to_dict(), **(request.view_args or {})}
            args["artifact"] = f"{name}:v{info.record.version}"
            return redirect(url_for(endpoint, **args))
        return info.record

    def node_url(node: Node) -> str:
        if node.kind == "run":
            return url_for("run", entity=node.entity, project=node.project, run_id=node.name)
        return url_for("version", entity=node.entity, project=node.project, artifact=node.label)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(ArtifactFSError)
    def artifact_error(e: ArtifactFSError) -> tuple[str, int]:
        if isinstance(e, ArtifactNotFoundError):
            status = 404
        elif isinstance(e, (InvalidNameError, InvalidPathError)):
            status = 400
        elif isinstance(e, BackendError):
            status = 502
        else:
            status = 500
        if status >= 500:
            log.warning("%s: %s", request.path, e)
        return render_template("error.html", status=status, message=str(e)), status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Any:
        if isinstance(e, SecurityError):  # a Host header we do not serve: no URLs to build
            return Response(f"{e.description}\n", 400, mimetype="text/plain")
        code = e.code or 500
        return render_template("error.html", status=code, message=e.description), code

    @app.get("/")
    def index() -> str:
        return render_template("index.html", entities=browser.projects_by_entity())

    @app.get("/p/<entity>/<project>")
    def project(entity: str, project: str) -> str:
        page = browser.collections(entity, project, _int_arg("page", 1))
        run_list = runs.project_runs(api, entity, project)
        return render_template(
            "project.html", entity=entity, project=project, page=page, runs=run_list
        )

    @app.get("/a/<entity>/<project>/<artifact>")
    def collection_or_version(entity: str, project: str, artifact: str) -> Any:
        if ":" in artifact:
            return version(entity, project, artifact)
        summary = browser.collection(entity, project, artifact)
        page = browser.versions(entity, project, artifact, _int_arg("page", 1))
        numbers = browser.registry.version_numbers(entity, project, artifact)[::-1]
        return render_template("collection.html", c=summary, page=page, numbers=numbers)

    def version(entity: str, project: str, artifact: str, path: str = "") -> Any:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        rec = found
        path = path.strip("/")
        if path and not browser.is_dir(rec, path):
            return file_page(rec, path)
        listing = browser.listing(rec, path, _int_arg("page", 1))
        return render_template(
            "version.html",
            v=rec,
            aliases=browser.registry.version_aliases(rec),
            producer=_producer(rec),
            users=browser.registry.users(rec),
            path=path,
            crumbs=_crumbs(path),
            page=listing,
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

    def file_page(rec: VersionRecord, path: str) -> str:
        entry = browser.entry(rec, path)
        return render_template(
            "file.html",
            v=rec,
            e=entry,
            path=path,
            crumbs=_crumbs(path),
            preview=previews.preview(browser, entry),
            ref_is_link=bool(entry.ref and urlsplit(entry.ref).scheme in ("http", "https")),
        )

    @app.get("/a/<entity>/<project>/<artifact>/raw/<path:path>")
    def raw(entity: str, project: str, artifact: str, path: str) -> BaseResponse:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        entry = browser.entry(found, path)
        return _download(browser, entry, inline=request.args.get("inline") == "1")

    @app.get("/a/<entity>/<project>/<artifact>/lineage")
    def lineage_page(entity: str, project: str, artifact: str) -> Any:
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            return found
        hops = max(1, min(_int_arg("hops", lineage_hops), MAX_HOPS))
        graph = lineage(browser.registry, found, hops)
        try:
            svg, problem = Markup(pictures.lineage_svg(graph, node_url)), None
        except pictures.PictureUnavailable as e:
            svg, problem = None, str(e)
        return render_template(
            "lineage.html",
            v=found,
            graph=graph,
            svg=svg,
            problem=problem,
            hops=hops,
            max_hops=MAX_HOPS,
            node_url=node_url,
        )

    @app.get("/a/<entity>/<project>/<artifact>/diff")
    def diff(entity: str, project: str, artifact: str) -> str:
        a = browser.version(entity, project, artifact, request.args.get("a") or "latest").record
        b = browser.version(entity, project, artifact, request.args.get("b") or "latest").record
        d = browser.diff(a, b)
        number = _int_arg("page", 1)
        return render_template(
            "diff.html",
            d=d,
            added=page_of(d.added, number, 200),
            removed=page_of(d.removed, number, 200),
            changed=page_of(d.changed, number, 200),
            numbers=browser.registry.version_numbers(entity, project, artifact)[::-1],
        )

    @app.get("/r/<entity>/<project>/<run_id>")
    def run(entity: str, project: str, run_id: str) -> str:
        info = runs.run_info(api, entity, project, run_id)
        plots = [(k, Markup(svg)) for k, svg in pictures.history_plots(info.history)]
        return render_template("run.html", r=info, plots=plots)

    return app


def _crumbs(path: str) -> list[tuple[str, str]]:
    """(name, path so far) for each folder of `path`."""
    parts = path.split("/") if path else []
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


def _download(browser: Browser, entry: ManifestEntry, *, inline: bool) -> BaseResponse:
    """One file's bytes, streamed through the cache by chunk. Only images are ever shown
    inline; everything else is an attachment under a sandbox policy, so a file in an artifact
    can never run script on this page's origin."""
    image = previews.image_type(entry.path)

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
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.set_etag(entry.digest)
    return response
