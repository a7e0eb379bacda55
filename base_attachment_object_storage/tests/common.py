"""Helpers for the suite's Odoo tests that talk to the real object store."""


class RealServicesMixin:
    """For test classes whose code reaches the local services over HTTP.

    In tests Odoo replaces ``requests.Session.send`` with a handler that lets loopback
    requests through but compares their timeout with a number; swiftclient passes
    ``(connect, read)`` tuples, which requests accepts. Give that handler one number.
    """

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        timeout = kw.get("timeout")
        if isinstance(timeout, tuple):
            kw["timeout"] = max(t for t in timeout if t is not None)
        return super()._request_handler(s, r, **kw)
