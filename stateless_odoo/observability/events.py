"""Operational events for metrics: the core says what happened, the metric sinks count it.

The stores, the session store, the migration and the Odoo glue call :func:`emit`; the
monitoring addons :func:`subscribe` a sink. With no subscriber an event costs one
attribute lookup and one empty-list test, so the core does not depend on any metrics
library and runs the same without monitoring.

Events and their fields (all names and values are bounded: no keys, no ids, no URLs):

``store``      kind (``s3``/``swift``), op (``put``, ``get``, ``head``, ``delete``, ``list``),
               seconds, ok
``session``    op (``get``, ``save``, ``delete``, ...), seconds, ok
``cron``       seconds, ok
``migration``  moved, bytes, skipped (per committed batch)
``migration_run``  running (True when a migration starts, False when it ends)
``collection`` scope (``full``: every due candidate, as the daily run; ``after_delete``:
               the objects a transaction just unlinked), outcome (``ok``,
               ``lock_timeout``: writers held the table, nothing decided; ``error``),
               deleted, kept, busy
``worker_recycle``  reason (``memory``, ``requests``, ``age``, ``parent``): Odoo ends
               the worker after its request

A sink that raises is logged once per kind of error and otherwise ignored: metrics
never break what they measure.
"""

import logging
import time
from contextlib import contextmanager

_logger = logging.getLogger(__name__)

_subscribers = []
_failed = set()


def subscribe(sink):
    """Call ``sink(event, fields)`` for every event; returns ``sink`` (usable as a
    decorator). Subscribing the same sink twice has no effect."""
    if sink not in _subscribers:
        _subscribers.append(sink)
    return sink


def unsubscribe(sink):
    if sink in _subscribers:
        _subscribers.remove(sink)


def active():
    return bool(_subscribers)


def emit(event, **fields):
    if not _subscribers:
        return
    for sink in tuple(_subscribers):
        try:
            sink(event, fields)
        except Exception as exc:  # noqa: BLE001 - a metric sink never breaks the caller
            report_failure(f"metrics sink (event {event!r})", sink, exc)


def report_failure(what, fn, exc):
    """Log that ``fn`` (a sink, a listener) raised, once per function and kind of
    error: observing code must neither break nor flood what it observes."""
    signature = (getattr(fn, "__qualname__", repr(fn)), type(exc).__name__)
    if signature in _failed:
        return
    _failed.add(signature)
    _logger.warning(
        "%s %s failed (%s); further such errors are not logged",
        what,
        signature[0],
        signature[1],
        exc_info=exc,
    )


@contextmanager
def timed(event, **fields):
    """Emit ``event`` with ``seconds`` and ``ok`` when the block ends (an exception
    leaving the block counts as not ok and goes on)."""
    if not _subscribers:
        yield
        return
    start = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        emit(event, seconds=time.perf_counter() - start, ok=ok, **fields)
