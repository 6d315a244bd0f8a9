"""Issue 14 item 4: secrets never reach logs or `--debug` output.

Real commands against the real SeaweedFS with session-token credentials (the form temporary AWS
credentials take): `artifactfs --debug put/ls/get`, and a mount started with --debug whose log
is read back. Before the fix botocore's debug logging printed the X-Amz-Security-Token header,
the access key id (in Authorization's Credential=) and the request signatures.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid

import pytest
from mountutil import mounted

from artifactfs.logsafe import RedactingFilter, redact

pytestmark = pytest.mark.s3

TOKEN = "FwoGZXIvYXdzE" + uuid.uuid4().hex * 4  # the shape of an STS session token
SIGNATURE = re.compile(r"Signature=[0-9a-f]{16,}|X-Amz-Signature=[0-9a-f]{16,}")


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [s[:6] + "..." for s in secrets if s in text]
    found += SIGNATURE.findall(text)
    return found


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "artifactfs", "--debug", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_debug_cli_and_mount_log_hold_no_credentials(s3_env, tmp_path, monkeypatch):
    """With static keys the commands work and print no key id, secret or signature; with a
    session token (SeaweedFS refuses tokens it did not issue, so they fail) the token is not
    printed either, although botocore signs and logs every request with it."""
    bucket = s3_env.create_bucket(f"sec-{uuid.uuid4().hex[:12]}")
    url = f"s3://{bucket}/reg"
    monkeypatch.setenv("ARTIFACTFS_REGISTRY", url)
    secrets = [TOKEN, s3_env.access_key, s3_env.secret_key]
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello")

    runs = [
        _cli("put", str(data), "acme/proj/ds"),
        _cli("ls", "acme/proj/ds"),
        _cli("get", "acme/proj/ds:v0", "--root", str(tmp_path / "dl")),
    ]
    assert [rc for rc, _ in runs] == [0, 0, 0], runs
    assert (tmp_path / "dl" / "a.txt").read_text() == "hello"
    with_token = {**os.environ, "AWS_SESSION_TOKEN": TOKEN}
    runs.append(_cli("ls", "acme/proj/ds", env=with_token))
    runs.append(_cli("get", "acme/proj/ds:v0", "--root", str(tmp_path / "dl2"), env=with_token))
    assert runs[-1][0] != 0 and "InvalidAccessKeyId" in runs[-1][1]  # signed with the token
    for _, out in runs:
        assert not _leaks(out, secrets), (_leaks(out, secrets), out[-3000:])

    for token in (None, TOKEN):
        if token:
            monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        mnt = tmp_path / f"mnt-{bool(token)}"
        with mounted(mnt, registry=url, extra_args={"debug": True}) as m:
            path = m.path / "acme" / "proj" / "ds:v0" / "a.txt"
            if token:
                with pytest.raises(OSError):
                    path.read_text()
            else:
                assert path.read_text() == "hello"
            log = m.log()
        assert " DEBUG " in log, "--debug still logs at DEBUG"
        assert not _leaks(log, secrets), _leaks(log, secrets)


def test_redaction_covers_header_and_url_forms(monkeypatch):
    """The forms botocore and urllib3 print, with and without the values in the environment."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-from-env")
    lines = [
        "headers={'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEF', 'Authorization': "
        "b'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7'}",
        "GET /b/k?X-Amz-Credential=ASIAXYZXYZXYZXYZ1234%2F2026&X-Amz-Signature=abcdef0123456789abcd"
        "&X-Amz-Security-Token=IQoJb3JpZ2lu HTTP/1.1",
        "error reading profile: aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
        "the secret is s3cr3t-value-from-env",
    ]
    for line in lines:
        clean = redact(line)
        for leak in (
            "IQoJb3JpZ2lu",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAXYZXYZXYZXYZ1234",
            "5d672d79c15b",
            "abcdef0123456789",
            "wJalrXUtnFEMI",
            "s3cr3t-value",
        ):
            assert leak not in clean, (leak, clean)
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, "x", 1, "%s", (lines[0],), None)
    assert RedactingFilter().filter(record) and "EXAMPLE" not in record.getMessage()
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in redact(lines[3])
