"""The end-to-end scenario: several stateless Odoo 18 processes behind nginx.

- ``stack.py``: starts the platform on loopback (services, replica, database, Odoo
  processes, nginx); used by the scenario and by ``bench/bench_e2e.py``.
- ``scenario.py``: a user's day through nginx, then the proof. Runnable alone
  (``.venv/bin/python -m tests.e2e.scenario``) and from the Odoo tier.
- ``addons/e2e_day``: the scenario's own module, installed during the day.
"""
