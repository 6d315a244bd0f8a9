"""Alias editing on the page (add, move, remove): off unless `artifactfs ui --allow-edits`.

WHY so guarded: the page has no login, so whoever reaches it may edit; the flag makes that a
decision. A browser visiting another site must not edit either (CSRF): every form carries a
per-session token (a random value in the signed, SameSite=Strict session cookie, compared in
constant time), and a request whose Origin (or, without one, Referer) is not this page's own is
refused before the token is even looked at. The change itself goes through the registry's alias
writer, the API's path: the same name rules (`check_alias`; `latest` is the registry's to move)
and the same compare-and-swap, with the version the person saw the alias on as the expectation,
so moving `prod` after someone else moved it fails with "moved since" instead of undoing them.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, render_template, request, session, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from artifactfs.errors import AliasMovedError, InvalidNameError
from artifactfs.resolver.names import check_alias, version_number
from artifactfs.resolver.records import VersionRecord
from artifactfs.ui.data import Browser

log = logging.getLogger(__name__)

READ_ONLY = "this page is read-only: start it with `artifactfs ui --allow-edits` to edit aliases"


def csrf_token() -> str:
    """This session's token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _same_origin() -> bool:
    """The request came from a page of this origin (Origin header, else Referer); a request
    with neither is let through to the token check (not a browser's cross-site form)."""
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if not claimed or claimed == "null":
        return claimed is None
    mine, theirs = urlsplit(request.host_url), urlsplit(claimed)
    return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)


def check_request(allow_edits: bool) -> None:
    """403 unless edits are allowed, the request is same-origin and carries this session's
    token."""
    if not allow_edits:
        abort(403, READ_ONLY)
    if not _same_origin():
        abort(403, "refused: this form was not sent from this page (Origin does not match)")
    sent = request.form.get("csrf", "")
    token = session.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(sent.encode(), token.encode()):
        abort(403, "refused: the form's token is missing or stale; reload the page and retry")


def _expected(value: str | None) -> int | None:
    """The form's `seen` field: `vN` or `none` (the alias was on no version)."""
    if value in (None, "", "none"):
        return None
    n = version_number(value)
    if n is None:
        abort(400, f"bad expectation {value!r}")
    return n


def register(app: Flask, browser: Browser, record_for: Any, *, allow_edits: bool) -> None:
    """The alias route, and `csrf_token` for the templates when edits are on."""
    app.jinja_env.globals.update(allow_edits=allow_edits)
    if allow_edits:
        app.jinja_env.globals.update(csrf_token=csrf_token)

    @app.post("/a/<entity>/<project>/<artifact>/aliases")
    def edit_alias(entity: str, project: str, artifact: str) -> Any:
        check_request(allow_edits)
        found = record_for(entity, project, artifact)
        if not isinstance(found, VersionRecord):
            abort(400, "edit a version by its number (vN), not an alias")
        rec: VersionRecord = found
        alias = (request.form.get("alias") or "").strip()
        action = request.form.get("action")
        if alias == "latest":
            abort(400, "`latest` moves by itself to the newest version; it cannot be edited")
        try:
            check_alias(alias)
        except InvalidNameError as e:
            abort(400, str(e))
        registry = browser.registry
        registry.invalidate()
        where = registry.aliases(entity, project, rec.name).get(alias)
        page = url_for(
            "version", entity=entity, project=project, artifact=f"{rec.name}:v{rec.version}"
        )
        try:
            if action == "remove":
                registry.remove_alias(rec, alias, expected=rec.version)
            elif action == "add":
                seen = request.form.get("seen")
                if seen is None and where is not None and where != rec.version:
                    return render_template(
                        "alias_confirm.html", v=rec, alias=alias, where=where, back=page
                    )
                registry.set_alias(rec, alias, expected=where if seen is None else _expected(seen))
            else:
                abort(400, "action must be add or remove")
        except AliasMovedError as e:
            return render_template("error.html", status=409, message=str(e)), 409
        log.info("alias %s of %s: %s", alias, rec.qualified_name, action)
        registry.invalidate()
        return _see_other(page)


def _see_other(url: str) -> BaseResponse:
    from flask import redirect

    return redirect(url, 303)
