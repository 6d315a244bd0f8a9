"""Secrets never reach a log: a logging filter that redacts credentials from every record.

WHY a filter and not care at each call site: the records that leak come from other libraries
(botocore's debug logs print request headers: `Authorization` with the access key id and the
signature, `X-Amz-Security-Token` with the session token), and error messages quote what a
server or SDK said. So the handlers artifactfs installs (the CLI's stderr, the mount's log file
and terminal) each carry `RedactingFilter`, which rewrites the formatted message and traceback
of any record before it is written; and the SDK's loggers are kept at INFO
(cache.s3client.quiet_sdk_loggers), so the header dumps are not even produced.

What is redacted: the values of the AWS credential environment variables wherever they appear,
access key ids by their well-known prefixes, and the value part of signatures, credentials,
security tokens and Authorization headers in headers, query strings and reprs.
"""

from __future__ import annotations

import logging
import os
import re

REDACTED = "<redacted>"
SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
_PATTERNS = [
    # Signature=..., X-Amz-Signature=..., Credential=AKID/date/..., X-Amz-Credential=...
    re.compile(r"((?:X-Amz-)?(?:Signature|Credential)=)[^\s,&'\"]+", re.IGNORECASE),
    # X-Amz-Security-Token: ... / 'X-Amz-Security-Token': b'...' / X-Amz-Security-Token=...
    re.compile(
        r"((?:x-amz-security-token|security_token|session_token)['\"]?\s*[:=]\s*b?['\"]?)"
        r"[^\s'\",&}]+",
        re.IGNORECASE,
    ),
    # 'Authorization': b'AWS4-HMAC-SHA256 ...' / Authorization: Bearer ...
    re.compile(r"(authorization['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n]+", re.IGNORECASE),
    # aws_secret_access_key = ... (a credentials file quoted in an error)
    re.compile(r"(aws_secret_access_key\s*[:=]\s*)\S+", re.IGNORECASE),
    # access key ids by prefix (AKIA long-term, ASIA temporary, ...)
    re.compile(r"()\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{12,}\b"),
]
MIN_SECRET = 8
"""Shorter environment values are not treated as secrets (they would redact ordinary words)."""


def _known_secrets() -> list[str]:
    values = {os.environ.get(name, "") for name in SECRET_ENV}
    return sorted((v for v in values if len(v) >= MIN_SECRET), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every credential we can recognise replaced by `<redacted>`."""
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with `redact` before a handler emits it.
    Put it on handlers, not loggers: a logger's filters do not see its children's records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: leave it to the formatter
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def protect(handler: logging.Handler) -> logging.Handler:
    """Give `handler` the redacting filter (once) and return it."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())
    return handler
