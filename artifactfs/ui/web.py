"""The web layer: URLs to data-layer calls to Jinja2 templates (Flask), and single-file downloads.

WHY Flask: a small, long-kept WSGI framework whose routing, Jinja2 templates (autoescaped, so a
description or metadata value is text, never markup; markdown is rendered and sanitised by
markdown.py), static files and `TRUSTED_HOSTS` check are exactly what the page needs; serving is
waitress's (server.py). Every page is HTML rendered here and works without script; one static
script (static/ui.js: copy buttons, zoom, live filtering, arrow keys) only adds comfort, and the
Content-Security-Policy allows no other. URLs mirror the mount's names:

    /                                        projects with counts (?q= filters)
    /p/ENTITY/PROJECT                        collections (?q=) and runs
    /a/ENTITY/PROJECT/NAME                   a collection's versions; /diff?a=vN&b=vM
    /a/ENTITY/PROJECT/NAME:vN[/files/PATH]   a version, a folder (image grid, README), a file
    /a/ENTITY/PROJECT/NAME:vN/raw/PATH       one file's bytes (a download)
    /a/ENTITY/PROJECT/NAME:vN/thumb/PATH     an image's thumbnail (?s=128|256|512)
    /a/ENTITY/PROJECT/NAME:vN/aliases        POST: add, move or remove an alias (--allow-edits)
    /a/ENTITY/PROJECT/NAME:vN/lineage        the lineage picture (?hops=N)
    /r/ENTITY/PROJECT/RUN_ID                 a run

An alias in place of `vN` redirects to the version it names, so every page after it is a
version's, which never changes.
"""

from __future__ import annotations

import json
import logging
import secrets
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
    PreconditionFailedError,
)
from artifactfs.resolver.manifest import b64_to_hex
from artifactfs.resolver.names import version_number
from artifactfs.resolver.records import VersionRecord
from artifactfs.resolver.resolver import Resolver
from artifactfs.sdk.api import Api
from artifactfs.ui import edits, pictures, runs, version_pages
from artifactfs.ui.data import Browser, page_of
from artifactfs.ui.lineage import DEFAULT_HOPS, MAX_HOPS, Node, lineage
from artifactfs.ui.markdown import render_markdown
from artifactfs.ui.overview import Overview, matches

log = logging.getLogger(__name__)

PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
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
    allow_edits: bool = False,
) -> Flask:
    """The site over `resolver`. `trusted_hosts` are the Host header values accepted (None:
    any; the loopback default stops DNS-rebinding pages from reading the registry).
    `allow_edits` turns on alias editing (edits.py); without it the site only reads."""
    app = Flask("artifactfs.ui")
    app.config["TRUSTED_HOSTS"] = trusted_hosts
    app.config.update(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True)
    app.secret_key = secrets.token_bytes(32)  # sessions (the edit token) end with the server
    browser = Browser(resolver)
    api = Api(resolver=resolver)
    overview = Overview(browser)
    app.extensions["artifactfs.browser"] = browser
    app.jinja_env.filters.update(
        size=human_size,
        date=human_date,
        pretty=_pretty,
        md5=b64_to_hex,
        markdown=_markdown,
        num=_num,
    )
    app.jinja_env.globals.update(
        registry=display_url(resolver.config.registry),
        run_name=lambda e, p, rid: _run_name(browser, e, p, rid),
    )

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
        # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
        # page's own POSTs, and the edit forms' origin check needs the real one
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    @app.errorhandler(ArtifactFSError)
    def artifact_error(e: ArtifactFSError) -> tuple[str, int]:
        if isinstance(e, ArtifactNotFoundError):
            status = 404
        elif isinstance(e, (InvalidNameError, InvalidPathError)):
            status = 400
        elif isinstance(e, PreconditionFailedError):
            status = 409
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
        query = request.args.get("q", "").strip()
        total, rows = overview.home(query)
        return render_template("index.html", total=total, rows=rows, q=query)

    @app.get("/p/<entity>/<project>")
    def project(entity: str, project: str) -> str:
        query = request.args.get("q", "").strip()
        keep = (lambda name: matches(query, name)) if query else None
        page = browser.collections(entity, project, _int_arg("page", 1), keep=keep)
        run_list = runs.project_runs(api, entity, project)
        if run_list is not None and query:
            run_list = [r for r in run_list if matches(query, r.id, r.name or "", r.job_type or "")]
        return render_template(
            "project.html",
            entity=entity,
            project=project,
            page=page,
            runs=run_list,
            counts=overview.project(entity, project),
            q=query,
        )

    @app.get("/a/<entity>/<project>/<artifact>")
    def collection_or_version(entity: str, project: str, artifact: str) -> Any:
        if ":" in artifact:
            return app.view_functions["version"](entity=entity, project=project, artifact=artifact)
        summary = browser.collection(entity, project, artifact)
        page = browser.versions(entity, project, artifact, _int_arg("page", 1))
        numbers = browser.registry.version_numbers(entity, project, artifact)[::-1]
        return render_template("collection.html", c=summary, page=page, numbers=numbers)

    version_pages.register(app, browser, record_for)
    edits.register(app, browser, record_for, allow_edits=allow_edits)

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


def _num(value: Any) -> str:
    """A statistic as people read it: 4 significant digits, -0.0 as 0, thousands grouped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    return f"{value:,.4g}" if abs(value) < 1e15 else f"{value:.4g}"


def _markdown(text: str | None) -> Markup:
    """A description as sanitised HTML (markdown.py)."""
    return Markup(render_markdown(text or ""))


def _run_name(browser: Browser, entity: str, project: str, run_id: str) -> str:
    """What people named a run (W&B's display name), else its id."""
    try:
        run = browser.registry.run(entity, project, run_id)
    except ArtifactFSError:
        return run_id
    return (run.name if run is not None else None) or run_id
