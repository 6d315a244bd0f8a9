"""What botocore and s3transfer failures mean to us: the S3 backend's error mapping, in one place.

Apart from the store because every S3 call goes through it and because it is where S3's codes
become our named errors (ObjectNotFoundError, PreconditionFailedError for a lost race,
BackendError with a message an operator can act on, never a credential): the store's methods
then read as plain requests, and the conditional-write probe asks the same questions
(`cause_code`, `is_unsupported`) of the errors it provokes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from artifactfs.errors import (
    BackendError,
    DigestMismatchError,
    ObjectNotFoundError,
    PreconditionFailedError,
)

NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
PRECONDITION = {"PreconditionFailed", "412"}
CONFLICT = {"ConditionalRequestConflict", "409"}
UNSUPPORTED = {"NotImplemented", "501"}


def error_code(e: BaseException) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    resp = getattr(e, "response", None) or {}
    code = str(resp.get("Error", {}).get("Code", ""))
    status = int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def cause_code(e: BaseException) -> tuple[str, int]:
    """error_code of the botocore error one of our translated errors was raised from."""
    return error_code(e.__cause__) if e.__cause__ else ("", 0)


def is_unsupported(e: BaseException) -> bool:
    """Did the server answer "not implemented" (to a conditional header, say)?"""
    code, status = cause_code(e)
    return code in UNSUPPORTED or status == 501


@contextmanager
def translated(op: str, key: str, *, bucket: str, url: str, where: str) -> Iterator[None]:
    """Turn botocore/s3transfer failures into our named errors with a useful message.

    `where` names the bucket and endpoint for messages (`s3://b/p at http://host`)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as e:
        code, status = error_code(e)
        if code in NOT_FOUND or status == 404:
            if code == "NoSuchBucket":
                raise BackendError(f"bucket {bucket!r} does not exist ({where})") from e
            raise ObjectNotFoundError(f"no such key {key!r} in {url}") from e
        if code in PRECONDITION or code in CONFLICT or status in (409, 412):
            raise PreconditionFailedError(f"{key!r}: {op} lost a race ({code})") from e
        if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId"):
            raise BackendError(
                f"access denied to {where} for {op} {key!r} ({code}); check the "
                "credentials boto3 finds (environment, profile, instance role)"
            ) from e
        raise BackendError(f"S3 {op} {key!r} failed on {where}: {code} {e}") from e
    except NoCredentialsError as e:
        raise BackendError(
            f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, an AWS profile (s3_profile), or an instance role"
        ) from e
    except BotoCoreError as e:
        raise BackendError(f"S3 {op} {key!r} failed: {where} unreachable: {e}") from e
    except (DigestMismatchError, BackendError):
        raise
    except Exception as e:
        # s3transfer's own failures (RetriesExceededError after repeated read errors...).
        if type(e).__module__.startswith(("s3transfer", "boto3", "urllib3")):
            raise BackendError(f"S3 {op} {key!r} failed on {where}: {e}") from e
        raise
