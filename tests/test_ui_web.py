"""The web layer's routes (Flask's test client) and the `artifactfs ui` command's host policy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
import uiseed

from artifactfs.errors import ConfigError
from artifactfs.ui.server import Server, check_host
from artifactfs.ui.web import create_app


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with uiseed.seeded_registry(tmp_path_factory.mktemp("ui-web")) as s:
        yield s


@pytest.fixture(scope="module")
def client(seeded):
    return create_app(seeded.resolver).test_client()


def test_pages_answer(client, seeded):
    train = seeded.runs["train"]
    for url, text in [
        ("/", 'href="/p/acme/mnist"'),
        ("/p/acme/mnist", 'href="/a/acme/mnist/digits"'),
        ("/a/acme/mnist/digits", "digits sample, release 0"),
        ("/a/acme/mnist/digits:v1/files/", 'href="/a/acme/mnist/digits:v1/files/images"'),
        ("/a/acme/mnist/digits:v1/files/labels.csv", '<div class="colname">pixels</div>'),
        ("/a/acme/mnist/digits:v1/lineage?hops=3", 'class="node'),
        ("/a/acme/mnist/digits/diff?a=v0&b=v1", "1 added, 1 removed, 3 changed"),
        (f"/r/acme/mnist/{train}", 'href="/a/acme/mnist/classifier:v0/files/"'),
    ]:
        r = client.get(url)
        assert r.status_code == 200, url
        assert text in r.text, url
        # one script, from this origin (static/ui.js), never inline: the policy says so
        assert "script-src 'self';" in r.headers["Content-Security-Policy"]
        assert re.findall(r"<script[^>]*>", r.text) == ['<script src="/static/ui.js" defer>'], url


def test_references_are_shown_and_read_through(client, seeded):
    listing = client.get("/a/acme/mnist/classifier:v0/files/").text
    assert re.search(r'<span class="ref">file://[^<]*/training-notes.txt</span>', listing)
    page = client.get("/a/acme/mnist/classifier:v0/files/training-notes.txt").text
    assert "<th>reference</th>" in page and "trained on digits:v1 for 3 epochs" in page
    raw = client.get("/a/acme/mnist/classifier:v0/raw/training-notes.txt")
    assert raw.data == b"trained on digits:v1 for 3 epochs\n"


def test_alias_redirects_to_the_version(client):
    r = client.get("/a/acme/mnist/digits:stable/files/images?page=1")
    assert r.status_code == 302
    assert r.headers["Location"] == "/a/acme/mnist/digits:v0/files/images?page=1"


def test_errors_are_pages_with_one_line(client):
    assert client.get("/a/acme/mnist/digits:v1/files/nosuch.txt").status_code == 404
    assert client.get("/a/acme/mnist/nosuch").status_code == 404
    assert client.get("/a/acme/mnist/digits:v9").status_code == 404
    r = client.get("/p/acme/bad name")
    assert r.status_code == 400 and "invalid project" in r.text


def test_download_is_an_attachment_unless_an_image(client):
    png = uiseed.png_bytes()
    r = client.get("/a/acme/mnist/digits:v1/raw/images/digit-0.png")
    assert r.data == png and r.headers["Content-Length"] == str(len(png))
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    inline = client.get("/a/acme/mnist/digits:v1/raw/images/digit-0.png?inline=1")
    assert inline.mimetype == "image/png" and inline.headers["Content-Disposition"].startswith(
        "inline"
    )
    csv = client.get("/a/acme/mnist/digits:v1/raw/labels.csv?inline=1")
    assert csv.mimetype == "application/octet-stream"
    assert csv.headers["Content-Disposition"] == "attachment; filename=labels.csv"
    assert csv.data.startswith(b"id,label,pixels\n0,0,0\n")


def test_text_from_the_registry_is_escaped(seeded):
    reg = seeded.resolver.registry
    from artifactfs.resolver.manifest import Manifest, ManifestEntry

    reg.commit(
        "acme",
        "mnist",
        "hostile",
        "dataset",
        Manifest([ManifestEntry("x", "A" * 22 + "==", 1)]),
        description="<script>alert(1)</script>",
        metadata={"k": "<img src=x onerror=alert(1)>"},
    )
    r = create_app(seeded.resolver).test_client().get("/a/acme/mnist/hostile:v0/files/")
    assert "<script>alert" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<img src=x" not in r.text


def test_only_loopback_host_names_are_served(seeded):
    client = create_app(seeded.resolver).test_client()
    assert client.get("/", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200
    # a page whose DNS name was rebound to 127.0.0.1 must not read the registry
    assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 400
    anyhost = create_app(seeded.resolver, trusted_hosts=None).test_client()
    assert anyhost.get("/", headers={"Host": "box.lan"}).status_code == 200


def test_check_host():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert check_host(host, allow_remote=False)
    with pytest.raises(ConfigError, match="--allow-remote"):
        check_host("0.0.0.0", allow_remote=False)
    assert check_host("0.0.0.0", allow_remote=True) is False


def test_server_serves_until_closed(seeded):
    import threading

    server = Server(seeded.resolver, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert requests.get(server.url + "p/acme/mnist", timeout=10).status_code == 200
    finally:
        server.close()
        thread.join(10)
    assert not thread.is_alive()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "artifactfs", "--registry", *args]


def test_cli_refuses_a_remote_host_unless_asked(seeded):
    reg = str(seeded.resolver.config.registry)
    done = subprocess.run(
        _cli(reg, "ui", "--host", "0.0.0.0", "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("artifactfs: error: refusing to serve on 0.0.0.0")
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback

    env = dict(os.environ, XDG_CACHE_HOME=str(seeded.base / "cache"))
    proc = subprocess.Popen(
        _cli(reg, "ui", "--host", "0.0.0.0", "--port", "0", "--allow-remote"),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &` in a
        # script) runs with SIGINT ignored, children inherit that, and Python then never
        # raises KeyboardInterrupt (this test hung for 20 s in such a run, not on a terminal)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stderr is not None
        warning = proc.stderr.readline()
        assert "WARNING" in warning and "anyone who can reach port" in warning
        url = proc.stderr.readline().split()[2]
        port = url.rstrip("/").rsplit(":", 1)[1]
        r = requests.get(f"http://127.0.0.1:{port}/p/acme/mnist", timeout=10)
        assert r.status_code == 200 and "digits" in r.text
    finally:
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_draft_committed_version_shows_its_base_not_a_broken_link(registry_url, tmp_path):
    """A version committed from a draft is not "linked from //:v" (older registries recorded
    the draft's producer in the same field as a link's source), and its lineage shows the
    base version it was made from."""
    from test_drafts_support import seed

    from artifactfs.drafts.commit import commit_draft
    from artifactfs.drafts.draft import open_draft
    from artifactfs.resolver.resolver import Resolver

    resolver = Resolver.open(ttl=0)
    try:
        base = seed(resolver, {"a.txt": b"a"}, name="pets")
        draft = open_draft(resolver, resolver.config.write_dir, "acme", "mnist", "pets")
        fd = draft.open_file("b.txt", os.O_WRONLY | os.O_CREAT)
        os.write(fd, b"b")
        os.close(fd)
        draft.writer_closed()
        assert commit_draft(draft).version == "acme/mnist/pets:v1"
        old_style = resolver.registry.commit(  # as commits before this release wrote it
            "acme",
            "mnist",
            "pets",
            "dataset",
            resolver.registry.manifest(base),
            source={"producer": "artifactfs-mount", "draft": "acme/mnist/pets"},
            dedup_latest=False,
        )
        client = create_app(resolver).test_client()
        for version in ("v1", f"v{old_style.version}"):
            page = client.get(f"/a/acme/mnist/pets:{version}/files/")
            assert page.status_code == 200
            assert "linked from" not in page.text and "//:v" not in page.text
        lineage = client.get("/a/acme/mnist/pets:v1/lineage?hops=2")
        assert lineage.status_code == 200
        assert "pets:v0" in lineage.text
    finally:
        resolver.close()
