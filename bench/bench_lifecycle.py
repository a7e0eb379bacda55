"""A database's backup, restore and duplicate with its objects, against their practical
limits.

The migration benchmark's generated set (``--count`` attachments, default 5,000: 1 KB to
20 MB, about 1.3 GB, 5 % duplicates) is migrated once into a fresh container. Then,
each in a process of its own (for its own peak RSS), the suite's operation and its
baseline, the baseline before and after (the faster counts):

- ``backup``: ``complete_zip`` (what ``odoo db dump`` and the database manager's
  *Backup* run): Odoo's zip of a real ``pg_dump`` copied with every object's content,
  downloaded on ``--threads`` threads through bounded spools, SHA-1 checked, and the
  rows rewritten; against ``raw``: the same objects downloaded whole by a pool of the
  same threads and client, written into a zip (deflated) as they arrive;
- ``restore``: the backup checked (``check_zip``), its files extracted, ``dump.sql``
  loaded by psql, the files moved to the store (the migration of local files), as
  ``odoo db load`` does; against ``raw``: the files extracted and uploaded by the pool;
- ``duplicate``: ``adopt`` on a ``CREATE DATABASE ... TEMPLATE`` copy (server-side
  copies, rows rewritten), as ``odoo db duplicate``; against ``raw``: the same copies
  by the pool.

Goals: backup and restore >= 0.7x their baseline; peak RSS flat (under 250 MB) whatever
the sizes.

    ./dev bench lifecycle                      # 5,000 attachments, S3 API
    python bench/bench_lifecycle.py --count 1000 --api swift
"""

import argparse
import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor

from common import (
    drop_attachment_database,
    generate,
    make_attachment_database,
    pg_base,
    remove_container,
    run_phase_process,
    store_environ,
)

from stateless_odoo.attachments import backup, lifecycle
from stateless_odoo.attachments.migration import Migration
from stateless_odoo.attachments.stores import AttachmentStores
from stateless_odoo.storage import build_store
from stateless_odoo.testing.pg import PgCursor

GOAL = 0.7
RSS_GOAL_MB = 250
SOURCE_DB = "bench"


def pg_args():
    params = dict(item.split("=", 1) for item in pg_base().split())
    return ["-h", params["host"], "-p", params["port"], "-U", params["user"]]


def create_database(name, template=None):
    extra = ["-T", template] if template else []
    subprocess.run(["createdb", *pg_args(), *extra, name], check=True)


def odoo_zip(dbname, path):
    """The zip Odoo's dump writes for a database whose files are all in the store."""
    dump = subprocess.run(
        ["pg_dump", "--no-owner", *pg_args(), dbname], check=True, capture_output=True
    ).stdout
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dump.sql", dump)
        archive.writestr("manifest.json", json.dumps({"odoo_dump": "1", "db_name": dbname}))


def extract_files(archive_path, directory):
    with zipfile.ZipFile(archive_path) as archive:
        members = [name for name in archive.namelist() if name.startswith("filestore/")]
        archive.extractall(directory, members)
    return os.path.join(directory, "filestore")


def distinct_objects(dbname):
    with PgCursor(f"{pg_base()} dbname={dbname}") as cr:
        cr.execute("SELECT DISTINCT store_fname, checksum FROM ir_attachment")
        return cr.fetchall()


# -- the phases (each in a process of its own) ---------------------------------------------


def phase(args):
    env = json.loads(os.environ["BENCH_STORE_ENV"])
    stores = AttachmentStores(args.api, SOURCE_DB, env)
    store = stores.write_store
    work = args.work
    started = time.monotonic()
    if args.phase == "backup":
        source = os.path.join(work, "odoo.zip")
        with open(os.path.join(work, "backup.zip"), "wb") as out:
            started = time.monotonic()
            report = backup.complete_zip(
                source,
                out,
                lambda url: store.open(stores.locate(url)[1]),
                threads=args.threads,
            )
        assert report.complete and report.objects, report
    elif args.phase == "raw-backup":
        objects = distinct_objects(args.db)
        arrived = queue.Queue(2 * args.threads)

        def fetch(item):
            url, checksum = item
            arrived.put((checksum, store.get_bytes(stores.locate(url)[1])))

        with (
            zipfile.ZipFile(os.path.join(work, "raw.zip"), "w", zipfile.ZIP_DEFLATED) as out,
            ThreadPoolExecutor(args.threads) as pool,
        ):
            futures = [pool.submit(fetch, item) for item in objects]
            for _ in objects:
                checksum, data = arrived.get()
                out.writestr(backup.filestore_name(checksum), data)
            for future in futures:
                future.result()
    elif args.phase == "restore":
        backup.check_zip(os.path.join(work, "backup.zip"))
        files = extract_files(os.path.join(work, "backup.zip"), os.path.join(work, "restore"))
        with zipfile.ZipFile(os.path.join(work, "backup.zip")) as archive:
            dump = archive.read("dump.sql")
        subprocess.run(
            ["psql", "-q", *pg_args(), "-d", args.target, "-v", "ON_ERROR_STOP=1"],
            input=dump,
            check=True,
            capture_output=True,
        )
        target = AttachmentStores(args.api, args.target, env)
        report = Migration(
            functools.partial(PgCursor, f"{pg_base()} dbname={args.target}"),
            target="store",
            stores=target,
            filestore=files,
            threads=args.threads,
            files_only=True,
        ).run()
        assert report.ok and report.moved, report
    elif args.phase == "raw-restore":
        files = extract_files(os.path.join(work, "backup.zip"), os.path.join(work, "raw"))
        paths = [os.path.join(root, name) for root, _d, names in os.walk(files) for name in names]
        target = AttachmentStores(args.api, args.target, env)

        def upload(path):
            place = target.place(os.path.basename(path))
            with open(path, "rb") as src:
                place.store.put(place.key, src, size=os.path.getsize(path))

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(upload, paths))
    elif args.phase == "duplicate":
        copy = AttachmentStores(args.api, args.target, env)
        dsn = f"{pg_base()} dbname={args.target}"
        report = lifecycle.adopt(functools.partial(PgCursor, dsn), copy, threads=args.threads)
        assert report.copied and not report.missing, report
    elif args.phase == "raw-duplicate":
        copy = AttachmentStores(args.api, args.target, env)

        def duplicate(item):
            url, checksum = item
            place = copy.place(checksum)
            place.store.copy(stores.locate(url)[1], place.key)

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(duplicate, distinct_objects(args.db)))
    print(json.dumps({"seconds": time.monotonic() - started}))


def run_phase(name, args, db, target, work, store_env):
    cmd = [
        sys.executable, __file__, "--phase", name, "--db", db, "--target", target,
        "--work", work, "--api", args.api, "--threads", str(args.threads),
    ]  # fmt: skip
    return run_phase_process(f"bench lifecycle: phase {name}", cmd, store_env)


def delete_namespace(store, namespace):
    """Between phases: 100 keys a request on 8 threads (Swift's s3api takes more than the
    read timeout for a thousand on a busy machine)."""
    keys = [info.key for info in store.list(f"{namespace}/")]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.delete_many, [keys[i : i + 100] for i in range(0, len(keys), 100)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--api", choices=("s3", "swift"), default="s3")
    parser.add_argument("--phase")
    parser.add_argument("--db")
    parser.add_argument("--target")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.phase:
        return phase(args)
    work = tempfile.mkdtemp(prefix="bench-lifecycle-")
    container = f"bench-{uuid.uuid4().hex[:8]}"
    environ = store_environ(args.api, container)
    store_env = json.dumps(environ)
    direct = build_store(args.api, environ, key_prefix="")
    direct.ensure_container()
    databases = []
    results = {}
    try:
        source = os.path.join(work, "source")
        started = time.monotonic()
        rows = generate(source, args.count)
        db = make_attachment_database(rows)
        databases.append(db)
        stores = AttachmentStores(args.api, SOURCE_DB, environ)
        Migration(
            functools.partial(PgCursor, f"{pg_base()} dbname={db}"),
            target="store",
            stores=stores,
            filestore=source,
            threads=args.threads,
        ).run()
        shutil.rmtree(source)
        sizes = {checksum: size for _f, checksum, size in rows}
        total_mb = sum(sizes.values()) / 1e6
        odoo_zip(db, os.path.join(work, "odoo.zip"))
        print(
            f"{len(rows)} attachments, {len(sizes)} objects, {total_mb:.0f} MB in the store"
            f" ({args.api} API) in {time.monotonic() - started:.0f} s; {args.threads} threads"
        )
        for operation in ("backup", "restore", "duplicate"):
            for name in (f"raw-{operation}", operation, f"raw-{operation}"):
                target = f"stateless_bench_{uuid.uuid4().hex[:8]}"
                databases.append(target)
                if operation == "restore" and name == operation:
                    create_database(target)
                if operation == "duplicate":
                    create_database(target, template=db)
                seconds, rss = run_phase(name, args, db, target, work, store_env)
                key = "raw" if name.startswith("raw") else "suite"
                best = results.get((operation, key))
                if best is None or seconds < best[0]:
                    results[(operation, key)] = (seconds, rss)
                if operation != "backup":
                    delete_namespace(direct, target)
                for leftover in ("raw.zip", "restore", "raw"):
                    path = os.path.join(work, leftover)
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    elif os.path.exists(path) and operation != "backup":
                        os.remove(path)
    finally:
        for name in databases:
            drop_attachment_database(name)
        remove_container(direct)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'':<11}{'suite s':>9}{'raw s':>8}{'MB/s':>8}{'suite/raw':>11}{'peak RSS':>10}")
    worst = {}
    for operation in ("backup", "restore", "duplicate"):
        suite, raw = results[(operation, "suite")], results[(operation, "raw")]
        ratio = raw[0] / suite[0]
        worst[operation] = (ratio, suite[1])
        print(
            f"{operation:<11}{suite[0]:>9.2f}{raw[0]:>8.2f}{total_mb / suite[0]:>8.1f}"
            f"{ratio:>10.2f}x{suite[1]:>8.0f}MB  (raw's peak RSS {raw[1]:.0f} MB)"
        )
    met = all(worst[op][0] >= GOAL for op in ("backup", "restore")) and all(
        rss < RSS_GOAL_MB for _r, rss in worst.values()
    )
    print(
        f"\nbackup {worst['backup'][0]:.2f}x, restore {worst['restore'][0]:.2f}x raw"
        f" (goal >= {GOAL}x); duplicate {worst['duplicate'][0]:.2f}x raw copies;"
        f" peak RSS of the suite's phases <= {max(r for _x, r in worst.values()):.0f} MB"
        f" (goal < {RSS_GOAL_MB} MB) -> {'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
