"""A read-only registry served by any static web server (nginx, Apache, S3 website, a CDN).

The server serves the registry's keys as files under a base URL, e.g. the tree `artifactfs export`
writes (resolver/export.py). Reads are plain GETs over one pooled `requests.Session`; ranged reads
send `Range:` and accept a 206 (or cut a 200 from a server that ignores ranges); a key's ETag is
remembered and a later response with another ETag fails loudly, so an object replaced on the
server mid-read is never stitched together from two versions. 404 -> ObjectNotFoundError,
timeouts and connection failures -> BackendError (EIO in the mount). Writes -> ReadOnlyBackendError.
Every request fits the configured deadline (config.request_budget): connect/read timeouts and
retries sized so their worst case does, and bodies that must keep moving (base.read_body).

Listing convention (static servers cannot list): every "directory" D of the tree, the root
included, holds an index object `D/.index.json` (root: `.index.json`):

    {"format": "artifactfs-index-v1", "dirs": ["registry", ...], "files": ["x.json", ...]}

`.index.json` can never collide with a registry key: every key component is a validated name or
a hex digest, and names never start with `.` (resolver/names.py). A directory without an index
lists as empty. LocalStore skips dotfiles, so an exported tree opened as a local directory
registry ignores the index files too. Servers that hide dotfiles (some hardened configs) must be
told to serve `.index.json`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn
from urllib.parse import quote

import requests
from cachetools import LRUCache
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from artifactfs.errors import (
    BackendError,
    ObjectNotFoundError,
    ReadOnlyBackendError,
)
from artifactfs.resolver.backends.base import ObjectInfo, Progress, Store, read_body
from artifactfs.settings import MAX_BACKOFF, request_budget

if TYPE_CHECKING:
    from artifactfs.settings import Config

log = logging.getLogger(__name__)

INDEX_NAME = ".index.json"
INDEX_FORMAT = "artifactfs-index-v1"
STREAM_CHUNK = 1 << 20
MIN_PROGRESS = 64 << 10
"""Bytes a streamed download must bring per deadline-long window (download_to)."""
POOL_SIZE = 32
ETAG_MEMORY = 65536
"""How many keys' first-seen ETags to remember for the changed-mid-read check."""


def index_key(prefix: str) -> str:
    """The index object of a directory prefix (`""` or ending with `/`)."""
    return f"{prefix}{INDEX_NAME}"


def _etag(headers: Any) -> str:
    etag = headers.get("ETag") or ""
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def _age(headers: Any) -> float | None:
    """Seconds since Last-Modified by the server's clock (its Date header), if it says."""
    try:
        modified = parsedate_to_datetime(headers["Last-Modified"]).timestamp()
        date = headers.get("Date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, now - modified)


class HttpStore(Store):
    """A read-only Store over `http(s)://host/base/`."""

    writable = False

    def __init__(self, base_url: str, *, timeout: float = 30.0, retries: int = 5) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.url = self.base_url
        budget = request_budget(timeout, retries)
        self.timeout = (budget.connect, budget.read)
        self.deadline = budget.total
        """Wall-clock seconds one request may take, body included."""
        self.session = requests.Session()
        again = budget.attempts - 1
        retry = Retry(
            total=again,
            connect=again,
            read=again,
            status=again,
            backoff_factor=0.2,
            backoff_max=MAX_BACKOFF,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._etags: LRUCache[str, str] = LRUCache(maxsize=ETAG_MEMORY)
        self._etags_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> HttpStore:
        if config is None:
            return cls(url)
        return cls(url, timeout=config.timeout, retries=config.retries)

    # -- helpers -------------------------------------------------------------------------------
    def _url(self, key: str) -> str:
        if key.startswith("/") or "//" in key or "\x00" in key or ".." in key.split("/"):
            raise ValueError(f"invalid store key {key!r}")
        return self.base_url + quote(key, safe="/")

    def _request(self, method: str, key: str, **kwargs: Any) -> requests.Response:
        url = self._url(key)
        kwargs.setdefault("stream", True)  # bodies are read by _content, within the deadline
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as e:
            raise BackendError(f"{method} {url} timed out after {self.deadline:.1f}s") from e
        except requests.RequestException as e:
            raise BackendError(f"{method} {url} failed: cannot reach {self.base_url}: {e}") from e
        if resp.status_code == 404 or (resp.history and resp.url == url + "/"):
            # (a redirect to `key/` means the key is a directory on a file server)
            resp.close()
            raise ObjectNotFoundError(f"no such key {key!r} at {self.base_url}")
        if resp.status_code == 416:
            return resp  # range past the end: the caller decides
        if resp.status_code >= 400:
            resp.close()
            raise BackendError(f"{method} {url} failed: HTTP {resp.status_code} {resp.reason}")
        return resp

    def _check_etag(self, key: str, etag: str) -> None:
        """Fail if `key` now has another ETag than the one we saw first (replaced mid-read)."""
        if not etag:
            return
        with self._etags_lock:
            seen = self._etags.setdefault(key, etag)
        if seen != etag:
            with self._etags_lock:
                self._etags[key] = etag
            raise BackendError(
                f"{key!r} changed on {self.base_url} while being read (ETag {seen} -> {etag})"
            )

    def _content(self, resp: requests.Response, key: str, started: float) -> bytes:
        """The body of a streamed response, read within the request's deadline."""
        from urllib3.exceptions import HTTPError

        try:
            if resp.headers.get("Content-Encoding"):
                return resp.content
            return read_body(resp.raw, self.deadline, f"GET {self._url(key)}")
        except (requests.RequestException, HTTPError, OSError) as e:
            resp.close()
            if isinstance(e, BackendError):
                raise
            raise BackendError(f"reading {self._url(key)} failed: {e}") from e

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str]:
        started = time.monotonic()
        resp = self._request("GET", key)
        return self._content(resp, key, started), _etag(resp.headers)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        started = time.monotonic()
        resp = self._request("GET", key, headers={"Range": f"bytes={start}-{start + length - 1}"})
        if resp.status_code == 416:
            resp.close()
            return b""
        data = self._content(resp, key, started)
        self._check_etag(key, _etag(resp.headers))
        if resp.status_code == 200:  # the server ignored Range: cut out what was asked
            log.debug("%s ignored a Range request for %s", self.base_url, key)
            return data[start : start + length]
        return data

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self._request("HEAD", key, stream=False)
        except ObjectNotFoundError:
            return None
        size = int(resp.headers.get("Content-Length") or 0)
        return ObjectInfo(key, size, _etag(resp.headers), _age(resp.headers))

    def download_to(self, key: str, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """One streamed GET (static servers stream a file at disk speed; no need to split).

        A big body may take longer than one deadline, so the rule here is progress: every
        deadline-long window must bring at least MIN_PROGRESS bytes, or the transfer fails
        (a stalled or trickling server), instead of a wall-clock limit on the whole object."""
        from urllib3.exceptions import HTTPError

        total = 0
        resp = self._request("GET", key)
        raw = resp.raw
        window, window_bytes = time.monotonic(), 0
        try:
            self._check_etag(key, _etag(resp.headers))
            decode = bool(resp.headers.get("Content-Encoding"))
            while chunk := raw.read1(STREAM_CHUNK, decode_content=decode):
                fileobj.write(chunk)
                total += len(chunk)
                window_bytes += len(chunk)
                if progress:
                    progress(len(chunk))
                if time.monotonic() - window > self.deadline:
                    if window_bytes < MIN_PROGRESS:
                        raise BackendError(
                            f"reading {self._url(key)} stalled after {total} bytes "
                            f"(under {MIN_PROGRESS} bytes in {self.deadline:.1f}s)"
                        )
                    window, window_bytes = time.monotonic(), 0
        except (requests.RequestException, HTTPError, OSError) as e:
            if isinstance(e, BackendError):
                raise
            raise BackendError(f"reading {self._url(key)} failed after {total} bytes: {e}") from e
        finally:
            resp.close()
        expected = resp.headers.get("Content-Length")
        if expected is not None and int(expected) != total:
            raise BackendError(f"{self._url(key)}: got {total} of {expected} bytes")
        return total

    def _index(self, prefix: str) -> dict[str, list[str]]:
        try:
            raw, _ = self.get(index_key(prefix))
        except ObjectNotFoundError:
            return {"dirs": [], "files": []}
        try:
            data = json.loads(raw)
            if data.get("format") != INDEX_FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return {"dirs": list(data.get("dirs", [])), "files": list(data.get("files", []))}
        except (ValueError, AttributeError) as e:
            raise BackendError(f"bad listing index {self._url(index_key(prefix))}: {e}") from e

    def list_children(self, prefix: str) -> Iterator[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        index = self._index(prefix)
        yield from dict.fromkeys(index["dirs"] + index["files"])

    def list(self, prefix: str) -> Iterator[str]:
        """Walk the index files from the directory that contains `prefix`."""
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        stack = [base]
        while stack:
            directory = stack.pop()
            index = self._index(directory)
            for name in index["files"]:
                key = directory + name
                if key.startswith(prefix):
                    yield key
            for name in index["dirs"]:
                sub = f"{directory}{name}/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    stack.append(sub)

    # -- writes: refused -------------------------------------------------------------------------
    def _read_only(self, key: str) -> NoReturn:
        raise ReadOnlyBackendError(
            f"registry {self.base_url} is read-only (HTTP); cannot write {key!r}"
        )

    def put(self, key: str, data: bytes) -> str:
        self._read_only(key)

    def put_file(
        self,
        key: str,
        path: str,
        progress: Progress | None = None,
        md5_hex: str | None = None,
        *,
        if_absent: bool = False,
    ) -> str:
        self._read_only(key)

    def create(self, key: str, data: bytes) -> str:
        self._read_only(key)

    def swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        self._read_only(key)

    def delete(self, key: str) -> None:
        self._read_only(key)

    def close(self) -> None:
        self.session.close()
