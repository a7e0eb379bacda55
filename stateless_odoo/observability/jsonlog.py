"""One JSON object per log line, with request and database context, secrets redacted.

:class:`JsonFormatter` builds on python-json-logger's formatter (any ``extra=`` given
to a log call becomes a field): its orjson one when orjson is installed (a dependency:
it encodes a line in a tenth of the time), else its standard-library one. Each line
carries::

    timestamp (ISO-8601 UTC), level, severity, logger, message, pid, dbname, uid,
    request_id, and exception_type / exception_message / traceback when present

The access line of a request (werkzeug's) also carries ``http_method``, ``http_path``
(never the query string), ``http_status``, ``duration_ms``, ``sql_count`` and
``sql_ms``, read from :func:`.observe.current`; its message loses the
query string too.

Secrets never reach the output: :func:`redact` masks passwords, tokens, session ids and
``Authorization`` values in the message, the traceback and string extras; an extra (or
a dict message's key) named after a secret is masked whole.
"""

import json
import logging
import os
import re
import threading
import time

try:  # orjson encodes a line about 8 times faster than the standard library
    from pythonjsonlogger.orjson import OrjsonFormatter as _LibraryJsonFormatter

    _LIBRARY_OPTIONS = {}
except ImportError:
    from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

    _LIBRARY_OPTIONS = {"json_ensure_ascii": False}

from . import observe

#: python's level names as log pipelines expect them in ``severity``
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    25: "INFO",  # Odoo's "runbot" level
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

_MASK = "***"
#: names under which secrets travel (not secrets themselves); a name that ends with one
#: of these is one too (db_password, smtp_pass, odoo_api_key)
_SECRET_SUFFIXES = "|".join(
    (
        "password|passwd|pwd|pass|secret|token|credentials?|signature|temp_url_sig",
        "api_?key|apikey|access_?key|secret_?key|private_?key",
        "session_id|x-openerp-session-id",
    )
)
#: whole names only (``sid`` is the tail of ``aside``)
_SECRET_NAMES = r"sid|sig|x-amz-credential|x-amz-security-token"  # noqa: S105
_SECRET_KEY = (
    r"(?<![A-Za-z0-9_.-])(?:[A-Za-z0-9_.-]*?(?:" + _SECRET_SUFFIXES + r")|" + _SECRET_NAMES + r")"
)
_REDACTIONS = (
    # Authorization: Bearer abc / Basic abc / AWS4-HMAC-SHA256 Credential=..., Signature=...
    # (headers, dict reprs): the whole value, to the end of the line or of its quotes
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*)(['\"])(.*?)(?<!\\)\2"),
        lambda m: f"{m.group(1)}{m.group(2)}{_MASK}{m.group(2)}",
    ),
    (
        re.compile(r"(?i)(authorization\s*[:=]\s*)(?!['\"])[^\r\n'\"}]+"),
        lambda m: f"{m.group(1)}{_MASK}",
    ),
    # 'key': 'value with spaces', "key": "value", key="p&ss": the whole quoted value
    (
        re.compile(r"(?i)(" + _SECRET_KEY + r"['\"]?\s*[:=]\s*b?)(['\"])(.*?)(?<!\\)\2"),
        lambda m: f"{m.group(1)}{m.group(2)}{_MASK}{m.group(2)}",
    ),
    # key=value, key: value (query strings, cookies, headers): to the next separator
    (
        re.compile(r"(?i)(" + _SECRET_KEY + r"['\"]?\s*[:=]\s*)(?!['\"])([^\s'\"&,;}\])]+)"),
        lambda m: f"{m.group(1)}{_MASK}",
    ),
    # the password of a URL's user information: scheme://user:secret@host
    (
        # (greedy: to the last @ of the authority, a password may hold one)
        re.compile(r"(://[^/\s:@'\"]*:)([^\s/'\"]+)@"),
        lambda m: f"{m.group(1)}{_MASK}@",
    ),
    # a bare bearer token
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/-]+=*"), lambda m: f"{m.group(1)}{_MASK}"),
    # Odoo's session ids: 84 URL-safe base64 characters (63 random bytes)
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{84}(?![A-Za-z0-9_-])"), lambda m: _MASK),
)
#: a field (``extra=`` or a dict message) whose name says it holds a secret
_SECRET_FIELD = re.compile(r"(?i)" + _SECRET_KEY)
#: cheap test before the expressions above: a secret comes with one of these words
#: (lowercase), or in a URL's user information, or is a long token
_HINTS = ("pass", "pwd", "secret", "key", "token", "session", "sid", "sig", "auth", "bearer")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_-]{84}")


def _may_hold_secret(text):
    lower = text.lower()
    for hint in _HINTS:
        if hint in lower:
            return True
    if "@" in text and "://" in text:
        return True
    return len(text) >= 84 and _LONG_TOKEN.search(text) is not None


def redact(text):
    """``text`` with its secrets replaced by ``***``."""
    if not text or not _may_hold_secret(text):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


#: paths seen, redacted: the same few paths come again and again, each twice a request
#: (its field and its access line); emptied when full
_safe_paths = {}
SAFE_PATHS_MAX = 4096


def redact_path(path):
    """:func:`redact` of a URL path, remembered."""
    safe = _safe_paths.get(path)
    if safe is None:
        safe = redact(path)
        if len(_safe_paths) >= SAFE_PATHS_MAX:
            _safe_paths.clear()
        _safe_paths[path] = safe
    return safe


#: (second, its ISO-8601 text): the lines of one second share their formatted prefix
_second = (None, "")


def _iso_utc(record):
    """The record's time as ISO-8601 UTC with milliseconds (``...T10:00:00.123Z``)."""
    global _second
    second = int(record.created)
    cached, text = _second
    if cached != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int(record.msecs):03d}Z"


#: record attributes Odoo or werkzeug add that have structured equivalents here
_ODOO_ATTRS = ("perf_info", "pid", "dbname")


class JsonFormatter(_LibraryJsonFormatter):
    """The suite's JSON formatter (see the module's documentation)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"exc_info": "traceback"})
        for key, value in _LIBRARY_OPTIONS.items():
            kwargs.setdefault(key, value)
        super().__init__(*args, **kwargs)
        self._skip_fields = set(self._skip_fields) | set(_ODOO_ATTRS)

    def jsonify_log_record(self, log_data):
        try:
            return super().jsonify_log_record(log_data)
        except (TypeError, ValueError, OverflowError):
            # orjson refuses what the standard library takes (an int above 64 bits):
            # the line is written all the same
            return json.dumps(log_data, default=str, ensure_ascii=False)

    def formatException(self, ei):
        return redact(super().formatException(ei))

    def formatStack(self, stack_info):
        return redact(super().formatStack(stack_info))

    def add_fields(self, log_data, record, message_dict):
        thread = threading.current_thread()
        info = observe.current()
        log_data["timestamp"] = _iso_utc(record)
        level = logging.getLevelName(record.levelno)
        log_data["level"] = level
        log_data["severity"] = _SEVERITY.get(record.levelno) or level
        log_data["logger"] = record.name
        access = info is not None and observe.is_access_line(record)
        message = _access_message(record, info) if access else redact(record.message)
        log_data["message"] = message
        log_data["pid"] = os.getpid()
        log_data["dbname"] = getattr(thread, "dbname", None)
        uid = getattr(thread, "uid", None) if info is not None else None
        log_data["uid"] = uid
        log_data["request_id"] = info.request_id if info is not None else None
        if access:
            _add_access_fields(log_data, info)
        if record.exc_info and record.exc_info[0] is not None:
            log_data["exception_type"] = record.exc_info[0].__name__
            log_data["exception_message"] = redact(str(record.exc_info[1]))
        if (
            message_dict
            or self.defaults
            or self.static_fields
            or (record.__dict__.keys() - self._skip_fields)
        ):
            # the library's fields (extras given to the log call, the traceback) may
            # hold anything: redacted; the message is the one above, not the record's.
            # Most lines have none: the library's walk of the record is skipped then
            fields = {}
            super().add_fields(fields, record, message_dict)
            fields.pop("message", None)
            for key, value in fields.items():
                if isinstance(key, str) and _SECRET_FIELD.fullmatch(key):
                    value = _MASK
                elif isinstance(value, str):
                    value = redact(value)
                log_data[key] = value


def _access_message(record, info):
    """werkzeug's access line, the request line's query string dropped and its path
    redacted (the rest of the line is werkzeug's own: address, date, status, size)."""
    parts = str(record.args[0]).split(" ")
    if len(parts) == 3:
        parts[1] = redact_path(parts[1].split("?", 1)[0])
        requestline = " ".join(parts)
    else:  # a decoded space in the path, a malformed request line
        requestline = f"{info.method} {redact_path(info.path)}"
    try:
        return record.msg % (requestline, *record.args[1:])
    except (TypeError, ValueError):
        return f'"{requestline}" {record.args[1]} {record.args[2]}'


def _add_access_fields(log_data, info):
    log_data["http_method"] = info.method
    log_data["http_path"] = redact_path(info.path)
    log_data["http_status"] = info.status
    log_data["duration_ms"] = round(info.elapsed() * 1000, 3)
    if info.sql_count is not None:
        log_data["sql_count"] = info.sql_count
        log_data["sql_ms"] = round((info.sql_time or 0.0) * 1000, 3)
    if info.route is not None:
        log_data["http_route"] = info.route


def install(root=None, formatter=None):
    """Give every handler of the root logger the JSON formatter; returns how many."""
    root = root or logging.getLogger()
    formatter = formatter or JsonFormatter()
    for handler in root.handlers:
        handler.setFormatter(formatter)
    return len(root.handlers)
