"""Put/get throughput of the suite's stores against the raw clients, same server, same run.

For 4 KB, 256 KB and 4 MB objects, sequentially and with a thread pool, through the S3
API (boto3) and the Swift API (swiftclient) of the Swift that scripts/services.sh runs.
The raw baseline uses the same library with the same settings, so the ratio is the cost
of the suite's layer (typed errors, per-process clients, length checks). Rounds of
raw and store alternate and the median round counts, so that a noisy machine still
compares like with like.

    ./dev bench storage                       # all of it
    ./dev bench storage --quick               # fewer objects, one round
    ./dev bench storage --api s3 --size 4M
"""

import argparse
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from common import remove_container, store_environ

from stateless_odoo.storage import build_store

SIZES = {"4K": 4 * 1024, "256K": 256 * 1024, "4M": 4 * 1024 * 1024}
COUNTS = {"4K": 300, "256K": 120, "4M": 24}
THREADS = 8
GOAL = 0.90


class RawS3:
    """boto3 as an application would use it: one client, put_object/get_object."""

    def __init__(self, store):
        # same library, same configuration, same process-wide client as the store
        self.client = store.client
        self.bucket = store.container

    def put(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


class RawSwift:
    """swiftclient as an application would use it: one Connection per thread."""

    def __init__(self, store):
        import threading

        from swiftclient import client

        self.url, self.token = store.connection.get_auth()
        self.container = store.container
        self.local = threading.local()
        self.client = client

    def conn(self):
        if not hasattr(self.local, "conn"):
            self.local.conn = self.client.Connection(
                preauthurl=self.url, preauthtoken=self.token, retries=2
            )
        return self.local.conn

    def put(self, key, data):
        self.conn().put_object(self.container, key, data)

    def get(self, key):
        return self.conn().get_object(self.container, key)[1]


def timed(fn, keys, threads):
    started = time.perf_counter()
    if threads == 1:
        for key in keys:
            fn(key)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fn, keys))
    return time.perf_counter() - started


def run_case(api, store, raw, size_name, threads, rounds, quick):
    size = SIZES[size_name]
    count = COUNTS[size_name] // (4 if quick else 1)
    data = os.urandom(size)
    results = {("raw", "put"): [], ("store", "put"): [], ("raw", "get"): [], ("store", "get"): []}
    for round_ in range(rounds):
        # alternate who goes first, round after round
        order = ["raw", "store"] if round_ % 2 == 0 else ["store", "raw"]
        for who in order:
            prefix = f"bench/{who}/{size_name}/{uuid.uuid4().hex[:6]}/"
            keys = [f"{prefix}{i}" for i in range(count)]
            if who == "raw":
                put = lambda k: raw.put(k, data)  # noqa: E731
                get = raw.get
            else:
                put = lambda k: store.put(k, data)  # noqa: E731
                get = store.get_bytes
            results[(who, "put")].append(timed(put, keys, threads))
            results[(who, "get")].append(timed(get, keys, threads))
            store.delete_many(keys)
    rows = []
    for op in ("put", "get"):
        raw_s = statistics.median(results[("raw", op)])
        store_s = statistics.median(results[("store", op)])
        rows.append(
            {
                "api": api,
                "size": size_name,
                "mode": "sequential" if threads == 1 else f"{threads} threads",
                "op": op,
                "raw_ops": count / raw_s,
                "store_ops": count / store_s,
                "raw_mbs": count * size / raw_s / 1e6,
                "store_mbs": count * size / store_s / 1e6,
                "ratio": raw_s / store_s,
            }
        )
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", choices=["s3", "swift"], action="append")
    parser.add_argument("--size", choices=list(SIZES), action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    apis = args.api or ["s3", "swift"]
    sizes = args.size or list(SIZES)
    rounds = 1 if args.quick else args.rounds

    header = (
        f"{'api':<6}{'size':<6}{'mode':<12}{'op':<5}"
        f"{'raw obj/s':>11}{'store obj/s':>13}{'raw MB/s':>10}{'store MB/s':>12}{'ratio':>7}"
    )
    print(f"object store throughput, median of {rounds} round(s); ratio = store / raw")
    print(header)
    print("-" * len(header))
    rows = []
    for api in apis:
        container = f"bench-{api}-{uuid.uuid4().hex[:8]}"
        store = build_store(api, store_environ(api, container))
        store.ensure_container()
        raw = RawS3(store) if api == "s3" else RawSwift(store)
        try:
            for size_name in sizes:
                for threads in (1, THREADS):
                    for row in run_case(api, store, raw, size_name, threads, rounds, args.quick):
                        rows.append(row)
                        print(
                            f"{row['api']:<6}{row['size']:<6}{row['mode']:<12}{row['op']:<5}"
                            f"{row['raw_ops']:>11.1f}{row['store_ops']:>13.1f}"
                            f"{row['raw_mbs']:>10.1f}{row['store_mbs']:>12.1f}"
                            f"{row['ratio']:>7.2f}",
                            flush=True,
                        )
        finally:
            remove_container(store)
    worst = min(rows, key=lambda r: r["ratio"])
    geo = statistics.geometric_mean(r["ratio"] for r in rows)
    print("-" * len(header))
    print(
        f"geometric mean ratio {geo:.2f}; worst {worst['ratio']:.2f}"
        f" ({worst['api']} {worst['size']} {worst['mode']} {worst['op']});"
        f" goal: every ratio >= {GOAL:.2f}"
        f" -> {'met' if worst['ratio'] >= GOAL else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
