"""http(s):// references: one URL, pinned by its ETag.

Add time: HEAD (GET if the server refuses HEAD) for ETag and Content-Length; like W&B the digest
is the ETag without quotes, or the URL itself when the server sends none, and `extra["etag"]`
keeps the raw header. Read time: ranged GETs over one pooled `requests.Session`, sending
`If-Match` with a strong ETag and checking the ETag of every response, so an object that changed
since it was logged is an error (DigestMismatchError), never silently different bytes.

An HTTP ETag is opaque (RFC 9110), not an MD5: fills are checked by size and ETag, not by hash.
"""

from __future__ import annotations

import threading
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artifactfs.cache.references.base import ReferenceHandler, ReferenceObject
from artifactfs.cache.source import BlobSource, Progress
from artifactfs.errors import BackendError, DigestMismatchError, ObjectNotFoundError
from artifactfs.settings import MAX_BACKOFF, RequestBudget, request_budget

CHUNK = 1 << 20
_sessions: dict[tuple[int, float], requests.Session] = {}
_sessions_lock = threading.Lock()


def _budget(config: Any) -> RequestBudget:
    return request_budget(
        float(getattr(config, "timeout", 30.0)), int(getattr(config, "retries", 5))
    )


def timeouts(config: Any) -> tuple[float, float]:
    """(connect, read) timeouts whose retries fit the configured deadline."""
    budget = _budget(config)
    return budget.connect, budget.read


def session_for(config: Any) -> requests.Session:
    """A shared Session (connection pool) per retry setting; retries back off on 5xx/429, as
    many as fit the configured deadline (config.request_budget)."""
    budget = _budget(config)
    retries, timeout = budget.attempts - 1, budget.deadline
    with _sessions_lock:
        s = _sessions.get((retries, timeout))
        if s is None:
            s = requests.Session()
            retry = Retry(
                total=retries,
                backoff_factor=0.2,
                backoff_max=MAX_BACKOFF,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=("HEAD", "GET"),
                raise_on_status=False,
            )
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=32, max_retries=retry)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _sessions[(retries, timeout)] = s
        return s


def _strip(etag: str) -> str:
    return etag[1:-1] if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"' else etag


class HTTPSource:
    """Ranged reads of one URL, refused when its ETag differs from the recorded one."""

    def __init__(
        self, session: requests.Session, url: str, etag: str | None, timeout: tuple[float, float]
    ):
        self.session = session
        self.url = url
        self.etag = etag
        self.timeout = timeout

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = dict(extra)
        if self.etag and not self.etag.startswith("W/"):
            headers["If-Match"] = self.etag  # strong comparison only: weak etags never match
        return headers

    def _check(self, resp: requests.Response) -> None:
        if resp.status_code == 412:
            raise DigestMismatchError(f"{self.url} changed since it was logged (ETag {self.etag})")
        if resp.status_code == 404:
            raise ObjectNotFoundError(f"{self.url}: not found (404)")
        if resp.status_code >= 400 and resp.status_code != 416:
            raise BackendError(f"GET {self.url}: HTTP {resp.status_code} {resp.reason}")
        got = resp.headers.get("ETag")
        if self.etag and got and _strip(got) != _strip(self.etag):
            raise DigestMismatchError(
                f"{self.url} changed since it was logged (ETag {got}, expected {self.etag})"
            )

    def _get(self, headers: dict[str, str], stream: bool) -> requests.Response:
        try:
            return self.session.get(
                self.url, headers=self._headers(headers), stream=stream, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise BackendError(f"GET {self.url}: {e}") from e

    def read_range(self, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with self._get({"Range": f"bytes={start}-{start + length - 1}"}, stream=True) as resp:
            self._check(resp)
            if resp.status_code == 416:
                return b""
            try:
                if resp.status_code == 206:
                    return resp.content
                # The server ignored Range: skip to `start` without keeping what we skip.
                out = bytearray()
                pos = 0
                for chunk in resp.iter_content(CHUNK):
                    lo, hi = max(start - pos, 0), min(start + length - pos, len(chunk))
                    if lo < hi:
                        out += chunk[lo:hi]
                    pos += len(chunk)
                    if pos >= start + length:
                        break
                return bytes(out)
            except requests.RequestException as e:
                raise BackendError(f"GET {self.url}: {e}") from e

    def copy_to(self, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        total = 0
        with self._get({}, stream=True) as resp:
            self._check(resp)
            try:
                for chunk in resp.iter_content(CHUNK):
                    fileobj.write(chunk)
                    total += len(chunk)
                    if progress:
                        progress(len(chunk))
            except requests.RequestException as e:
                raise BackendError(f"GET {self.url}: {e}") from e
        return total


class HTTPHandler(ReferenceHandler):
    schemes = ("http", "https")

    def resolve(
        self, uri: str, checksum: bool, max_objects: int | None, config: Any
    ) -> list[ReferenceObject]:
        if not checksum:
            return [ReferenceObject(uri, "", uri, None)]
        session = session_for(config)
        timeout = timeouts(config)
        try:
            resp = session.head(uri, allow_redirects=True, timeout=timeout)
            if resp.status_code in (405, 501):  # HEAD not allowed: read the headers of a GET
                resp = session.get(uri, stream=True, timeout=timeout)
                resp.close()
        except requests.RequestException as e:
            raise BackendError(f"HEAD {uri}: {e}") from e
        if resp.status_code == 404:
            raise ObjectNotFoundError(f"{uri}: not found (404)")
        if resp.status_code >= 400:
            raise BackendError(f"HEAD {uri}: HTTP {resp.status_code} {resp.reason}")
        etag = resp.headers.get("ETag")
        length = resp.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else None
        extra = {"etag": etag} if etag else {}
        return [ReferenceObject(uri, "", _strip(etag) if etag else uri, size, extra)]

    def open(
        self, uri: str, digest: str, size: int | None, extra: dict[str, Any], config: Any
    ) -> BlobSource:
        etag = extra.get("etag")
        return HTTPSource(session_for(config), uri, etag, timeouts(config))
