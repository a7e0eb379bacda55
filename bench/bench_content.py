"""``/web/content`` of attachments in the object store against the local filestore.

One real Odoo 18 (prefork, 2 workers, ``attachment_s3``) on a fresh database; 4 KB and
1 MB attachments are created once in the filestore (``ir_attachment.location=file``)
and once in the store (``s3``, the harness's Swift through its S3 API). Requests
alternate between the two kinds so that both see the same machine:

- ``ODOO_ATTACHMENT_SERVING=stream``: time of a whole download, store / filestore
  (goal <= 1.3x);
- ``ODOO_ATTACHMENT_SERVING=redirect``: the worker's time for the 302, from the access
  line of each request (``logging_json``'s ``duration_ms``, in microseconds, where
  Odoo's own line rounds to milliseconds; goal <= 5 ms), beside the same figure for the
  filestore answer; once with the process's cache of signed URLs (the default:
  a URL is reused for half its lifetime) and once without (``ODOO_ATTACHMENT_URL_CACHE=0``:
  every 302 signs a new URL).

Two more columns explain the figures: a raw GET of the same object with the same client
(the store's own latency, which stream mode adds to Odoo's), and the worker time of
each answer.

    ./dev bench content [--requests 300] [--cache 64M|0]

The process's cache of small objects (``ODOO_ATTACHMENT_CACHE_SIZE``, on by default)
serves repeated downloads from memory; ``--cache 0`` measures every request reading
the store.
"""

import argparse
import base64
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid

import requests
from common import (
    ROOT,
    call_kw,
    create_database,
    drop_database,
    login,
    odoo_or_exit,
    remove_container,
    services_env,
    start_odoo,
    store_environ,
)

from stateless_odoo.storage import build_store

STREAM_GOAL = 1.3
REDIRECT_GOAL_MS = 5.0
SIZES = {"4K": 4 * 1024, "1M": 1024 * 1024}


def rpc(url, sid, model, method, *args, **kwargs):
    answer = call_kw(url, sid, {"model": model, "method": method, "args": list(args),
                                "kwargs": kwargs}, 120)  # fmt: skip
    if "error" in answer:
        sys.exit(f"bench: {model}.{method}: {answer['error']['data']['message']}")
    return answer["result"]


def create_attachments(url, sid):
    made = {}
    for location in ("file", "s3"):
        rpc(url, sid, "ir.config_parameter", "set_param", "ir_attachment.location", location)
        for name, size in SIZES.items():
            data = base64.b64encode(os.urandom(size)).decode()
            made[(location, name)] = rpc(
                url, sid, "ir.attachment", "create",
                {"name": f"bench-{name}.bin", "datas": data,
                 "mimetype": "application/octet-stream"},
            )  # fmt: skip
    rows = rpc(url, sid, "ir.attachment", "read", list(made.values()), ["store_fname"])
    # Odoo's own redirect (a URL attachment answers 301): the floor of a redirect
    made[("url", "-")] = rpc(
        url, sid, "ir.attachment", "create",
        {"name": "bench-url", "type": "url", "url": "https://example.com/bench.bin"},
    )  # fmt: skip
    kinds = {row["id"]: row["store_fname"] for row in rows}
    for (location, _name), att_id in made.items():
        if location == "url":
            continue
        assert (location == "s3") == kinds[att_id].startswith("s3://"), kinds[att_id]
    return made


def timed_gets(url, sid, ids, count, *, redirects):
    http = requests.Session()
    http.cookies.set("session_id", sid)
    times = {att_id: [] for att_id in ids}
    for _ in range(count):
        for att_id in ids:  # alternate: both kinds see the same machine
            started = time.perf_counter()
            res = http.get(f"{url}/web/content/{att_id}", allow_redirects=redirects, timeout=30)
            elapsed = time.perf_counter() - started
            expected = (200,) if redirects else (301, 302)
            if res.status_code not in expected:
                sys.exit(f"bench: /web/content/{att_id} answered {res.status_code}")
            times[att_id].append(elapsed * 1000)
    return {att_id: statistics.median(values) for att_id, values in times.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--cache",
        default="64M",
        help="ODOO_ATTACHMENT_CACHE_SIZE of the server (0: every request reads the store)",
    )
    args = parser.parse_args()
    python, version, odoo_root = odoo_or_exit()
    services = services_env()
    db = f"bench_content_{os.getpid()}"
    bucket = f"bench-content-{uuid.uuid4().hex[:8]}"
    store_env = store_environ("s3", bucket, services=services)
    store = build_store("s3", store_env)
    store.ensure_container()
    base_env = {**os.environ, "PYTHONPATH": str(ROOT), **store_env}
    print(f"bench: Odoo {version}, database {db}: installing attachment_s3 ...", flush=True)
    data_dir = tempfile.mkdtemp(prefix="bench-content-")
    results, worker = {}, {}
    try:
        create_database(python, odoo_root, db, base_env, "attachment_s3", "--data-dir", data_dir)
        made = None
        for mode in ("stream", "redirect", "redirect-uncached"):
            env = {**base_env, "ODOO_ATTACHMENT_SERVING": mode.partition("-")[0],
                   "ODOO_ATTACHMENT_CACHE_SIZE": args.cache,
                   "ODOO_LOGGING_JSON": "1"}  # fmt: skip
            if mode == "redirect-uncached":
                env["ODOO_ATTACHMENT_URL_CACHE"] = "0"
            logfile = os.path.join(data_dir, f"odoo-{mode}.log")
            proc, url = start_odoo(
                python, odoo_root, db, env, data_dir, load="base,web,logging_json",
                log=("--log-level", "info", "--logfile", logfile),
            )  # fmt: skip
            try:
                sid = login(url, db)
                made = made or create_attachments(url, sid)
                if mode == "stream":  # the others: the 302s of the stored objects
                    ids = [att_id for (kind, _), att_id in made.items() if kind != "url"]
                    timed_gets(url, sid, ids, 20, redirects=True)  # warm up
                    results[mode] = timed_gets(url, sid, ids, args.requests, redirects=True)
                else:
                    ids = [made[("s3", name)] for name in SIZES] + [made[("url", "-")]]
                    timed_gets(url, sid, ids, 20, redirects=False)
                    results[mode] = timed_gets(url, sid, ids, args.requests, redirects=False)
            finally:
                proc.terminate()
                proc.wait(30)
            worker[mode] = worker_times(logfile)
        raw = raw_gets(store, made, args.requests)
    finally:
        drop_database(db)
        remove_container(store)

    print(f"\n/web/content, prefork 2 workers, one client, {args.requests} requests each,"
          " median ms (client side; worker: the JSON access line's duration_ms);"
          f" object cache {args.cache}")  # fmt: skip
    print(
        f"{'size':<6}{'filestore':>10}{'worker':>8}{'stream':>8}{'worker':>8}{'ratio':>7}"
        f"{'raw GET':>9}{'302':>7}{'worker':>8}{'no URL cache':>14}{'worker':>8}"
    )
    worst_ratio, worst_redirect, worst_uncached = 0.0, 0.0, 0.0
    for name in SIZES:
        file_id, store_id = made[("file", name)], made[("s3", name)]
        file_ms, store_ms = results["stream"][file_id], results["stream"][store_id]
        redirect_ms = results["redirect"][store_id]
        ratio = store_ms / file_ms
        worst_ratio = max(worst_ratio, ratio)
        worst_redirect = max(worst_redirect, worker["redirect"][store_id])
        worst_uncached = max(worst_uncached, worker["redirect-uncached"][store_id])
        print(
            f"{name:<6}{file_ms:>10.2f}{worker['stream'][file_id]:>8.2f}{store_ms:>8.2f}"
            f"{worker['stream'][store_id]:>8.2f}{ratio:>7.2f}{raw[store_id]:>9.2f}"
            f"{redirect_ms:>7.2f}{worker['redirect'][store_id]:>8.2f}"
            f"{results['redirect-uncached'][store_id]:>14.2f}"
            f"{worker['redirect-uncached'][store_id]:>8.2f}"
        )
    floor = worker["redirect"][made[("url", "-")]]
    print(
        f"Odoo's own redirect (301 of a URL attachment, same route and access check):"
        f" worker {floor:.2f} ms, client {results['redirect'][made[('url', '-')]]:.2f} ms"
    )
    verdict = "met" if worst_redirect <= REDIRECT_GOAL_MS else "NOT met"
    print(
        f"stream: worst store/filestore {worst_ratio:.2f} (goal <= {STREAM_GOAL});"
        f" redirect: worst worker time {worst_redirect:.2f} ms (goal <= {REDIRECT_GOAL_MS} ms)"
        f" -> {verdict}; {worst_uncached:.2f} ms when every 302 signs a new URL;"
        f" the suite's part above Odoo's own redirect: {worst_redirect - floor:+.2f} ms"
    )


def worker_times(logfile):
    """Median worker time in ms per attachment id, from the JSON access lines."""
    pattern = re.compile(r"/web/content/(\d+)$")
    times = {}
    with open(logfile) as log:
        for line in log:
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            match = pattern.match(entry.get("http_path") or "")
            if match and "duration_ms" in entry:
                times.setdefault(int(match[1]), []).append(entry["duration_ms"])
    if not times:
        sys.exit(f"bench: no JSON access line of /web/content in {logfile}")
    return {att_id: statistics.median(values) for att_id, values in times.items()}


def raw_gets(store, made, count):
    """Median time of a GET of each stored object with the same client, no Odoo."""
    by_size = {info.size: info.key for info in store.list()}
    out = {}
    for name, size in SIZES.items():
        times = []
        for _ in range(count):
            started = time.perf_counter()
            store.get_bytes(by_size[size])
            times.append((time.perf_counter() - started) * 1000)
        out[made[("s3", name)]] = statistics.median(times)
    return out


if __name__ == "__main__":
    main()
