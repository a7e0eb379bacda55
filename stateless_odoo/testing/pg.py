"""A minimal cursor with Odoo's ``Cursor`` interface over psycopg2, for the suite's code
that runs outside Odoo (tests, benchmarks). psycopg2 is imported on first use: it is
Odoo's dependency, not the core package's."""


class PgCursor:
    """One connection and its cursor: ``execute``/``fetchone``/``fetchall``/``rowcount``,
    ``commit``/``rollback``/``close``, REPEATABLE READ as Odoo's cursors."""

    def __init__(self, dsn):
        import psycopg2
        import psycopg2.extensions

        self._cnx = psycopg2.connect(dsn)
        self._cnx.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
        self._obj = self._cnx.cursor()

    def execute(self, query, params=None, log_exceptions=True):
        # log_exceptions: Odoo's signature; this cursor logs nothing
        return self._obj.execute(query, params)

    def fetchone(self):
        return self._obj.fetchone()

    def fetchall(self):
        return self._obj.fetchall()

    @property
    def rowcount(self):
        return self._obj.rowcount

    def commit(self):
        self._cnx.commit()

    def rollback(self):
        self._cnx.rollback()

    def close(self):
        self._cnx.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        finally:
            self.close()
        return False
