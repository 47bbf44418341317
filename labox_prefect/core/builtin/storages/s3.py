"""Blobs as objects in an S3 bucket (AWS or any S3-compatible server), through s3fs.

s3fs (and botocore, aiobotocore, aiohttp under it) is imported when an S3Storage is made,
not when this module is: importing the framework costs nothing for users without S3.
"""

from __future__ import annotations

import re
from typing import Any

from labox_prefect.core.builtin.storages.fsspec import FsspecStorage

CONNECT_TIMEOUT = 3.0
"""Seconds to wait for a TCP connection to the endpoint (s3fs's default is 5)."""

MAX_ATTEMPTS = 3
"""Attempts per request in botocore's "standard" retry mode (its legacy default retries
five times with growing back-off: about 16 s before an unreachable endpoint is reported)."""

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


class S3Storage(FsspecStorage):
    """Content-addressed objects under ``s3://bucket/prefix``.

    Stored configs hold only the key below the prefix: never the bucket, the endpoint or a
    credential, so records cannot redirect reads and cannot leak secrets. ``key`` and
    ``secret`` stay inside the s3fs client (omit them to use the usual AWS environment
    variables or profiles); set ``AWS_DEFAULT_REGION`` in the environment if the server needs
    a region. Other keyword arguments go to ``s3fs.S3FileSystem``.

    Listings are not cached: a blob deleted by another process is never taken as present.
    An unreachable endpoint fails fast (``CONNECT_TIMEOUT``, ``MAX_ATTEMPTS``; override
    with ``config_kwargs=``) with StorageUnavailableError.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        name: str = "labox.s3@v1",
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        **s3_options: Any,
    ) -> None:
        if not _BUCKET.fullmatch(bucket):
            msg = (
                f"S3Storage: {bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, "
                f"'.' or '-'); give the prefix separately: S3Storage('bucket', 'some/prefix')."
            )
            raise ValueError(msg)
        parts = [part for part in prefix.strip("/").split("/") if part]
        if any(part in {".", ".."} or "\\" in part for part in parts):
            msg = f"S3Storage: the prefix {prefix!r} may not contain '.', '..' or '\\' segments."
            raise ValueError(msg)
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from s3fs import S3FileSystem

        config_kwargs = {
            "connect_timeout": CONNECT_TIMEOUT,
            "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            **s3_options.pop("config_kwargs", {}),
        }
        options: dict[str, Any] = {
            "use_listings_cache": False,
            "config_kwargs": config_kwargs,
            **s3_options,
        }
        fs = S3FileSystem(
            key=key,
            secret=secret,
            endpoint_url=endpoint_url,
            skip_instance_cache=True,
            **options,
        )
        self.bucket = bucket
        self.prefix = "/".join(parts)
        root = f"{bucket}/{self.prefix}" if self.prefix else bucket
        super().__init__(fs, root, name=name, object_store=True)
        self._unavailable_errors = (BotoConnectionError,)

    def __repr__(self) -> str:
        return f"<S3Storage {self.name!r} at 's3://{self.root}'>"
