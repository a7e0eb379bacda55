"""Prometheus multiprocess metrics: forked processes counting, a real HTTP scrape.

Each test runs a small program in a fresh interpreter (``prometheus_client`` reads its
multiprocess directory once per process), which forks worker processes the way Odoo's
prefork server does, serves ``/metrics`` on a loopback port, and is scraped with a real
HTTP client; the exposition is parsed with ``prometheus_client``'s own parser.
"""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from stateless_odoo.errors import ConfigError
from stateless_odoo.observability.prometheus_metrics import PrometheusSettings

PROGRAM = textwrap.dedent(
    """
    import json, os, sys, threading
    from wsgiref.simple_server import make_server, WSGIRequestHandler
    from stateless_odoo.observability import events, observe
    from stateless_odoo.observability.prometheus_metrics import (
        PrometheusMetrics,
        PrometheusSettings,
        prepare_directory,
    )

    workers, per_worker = int(sys.argv[1]), int(sys.argv[2])
    settings = PrometheusSettings.from_env()
    directory = prepare_directory(settings)
    metrics = PrometheusMetrics(settings, directory)
    events.subscribe(metrics.on_event)

    def one_request(status, route_type, button=None):
        info = observe.RequestInfo("r", "GET", "/x")
        info.status, info.duration, info.route_type = status, 0.02, route_type
        info.sql_count, info.sql_time, info.button = 4, 0.003, button
        metrics.on_request(info)

    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a prefork worker
            for i in range(per_worker):
                one_request(200 if i % 2 else 404, "http")
            one_request(200, "json", ("res.partner", "action_archive"))
            events.emit("store", kind="s3", op="put", seconds=0.01, ok=False)
            events.emit("cron", seconds=1.5, ok=True)
            events.emit("migration_run", running=True)  # and the worker dies in it
            events.emit("collection", scope="full", outcome="ok", deleted=2, kept=1, busy=0)
            events.emit("collection", scope="after_delete", outcome="error", deleted=0,
                        kept=0, busy=0)
            events.emit("worker_recycle", reason="memory")
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    if os.environ.get("MARK_DEAD"):
        for pid in pids:
            metrics.mark_dead(pid)
    one_request(200, "http")  # the master process counts too

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass

    server = make_server("127.0.0.1", 0, metrics.endpoint, handler_class=Quiet)
    print(json.dumps({"port": server.server_port, "directory": directory}), flush=True)
    server.handle_request()
    server.handle_request()
    """
)


def run_program(tmp_path, env_extra, workers=2, per_worker=5, read_only=False):
    env = {k: v for k, v in os.environ.items() if "PROMETHEUS" not in k}
    directory = str(tmp_path / "metrics")
    env.update({"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_DIR": directory})
    env.update(env_extra)
    command = [sys.executable, "-c", PROGRAM, str(workers), str(per_worker)]
    if read_only:
        # root writes through file modes: a read-only bind mount in a private mount
        # namespace makes the directory really read-only (EROFS) for the program
        os.makedirs(directory, exist_ok=True)
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", script, directory, *command]
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line, "the program did not start"
    return proc, json.loads(line)


def scraped_twice(tmp_path, env_extra, second_headers=None, **kwargs):
    """Run the program and make the two requests it serves; returns both answers and
    the finished process."""
    proc, started = run_program(tmp_path, env_extra, **kwargs)
    try:
        url = f"http://127.0.0.1:{started['port']}/metrics"
        first = requests.get(url, timeout=10)
        second = requests.get(url, headers=second_headers, timeout=10)
    finally:
        proc.wait(timeout=30)
    return first, second, proc


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            found[key] = sample.value
    return found


def test_counts_from_every_worker_add_up_in_one_scrape(tmp_path):
    response, _second, _proc = scraped_twice(tmp_path, {}, workers=3, per_worker=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response.text)
    requests_total = {
        labels: value
        for (name, labels), value in found.items()
        if name == "odoo_http_requests_total"
    }
    # 3 workers x (2 x 200 + 3 x 404 + 1 json) + 1 in the master
    assert requests_total[(("code", "200"), ("type", "http"))] == 3 * 2 + 1
    assert requests_total[(("code", "404"), ("type", "http"))] == 3 * 3
    assert requests_total[(("code", "200"), ("type", "json"))] == 3
    assert found[("odoo_http_request_duration_seconds_count", (("type", "http"),))] == 16
    assert found[("odoo_http_request_sql_queries_sum", (("type", "http"),))] == 16 * 4
    button = (("method", "action_archive"), ("model", "res.partner"))
    assert found[("odoo_http_button_duration_seconds_count", button)] == 3
    store = (("kind", "s3"), ("op", "put"), ("outcome", "error"))
    assert found[("odoo_object_store_operations_total", store)] == 3
    assert found[("odoo_cron_runs_total", (("outcome", "ok"),))] == 3
    # what a team pages on: a stuck migration or collection, workers recycled
    assert found[("odoo_attachment_migration_running", ())] == 3  # not reaped here
    assert found[("odoo_attachment_migration_progress_timestamp_seconds", ())] > 1.7e9
    full_ok = (("outcome", "ok"), ("scope", "full"))
    assert found[("odoo_attachment_gc_runs_total", full_ok)] == 3
    failed = (("outcome", "error"), ("scope", "after_delete"))
    assert found[("odoo_attachment_gc_runs_total", failed)] == 3
    assert found[("odoo_attachment_gc_objects_total", (("what", "deleted"),))] == 6
    assert found[("odoo_attachment_gc_objects_total", (("what", "kept"),))] == 3
    success = ("odoo_attachment_gc_last_success_timestamp_seconds", (("scope", "full"),))
    assert found[success] > 1.7e9
    assert (
        "odoo_attachment_gc_last_success_timestamp_seconds",
        (("scope", "after_delete"),),
    ) not in found
    assert found[("odoo_worker_recycles_total", (("reason", "memory"),))] == 3
    # histograms, not summaries
    assert (
        "odoo_http_request_duration_seconds_bucket",
        (("le", "0.025"), ("type", "http")),
    ) in found


def test_reaped_workers_leave_the_live_gauges_but_not_the_counts(tmp_path):
    response, _second, _proc = scraped_twice(tmp_path, {"MARK_DEAD": "1"}, workers=2, per_worker=2)
    found = samples(response.text)
    assert found[("odoo_processes", ())] == 1  # only the master is alive
    # a reaped process runs no migration any more; what it counted stays
    assert found.get(("odoo_attachment_migration_running", ()), 0) == 0
    assert found[("odoo_worker_recycles_total", (("reason", "memory"),))] == 2
    assert found[("odoo_http_requests_total", (("code", "200"), ("type", "http")))] == 2 + 1


def test_a_new_master_starts_from_zero(tmp_path):
    for _ in range(2):
        response, _second, _proc = scraped_twice(tmp_path, {}, workers=1, per_worker=2)
        found = samples(response.text)
        assert found[("odoo_http_requests_total", (("code", "200"), ("type", "http")))] == 2


def test_scrape_needs_the_token_and_an_allowed_address(tmp_path):
    token = "s3cr3t-token-of-32-characters-xx"
    refused, allowed, _proc = scraped_twice(
        tmp_path,
        {"ODOO_PROMETHEUS_TOKEN": token},
        second_headers={"Authorization": f"Bearer {token}"},
        workers=1,
        per_worker=1,
    )
    assert refused.status_code == 403 and "ODOO_PROMETHEUS_TOKEN" in refused.text
    assert token not in refused.text
    assert allowed.status_code == 200 and "odoo_http_requests_total" in allowed.text


def test_read_only_directory_counts_nothing_and_says_so(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    as_root = os.geteuid() == 0
    if not as_root:
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        response, _second, proc = scraped_twice(
            tmp_path, {}, workers=1, per_worker=1, read_only=as_root
        )
    finally:
        directory.chmod(stat.S_IRWXU)
    assert proc.returncode == 0  # the workers' requests did not fail
    assert response.status_code == 503 and "ODOO_PROMETHEUS_DIR" in response.text


def test_settings_access_rules_and_errors():
    default = PrometheusSettings.from_env({"ODOO_PROMETHEUS": "1"})
    assert default.allows("127.0.0.1", None) == (True, None)
    assert default.allows("::1", None)[0]
    assert not default.allows("10.1.2.3", None)[0]
    # through a proxy on the same host: the proxy's client must be allowed too
    assert not default.allows("127.0.0.1", None, "203.0.113.9")[0]
    assert not default.allows("127.0.0.1", None, "127.0.0.1, 203.0.113.9")[0]
    assert default.allows("127.0.0.1", None, "203.0.113.9, 127.0.0.1")[0]
    # a forged header never lets a client in that its own address keeps out
    assert not default.allows("203.0.113.9", None, "127.0.0.1")[0]
    assert not default.allows("127.0.0.1", None, "not an address")[0]
    token = "t" * 20
    with_token = PrometheusSettings.from_env(
        {"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_TOKEN": token}
    )
    assert with_token.allows("10.1.2.3", f"Bearer {token}")[0]
    assert not with_token.allows("10.1.2.3", "Bearer wrong")[0]
    assert token not in repr(with_token)
    both = PrometheusSettings.from_env(
        {
            "ODOO_PROMETHEUS": "1",
            "ODOO_PROMETHEUS_TOKEN": token,
            "ODOO_PROMETHEUS_ALLOW": "10.0.0.0/8",
        }
    )
    assert both.allows("10.1.2.3", f"Bearer {token}")[0]
    assert not both.allows("192.168.1.1", f"Bearer {token}")[0]
    anyone = PrometheusSettings.from_env({"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_ALLOW": "*"})
    assert anyone.allows("8.8.8.8", None)[0]
    with pytest.raises(ConfigError, match="ODOO_PROMETHEUS_ALLOW"):
        PrometheusSettings.from_env({"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_ALLOW": "10.0.0/x"})
    with pytest.raises(ConfigError, match="ODOO_PROMETHEUS_TOKEN"):
        PrometheusSettings.from_env({"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="ODOO_PROMETHEUS_PATH"):
        PrometheusSettings.from_env({"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_PATH": "metrics"})


def test_a_temporary_directory_is_removed_when_its_owner_exits():
    # without ODOO_PROMETHEUS_DIR the master makes a temporary directory; a worker
    # that exits (sys.exit runs atexit handlers) leaves it, the master removes it
    program = textwrap.dedent(
        """
        import os, sys
        from stateless_odoo.observability.prometheus_metrics import (
            PrometheusSettings,
            prepare_directory,
        )
        directory = prepare_directory(PrometheusSettings.from_env({}), environ={})
        print(directory, flush=True)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        os.waitpid(pid, 0)
        print(os.path.isdir(directory), flush=True)
        """
    )
    env = {k: v for k, v in os.environ.items() if "PROMETHEUS" not in k}
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    directory, after_worker = out
    assert after_worker == "True"
    assert not os.path.exists(directory)
