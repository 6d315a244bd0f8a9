"""A real slow link for tests: a network namespace reaching a loopback server through a shaped veth.

    with SlowLink(seaweed_port, rate_kbit=160, delay_ms=100, loss_pct=2) as link:
        subprocess.run([*link.prefix, "artifactfs", "put", ...],
                       env={..., "ARTIFACTFS_S3_ENDPOINT_URL": link.endpoint_url})

The client runs inside a namespace made for the test (`nsenter --net`: only the network
namespace changes, so a FUSE mount made in there is visible to the test as usual). It reaches
the server through a veth pair whose two ends each have a `tbf` qdisc (the rate, both ways), a
forwarder on the host end that holds every chunk `delay_ms` before passing it on toward the
client (this kernel has no `sch_netem`), and an `nft` rule in the namespace that drops
`loss_pct` percent of the client's outgoing TCP packets at random (TCP retransmits them).
Needs root, `ip`, `tc`, `nsenter` and (for loss) `nft`; `SlowLink.available()` says why not.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


class SlowLink:
    def __init__(
        self, target_port: int, *, rate_kbit: int, delay_ms: int = 0, loss_pct: float = 0.0
    ) -> None:
        self.target_port = target_port
        self.rate_kbit = rate_kbit
        self.delay = delay_ms / 1000.0
        self.loss_pct = loss_pct
        tag = uuid.uuid4().hex[:6]
        self.netns = f"afs-{tag}"
        self.host_if, self.ns_if = f"afh{tag}", f"afn{tag}"
        third = random.randrange(1, 250)
        self.host_ip, self.ns_ip = f"10.231.{third}.1", f"10.231.{third}.2"
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.port = 0

    @staticmethod
    def available(loss: bool = False) -> str | None:
        """None when a slow link can be made here, else why not."""
        if os.geteuid() != 0:
            return "needs root"
        tools = ["ip", "tc", "nsenter"] + (["nft"] if loss else [])
        missing = [t for t in tools if shutil.which(t) is None]
        return f"missing {' '.join(missing)}" if missing else None

    @property
    def prefix(self) -> list[str]:
        """Prepend to a command to run it inside the namespace (network only)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host_ip}:{self.port}"

    def __enter__(self) -> SlowLink:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        ns = self.netns
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        _run("ip", "link", "set", self.ns_if, "netns", ns)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _run("ip", "link", "set", self.host_if, "up")
        # nsenter, not `ip netns exec`: the latter also remounts /sys for the namespace, which
        # fails inside a chroot (the Debian 13 CI step); only the network namespace is needed
        inside = self.prefix
        _run(*inside, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        _run(*inside, "ip", "link", "set", self.ns_if, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        # burst: a few packets; latency: the queue a sender may fill before tbf drops.
        shape = ["root", "tbf", "rate", f"{self.rate_kbit}kbit", "burst", "16kb"]
        shape += ["latency", "400ms"]
        _run("tc", "qdisc", "add", "dev", self.host_if, *shape)
        _run(*inside, "tc", "qdisc", "add", "dev", self.ns_if, *shape)
        if self.loss_pct:
            rule = (
                "table inet slowlink {\n chain out {\n  type filter hook output priority 0;\n"
                f"  meta l4proto tcp numgen random mod 1000 < {int(self.loss_pct * 10)} drop\n"
                " }\n}\n"
            )
            subprocess.run(
                [*inside, "nft", "-f", "-"], input=rule.encode(), check=True, capture_output=True
            )
        self._listener = socket.create_server((self.host_ip, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    # -- the forwarder (host end -> the server on 127.0.0.1) -----------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for a, b, delay in ((client, server, 0.0), (server, client, self.delay)):
                threading.Thread(target=self._pipe, args=(a, b, delay), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, delay: float) -> None:
        """Copy src -> dst; with `delay`, each chunk leaves `delay` seconds after it came."""
        if not delay:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            self._close_pair(src, dst)
            return
        queue: list[tuple[float, int, bytes]] = []
        cond = threading.Condition()
        seq = 0

        def sender() -> None:
            with contextlib.suppress(OSError):
                while True:
                    with cond:
                        while not queue:
                            cond.wait()
                        due, _, data = queue[0]
                        wait = due - time.monotonic()
                        if wait > 0:
                            cond.wait(wait)
                            continue
                        heapq.heappop(queue)
                    if not data:
                        break
                    dst.sendall(data)
            self._close_pair(src, dst)

        threading.Thread(target=sender, daemon=True).start()
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                with cond:
                    seq += 1
                    heapq.heappush(queue, (time.monotonic() + delay, seq, data))
                    cond.notify()
                if not data:
                    break

    @staticmethod
    def _close_pair(a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
