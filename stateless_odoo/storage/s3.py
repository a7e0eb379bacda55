"""S3 object store (AWS, Exoscale, MinIO, Ceph, Swift's s3api) through boto3.

Configuration: the variables of the older ``attachment_s3`` addon, same names and
meaning, plus optional ones for timeouts, retries, addressing and encryption; see
:meth:`S3Settings.from_env`.
"""

import base64
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import urllib3.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from ..config import ConfigErrors, EnvReader, Secret, render_db_placeholder
from ..errors import (
    AccessDenied,
    ConfigError,
    ObjectNotFound,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
from ..process import PerProcess
from .base import (
    CHUNK_SIZE,
    DeleteResult,
    FullReads,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    StoreSettings,
    _seekable,
    content_disposition,
    range_header,
)

_logger = logging.getLogger(__name__)

#: parallel part uploads of one multipart upload
UPLOAD_THREADS = 4
#: at most this many keys per DeleteObjects request (the S3 API limit)
DELETE_BATCH = 1000

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DENIED_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "403",
}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@dataclass(frozen=True)
class S3Settings(StoreSettings):
    """The S3 store's settings: the ``AWS_*`` variables of the older ``attachment_s3``
    addon, same names and meaning, and a few more (the table is in docs/deployment.md,
    "S3: attachment_s3").
    """

    bucket_template: str
    access_key: str | None
    secret_key: Secret | None = field(repr=False)
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    key_prefix: str = ""
    sse: str | None = None
    sse_kms_key_id: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 3
    multipart_threshold: int = 16 * 1024 * 1024
    multipart_chunksize: int = 8 * 1024 * 1024
    max_pool_connections: int = 16

    timing_variables = ("AWS_CONNECT_TIMEOUT", "AWS_READ_TIMEOUT", "AWS_MAX_ATTEMPTS")

    def backoff_seconds(self, retry):
        # botocore's "standard" retry mode: random(0, 1) * 2 ** (retry - 1), at most 20
        return min(2 ** (retry - 1), 20)

    @classmethod
    def read_env(cls, environ=None):
        """``(settings, errors)``: the settings (``None`` when a variable is bad) and
        every :class:`ConfigError` of the variables, in the order they are read.
        Pure parsing: no client, no connection."""
        env = environ if isinstance(environ, EnvReader) else EnvReader(environ)
        errors = ConfigErrors()
        bucket = errors.read(env.str, "AWS_BUCKETNAME", required=True)
        access_key = env.str("AWS_ACCESS_KEY_ID")
        secret_key = env.secret("AWS_SECRET_ACCESS_KEY")
        if access_key and not secret_key:
            errors.add("AWS_SECRET_ACCESS_KEY", "is not set but AWS_ACCESS_KEY_ID is")
        if secret_key and not access_key:
            errors.add("AWS_ACCESS_KEY_ID", "is not set but AWS_SECRET_ACCESS_KEY is")
        endpoint = env.str("AWS_HOST")
        if endpoint:
            endpoint = errors.read(_endpoint_url, "AWS_HOST", endpoint)
        sse = env.str("AWS_SERVER_SIDE_ENCRYPTION")
        kms_key = env.str("AWS_SSE_KMS_KEY_ID")
        if sse and sse not in ("AES256", "aws:kms"):
            errors.add("AWS_SERVER_SIDE_ENCRYPTION", f"{sse!r} is not AES256 or aws:kms")
        elif kms_key and sse != "aws:kms":
            errors.add("AWS_SSE_KMS_KEY_ID", "is set but AWS_SERVER_SIDE_ENCRYPTION is not aws:kms")
        settings = dict(
            bucket_template=bucket,
            access_key=access_key,
            secret_key=secret_key,
            endpoint_url=endpoint,
            region=env.str("AWS_REGION"),
            addressing_style=errors.read(
                env.choice,
                "AWS_ADDRESSING_STYLE",
                {"auto", "path", "virtual"},
                "path" if endpoint else "auto",
            ),
            key_prefix=env.str("AWS_KEY_PREFIX", ""),
            sse=sse,
            sse_kms_key_id=kms_key,
            connect_timeout=errors.read(env.seconds, "AWS_CONNECT_TIMEOUT", 5.0),
            read_timeout=errors.read(env.seconds, "AWS_READ_TIMEOUT", 10.0),
            max_attempts=errors.read(env.int, "AWS_MAX_ATTEMPTS", 3, minimum=1, maximum=20),
            multipart_threshold=errors.read(
                env.size, "AWS_MULTIPART_THRESHOLD", 16 * 1024 * 1024, minimum=5 * 1024 * 1024
            ),
            multipart_chunksize=errors.read(
                env.size, "AWS_MULTIPART_CHUNKSIZE", 8 * 1024 * 1024, minimum=5 * 1024 * 1024
            ),
            max_pool_connections=errors.read(
                env.int, "AWS_MAX_POOL_CONNECTIONS", 16, minimum=1, maximum=1000
            ),
        )
        if errors:
            return None, errors.errors
        return cls(**settings), []

    @property
    def container_template(self):
        """:attr:`bucket_template`, under the name the other stores use."""
        return self.bucket_template

    def container(self, db_name=None):
        """:meth:`bucket`, under the name the other stores use."""
        return self.bucket(db_name)

    def bucket(self, db_name=None):
        """The bucket name, ``{db}`` replaced; raise ConfigError if it is not valid."""
        name = render_db_placeholder("AWS_BUCKETNAME", self.bucket_template, db_name)
        if not _BUCKET_RE.match(name) or ".." in name:
            raise ConfigError(
                "AWS_BUCKETNAME",
                f"{name!r} is not a valid bucket name (3 to 63 lowercase letters, digits,"
                " dots and hyphens, starting and ending with a letter or digit)",
            )
        return name


def _endpoint_url(variable, value):
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, f"{value!r} is not an http(s) endpoint URL or host name")
    return value


def _add_content_md5(params, **kwargs):
    """Send Content-MD5 on DeleteObjects.

    botocore >= 1.36 replaced Content-MD5 by a CRC32 header for the operations that
    require a checksum. AWS accepts both; S3-compatible stores that predate flexible
    checksums (Swift's s3api, older Ceph RGW and MinIO) reject a DeleteObjects without
    Content-MD5. Sending both works everywhere.
    """
    body = params.get("body")
    headers = params.setdefault("headers", {})
    if body is None or "Content-MD5" in headers:
        return
    if isinstance(body, str):
        body = body.encode()
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    headers["Content-MD5"] = base64.b64encode(digest).decode()


class S3Store(ObjectStore):
    """One S3 bucket. The boto3 client is created lazily in each process."""

    scheme = "s3"
    settings_class = S3Settings

    def __init__(self, settings, bucket, *, read_only=False, key_prefix=None, _client=None):
        super().__init__(settings, bucket, read_only=read_only, key_prefix=key_prefix)
        self._client = _client or PerProcess(self._make_client)
        self._transfer = TransferConfig(
            multipart_threshold=settings.multipart_threshold,
            multipart_chunksize=settings.multipart_chunksize,
            max_concurrency=UPLOAD_THREADS,
            use_threads=True,
        )
        # parts of a non-seekable stream waiting in memory (s3transfer's default, 10,
        # would hold 10 parts); memory stays near threshold + (threads + 1) parts
        self._transfer.max_in_memory_upload_chunks = UPLOAD_THREADS + 1

    def _make_client(self):
        s = self.settings
        config = Config(
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            # botocore's max_attempts counts retries; total_max_attempts counts attempts
            retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
            max_pool_connections=s.max_pool_connections,
            s3={"addressing_style": s.addressing_style},
            signature_version="s3v4",
            # only where an operation requires one: S3-compatible stores reject the
            # streaming (aws-chunked) checksums botocore >= 1.36 adds by default
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=s.endpoint_url,
            region_name=s.region,
            aws_access_key_id=s.access_key,
            aws_secret_access_key=s.secret_key.reveal() if s.secret_key else None,
            config=config,
        )
        client.meta.events.register("before-call.s3.DeleteObjects", _add_content_md5)
        return client

    @property
    def client(self):
        return self._client.get()

    def readonly_view(self, container):
        return S3Store(
            self.settings,
            container,
            read_only=True,
            key_prefix=self.key_prefix,
            _client=self._client,
        )

    # -- errors ---------------------------------------------------------------------

    def _error(self, exc, action, key=None):
        """Translate a boto exception into the suite's typed error."""
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
                if code != "NoSuchKey" and not self._bucket_exists():
                    code = "NoSuchBucket"  # HEAD has no body to say which is missing
                else:
                    return ObjectNotFound(f"{action}: object not found", store=self.name, key=key)
            if code == "NoSuchBucket":
                return StoreMisconfigured(
                    f"{action}: bucket {self.container!r} does not exist (AWS_BUCKETNAME)",
                    store=self.name,
                    key=key,
                )
            if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"):
                return StoreMisconfigured(
                    f"{action}: the bucket is in another region ({code}); check AWS_REGION"
                    " and AWS_HOST",
                    store=self.name,
                    key=key,
                )
            if code in ("SlowDown", "RequestTimeout", "429") or status == 429:
                return StoreUnavailable(
                    f"{action}: the store asks to slow down ({code})", store=self.name, key=key
                )
            if code in _DENIED_CODES or status == 403:
                return AccessDenied(
                    f"{action}: access denied ({code}); check AWS_ACCESS_KEY_ID and"
                    " AWS_SECRET_ACCESS_KEY and the bucket's permissions",
                    store=self.name,
                    key=key,
                )
            if status and status >= 500:
                return StoreUnavailable(
                    f"{action}: the store answered {status} {code}", store=self.name, key=key
                )
            return StorageError(
                f"{action}: {code or status} {error.get('Message', '')}", store=self.name, key=key
            )
        if isinstance(
            exc,
            (
                botocore.exceptions.ConnectionError,
                botocore.exceptions.HTTPClientError,
                botocore.exceptions.ReadTimeoutError,
                botocore.exceptions.ResponseStreamingError,
                botocore.exceptions.IncompleteReadError,
            ),
        ):
            return StoreUnavailable(
                f"{action}: store unreachable or too slow ({type(exc).__name__}: {exc})",
                store=self.name,
                key=key,
            )
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StoreMisconfigured(
                f"{action}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                store=self.name,
                key=key,
            )
        return StorageError(f"{action}: {type(exc).__name__}: {exc}", store=self.name, key=key)

    def _bucket_exists(self):
        try:
            self.client.head_bucket(Bucket=self.container)
        except botocore.exceptions.ClientError as exc:
            return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404
        except botocore.exceptions.BotoCoreError:
            pass
        return True

    # -- the interface ----------------------------------------------------------------

    def _put_extra(self, content_type):
        extra = {}
        if content_type:
            extra["ContentType"] = content_type
        if self.settings.sse:
            extra["ServerSideEncryption"] = self.settings.sse
            if self.settings.sse_kms_key_id:
                extra["SSEKMSKeyId"] = self.settings.sse_kms_key_id
        return extra

    def put(self, key, data, *, content_type=None, size=None):
        self._check_writable(key)
        full_key = self._full_key(key)
        extra = self._put_extra(content_type)
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                size = memoryview(data).nbytes
                if size < self.settings.multipart_threshold:
                    answer = self.client.put_object(
                        Bucket=self.container, Key=full_key, Body=bytes(data), **extra
                    )
                    return ObjectInfo(
                        key, size, answer.get("ETag", "").strip('"') or None, content_type
                    )
                data = io.BytesIO(data)
            elif not _seekable(data):
                data = FullReads(data)
            self.client.upload_fileobj(
                data, self.container, full_key, ExtraArgs=extra, Config=self._transfer
            )
        except _BOTO_ERRORS as exc:
            raise self._error(exc, "put", key) from exc
        except boto3.exceptions.S3UploadFailedError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, _BOTO_ERRORS):
                raise self._error(cause, "put", key) from exc
            raise StorageError(f"put: {exc}", store=self.name, key=key) from exc
        return self.head(key)

    def copy(self, source_key, key, *, source=None):
        self._check_writable(key)
        source = source or self
        copy_source = {"Bucket": source.container, "Key": source._full_key(source_key)}
        try:
            # one CopyObject (up to 5 GB): s3transfer's multipart copy pins the source's
            # ETag, which S3-compatible stores (Swift's s3api) give in another form for
            # an object uploaded in parts, and refuses the copy
            self.client.copy_object(
                CopySource=copy_source,
                Bucket=self.container,
                Key=self._full_key(key),
                **self._put_extra(None),
            )
        except _BOTO_ERRORS as exc:
            error = self._error(exc, "copy", key)
            if isinstance(error, ObjectNotFound):
                error = ObjectNotFound(
                    "copy: the source object does not exist", store=source.name, key=source_key
                )
            raise error from exc
        return self.head(key)

    def open(self, key, *, chunk_size=CHUNK_SIZE, byte_range=None):
        extra = {"Range": range_header(byte_range)} if byte_range else {}
        try:
            answer = self.client.get_object(Bucket=self.container, Key=self._full_key(key), **extra)
        except _BOTO_ERRORS as exc:
            raise self._error(exc, "get", key) from exc
        body = answer["Body"]

        def guard(read):
            # botocore checks the length at the end of the body
            try:
                return read()
            except botocore.exceptions.BotoCoreError as exc:
                raise self._error(exc, "get (while streaming)", key) from exc
            except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                raise StoreUnavailable(
                    f"get (while streaming): {type(exc).__name__}: {exc}",
                    store=self.name,
                    key=key,
                ) from exc

        return ObjectReader(
            _info(key, answer),
            body.iter_chunks(chunk_size),
            body.close,
            store=self.name,
            guard=guard,
            read_all=body.read,
        )

    def head(self, key, *, newest=False):
        # S3 reads are strongly consistent: every HEAD sees the latest write or delete
        try:
            answer = self.client.head_object(Bucket=self.container, Key=self._full_key(key))
        except _BOTO_ERRORS as exc:
            raise self._error(exc, "head", key) from exc
        return _info(key, answer)

    def delete_many(self, keys):
        self._check_writable()
        keys = list(dict.fromkeys(keys))
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.container,
                    Delete={
                        "Objects": [{"Key": self._full_key(k)} for k in batch],
                        "Quiet": True,
                    },
                )
            except _BOTO_ERRORS as exc:
                raise self._error(exc, f"delete of {len(batch)} objects") from exc
            errors = [e for e in answer.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                first = errors[0]
                raise StorageError(
                    f"delete: {len(errors)} of {len(batch)} objects not deleted, first:"
                    f" {first.get('Code')} {first.get('Message', '')}",
                    store=self.name,
                    key=self._short_key(first.get("Key", "")),
                )
            deleted += len(batch)
        # S3 does not tell deleted from absent (deleting a missing key succeeds)
        return DeleteResult(deleted=deleted, not_found=0)

    def presigned_get_url(
        self, key, *, expires=300, filename=None, content_type=None, inline=False
    ):
        params = {"Bucket": self.container, "Key": self._full_key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename, inline)
        try:
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=int(expires)
            )
        except _BOTO_ERRORS as exc:
            raise self._error(exc, "presign", key) from exc

    def list(self, prefix=""):
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.container, Prefix=self._full_key(prefix)):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        self._short_key(item["Key"]),
                        item.get("Size"),
                        item.get("ETag", "").strip('"') or None,
                        None,
                        item.get("LastModified"),
                    )
        except _BOTO_ERRORS as exc:
            raise self._error(exc, f"list {prefix!r}") from exc

    def ensure_container(self):
        self._check_writable()
        try:
            self.client.head_bucket(Bucket=self.container)
            return False
        except botocore.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 404:
                raise self._error(exc, "check bucket") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "check bucket") from exc
        params = {"Bucket": self.container}
        region = self.settings.region
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**params)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "BucketAlreadyExists":
                raise StoreMisconfigured(
                    f"bucket {self.container!r} belongs to another account (AWS_BUCKETNAME)",
                    store=self.name,
                ) from exc
            if code != "BucketAlreadyOwnedByYou":
                raise self._error(exc, "create bucket") from exc
            return False
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "create bucket") from exc
        _logger.info("created bucket %s", self.container)
        return True


def _info(key, answer):
    """ObjectInfo from a GetObject or HeadObject answer."""
    return ObjectInfo(
        key,
        answer.get("ContentLength"),
        answer.get("ETag", "").strip('"') or None,
        answer.get("ContentType"),
        answer.get("LastModified"),
    )
