"""Command line of the core package: ``python -m stateless_odoo COMMAND``.

``store-check s3|swift [--db NAME] [--create]``
    Build the store the environment configures and prove it works: write, head, read,
    fetch through a presigned URL and delete a probe object. Exit 0 when everything worked, 2 on a
    configuration error, 1 on a store error; one line per step either way.
"""

import argparse
import contextlib
import sys
import time
import urllib.request
import uuid

from .errors import ConfigError, StatelessOdooError
from .storage import KINDS, build_store


def store_check(kind, db_name=None, create=False, out=print):
    store = build_store(kind, db_name=db_name)
    out(f"store: {store.name}")
    if create and store.ensure_container():
        out(f"created container {store.container}")
    key = f"store-check/{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes * 64
    steps = [
        ("put", lambda: store.put(key, payload, content_type="application/octet-stream")),
        ("head", lambda: store.head(key)),
        ("get", lambda: store.get_bytes(key) == payload or _fail("content differs")),
        ("presign", lambda: _fetch(store.presigned_get_url(key, expires=60), payload)),
        ("delete", lambda: store.delete(key)),
    ]
    try:
        for name, step in steps:
            started = time.monotonic()
            step()
            out(f"  {name:<8} ok  {1000 * (time.monotonic() - started):7.1f} ms")
    except StatelessOdooError:
        with contextlib.suppress(StatelessOdooError):
            store.delete(key)  # leave no probe object behind
        raise
    return store


def _fetch(url, expected):
    """GET a presigned URL as a browser would: it must serve the object."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - http(s) only
            body = answer.read()
    except (OSError, ValueError) as exc:
        _fail(f"the presigned URL does not serve the object: {exc}")
    if body != expected:
        _fail("the presigned URL serves other content")


def _fail(message):
    raise StatelessOdooError(message)


def main(argv=None):
    # also the stateless-odoo command (pyproject's scripts), whose name argparse takes
    as_script = sys.argv[0].endswith("stateless-odoo")
    parser = argparse.ArgumentParser(prog=None if as_script else "python -m stateless_odoo")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("store-check", help="prove the configured store works")
    check.add_argument("kind", choices=KINDS)
    check.add_argument("--db", help="database name, for a {db} placeholder in the name")
    check.add_argument("--create", action="store_true", help="create the container if absent")
    args = parser.parse_args(argv)
    try:
        store_check(args.kind, db_name=args.db, create=args.create)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StatelessOdooError as exc:
        print(f"store error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("store-check: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
