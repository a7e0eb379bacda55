"""HTTP sessions in Redis, with the store API of Odoo 18's ``FilesystemSessionStore``.

The session class is injected (Odoo's ``odoo.http.Session`` in production), so this
module never imports Odoo. Layout in Redis: one key per session,
``session:<prefix>:<identifier>`` where the identifier is the first 42 characters of the
84-character session id, the part Odoo records in ``res.device.log``. The value holds
a hash of the whole id and the session data, so that

- device revocation (``delete_from_identifiers``) and the presence check of identifiers
  are single commands, never a scan of the keyspace;
- knowing a key name (or an identifier) is not enough to use a session: ``get`` also
  needs the second half of the id, compared in constant time;
- nothing in Redis is a usable session id.

Every write is one ``SET ... EX``: a session's time to live is refreshed each time Odoo
saves it. Redis errors become :class:`SessionStoreUnavailable`, whose message names the
Redis server and never a session id.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
from functools import partial
from pathlib import Path

import redis

from ..errors import StatelessOdooError
from ..observability import events
from ..process import PerProcess

_logger = logging.getLogger(__name__)

#: Odoo 18 session ids and device identifiers
SID_RE = re.compile(r"^[A-Za-z0-9_-]{84}$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9_-]{42}$")
IDENTIFIER_LENGTH = 42

DEFAULT_EXPIRATION = 7 * 24 * 3600  # Odoo's SESSION_LIFETIME


class SessionStoreUnavailable(StatelessOdooError):
    """Redis could not be reached or did not answer in time."""


def generate_key():
    """An Odoo 18 session id: 84 URL-safe base64 characters (as Odoo makes them)."""
    key = str(time.time()).encode() + os.urandom(64)
    return base64.urlsafe_b64encode(hashlib.sha512(key).digest()[:-1]).decode()


def _set_new(client, *, key, value, ttl):
    """SET ``key`` unless it exists, for ``ttl`` seconds."""
    return client.set(key, value, ex=int(ttl), nx=True)


#: SET the session unless its key holds another session id's session. Keys are made of
#: the first half of the id (the device identifier Odoo logs and stores): a cookie
#: ``<someone's identifier><anything>`` gets a new session that Odoo saves under the
#: cookie's id; without this check it would overwrite that user's session.
_SAVE_OWN = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' and stored['h'] ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
#: DEL the session only if its key holds this session id's session (a logout with a
#: forged cookie must not log the other user out)
_DELETE_OWN = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, stored = pcall(cjson.decode, current)
if ok and type(stored) == 'table' and stored['h'] ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def _sid_hash(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


class RedisSessionStore:
    """Odoo 18's session store API over Redis.

    ``session_class(data, sid, new)`` builds sessions (``odoo.http.Session``).
    ``expiration`` is the time to live of logged-in sessions in seconds, or a callable
    returning it (Odoo's ``sessions.max_inactivity_seconds``, read when saving);
    ``on_rotate(session, env)`` runs when a session gets a new id (Odoo recomputes the
    session token there). ``single_connection`` (or a callable answering it, asked in
    each process): see :meth:`RedisSessionSettings.make_client`. ``unavailable``: the
    exception class raised, with a message, when Redis fails (session_redis gives a
    503 of werkzeug's).
    """

    def __init__(
        self,
        settings,
        session_class,
        *,
        expiration=None,
        on_rotate=None,
        client=None,
        single_connection=False,
        unavailable=SessionStoreUnavailable,
    ):
        self.settings = settings
        self.unavailable = unavailable
        self.session_class = session_class
        self._expiration = (
            settings.expiration if settings.expiration is not None else expiration
        ) or DEFAULT_EXPIRATION
        self.on_rotate = on_rotate
        self._client = PerProcess(
            lambda: (
                client
                or settings.make_client(
                    single_connection() if callable(single_connection) else single_connection
                )
            )
        )
        self.key_prefix = f"session:{settings.prefix}:" if settings.prefix else "session:"

    @property
    def client(self):
        """This process's client, made at first use (a single-connection client
        connects then: inside :meth:`_call`, whose errors name Redis)."""
        return self._client.get()

    # -- keys and errors ----------------------------------------------------------------

    def _key(self, sid_or_identifier):
        return f"{self.key_prefix}{sid_or_identifier[:IDENTIFIER_LENGTH]}"

    def _call(self, action, fn):
        """``fn(client)`` with this process's client, timed as a ``session`` event. A
        Redis error, also one of making the client (a single-connection client connects
        then), raises :attr:`unavailable` with a message naming the Redis server and
        ``action``, never a key (half a session id)."""
        with events.timed("session", op=action):
            try:
                return fn(self.client)
            except redis.exceptions.RedisError as exc:
                raise self.unavailable(self._error_message(exc, action)) from None

    def _error_message(self, exc, action):
        where = self.settings.where()
        if isinstance(exc, redis.exceptions.AuthenticationError):  # a ConnectionError
            return (
                f"session store: {action} failed: {where} refused the password"
                " (ODOO_SESSION_REDIS_PASSWORD or the URL's)"
            )
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return (
                f"session store: {action} failed: {where} is unreachable or too slow"
                f" ({type(exc).__name__})"
            )
        return f"session store: {action} failed on {where}: {type(exc).__name__}"

    def expiration_for(self, session):
        if session.get("uid"):
            expiration = self._expiration
            return int(expiration() if callable(expiration) else expiration)
        return self.settings.expiration_anonymous

    # -- Odoo's store API ----------------------------------------------------------------

    def generate_key(self, salt=None):
        return generate_key()

    def is_valid_key(self, key):
        return bool(key) and SID_RE.match(key) is not None

    def new(self):
        return self.session_class({}, self.generate_key(), True)

    def get(self, sid):
        """The session of ``sid``, or a new, empty session when there is none.

        The new session gets a new id, but Odoo 18 then puts back the id the browser
        sent (``Request._get_session_and_dbname``), as with its file store: logging in
        rotates the id, which is what protects against session fixation.
        """
        if not self.is_valid_key(sid):
            return self.new()
        raw = self._call("get", lambda client: client.get(self._key(sid)))
        if raw is None:
            return self.new()
        try:
            payload = json.loads(raw)
            stored_hash, data = payload["h"], payload["d"]
            if not isinstance(data, dict):
                raise TypeError("session data is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            _logger.warning("session store: unreadable session payload discarded (%s)", exc)
            return self.new()
        if not hmac.compare_digest(stored_hash, _sid_hash(sid)):
            return self.new()
        return self.session_class(data, sid, False)

    def save(self, session):
        sid_hash = _sid_hash(session.sid)
        payload = json.dumps({"h": sid_hash, "d": dict(session)})
        ttl = self.expiration_for(session)
        key = self._key(session.sid)
        saved = self._call(
            "save", lambda client: client.eval(_SAVE_OWN, 1, key, sid_hash, payload, ttl)
        )
        if not saved:
            _logger.warning(
                "session store: a session whose id is not its key's own (a forged cookie?)"
                " was not saved; the session stored under that key is left as it is"
            )

    def save_if_modified(self, session):
        if getattr(session, "is_dirty", False) or getattr(session, "should_save", False):
            self.save(session)

    def delete(self, session):
        key, sid_hash = self._key(session.sid), _sid_hash(session.sid)
        self._call("delete", lambda client: client.eval(_DELETE_OWN, 1, key, sid_hash))

    def rotate(self, session, env=None):
        self.delete(session)
        session.sid = self.generate_key()
        if self.on_rotate and session.get("uid") and env is not None:
            self.on_rotate(session, env)
        session.should_rotate = False
        self.save(session)

    def vacuum(self, max_lifetime=None):
        """Nothing to do: Redis expires sessions by their time to live."""

    def delete_from_identifiers(self, identifiers):
        keys = [self._key(i) for i in identifiers if i and IDENTIFIER_RE.match(i)]
        if keys:
            self._call("revoke devices", lambda client: client.delete(*keys))

    def get_missing_session_identifiers(self, identifiers):
        identifiers = [i for i in identifiers if i and IDENTIFIER_RE.match(i)]
        if not identifiers:
            return set()
        keys = [self._key(i) for i in identifiers]

        def exist(client):
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.exists(key)
            return pipe.execute()

        found = self._call("check identifiers", exist)
        return {i for i, exists in zip(identifiers, found, strict=True) if not exists}

    def ping(self):
        return self._call("ping", lambda client: client.ping())

    # -- moving from file sessions -------------------------------------------------------

    def import_filesystem_sessions(self, path, max_lifetime=DEFAULT_EXPIRATION):
        """Copy Odoo's file sessions (``<path>/<sid[:2]>/<sid>``) into Redis.

        Each keeps the time it has left (its file's age counts); expired, unreadable and
        already imported sessions are skipped. Returns ``(imported, skipped)``. Running
        it again is harmless.
        """
        imported = skipped = 0
        now = time.time()
        for file in Path(path).glob("*/*"):
            sid = file.name
            if not self.is_valid_key(sid) or not file.is_file():
                skipped += 1
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                age = now - file.stat().st_mtime
            except (OSError, ValueError):
                skipped += 1
                continue
            if not isinstance(data, dict):
                skipped += 1
                continue
            session = self.session_class(data, sid, False)
            ttl = min(self.expiration_for(session), max_lifetime) - age
            if ttl < 1:
                skipped += 1
                continue
            payload = json.dumps({"h": _sid_hash(sid), "d": data})
            if self._call("import", partial(_set_new, key=self._key(sid), value=payload, ttl=ttl)):
                imported += 1
            else:
                skipped += 1
        return imported, skipped
