"""A deep health check: each dependency checked at once, each with its own timeout.

``GET /web/health/deep`` (served before Odoo: no session, no database selection)
answers ``200`` with ``{"status": "pass", "checks": {...}}`` when every check passed,
``503`` with ``"status": "fail"`` and the failing check's reason otherwise::

    {"status": "fail",
     "checks": {"database": {"status": "pass", "ms": 2.1},
                "redis": {"status": "fail", "ms": 1000.4, "error": "timed out after 1.0 s"},
                "object_storage": {"status": "pass", "ms": 8.3}}}

``ODOO_HEALTH_TIMEOUT`` (seconds, default 3) bounds each check; a check that hangs
holds a daemon thread, never the request, and is not started again while it hangs. One
run at a time per process, its result reused for :data:`REUSE_SECONDS`. Errors name the
dependency, never a secret. Who may ask: ``ODOO_HEALTH_TOKEN`` / ``ODOO_HEALTH_ALLOW``
(:class:`~.access.Access`; loopback only by default).
"""

import json
import threading
import time

from ..config import EnvReader
from ..errors import StatelessOdooError

DEFAULT_TIMEOUT = 3.0
#: the key whose existence a check asks an object store (a missing key is an answer)
HEALTH_KEY = "stateless-odoo-health-check"


#: a result answers again for this long: a probe costs at most one run per process
#: every few seconds, whoever sends it and however often
REUSE_SECONDS = 5.0


class HealthCheck:
    def __init__(self, timeout=DEFAULT_TIMEOUT, *, reuse=REUSE_SECONDS, clock=time.monotonic):
        self.timeout = timeout
        self.reuse = reuse
        self._clock = clock
        #: name -> callable raising on failure
        self.checks = {}
        self._lock = threading.Lock()
        self._last = None  # (when, ok, report)
        #: name -> (thread, slot) of a check that did not answer in time
        self._hung = {}

    @classmethod
    def from_env(cls, environ=None):
        env = EnvReader(environ)
        return cls(env.float("ODOO_HEALTH_TIMEOUT", DEFAULT_TIMEOUT, minimum=0.1))

    def add(self, name, check):
        self.checks[name] = check

    def latest(self):
        """:meth:`run`, one at a time per process; a result younger than ``reuse``
        seconds answers again (callers meanwhile wait for the running one)."""
        with self._lock:
            if self._last is not None and self._clock() - self._last[0] < self.reuse:
                return self._last[1:]
            ok, report = self.run()
            self._last = (self._clock(), ok, report)
            return ok, report

    def run(self):
        """``(ok, report)``: all checks started together, each bounded by the timeout. A
        check whose earlier thread still hangs is not started again: it fails at once."""
        results = {}
        threads = []
        for name, check in self.checks.items():
            hung = self._hung.get(name)
            if hung is not None and hung[0].is_alive():
                threads.append((name, hung[0], hung[1]))
                continue
            slot = {"started": time.perf_counter()}
            results[name] = slot
            thread = threading.Thread(
                target=_run_one, args=(check, slot), name=f"health-{name}", daemon=True
            )
            thread.start()
            threads.append((name, thread, slot))
        deadline = time.perf_counter() + self.timeout
        report = {}
        for name, thread, slot in threads:
            thread.join(max(0.0, deadline - time.perf_counter()))
            if thread.is_alive():
                self._hung[name] = (thread, slot)
                entry = {"status": "fail", "error": f"timed out after {self.timeout:g} s"}
                ms = (time.perf_counter() - slot["started"]) * 1000
            else:
                entry = (
                    {"status": "pass"}
                    if slot.get("error") is None
                    else {
                        "status": "fail",
                        "error": slot["error"],
                    }
                )
                ms = slot["ms"]
            entry["ms"] = round(ms, 1)
            report[name] = entry
        ok = all(entry["status"] == "pass" for entry in report.values())
        return ok, {"status": "pass" if ok else "fail", "checks": report}

    def endpoint(self, environ, start_response):
        """WSGI application of the deep health check."""
        ok, report = self.latest()
        body = json.dumps(report).encode()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


def _run_one(check, slot):
    try:
        check()
        slot["error"] = None
    except StatelessOdooError as exc:
        slot["error"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        slot["error"] = f"{type(exc).__name__}: {_first_line(exc)}"
    slot["ms"] = (time.perf_counter() - slot["started"]) * 1000


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
