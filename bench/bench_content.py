"""``/web/content`` of attachments in the object store against the local filestore.

One real Odoo 18 (prefork, 2 workers, ``attachment_s3``) on a fresh database; 4 KB and
1 MB attachments are created once in the filestore (``ir_attachment.location=file``)
and once in the store (``s3``, the harness's Swift through its S3 API). Requests
alternate between the two kinds so that both see the same machine:

- ``ODOO_ATTACHMENT_SERVING=stream``: time of a whole download, store / filestore
  (goal <= 1.3x);
- ``ODOO_ATTACHMENT_SERVING=redirect``: the worker's time for the 302, from Odoo's own
  access log (query time + the rest, per request; goal <= 5 ms), beside the same figure
  for the filestore answer.

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
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import odoo_tier  # noqa: E402
from bench_sessions import call_kw, login, odoo_command, start_odoo  # noqa: E402

from stateless_odoo.storage import build_store  # noqa: E402

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
    kinds = {row["id"]: row["store_fname"] for row in rows}
    for (location, _name), att_id in made.items():
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
            expected = 200 if redirects else 302
            if res.status_code != expected:
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
    python, found = odoo_tier.find_odoo()
    if python is None:
        sys.exit(f"bench: {found}")
    _major, version, odoo_root = found
    odoo_tier.ensure_core_dependencies(python)
    services = odoo_tier.services_env()
    db = f"bench_content_{os.getpid()}"
    bucket = f"bench-content-{uuid.uuid4().hex[:8]}"
    store_env = {
        "AWS_HOST": services["TEST_S3_ENDPOINT"],
        "AWS_REGION": services["TEST_S3_REGION"],
        "AWS_ACCESS_KEY_ID": services["TEST_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": services["TEST_S3_SECRET_KEY"],
        "AWS_BUCKETNAME": bucket,
    }
    store = build_store("s3", store_env)
    store.ensure_container()
    base_env = {**os.environ, "PYTHONPATH": str(ROOT), **store_env}
    print(f"bench: Odoo {version}, database {db}: installing attachment_s3 ...", flush=True)
    data_dir = tempfile.mkdtemp(prefix="bench-content-")
    results, worker = {}, {}
    try:
        subprocess.run(
            odoo_command(python, odoo_root, db, "-i", "attachment_s3", "--without-demo", "all",
                         "--stop-after-init", "--log-level", "warn", "--data-dir", data_dir),
            env=base_env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        made = None
        for mode in ("stream", "redirect"):
            env = {**base_env, "ODOO_ATTACHMENT_SERVING": mode,
                   "ODOO_ATTACHMENT_CACHE_SIZE": args.cache}  # fmt: skip
            logfile = os.path.join(data_dir, f"odoo-{mode}.log")
            proc, url = start_odoo(
                python, odoo_root, db, env, data_dir, load="base,web",
                log=("--log-level", "info", "--logfile", logfile),
            )  # fmt: skip
            try:
                sid = login(url, db)
                made = made or create_attachments(url, sid)
                if mode == "stream":
                    ids = list(made.values())
                    timed_gets(url, sid, ids, 20, redirects=True)  # warm up
                    results[mode] = timed_gets(url, sid, ids, args.requests, redirects=True)
                else:
                    ids = [made[("s3", name)] for name in SIZES]
                    timed_gets(url, sid, ids, 20, redirects=False)
                    results[mode] = timed_gets(url, sid, ids, args.requests, redirects=False)
            finally:
                proc.terminate()
                proc.wait(30)
            worker[mode] = worker_times(logfile)
        raw = raw_gets(store, made, args.requests)
    finally:
        subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U",
                        os.environ.get("PGUSER") or odoo_tier.getpass.getuser(), db],
                       check=False)  # fmt: skip
        store.delete_many([info.key for info in store.list()])
        store.client.delete_bucket(Bucket=bucket)

    print(f"\n/web/content, prefork 2 workers, one client, {args.requests} requests each,"
          " median ms (client side; worker: Odoo's access log);"
          f" object cache {args.cache}")  # fmt: skip
    print(
        f"{'size':<6}{'filestore':>10}{'worker':>8}{'stream':>8}{'worker':>8}{'ratio':>7}"
        f"{'raw GET':>9}{'302':>7}{'worker':>8}"
    )
    worst_ratio, worst_redirect = 0.0, 0.0
    for name in SIZES:
        file_id, store_id = made[("file", name)], made[("s3", name)]
        file_ms, store_ms = results["stream"][file_id], results["stream"][store_id]
        redirect_ms = results["redirect"][store_id]
        ratio = store_ms / file_ms
        worst_ratio = max(worst_ratio, ratio)
        worst_redirect = max(worst_redirect, worker["redirect"][store_id])
        print(
            f"{name:<6}{file_ms:>10.2f}{worker['stream'][file_id]:>8.2f}{store_ms:>8.2f}"
            f"{worker['stream'][store_id]:>8.2f}{ratio:>7.2f}{raw[store_id]:>9.2f}"
            f"{redirect_ms:>7.2f}{worker['redirect'][store_id]:>8.2f}"
        )
    print(
        f"stream: worst store/filestore {worst_ratio:.2f} (goal <= {STREAM_GOAL});"
        f" redirect: worst worker time {worst_redirect:.2f} ms (goal <= {REDIRECT_GOAL_MS} ms)"
    )


def worker_times(logfile):
    """Median worker time per attachment id, from the werkzeug lines of Odoo's log."""
    pattern = re.compile(r'"GET /web/content/(\d+) HTTP/1.1" (\d+) - \d+ ([\d.]+) ([\d.]+)')
    times = {}
    with open(logfile) as log:
        for line in log:
            match = pattern.search(line)
            if match:
                att_id = int(match[1])
                times.setdefault(att_id, []).append((float(match[3]) + float(match[4])) * 1000)
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
