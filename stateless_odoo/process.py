"""Per-process state: what must never be shared between an Odoo prefork master and
its workers."""

import os
import threading
import weakref


class PerProcess:
    """A value built on first use in each process, and built again after a fork.

    Network clients must never be shared between an Odoo prefork master and its
    workers: a socket shared across processes mixes up their requests.
    """

    _instances = weakref.WeakSet()

    def __init__(self, factory):
        self._factory = factory
        self._pid = None
        self._value = None
        self._lock = threading.Lock()
        PerProcess._instances.add(self)

    def get(self):
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._value = self._factory()
                    self._pid = os.getpid()
        return self._value

    @classmethod
    def _after_fork_in_child(cls):
        # a lock held by another thread of the parent at fork time stays locked forever
        # in the child: give every holder a fresh one
        for instance in list(cls._instances):
            instance._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=PerProcess._after_fork_in_child)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory():
    """This process's resident memory in bytes (Linux), or ``None`` where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None
