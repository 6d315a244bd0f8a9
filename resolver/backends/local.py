"""The embedded default backend: a registry in a local directory (nothing to start).

Each key is a file under the root. Atomicity comes from the filesystem: writes go to a temporary
name and are renamed into place; create-only is `link()` of a finished temporary file, which
fails if the key exists; compare-and-swap holds an `flock` on a per-key lock file while it
compares and renames. All of this holds across processes on one machine (and on NFS only as far
as NFS honours link and flock).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from artifactfs.errors import (
    BackendError,
    DigestMismatchError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from artifactfs.resolver.backends.base import ObjectInfo, Progress, Store

COPY_CHUNK = 1 << 20


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_libc_syncfs = _load_syncfs()


def _etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


_Paths = list[Path]


class LocalStore(Store):
    """A Store over a directory tree; etags are the MD5 of the content."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        self._tmp = self.root / ".tmp"
        self._locks = self.root / ".locks"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._locks.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BackendError(f"cannot use registry directory {self.root}: {e}") from e

    # -- helpers -------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        if (
            not key
            or key.startswith(("/", "."))
            or "//" in key
            or "\x00" in key
            or ".." in key.split("/")
        ):
            raise ValueError(f"invalid store key {key!r}")
        return self.root / key

    def _write_tmp(self, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        name = hashlib.sha1(key.encode()).hexdigest()
        fd = os.open(self._locks / name, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _wrap(e: OSError, key: str) -> BackendError:
        if e.errno == errno.ENOENT:
            return ObjectNotFoundError(f"no such key {key!r}")
        return BackendError(f"local registry error on {key!r}: {e}")

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str]:
        try:
            data = self._path(key).read_bytes()
        except IsADirectoryError as e:
            raise ObjectNotFoundError(f"no such key {key!r}") from e
        except OSError as e:
            raise self._wrap(e, key) from e
        return data, _etag(data)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return os.pread(f.fileno(), length, start)
        except OSError as e:
            raise self._wrap(e, key) from e

    def head(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._wrap(e, key) from e
        if not os.path.isfile(self._path(key)):
            return None
        # A cheap etag for big blobs: content-addressed keys never change, so size+mtime does.
        return ObjectInfo(
            key,
            st.st_size,
            f"{st.st_size:x}-{st.st_mtime_ns:x}",
            max(0.0, time.time() - st.st_mtime),
        )

    def download_to(self, key: str, fileobj: BinaryIO, progress: Progress | None = None) -> int:
        """Errors reading the registry are the registry's (BackendError); errors writing
        `fileobj` (a full cache or destination disk) are raised as they are, never blamed on
        the registry."""
        total = 0
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 (closed below; reads wrapped apart)
        except OSError as e:
            raise self._wrap(e, key) from e
        with f:
            while True:
                try:
                    chunk = f.read(COPY_CHUNK)
                except OSError as e:
                    raise self._wrap(e, key) from e
                if not chunk:
                    break
                fileobj.write(chunk)
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        return total

    def list(self, prefix: str) -> Iterator[str]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            for fn in filenames:
                if fn.startswith("."):
                    continue
                key = fn if rel == "." else f"{rel}/{fn}"
                if key.startswith(prefix):
                    yield key

    def list_info(self, prefix: str) -> Iterator[ObjectInfo]:
        now = time.time()
        for key in self.list(prefix):
            try:
                st = os.stat(self.root / key)
            except FileNotFoundError:
                continue
            etag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
            yield ObjectInfo(key, st.st_size, etag, max(0.0, now - st.st_mtime))

    def _stale_tmp(self, older_than: float) -> _Paths:
        """Temporary files of writes that never finished (a killed writer), old enough that no
        writer still running can own them."""
        now = time.time()
        out = []
        with os.scandir(self._tmp) as it:
            for de in it:
                try:
                    if de.is_file() and now - de.stat().st_mtime > older_than:
                        out.append(Path(de.path))
                except FileNotFoundError:
                    continue
        return out

    def stale_uploads(self, older_than: float) -> Iterator[str]:
        for path in self._stale_tmp(older_than):
            yield f"temporary file {path}"

    def abort_stale_uploads(self, older_than: float) -> int:
        done = 0
        for path in self._stale_tmp(older_than):
            with _suppress_missing():
                path.unlink()
                done += 1
        return done

    def list_children(self, prefix: str) -> Iterator[str]:
        start = self.root / prefix.rstrip("/") if prefix.strip("/") else self.root
        try:
            with os.scandir(start) as it:
                for de in it:
                    if not de.name.startswith("."):
                        yield de.name
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise self._wrap(e, prefix) from e

    # -- writes --------------------------------------------------------------------------------
    def _install(self, tmp: str, key: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)

    def put(self, key: str, data: bytes) -> str:
        try:
            self._install(self._write_tmp(data), key)
        except OSError as e:
            raise self._wrap(e, key) from e
        return _etag(data)

    concurrency = 4  # disk and hashing bound: more threads than cores only add contention

    def put_file(
        self,
        key: str,
        path: str,
        progress: Progress | None = None,
        md5_hex: str | None = None,
        *,
        if_absent: bool = False,
    ) -> str:
        if if_absent and self.head(key) is not None:
            raise PreconditionFailedError(f"{key!r} already exists")
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        h = hashlib.md5()
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
                    h.update(chunk)
                    if progress:
                        progress(len(chunk))
                dst.flush()
            if md5_hex is not None and h.hexdigest() != md5_hex:
                raise DigestMismatchError(
                    f"{path} changed after it was added (expected md5 {md5_hex})"
                )
            self._install(tmp, key)
        except BaseException as e:
            with _suppress_missing():
                os.unlink(tmp)
            if isinstance(e, OSError) and not isinstance(e, DigestMismatchError):
                raise self._wrap(e, key) from e
            raise
        return h.hexdigest()

    def sync(self) -> None:
        """One syncfs of the registry's filesystem instead of an fsync per blob (put_file skips
        them): a commit of 10k small files no longer waits on 10k journal flushes."""
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _libc_syncfs is None or _libc_syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)

    def create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp = self._write_tmp(data)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(tmp, path)
        except FileExistsError as e:
            raise PreconditionFailedError(f"{key!r} already exists") from e
        except OSError as e:
            raise self._wrap(e, key) from e
        finally:
            os.unlink(tmp)
        return _etag(data)

    def swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        if expected_etag is None:
            return self.create(key, data)
        with self._lock(key):
            try:
                current = _etag(self._path(key).read_bytes())
            except FileNotFoundError as e:
                raise PreconditionFailedError(f"{key!r} vanished during compare-and-swap") from e
            if current != expected_etag:
                raise PreconditionFailedError(f"{key!r} changed during compare-and-swap")
            return self.put(key, data)

    def delete(self, key: str) -> None:
        with self._lock(key), _suppress_missing():
            os.unlink(self._path(key))


@contextmanager
def _suppress_missing() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        pass
