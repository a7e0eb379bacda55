"""The Prometheus files of monitoring_prometheus: alert rules, their tests, the example
configuration, and the metric names of the rules and of the Grafana dashboard.

- ``promtool check rules`` and ``promtool test rules`` (Debian's ``prometheus`` package,
  installed by ``scripts/services.sh up`` when missing) on ``alerts.yml`` and
  ``alerts_test.yml``; ``promtool check config`` on the example ``prometheus.yml`` (its
  token file pointed at a temporary one);
- every alert has a ``for:``, a severity and a summary and description, and every
  alert of ``alerts.yml`` is exercised by ``alerts_test.yml``;
- every metric name in the rules' and the dashboard's PromQL, and every label they
  match on or group by, exists in the code's metric definitions (the metrics that
  ``stateless_odoo/observability/prometheus_metrics.py`` creates, with the ``_total``,
  ``_bucket``, ``_sum``, ``_count`` suffixes the exposition adds) or is Prometheus' own
  (``up``, ``job``, ``instance``).

Skipped only when promtool is missing and cannot be installed (not root, or the Debian
package cannot be installed): the skip says why.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT, SERVICES
from .e2e.prometheus import LABEL_VALUES, dashboard_queries

HERE = ROOT / "monitoring_prometheus" / "prometheus"
ALERTS = HERE / "alerts.yml"
ALERTS_TEST = HERE / "alerts_test.yml"
CONFIG = HERE / "prometheus.yml"
DASHBOARD = ROOT / "monitoring_prometheus" / "grafana" / "odoo-stateless.json"

#: series that Prometheus makes itself, and the labels it adds to every scraped series
PROMETHEUS_OWN = {"up": set()}
TARGET_LABELS = {"job", "instance"}
SEVERITIES = {"critical", "warning", "info"}


@pytest.fixture(scope="module")
def promtool():
    """The promtool binary; installed with Debian's prometheus by services.sh when
    missing (its server is never started as a service)."""
    found = shutil.which("promtool")
    if found is None:
        up = subprocess.run([str(SERVICES), "up"], capture_output=True, text=True, check=False)
        found = shutil.which("promtool")
        if found is None:
            pytest.skip(
                "promtool is missing and could not be installed (Debian's prometheus,"
                f" by scripts/services.sh up, exit {up.returncode}):\n{up.stderr[-2000:]}"
            )
    return found


def _promtool(promtool, *args, cwd=HERE):
    done = subprocess.run(
        [promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# ------------------------------------------------------------------------ promtool --


def test_promtool_check_rules(promtool):
    out = _promtool(promtool, "check", "rules", str(ALERTS))
    assert "SUCCESS" in out


def test_promtool_test_rules(promtool):
    out = _promtool(promtool, "test", "rules", str(ALERTS_TEST))
    assert "SUCCESS" in out


def test_example_config(promtool, tmp_path):
    """The example scrape configuration is valid as a whole (rule files included), once
    its token file exists."""
    token = tmp_path / "odoo-metrics.token"
    token.write_text("0123456789abcdef0123\n")
    text = CONFIG.read_text()
    config = yaml.safe_load(text)
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert len(job["static_configs"][0]["targets"]) >= 2, "one target per host: several"
    original = job["authorization"]["credentials_file"]
    assert original in text
    (tmp_path / "prometheus.yml").write_text(text.replace(original, str(token)))
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    out = _promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert f"SUCCESS: {len(_alerts())} rules found" in out, out


# --------------------------------------------------------------- rules' structure --


def _alerts():
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_for_severity_and_annotations():
    alerts = _alerts()
    assert alerts
    for rule in alerts:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no for:"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name


def test_every_alert_is_tested_firing_and_not_firing():
    """alerts_test.yml shows each alert firing at one time and not firing at another."""
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - firing == set(), "never tested firing"
    assert names - quiet == set(), "never tested not firing"


def test_the_alerts_cover_what_a_hosting_team_pages_on():
    used = {name for rule in _alerts() for name in parse_promql(rule["expr"]).metrics}
    for needed in (
        "up",
        "odoo_http_requests_total",
        "odoo_object_store_operations_total",
        "odoo_session_store_operations_total",
        "odoo_process_resident_memory_max_bytes",
    ):
        assert needed in used, needed


# ---------------------------------------------------------------- metric names --

_DEFINITIONS = """
import json
from prometheus_client.metrics import MetricWrapperBase
from stateless_odoo.observability.prometheus_metrics import PrometheusMetrics

metrics = PrometheusMetrics.__new__(PrometheusMetrics)
metrics._create_metrics()
found = {
    m._name: {"type": m._type, "labels": list(m._labelnames)}
    for m in vars(metrics).values()
    if isinstance(m, MetricWrapperBase)
}
print(json.dumps(found))
"""
#: the sample names of a metric in the exposition (multiprocess mode: no _created)
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


@pytest.fixture(scope="module")
def defined():
    """{sample name: its label names} of the metrics the code creates (the definitions
    in prometheus_metrics.py, run in a fresh interpreter without a multiprocess
    directory), plus Prometheus' own ``up``."""
    done = subprocess.run(
        [sys.executable, "-c", _DEFINITIONS],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert len(metrics) >= 10, metrics
    names = {}
    for name, info in metrics.items():
        for suffix in _SUFFIXES[info["type"]]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[name + suffix] = set(info["labels"]) | extra
    names.update(PROMETHEUS_OWN)
    return names


class Parsed:
    def __init__(self):
        self.metrics = set()
        self.matched = []  # (metric or None, label)
        self.grouped = set()


_STRING = r'"(?:[^"\\]|\\.)*"'
_SELECTOR = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)?\s*\{((?:[^}\"]|" + _STRING + r")*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*" + _STRING)
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_KEYWORDS |= {"by", "without", "on", "ignoring", "group_left", "group_right"}


def parse_promql(expr):
    """The metric names of a PromQL expression (selectors, bare or with matchers; not
    functions, keywords, numbers, durations, strings), the labels its matchers name, and
    the labels of its ``by``/``without``/``on``/``ignoring``/``group_*`` clauses."""
    parsed = Parsed()

    def selector(match):
        name, body = match.group(1), match.group(2)
        for label in _MATCHER.findall(body):
            parsed.matched.append((name, label))
        leftover = _MATCHER.sub("", body).replace(",", "").strip()
        assert not leftover, f"unparsed matcher {leftover!r} in {expr!r}"
        return f" {name or ''} "

    text = _SELECTOR.sub(selector, expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(_STRING, " ", text)

    def grouping(match):
        parsed.grouped.update(label.strip() for label in match.group(1).split(",") if label.strip())
        return " "

    text = _GROUPING.sub(grouping, text)
    parsed.metrics = {name for name in _IDENT.findall(text) if name not in _KEYWORDS}
    return parsed


def problems(expr, defined):
    """What in ``expr`` the code does not define: metric names, matched labels, grouping
    labels (checked against the labels of the expression's metrics)."""
    parsed = parse_promql(expr)
    found = []
    labels = set(TARGET_LABELS)
    for name in sorted(parsed.metrics):
        if name not in defined:
            found.append(f"metric {name} is not defined")
        else:
            labels |= defined[name]
    for name, label in parsed.matched:
        known = (defined.get(name, set()) | TARGET_LABELS) if name else labels
        if label not in known:
            found.append(f"{name or 'selector'} has no label {label}")
    for label in sorted(parsed.grouped - labels):
        found.append(f"no metric of the expression has a label {label}")
    if not parsed.metrics:
        found.append("no metric found")
    return found


def test_parser_finds_names_and_flags_wrong_ones(defined):
    """The check is only as good as its parser: it finds what is there, and it flags a
    name without its suffix, a label a metric does not have, a made-up metric."""
    parsed = parse_promql(
        "histogram_quantile(0.95, sum by (le, type) (rate(odoo_http_request_duration_seconds"
        '_bucket{job=~"$job", code!="5.."}[$__rate_interval]))) / on (instance) group_left'
        " up offset 5m > 1.5e9 or vector(0)"
    )
    assert parsed.metrics == {"odoo_http_request_duration_seconds_bucket", "up"}
    assert {label for _name, label in parsed.matched} == {"job", "code"}
    assert parsed.grouped == {"le", "type", "instance"}
    assert problems("sum(rate(odoo_http_requests[5m]))", defined) == [
        "metric odoo_http_requests is not defined"
    ]
    assert problems("odoo_http_request_duration_seconds > 1", defined)
    assert problems('odoo_cron_duration_seconds_bucket{outcome="failed"}', defined)
    assert problems("sum by (outcome) (rate(odoo_cron_duration_seconds_count[5m]))", defined)
    assert problems("rate(odoo_made_up_total[5m])", defined)
    assert not problems('sum by (kind) (rate(odoo_object_store_operations_total{op="put"}[1m]))',
                        defined)  # fmt: skip


def test_alert_metric_names_exist(defined):
    found = {
        rule["alert"]: problems(rule["expr"], defined)
        for rule in _alerts()
        if problems(rule["expr"], defined)
    }
    assert found == {}


def test_dashboard_metric_names_exist(defined):
    queries = dashboard_queries(DASHBOARD)
    assert len(queries) >= 20, queries
    found = {}
    for title, ref, expr in queries:
        where = f"{title!r} {ref}" if ref else f"variable {title}"
        variable = LABEL_VALUES.fullmatch(expr)
        if variable:
            selector, label = variable.groups()
            issues = problems(selector, defined)
            metric = next(iter(parse_promql(selector).metrics), None)
            if label not in defined.get(metric, set()) | TARGET_LABELS:
                issues.append(f"{metric} has no label {label}")
        else:
            assert "label_values" not in expr, f"{where}: unparsed {expr!r}"
            issues = problems(expr, defined)
        if issues:
            found[where] = (expr, issues)
    assert found == {}
