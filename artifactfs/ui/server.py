"""Serving the page: waitress on loopback by default, anything else only when asked.

WHY waitress: a pure-Python, production-grade WSGI server with no dependencies, kept by the
Pylons project; Flask's own server is for development. There is no login: on loopback only
this machine's users can connect, and the app refuses Host headers other than loopback names
(a web page rebinding its DNS name to 127.0.0.1 cannot read the registry through a browser).
On any other address anyone who reaches the port can read the registry, so that takes an
explicit `allow_remote` and the caller says so out loud.
"""

from __future__ import annotations

import ctypes
import importlib
import ipaddress
import logging
import os
import socket
import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from artifactfs.errors import ConfigError
from artifactfs.resolver.resolver import Resolver
from artifactfs.ui.lineage import DEFAULT_HOPS
from artifactfs.ui.web import LOOPBACK_NAMES, create_app

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """True when every address `host` stands for is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_host(host: str, allow_remote: bool) -> bool:
    """Whether `host` is loopback; ConfigError for another host unless `allow_remote`."""
    if is_loopback(host):
        return True
    if not allow_remote:
        raise ConfigError(
            f"refusing to serve on {host}: the page has no login, so anyone who reaches it could "
            "read the registry; add --allow-remote to serve there anyway"
        )
    return False


M_ARENA_MAX = -8
"""glibc's mallopt parameter: how many malloc arenas threads may spread over."""


def bound_memory() -> None:
    """Keep the server's memory near what the pages it serves need.

    WHY: two allocators kept freed memory. pyarrow's default pool (mimalloc) holds the pages of
    row groups already shown; glibc gives each of the worker threads its own arena (thumbnails
    decoded in one, tables in another) and trims none of them. Paging a 11 GB Parquet file after
    20 image-grid pages peaked at 296-304 MB this way; with pyarrow on the system allocator and
    two arenas, 246-252 MB (bench_viewer's sequence, bench/RESULTS.md). The cost: a Parquet
    page's first view takes 0.18-0.31 s instead of 0.13-0.21 s (fresh pages from the kernel for
    each row group's buffers instead of mimalloc's kept ones); warm pages are unchanged.

    Process-wide settings, so only `artifactfs ui`, which owns its process, calls this (first,
    before any thread or pyarrow exists); a Server made inside someone else's program leaves
    that program's allocators alone."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)
    except (AttributeError, OSError):  # not glibc: its own policy applies
        pass
    # Arrow's C++ readers (Parquet's among them) take the pool this variable names when pyarrow
    # loads; pyarrow's set_memory_pool would reach only calls made from Python.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def warm_up(app: Flask) -> None:
    """Pay the process's one-time costs before the first person waits: compile every template
    and import the libraries previews use (pyarrow and numpy alone take ~1 s to import on a busy
    machine; Jinja compiles a template on first use). Missing optional libraries are skipped,
    their pages say what is missing."""
    for name in app.jinja_env.list_templates():
        app.jinja_env.get_template(name)
    for module in ("pyarrow.parquet", "pyarrow.compute", "pyarrow.csv", "pyarrow.ipc", "PIL.Image"):
        try:
            importlib.import_module(module)
        except ImportError as e:
            log.debug("warm-up: %s", e)
    try:  # pyarrow.compute's first call imports more (pandas, when installed)
        import pyarrow as pa

        from artifactfs.ui.colstats import column_stats

        column_stats(pa.array([1.0, 2.0]))
        column_stats(pa.array(["a", "b"]))
    except ImportError as e:
        log.debug("warm-up: %s", e)


class Server:
    """The app bound to a socket; `run()` serves until `close()` (or Ctrl-C)."""

    def __init__(
        self,
        resolver: Resolver,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        allow_remote: bool = False,
        lineage_hops: int = DEFAULT_HOPS,
        threads: int = 4,
        allow_edits: bool = False,
    ) -> None:
        # "Task queue depth is N" only says every worker is busy (a browser opens several
        # connections at once); not a warning a user of the page can act on.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.loopback = check_host(host, allow_remote)
        trusted = [*LOOPBACK_NAMES, host] if self.loopback else None
        self.allow_edits = allow_edits
        self.app: Flask = create_app(
            resolver, lineage_hops=lineage_hops, trusted_hosts=trusted, allow_edits=allow_edits
        )
        warm_up(self.app)
        self._map: dict[Any, Any] = {}  # the loop's sockets: listener and open connections
        server = create_server(
            self.app, self._map, host=host, port=port, threads=threads, ident="artifactfs"
        )
        assert isinstance(server, BaseWSGIServer)  # one address: one socket, never a multi-server
        self._server = server
        self.host = host
        self.port = int(server.getsockname()[1])
        self._running = threading.Event()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        self._running.set()
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def close(self) -> None:
        """Stop serving: the listener and every open (keep-alive) connection are closed, which
        ends `run()`'s loop, and the worker threads finish their requests.

        The sockets are closed by the loop's own thread (waitress's trigger runs the thunk
        there): closed from here, the loop's next select would meet dead descriptors (EBADF)."""
        self._server.task_dispatcher.shutdown()
        if self._running.is_set() and not self._stopped.is_set():
            trigger: Any = self._server.trigger  # types-waitress has it as an int; a trigger
            trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
            self._stopped.wait(5.0)
        if not self._stopped.is_set():
            wasyncore.close_all(self._map)
        self.app.extensions["artifactfs.browser"].close()
