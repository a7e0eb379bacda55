"""OpenStack Swift object store (OVH and others) through python-swiftclient.

Authentication is done once per process and shared by its threads: keystone v2/v3
through a keystoneauth1 session (providers rate-limit authentication), v1 (tempauth,
swauth) through a small session of the same shape. Each thread has its own swiftclient
``Connection`` (they are not thread-safe), all of them built again after a fork.
"""

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests
import urllib3.exceptions
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v2 as ksa_v2
from keystoneauth1.identity import v3 as ksa_v3
from swiftclient import client as swift_client
from swiftclient.utils import generate_temp_url

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
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    StoreSettings,
    _seekable,
    range_header,
)

_logger = logging.getLogger(__name__)

# swiftclient's debug log shows the first characters of tokens, keys and passwords
swift_client.logger_settings["reveal_sensitive_prefix"] = 0

#: keys per bulk-delete request (Swift's default limit is 10000)
DELETE_BATCH = 1000
#: chunk size of streamed uploads
UPLOAD_CHUNK = 64 * 1024
# back-off between attempts: the first sleep, doubled at each retry up to the last
BACKOFF_START = 0.5
BACKOFF_MAX = 4


@dataclass(frozen=True)
class SwiftSettings(StoreSettings):
    """The Swift store's settings: the ``SWIFT_*`` variables of the older
    ``attachment_swift`` addon, same names and meaning, and a few more (the table is in
    docs/deployment.md, "Swift: attachment_swift").
    """

    auth_url: str
    user: str
    password: Secret = field(repr=False)
    container_template: str
    auth_version: str = "3"
    project_name: str | None = None
    region_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    interface: str = "public"
    temp_url_key: Secret | None = field(default=None, repr=False)
    key_prefix: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 3

    timing_variables = ("SWIFT_CONNECT_TIMEOUT", "SWIFT_READ_TIMEOUT", "SWIFT_MAX_ATTEMPTS")

    def backoff_seconds(self, retry):
        # swiftclient's and _put_bytes' back-off: 0.5 s, doubled, at most 4 s
        return min(BACKOFF_START * 2 ** (retry - 1), BACKOFF_MAX)

    def auth_seconds(self):
        # v1: one GET with (connect, read); keystone: one POST with keystoneauth1's
        # single timeout, the read timeout (it does not retry by default)
        if self.auth_version == "1":
            return self.connect_timeout + self.read_timeout
        return self.read_timeout

    @classmethod
    def read_env(cls, environ=None):
        """``(settings, errors)``: the settings (``None`` when a variable is bad) and
        every :class:`ConfigError` of the variables, in the order they are read.
        Pure parsing: no authentication, no connection."""
        env = environ if isinstance(environ, EnvReader) else EnvReader(environ)
        errors = ConfigErrors()
        auth_url = errors.read(env.str, "SWIFT_AUTH_URL", required=True)
        if auth_url:
            parts = urlsplit(auth_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.add("SWIFT_AUTH_URL", f"{auth_url!r} is not an http(s) URL")
                auth_url = None
        # None: not set (told from the URL); False: a bad value, already an error
        version = errors.read(
            env.choice, "SWIFT_AUTH_VERSION", {"1", "1.0", "2", "2.0", "3"}, default=False
        )
        if version is None and auth_url:
            version = errors.read(_guess_auth_version, auth_url)
        version = version[0] if version else None
        project = env.str("SWIFT_PROJECT_NAME", aliases=("SWIFT_TENANT_NAME",))
        if version in ("2", "3") and not project:
            errors.add(
                "SWIFT_PROJECT_NAME",
                f"is not set (nor SWIFT_TENANT_NAME); keystone v{version} needs a project",
            )
        settings = dict(
            auth_url=auth_url,
            user=errors.read(env.str, "SWIFT_ACCOUNT", required=True),
            password=errors.read(env.secret, "SWIFT_PASSWORD", required=True),
            container_template=errors.read(env.str, "SWIFT_WRITE_CONTAINER", required=True),
            auth_version=version,
            project_name=project,
            region_name=env.str("SWIFT_REGION_NAME"),
            user_domain_name=env.str("SWIFT_USER_DOMAIN_NAME", "Default"),
            project_domain_name=env.str("SWIFT_PROJECT_DOMAIN_NAME", "Default"),
            interface=errors.read(
                env.choice, "SWIFT_INTERFACE", {"public", "internal", "admin"}, "public"
            ),
            temp_url_key=env.secret("SWIFT_TEMP_URL_KEY"),
            key_prefix=env.str("SWIFT_KEY_PREFIX", ""),
            connect_timeout=errors.read(env.seconds, "SWIFT_CONNECT_TIMEOUT", 5.0),
            read_timeout=errors.read(env.seconds, "SWIFT_READ_TIMEOUT", 10.0),
            max_attempts=errors.read(env.int, "SWIFT_MAX_ATTEMPTS", 3, minimum=1, maximum=20),
        )
        if errors:
            return None, errors.errors
        return cls(**settings), []

    def container(self, db_name=None):
        name = render_db_placeholder("SWIFT_WRITE_CONTAINER", self.container_template, db_name)
        if "/" in name or len(name.encode()) > 256:
            raise ConfigError(
                "SWIFT_WRITE_CONTAINER",
                f"{name!r} is not a valid container name (no '/', at most 256 bytes)",
            )
        return name


def _guess_auth_version(url):
    path = urlsplit(url).path.rstrip("/")
    if re.search(r"/v3$", path):
        return "3"
    if re.search(r"/v2(\.0)?$", path):
        return "2"
    if re.search(r"/v1(\.0)?$", path) or path.endswith("/auth"):
        return "1"
    raise ConfigError(
        "SWIFT_AUTH_VERSION",
        f"is not set and cannot be told from SWIFT_AUTH_URL {url!r}: set it to 1, 2 or 3",
    )


class _V1Session:
    """The parts of a keystoneauth1 session that swiftclient uses, for v1 auth.

    One per process: every thread's connection shares its token.
    """

    def __init__(self, settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._url = self._token = None

    def _authenticate(self):
        with self._lock:
            if self._token is None:
                s = self._settings
                self._url, self._token = swift_client.get_auth_1_0(
                    s.auth_url,
                    s.user,
                    s.password.reveal(),
                    timeout=(s.connect_timeout, s.read_timeout),
                )
            return self._url, self._token

    def get_endpoint(self, **kwargs):
        return self._authenticate()[0]

    def get_token(self):
        return self._authenticate()[1]

    def invalidate(self):
        with self._lock:
            self._url = self._token = None
        return True


class _ProcessClients:
    """Per process: the auth session, the temp URL key, one Connection per thread."""

    def __init__(self, settings):
        self.settings = settings
        s = settings
        if s.auth_version == "1":
            self.session = _V1Session(s)
        else:
            if s.auth_version == "2":
                auth = ksa_v2.Password(
                    auth_url=s.auth_url,
                    username=s.user,
                    password=s.password.reveal(),
                    tenant_name=s.project_name,
                )
            else:
                auth = ksa_v3.Password(
                    auth_url=s.auth_url,
                    username=s.user,
                    password=s.password.reveal(),
                    project_name=s.project_name,
                    user_domain_name=s.user_domain_name,
                    project_domain_name=s.project_domain_name,
                )
            # keystoneauth1 takes one number; the connections keep (connect, read)
            self.session = ksa_session.Session(auth=auth, timeout=s.read_timeout)
        self._local = threading.local()
        self.temp_url_keys = {}  # container -> key, when SWIFT_TEMP_URL_KEY is not set

    def connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            s = self.settings
            conn = swift_client.Connection(
                session=self.session,
                retries=s.max_attempts - 1,
                starting_backoff=BACKOFF_START,
                max_backoff=BACKOFF_MAX,
                timeout=(s.connect_timeout, s.read_timeout),
                os_options={"region_name": s.region_name, "endpoint_type": s.interface},
            )
            self._local.conn = conn
        return conn


class SwiftStore(ObjectStore):
    """One Swift container."""

    scheme = "swift"
    settings_class = SwiftSettings

    def __init__(self, settings, container, *, read_only=False, key_prefix=None, _clients=None):
        super().__init__(settings, container, read_only=read_only, key_prefix=key_prefix)
        self._clients = _clients or PerProcess(lambda: _ProcessClients(settings))

    @property
    def connection(self):
        return self._clients.get().connection()

    def readonly_view(self, container):
        return SwiftStore(
            self.settings,
            container,
            read_only=True,
            key_prefix=self.key_prefix,
            _clients=self._clients,
        )

    # -- errors ---------------------------------------------------------------------

    def _container_missing(self, action):
        return StoreMisconfigured(
            f"{action}: container {self.container!r} does not exist (SWIFT_WRITE_CONTAINER)",
            store=self.name,
        )

    def _not_found(self, action, key):
        """A 404 on an object: the object is missing, or its whole container is."""
        try:
            self.connection.head_container(self.container)
        except swift_client.ClientException as exc:
            if exc.http_status == 404:
                return self._container_missing(action)
        except self._ERRORS:
            pass  # the object's 404 stands
        return ObjectNotFound(f"{action}: object not found", store=self.name, key=key)

    def _error(self, exc, action, key=None, *, container_op=False):
        if isinstance(exc, swift_client.ClientException):
            status = exc.http_status
            if status == 404:
                if container_op or action == "put":
                    return self._container_missing(action)
                return self._not_found(action, key)
            if status in (401, 403):
                return AccessDenied(
                    f"{action}: access denied ({status}); check SWIFT_ACCOUNT,"
                    " SWIFT_PASSWORD and SWIFT_PROJECT_NAME and the container's ACLs",
                    store=self.name,
                    key=key,
                )
            if status is None or status >= 500 or status in (408, 429, 498, 499):
                return StoreUnavailable(
                    f"{action}: the store did not answer properly ({status or exc.msg})",
                    store=self.name,
                    key=key,
                )
            return StorageError(
                f"{action}: {status} {exc.http_reason or ''}", store=self.name, key=key
            )
        if isinstance(exc, ksa_exceptions.Unauthorized | ksa_exceptions.Forbidden):
            return AccessDenied(
                f"{action}: authentication refused; check SWIFT_ACCOUNT, SWIFT_PASSWORD,"
                " SWIFT_PROJECT_NAME and the domains",
                store=self.name,
                key=key,
            )
        if isinstance(exc, ksa_exceptions.EndpointNotFound):
            return StoreMisconfigured(
                f"{action}: no object-store endpoint in the catalog for region"
                f" {self.settings.region_name!r} (SWIFT_REGION_NAME) and interface"
                f" {self.settings.interface!r} (SWIFT_INTERFACE)",
                store=self.name,
                key=key,
            )
        if isinstance(exc, ksa_exceptions.DiscoveryFailure):
            return StoreMisconfigured(
                f"{action}: no identity API found at SWIFT_AUTH_URL"
                f" {self.settings.auth_url!r} ({type(exc).__name__})",
                store=self.name,
                key=key,
            )
        if isinstance(
            exc,
            (
                ksa_exceptions.HttpServerError,
                ksa_exceptions.RequestTimeout,
                ksa_exceptions.ConnectionError,
                ksa_exceptions.RetriableConnectionFailure,
                requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError,
                socket.error,
            ),
        ):
            return StoreUnavailable(
                f"{action}: store unreachable or too slow ({type(exc).__name__}: {exc})",
                store=self.name,
                key=key,
            )
        return StorageError(f"{action}: {type(exc).__name__}: {exc}", store=self.name, key=key)

    _ERRORS = (
        swift_client.ClientException,
        ksa_exceptions.ClientException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,  # a body cut short while streaming
        OSError,
    )

    # -- the interface ----------------------------------------------------------------

    def put(self, key, data, *, content_type=None, size=None):
        self._check_writable(key)
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
            etag = self._put_bytes(key, data, content_type)
            return ObjectInfo(key, len(data), etag, content_type)
        if not _seekable(data):
            # swiftclient rewinds file objects that have seek/tell to retry; one that
            # cannot seek is sent once, retries would send it half-read
            data = _ReadOnly(data)
        try:
            self.connection.put_object(
                self.container,
                self._full_key(key),
                data,
                content_length=size,
                chunk_size=UPLOAD_CHUNK,
                content_type=content_type,
            )
        except self._ERRORS as exc:
            raise self._error(exc, "put", key) from exc
        return self.head(key)

    def _put_bytes(self, key, data, content_type):
        """PUT bytes in one send, retried here: swiftclient cannot rewind bytes and
        gives up after the first failure, while a file object would go in 8 KB blocks."""
        conn = self.connection  # this thread's own: its retries can be changed
        backoff = BACKOFF_START
        for attempt in range(1, self.settings.max_attempts + 1):
            saved, conn.retries = conn.retries, 0
            try:
                return conn.put_object(
                    self.container, self._full_key(key), data, content_type=content_type
                )
            except self._ERRORS as exc:
                error = self._error(exc, "put", key)
                if attempt == self.settings.max_attempts or not isinstance(error, StoreUnavailable):
                    raise error from exc
            finally:
                conn.retries = saved
            time.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        raise AssertionError("unreachable")

    def copy(self, source_key, key, *, source=None):
        self._check_writable(key)
        source = source or self
        try:
            # a server-side COPY; fresh_metadata: the source's metadata is copied too
            self.connection.copy_object(
                source.container,
                source._full_key(source_key),
                destination=f"/{self.container}/{self._full_key(key)}",
            )
        except self._ERRORS as exc:
            error = self._error(exc, "copy", key)
            if getattr(exc, "http_status", None) == 404:
                error = ObjectNotFound(
                    "copy: the source object does not exist", store=source.name, key=source_key
                )
            raise error from exc
        return self.head(key)

    def open(self, key, *, chunk_size=CHUNK_SIZE, byte_range=None):
        # swiftclient does not resume ranged reads: a cut part is an error (counted)
        extra = {"headers": {"Range": range_header(byte_range)}} if byte_range else {}
        try:
            headers, body = self.connection.get_object(
                self.container, self._full_key(key), resp_chunk_size=chunk_size, **extra
            )
        except self._ERRORS as exc:
            raise self._error(exc, "get", key) from exc

        def guard(read):
            # swiftclient resumes a cut body from its offset; past its retries, or on a
            # body shorter than its Content-Length, it raises (or, with urllib3 1.26,
            # ends early: the reader counts)
            try:
                return read()
            except self._ERRORS as exc:
                raise self._error(exc, "get (while streaming)", key) from exc

        return ObjectReader(
            _info(key, headers),
            body,
            body.close,  # the response in use, which changes when swiftclient resumes
            store=self.name,
            guard=guard,
            read_all=body.read,
        )

    def head(self, key, *, newest=False):
        # X-Newest: the proxy asks every replica and answers with the latest, instead
        # of the first replica's answer, which may predate a DELETE
        extra = {"headers": {"X-Newest": "true"}} if newest else {}
        try:
            headers = self.connection.head_object(self.container, self._full_key(key), **extra)
        except self._ERRORS as exc:
            raise self._error(exc, "head", key) from exc
        return _info(key, headers)

    def delete_many(self, keys):
        self._check_writable()
        keys = list(dict.fromkeys(keys))
        deleted = not_found = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            body = "\n".join(
                quote(f"/{self.container}/{self._full_key(k)}") for k in batch
            ).encode()
            try:
                _headers, answer = self.connection.post_account(
                    headers={"Content-Type": "text/plain", "Accept": "application/json"},
                    query_string="bulk-delete",
                    data=body,
                )
            except self._ERRORS as exc:
                raise self._error(exc, f"bulk delete of {len(batch)} objects") from exc
            try:
                result = json.loads(answer)
            except ValueError:
                raise StoreMisconfigured(
                    "bulk delete: the proxy did not answer a bulk-delete request; enable"
                    " the bulk middleware in the Swift proxy pipeline",
                    store=self.name,
                ) from None
            errors = result.get("Errors") or []
            if errors or not result.get("Response Status", "").startswith("200"):
                first = errors[0] if errors else ["", result.get("Response Status")]
                path = unquote(first[0] or "")
                prefix = f"/{self.container}/{self.key_prefix}"
                raise StorageError(
                    f"bulk delete: {len(errors)} of {len(batch)} objects not deleted,"
                    f" first: {first[1]} ({result.get('Response Body', '').strip()})",
                    store=self.name,
                    key=path[len(prefix) :] if path.startswith(prefix) else path or None,
                )
            deleted += result.get("Number Deleted", 0)
            not_found += result.get("Number Not Found", 0)
        return DeleteResult(deleted=deleted, not_found=not_found)

    def _temp_url_key(self, clients):
        """SWIFT_TEMP_URL_KEY, or the account's key, or the container's (cached)."""
        if self.settings.temp_url_key:
            return self.settings.temp_url_key.reveal()
        key = clients.temp_url_keys.get(self.container)
        if key:
            return key
        try:
            key = self.connection.head_account().get("x-account-meta-temp-url-key")
            if not key:
                key = self.connection.head_container(self.container).get(
                    "x-container-meta-temp-url-key"
                )
        except self._ERRORS as exc:
            raise self._error(exc, "read the temp URL key", container_op=True) from exc
        if not key:
            raise StoreMisconfigured(
                "no temporary URL key: set SWIFT_TEMP_URL_KEY, or the Temp-URL-Key"
                " metadata of the account or container",
                store=self.name,
            )
        clients.temp_url_keys[self.container] = key
        return key

    def presigned_get_url(
        self, key, *, expires=300, filename=None, content_type=None, inline=False
    ):
        """A temporary URL. Swift serves the Content-Type stored with the object:
        ``content_type`` cannot override it and is ignored."""
        clients = self._clients.get()
        try:
            storage_url = self.connection.get_auth()[0]
        except self._ERRORS as exc:
            raise self._error(exc, "presign", key) from exc
        parts = urlsplit(storage_url)
        # Swift checks the signature against the path as it decodes it: sign the
        # unquoted path, send the quoted one
        path = f"{unquote(parts.path)}/{self.container}/{self._full_key(key)}"
        signed = generate_temp_url(path, int(expires), self._temp_url_key(clients), "GET")
        query_string = signed.partition("?")[2]
        extra = {}
        if filename:
            extra["filename"] = filename
        query = urlencode(extra, quote_via=quote)
        if inline:
            query = f"{query}&inline" if query else "inline"
        url = f"{parts.scheme}://{parts.netloc}{quote(path)}?{query_string}"
        return f"{url}&{query}" if query else url

    def list(self, prefix=""):
        marker = ""
        while True:
            try:
                _headers, page = self.connection.get_container(
                    self.container, prefix=self._full_key(prefix), marker=marker, limit=1000
                )
            except self._ERRORS as exc:
                raise self._error(exc, f"list {prefix!r}", container_op=True) from exc
            if not page:
                return
            for item in page:
                yield ObjectInfo(
                    self._short_key(item["name"]),
                    item.get("bytes"),
                    item.get("hash"),
                    item.get("content_type"),
                    item.get("last_modified"),
                )
            marker = page[-1]["name"]

    def ensure_container(self):
        self._check_writable()
        try:
            self.connection.head_container(self.container)
            return False
        except swift_client.ClientException as exc:
            if exc.http_status != 404:
                raise self._error(exc, "check container", container_op=True) from exc
        except self._ERRORS as exc:
            raise self._error(exc, "check container", container_op=True) from exc
        try:
            self.connection.put_container(self.container)
        except self._ERRORS as exc:
            raise self._error(exc, "create container") from exc
        _logger.info("created container %s", self.container)
        return True


class _ReadOnly:
    """A file object reduced to ``read``."""

    def __init__(self, stream):
        self.read = stream.read


def _info(key, headers):
    length = headers.get("content-length")
    return ObjectInfo(
        key,
        int(length) if length is not None else None,
        (headers.get("etag") or "").strip('"') or None,
        headers.get("content-type"),
        headers.get("last-modified"),
    )
