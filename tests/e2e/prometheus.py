"""A real Prometheus server (Debian's ``prometheus``) scraping the e2e platform.

    with Stack(workdir) as stack, PrometheusServer(stack) as prometheus:
        ...                                  # the user's day
        print(prometheus.check_dashboard())  # AssertionError naming what failed

The server listens on a free loopback port, keeps its data in ``<workdir>/prometheus``
and logs to ``<workdir>/prometheus.log``. Its configuration (written there) scrapes every
Odoo process of the stack directly (``/metrics`` on its HTTP port, not through nginx:
deployment 7.2) every second with the stack's token read from a file, as the example
``monitoring_prometheus/prometheus/prometheus.yml`` does, and evaluates the suite's alert
rules (``alerts.yml``) every second.

``check_dashboard()`` waits until both targets are up and scraped again, then runs every
query of the Grafana dashboard through ``/api/v1/query`` with its variables replaced
(``$job``, ``$instance``: both targets; ``$__rate_interval``, ``$__range``: the time
since the server started, so that each query looks at the whole day). Each must return
at least one series, except the few of ``MAY_BE_EMPTY``, whose metric only appears
after an event that a healthy day does not have (the migration's only while no process
logged a migration that moved or skipped something), and the cron runs while
monitoring_prometheus is not installed in the database (with it installed, the cron
workers are woken first, so that the jobs due run). Series that hold only NaN (a
quantile whose buckets never grew in the window) are named in the step's line. The
dashboard's variables must list the job and both targets; every alert rule must evaluate
without error and none may fire after a healthy day.

A missing ``prometheus`` (``scripts/services.sh up``, which the stack runs, installs it)
or a server that does not start raises the stack's ``StackError``.
"""

import contextlib
import datetime
import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring_prometheus" / "grafana" / "odoo-stateless.json"
ALERTS = ROOT / "monitoring_prometheus" / "prometheus" / "alerts.yml"
JOB = "odoo"
#: a query variable of the dashboard
LABEL_VALUES = re.compile(r"label_values\((.+),\s*([a-zA-Z_]\w*)\s*\)")
INTERVAL = 1  # seconds between scrapes and between rule evaluations

#: (panel, refId) of the dashboard's queries that may return nothing after the day, and
#: why: their series are made by an event that a healthy day does not have
_NO_MIGRATION = (
    "no server process moves an attachment during the day: e2e_day's install writes its"
    " files to the store directly (the migration at the end of its loading finds none to"
    " move) and the setup's migration ran in anthem, which loads no monitoring addon"
)
MAY_BE_EMPTY = {
    ("5xx error ratio over time", "B"): "no 5xx in a healthy day: the per-type ratio has"
    " no numerator (the overall ratio, A, ends with `or vector(0)`)",
    ("Object store errors", "A"): "no store operation fails in a healthy day (no series"
    ' with outcome="error")',
    ("Session store errors", "A"): "no Redis operation fails in a healthy day",
    ("Attachments moved", "A"): _NO_MIGRATION,
    ("Bytes migrated", "A"): _NO_MIGRATION,
    ("Attachments skipped", "A"): _NO_MIGRATION,
}
#: while monitoring_prometheus is not installed in the database, no cron run is counted
#: (deployment 7.2): the e2e database installs cloud_platform and the store's addon only
#: (with it installed, run_crons() makes the jobs run). The unlabelled cron duration
#: histogram has series, of zeros, in any case.
CRON_QUERIES = {("Cron runs by outcome", "A")}
CRON_REASON = "monitoring_prometheus is not installed in the e2e database: no cron run counted"


def dashboard_queries(path=DASHBOARD):
    """``[(panel title, refId, expression)]`` of every panel's targets (the panels of
    rows included), then ``[("$<name>", None, query)]`` of every query variable."""
    dashboard = json.loads(Path(path).read_text())
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel["title"], target.get("refId"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query.get("query") if isinstance(query, dict) else query
            found.append((f"${variable['name']}", None, query))
    return found


def _timestamp(text):
    """Prometheus' RFC 3339 times (nanoseconds) as epoch seconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


class PrometheusServer:
    """See the module's docstring. Use as a context manager."""

    def __init__(self, stack):
        from stateless_odoo.testing import free_port

        self.stack = stack
        self.directory = stack.workdir / "prometheus"
        self.log_path = stack.workdir / "prometheus.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.started = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def targets(self):
        """{process name: host:port} of the Odoo processes (their ports survive restarts)."""
        return {process.name: f"127.0.0.1:{process.port}" for process in self.stack.processes}

    def start(self):
        from .stack import StackError

        binary = shutil.which("prometheus")
        if binary is None:
            raise StackError(
                "no prometheus on PATH (Debian's prometheus: scripts/services.sh up installs it)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        token = self.directory / "token"
        token.write_text(self.stack.prometheus_token)
        token.chmod(0o600)
        config = {  # JSON is YAML
            "global": {
                "scrape_interval": f"{INTERVAL}s",
                "scrape_timeout": f"{INTERVAL}s",
                "evaluation_interval": f"{INTERVAL}s",
            },
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    "authorization": {"type": "Bearer", "credentials_file": str(token)},
                    "static_configs": [
                        {"targets": [target], "labels": {"process": name}}
                        for name, target in self.targets.items()
                    ],
                }
            ],
        }
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary, f"--config.file={config_path}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
                start_new_session=True,
            )  # fmt: skip
        self.started = time.time()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StackError(f"prometheus exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    self.stack.log(
                        f"e2e: Prometheus on {self.url} scraping"
                        f" {', '.join(self.targets.values())} every {INTERVAL} s"
                    )
                    return self
            time.sleep(0.2)
        self.stop()
        raise StackError(f"prometheus did not get ready on {self.url}:\n{self.tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, count=20):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-count:])

    # ------------------------------------------------------------------ API --
    def api(self, path, params=None):
        """``data`` of ``/api/v1/<path>``; AssertionError with Prometheus' error."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        if body.get("status") != "success":
            raise AssertionError(
                f"{response.status_code} {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr):
        return self.api("query", {"query": expr})["result"]

    def wait_targets_up(self, since, timeout=60):
        """The active targets once every process's is up and was scraped after
        ``since`` (epoch seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.api("targets", {"state": "active"})["activeTargets"]
            fresh = [t for t in active
                     if t["health"] == "up" and _timestamp(t["lastScrape"]) > since]  # fmt: skip
            if len(active) == len(self.targets) == len(fresh):
                return active
            if time.monotonic() > deadline:
                raise AssertionError(
                    "targets not up: "
                    + "; ".join(
                        f"{t['labels'].get('process')} {t['scrapeUrl']}: {t['health']}"
                        f" {t['lastError']}"
                        for t in active
                    )
                )
            time.sleep(0.25)

    # ------------------------------------------------------------ the check --
    def may_be_empty(self):
        """MAY_BE_EMPTY, less what the day did produce, plus the cron queries when cron
        runs cannot be counted."""
        allowed = dict(MAY_BE_EMPTY)
        migrated = [
            line
            for process in self.stack.processes
            for line in process.log_lines()
            if re.search(r"attachment migration to \w+ done: [1-9]", line)
            or re.search(r"attachment migration to \w+ done: .* [1-9]\d* skipped", line)
        ]
        if migrated:  # then the migration panels must show it
            for key in [key for key, reason in allowed.items() if reason is _NO_MIGRATION]:
                del allowed[key]
        if not self.run_crons():
            allowed.update(dict.fromkeys(CRON_QUERIES, CRON_REASON))
        return allowed

    def run_crons(self, timeout=60):
        """Whether cron runs are counted (monitoring_prometheus installed in the
        database); if they are, run the jobs due and wait until Prometheus has one."""
        installed = self.stack.sql(
            "SELECT state FROM ir_module_module WHERE name = 'monitoring_prometheus'"
        )
        if installed != [("installed",)]:
            return False
        # Odoo's cron workers poll every 60 s, longer than the day's processes live
        # between restarts: wake them as ir.cron._trigger() does (NOTIFY on the postgres
        # database); they run the jobs due since the database was made
        self.stack.sql("SELECT pg_notify('cron_trigger', %s)", (self.stack.db,), dbname="postgres")
        deadline = time.monotonic() + timeout
        while not self.query("odoo_cron_runs_total") and time.monotonic() < deadline:
            time.sleep(INTERVAL)
        return True

    def check_dashboard(self):
        allowed = self.may_be_empty()  # first: it may make crons run
        began = time.time()
        active = self.wait_targets_up(since=began + INTERVAL)
        seconds = math.ceil(time.time() - self.started) + 5
        instances = sorted(self.targets.values())
        variables = {
            "__rate_interval": f"{seconds}s",
            "__range": f"{seconds}s",
            "job": JOB,
            # Grafana's multi-value "regex" format: (a|b), each value regex-escaped
            "instance": "(" + "|".join(re.escape(i).replace("\\", "\\\\") for i in instances) + ")",
        }

        def concrete(expr):
            text = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), expr)
            if "$" in text:
                raise AssertionError(f"a variable is left in {text!r}")
            return text

        queries = dashboard_queries()
        stale = set(allowed) - {(title, ref) for title, ref, _expr in queries}
        self.check(not stale, f"MAY_BE_EMPTY names queries the dashboard lacks: {stale}")
        failed, empty, sizes, nan = [], {}, [], []  # empty: {reason: [where]}
        for title, ref, expr in queries:
            where = f"{title!r} {ref}" if ref else f"variable {title}"
            text = expr
            try:
                text = concrete(expr)
                if ref is None:  # label_values(<selector>, <label>)
                    selector, label = LABEL_VALUES.fullmatch(text).groups()
                    values = self.api(
                        f"label/{label}/values", {"match[]": selector, "start": str(self.started)}
                    )
                    expected = [JOB] if label == "job" else instances
                    self.check(set(expected) <= set(values), f"{values}, not {expected}")
                    sizes.append(len(values))
                    continue
                result = self.query(text)
            except Exception as exc:
                failed.append(f"{where}: {type(exc).__name__}: {exc}\n       {text}")
                continue
            if result:
                sizes.append(len(result))
                if all(value == "NaN" for _time, value in (r["value"] for r in result)):
                    nan.append(where)
            elif (title, ref) in allowed:
                empty.setdefault(allowed[title, ref], []).append(where)
            else:
                failed.append(f"{where}: no series\n       {text}")
        self.check(
            not failed,
            f"{len(failed)} of {len(queries)} dashboard queries failed (window {seconds}s):\n     "
            + "\n     ".join(failed),
        )
        rules = [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
        broken = [f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules
                  if r["health"] != "ok"]  # fmt: skip
        self.check(rules and not broken, f"alert rules not evaluated: {broken or 'none loaded'}")
        alerts = self.api("alerts")["alerts"]
        firing = [f"{a['labels']['alertname']} {a['labels'].get('instance', '')}"
                  for a in alerts if a["state"] == "firing"]  # fmt: skip
        pending = [a["labels"]["alertname"] for a in alerts if a["state"] == "pending"]
        self.check(not firing, f"alerts firing after a healthy day: {firing}")
        allowed_empty = "; ".join(f"{', '.join(w)} ({reason})" for reason, w in empty.items())
        up = ", ".join(f"{t['labels']['process']} {t['labels']['instance']}" for t in active)
        return (
            f"targets {up} up (bearer token from a file); {len(queries)} dashboard queries over"
            f" the day's {seconds} s: {len(sizes)} with series ({min(sizes)} to {max(sizes)}"
            f" each), {len(queries) - len(sizes)} empty as allowed: {allowed_empty or '-'};"
            # a quantile is NaN when no increase of its buckets was seen: a series made by
            # its first observation (a button called once per process) shows no increase
            f" NaN only (no increase seen): {', '.join(nan) or '-'};"
            f" {len(rules)} alert rules evaluated without error, none firing"
            f"{f' (pending: {pending})' if pending else ''}"
        )

    @staticmethod
    def check(condition, message):
        if not condition:
            raise AssertionError(message)
