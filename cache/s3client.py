"""One place that builds boto3 S3 clients, for the S3 registry backend and s3:// / gs:// references.

Credentials come from boto3's standard chain (environment, profile, instance role) and are never
logged (botocore's header-dumping debug loggers are kept at INFO, see quiet_sdk_loggers).
Timeouts and retries come from the configured deadline (config.request_budget): connect and
read timeouts and a number of attempts whose worst case, backoff included, fits in it, so a
hung server costs one deadline and not retries x timeouts. Retries use botocore's *standard*
mode: its backoff is bounded, where adaptive mode's client-side rate limiter may sleep for as
long as it likes after throttling.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from artifactfs.logsafe import RedactingFilter
from artifactfs.settings import request_budget

GCS_XML_ENDPOINT = "https://storage.googleapis.com"
_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


def make_client(
    endpoint_url: str | None = None,
    *,
    profile: str | None = None,
    region: str | None = None,
    timeout: float = 30.0,
    retries: int = 5,
    max_pool_connections: int = 32,
    bulk: bool = False,
) -> Any:
    """A shared, thread-safe boto3 S3 client for these settings (clients are reused).

    `bulk`: the client for blob bytes (uploads, downloads, ranged reads). Its read timeout
    (how long one socket send or receive may wait) is the whole deadline, not a share of it:
    on a slow, lossy link TCP's own retransmission backoff can hold a healthy transfer for
    seconds, and a part that keeps moving must never be cut (issue 20). A stalled attempt
    fails after one deadline and botocore retries it (`attempts`). urllib3 sends a request's
    body while the socket still has the connect timeout (the read timeout is set only to wait
    for the response), so for `bulk` the connect timeout is the whole deadline too: it was 2 s,
    which cut every part upload that waited 2 s for room in a slow link's queue. The metadata
    client's connect timeout grows with the deadline (up to 10 s): a saturated link queues the
    handshake behind the data already sent."""
    key = (endpoint_url, profile, region, timeout, retries, max_pool_connections, bulk)
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            quiet_sdk_loggers()
            budget = request_budget(timeout, retries)
            connect = max(budget.connect, min(budget.deadline / 3, 10.0))
            read = budget.read
            if bulk:  # urllib3 sends a request body under the CONNECT timeout: both are stalls
                connect = read = max(budget.read, budget.deadline)
            session = boto3.session.Session(profile_name=profile, region_name=region)
            client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=BotoConfig(
                    connect_timeout=connect,
                    read_timeout=read,
                    retries={"total_max_attempts": budget.attempts, "mode": "standard"},
                    max_pool_connections=max_pool_connections,
                    s3={"addressing_style": "path"} if endpoint_url else {},
                ),
            )
            client.meta.events.register("before-send.s3", stream_body)
            _clients[key] = client
        return client


SEND_CHUNK = 64 << 10


def stream_body(request: Any, **_: Any) -> None:
    """Send a request body from a file object (urllib3 then writes it 16 KiB at a time)
    instead of as one bytes object.

    WHY: urllib3 hands a bytes body to ONE socket.sendall, and since Python 3.5 a socket's
    timeout bounds a whole sendall: an 8 MiB part had to leave within one read timeout (6 s by
    default: faster than 11 Mbit/s), so every upload failed on slower links however steadily
    it moved (issue 20). In small writes the timeout bounds each wait, i.e. a stall. Returns
    None: botocore then sends the request as usual (a retry rewinds the file)."""
    body = request.body
    if isinstance(body, (bytes, bytearray)) and len(body) > SEND_CHUNK:
        request.body = io.BytesIO(body)


def client_for_config(config: Any, *, gcs: bool = False, bulk: bool = False) -> Any:
    """The client for an artifactfs Config (or defaults when `config` is None); `bulk` as in
    make_client."""
    endpoint = getattr(config, "s3_endpoint_url", None)
    if gcs:
        endpoint = getattr(config, "gcs_endpoint_url", None) or GCS_XML_ENDPOINT
    return make_client(
        endpoint,
        profile=getattr(config, "s3_profile", None),
        region=getattr(config, "s3_region", None),
        timeout=getattr(config, "timeout", 30.0),
        retries=getattr(config, "retries", 5),
        bulk=bulk,
    )


SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
"""Loggers whose DEBUG records carry request headers (Authorization with the access key id and
signature, X-Amz-Security-Token) and signing strings."""
LEAKY_LOGGERS = (
    "botocore.endpoint",
    "botocore.auth",
    "botocore.parsers",
    "botocore.hooks",
    "botocore.httpsession",
    "botocore.awsrequest",
    "botocore.retryhandler",
    "botocore.credentials",
    "urllib3.connectionpool",
)
"""The ones that print requests, responses or signing material at DEBUG: each also gets the
redacting filter, for a process whose logging turns DEBUG on after a client was built."""


def quiet_sdk_loggers() -> None:
    """Keep the AWS SDK's loggers from dumping headers: with the root logger at DEBUG
    (`artifactfs --debug`, or an application's own logging) botocore would log every request's
    headers, session token included. Loggers that would log below INFO are set to INFO (one
    that inherits WARNING is left alone), and the leaky ones redact what they log anyway
    (artifactfs/logsafe.py). Called when a client is built and when the CLI or mount configures
    logging, so it holds for library users too."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    for name in LEAKY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
