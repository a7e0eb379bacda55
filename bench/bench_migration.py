"""Migration of a generated filestore to the object store, against its practical limit.

A filestore of ``--count`` files (default 5,000; sizes from 1 KB to 20 MB, mostly small,
5 % duplicates) and an ``ir_attachment`` table in a throwaway PostgreSQL database are
generated once. Then, each in a process of its own (for its own peak RSS), on a fresh
container and a fresh copy (hard links) of the filestore:

- ``raw``: the distinct files uploaded by a pool of ``--threads`` threads with the same
  client (``store.put``): no database, no checks; the practical limit;
- ``migration``: ``stateless_odoo.attachments.migration.Migration`` (what ``force_storage()`` and
  ``odoo attachment_storage_migrate`` run): batches, checks, commits, local file removal;
- ``one-by-one``: Odoo core's ``force_storage`` loop style: one attachment after the
  other (read, upload, update its row), one transaction.

Goal: migration >= 0.7x raw (attachments/s and MB/s). With ``--delay-ms`` the three run
again with the store behind a forwarder adding that round-trip time (bench/delay_proxy.py:
this kernel has no netem), on ``--delay-count`` files, where parallelism matters most.

    ./dev bench migration                        # 5,000 files, S3 API, then 20 ms RTT
    python bench/bench_migration.py --count 1000 --api swift --delay-ms 0
"""

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from common import (
    drop_attachment_database,
    empty,
    free_port,
    generate,
    make_attachment_database,
    pg_base,
    remove_container,
    reset_rows,
    run_phase_process,
    store_environ,
)

from stateless_odoo.attachments.migration import Migration
from stateless_odoo.attachments.stores import AttachmentStores
from stateless_odoo.storage import build_store
from stateless_odoo.testing.pg import PgCursor

GOAL = 0.7
DB_NAME = "bench"
# -- the phases (each in a process of its own) -------------------------------------------


def phase(args):
    """Run one phase; print a JSON line with its seconds."""
    env = json.loads(os.environ["BENCH_STORE_ENV"])
    stores = AttachmentStores(args.api, DB_NAME, env)
    dsn = f"{pg_base()} dbname={args.db}"
    started = time.monotonic()
    if args.phase == "raw":
        with PgCursor(dsn) as cr:
            cr.execute("SELECT DISTINCT store_fname, checksum, file_size FROM ir_attachment")
            files = cr.fetchall()
        store = stores.write_store

        def upload(item):
            fname, checksum, size = item
            path = os.path.join(args.filestore, fname)
            key = stores.place(checksum).key
            if size <= 4 * 1024 * 1024:
                with open(path, "rb") as src:
                    store.put(key, src.read())
            else:
                with open(path, "rb") as src:
                    store.put(key, src, size=size)

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(upload, files))
    elif args.phase == "migration":
        report = Migration(
            functools.partial(PgCursor, dsn),
            target="store",
            stores=stores,
            filestore=args.filestore,
            batch_size=500,
            threads=args.threads,
        ).run()
        assert report.ok, report.skipped[:3]
    else:  # one-by-one, as Odoo core's force_storage loop
        cr = PgCursor(dsn)
        cr.execute("SELECT id, store_fname, checksum FROM ir_attachment ORDER BY id")
        for att_id, fname, checksum in cr.fetchall():
            with open(os.path.join(args.filestore, fname), "rb") as src:
                data = src.read()
            store, key, url = stores.place(checksum)
            store.put(key, data)
            cr.execute("UPDATE ir_attachment SET store_fname = %s WHERE id = %s", (url, att_id))
        cr.commit()
        cr.close()
    print(json.dumps({"seconds": time.monotonic() - started}))


def run_phase(name, args, dbname, filestore, store_env):
    cmd = [
        sys.executable, __file__, "--phase", name, "--db", dbname, "--filestore", filestore,
        "--api", args.api, "--threads", str(args.threads),
    ]  # fmt: skip
    return run_phase_process(f"bench migration: phase {name}", cmd, json.dumps(store_env))


def fresh_container(api, store_env):
    store = build_store(api, store_env)
    store.ensure_container()
    return store


def run_set(args, rows, source, label, endpoint=None):
    distinct = {r[0]: r[2] for r in rows}
    total_mb = sum(distinct.values()) / 1e6
    dbname = make_attachment_database(rows)
    container = f"bench-{uuid.uuid4().hex[:8]}"
    store_env = store_environ(args.api, container, endpoint)
    direct = fresh_container(args.api, store_environ(args.api, container))
    results = {}
    try:
        # raw first and last, the faster counts: the baseline is never handicapped
        for name in ("raw", "migration", "one-by-one", "raw again"):
            work = tempfile.mkdtemp(prefix="bench-filestore-")
            shutil.rmtree(work)
            shutil.copytree(source, work, copy_function=os.link)
            reset_rows(dbname, rows)
            try:
                results[name] = run_phase(name.split()[0], args, dbname, work, store_env)
            finally:
                shutil.rmtree(work, ignore_errors=True)
                empty(direct)
    finally:
        drop_attachment_database(dbname)
        remove_container(direct)
    print(
        f"\n{label}: {len(rows)} attachments, {len(distinct)} files, {total_mb:.0f} MB,"
        f" {args.api} API, {args.threads} threads"
    )
    print(f"{'':<12}{'seconds':>9}{'att/s':>9}{'MB/s':>8}{'peak RSS':>10}{'vs raw':>8}")
    again = results.pop("raw again")
    results["raw"] = min(results["raw"], again)
    raw_seconds = results["raw"][0]
    for name, (seconds, rss) in results.items():
        ratio = raw_seconds / seconds
        print(
            f"{name:<12}{seconds:>9.2f}{len(rows) / seconds:>9.1f}"
            f"{total_mb / seconds:>8.1f}{rss:>8.0f}MB{ratio:>8.2f}"
        )
    mig = results["migration"][0]
    print(
        f"migration vs raw: {raw_seconds / mig:.2f}x (goal >= {GOAL}x);"
        f" migration vs one-by-one: {results['one-by-one'][0] / mig:.1f}x faster"
    )
    return raw_seconds / mig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--delay-count", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="round trip; 0: none")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--api", choices=("s3", "swift"), default="s3")
    parser.add_argument("--phase", choices=("raw", "migration", "one-by-one"))
    parser.add_argument("--db")
    parser.add_argument("--filestore")
    args = parser.parse_args()
    if args.phase:
        return phase(args)
    source = tempfile.mkdtemp(prefix="bench-source-")
    try:
        started = time.monotonic()
        rows = generate(source, args.count)
        print(f"generated {len(rows)} attachments in {time.monotonic() - started:.0f} s")
        ratios = [run_set(args, rows, source, "local store")]
        if args.delay_ms > 0:
            port = free_port()
            target = str(urlsplit(os.environ["TEST_S3_ENDPOINT"]).port)
            proxy = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("delay_proxy.py")),
                 str(port), "127.0.0.1", target, str(args.delay_ms / 2)]
            )  # fmt: skip
            time.sleep(0.5)
            try:
                endpoint = f"http://127.0.0.1:{port}"
                if args.api == "swift":
                    endpoint += "/auth/v1.0"
                subset = rows[: args.delay_count]
                ratios.append(
                    run_set(args, subset, source, f"store {args.delay_ms:g} ms away", endpoint)
                )
            finally:
                proxy.kill()
        print(f"\nworst migration/raw ratio: {min(ratios):.2f} (goal >= {GOAL})")
        print(f"peak RSS is per phase process; ru_maxrss {resource.getrusage(0).ru_maxrss} KB here")
    finally:
        shutil.rmtree(source, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
