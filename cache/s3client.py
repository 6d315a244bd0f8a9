"""One place that builds boto3 S3 clients, for the S3 registry backend and s3:// / gs:// references.

Credentials come from boto3's standard chain (environment, profile, instance role) and are never
logged. Timeouts and retries are explicit so an unreachable endpoint becomes a clear error
instead of a hang (adaptive retry mode backs off on throttling and 5xx).
"""

from __future__ import annotations

import threading
from typing import Any

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
) -> Any:
    """A shared, thread-safe boto3 S3 client for these settings (clients are reused)."""
    key = (endpoint_url, profile, region, timeout, retries, max_pool_connections)
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            session = boto3.session.Session(profile_name=profile, region_name=region)
            client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=BotoConfig(
                    connect_timeout=min(timeout, 10.0),
                    read_timeout=timeout,
                    retries={"max_attempts": retries, "mode": "adaptive"},
                    max_pool_connections=max_pool_connections,
                    s3={"addressing_style": "path"} if endpoint_url else {},
                ),
            )
            _clients[key] = client
        return client


def client_for_config(config: Any, *, gcs: bool = False) -> Any:
    """The client for an artifactfs Config (or defaults when `config` is None)."""
    endpoint = getattr(config, "s3_endpoint_url", None)
    if gcs:
        endpoint = getattr(config, "gcs_endpoint_url", None) or GCS_XML_ENDPOINT
    return make_client(
        endpoint,
        profile=getattr(config, "s3_profile", None),
        region=getattr(config, "s3_region", None),
        timeout=getattr(config, "timeout", 30.0),
        retries=getattr(config, "retries", 5),
    )
