"""A small real HTTP/1.1 server on 127.0.0.1 for reference tests: Range, ETag, If-Match, HEAD.

Threaded and keep-alive, so connection pooling is exercised. Serves the files of one directory;
the ETag is the quoted hex MD5 of the content (like S3) unless `etag_style="mtime"` (like nginx:
"<mtime hex>-<size hex>"). Files whose name starts with `noetag` are served without an ETag.
Every request is recorded in `requests` as (method, path, Range header), and the client ports
in `client_ports` (one per TCP connection), for assertions.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeServer:
    def __init__(self, root: Path, etag_style: str = "md5") -> None:
        self.root = Path(root)
        self.etag_style = etag_style
        self.requests: list[tuple[str, str, str | None]] = []
        self.client_ports: set[int] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                server.requests.append((self.command, self.path, self.headers.get("Range")))
                server.client_ports.add(self.client_address[1])
                path = server.root / unquote(self.path.split("?", 1)[0]).lstrip("/")
                if not path.is_file():
                    self._reply(404, b"not found\n", {}, body)
                    return
                data = path.read_bytes()
                headers: dict[str, str] = {}
                etag = server.etag_for(path, data)
                if etag:
                    headers["ETag"] = etag
                if_match = self.headers.get("If-Match")
                if if_match and if_match != "*" and if_match != etag:
                    self._reply(412, b"precondition failed\n", headers, body)
                    return
                m = _RANGE.match(self.headers.get("Range") or "")
                if m and (m.group(1) or m.group(2)):
                    if m.group(1):
                        start = int(m.group(1))
                        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                    else:
                        start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
                    if start >= len(data):
                        headers["Content-Range"] = f"bytes */{len(data)}"
                        self._reply(416, b"", headers, body)
                        return
                    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                    self._reply(206, data[start : end + 1], headers, body)
                    return
                self._reply(200, data, headers, body)

            def _reply(self, code: int, data: bytes, headers: dict[str, str], body: bool) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def etag_for(self, path: Path, data: bytes) -> str | None:
        if path.name.startswith("noetag"):
            return None
        if self.etag_style == "mtime":
            st = os.stat(path)
            return f'"{int(st.st_mtime):x}-{st.st_size:x}"'
        return f'"{hashlib.md5(data).hexdigest()}"'

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
