"""peewee imported without its database drivers; a server's driver loaded when a store needs it.

peewee imports psycopg and PyMySQL (when installed) as it is imported: about 70 ms of a
command's start-up (measured here) that an SQLite command never uses (issue 15). So the
first import of peewee goes through `import_peewee`, which hides the drivers from it, and
`load_driver` hands peewee a driver just before the first PostgreSQL or MySQL store opens,
setting the same module names peewee 4's own import would have set (peewee is pinned to
4.x in pyproject.toml for this reason among others).
"""

from __future__ import annotations

import sys

# What peewee 4 tries to import at its top (peewee.py, the try/except ImportError blocks).
_PEEWEE_DRIVERS = ("psycopg2cffi", "psycopg2", "psycopg", "pymysql", "MySQLdb")


def import_peewee():
    """peewee, imported (the first time) with its drivers hidden from it."""
    if "peewee" in sys.modules:
        return sys.modules["peewee"]
    hidden = [name for name in _PEEWEE_DRIVERS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        import peewee
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return peewee


def load_driver(backend: str) -> None:
    """Give peewee the driver for `backend` ('postgresql' or 'mysql') if it has none."""
    peewee = import_peewee()
    if backend == "postgresql" and peewee.psycopg is None:
        import psycopg
        from psycopg.pq import TransactionStatus
        from psycopg.types.json import Json, Jsonb

        peewee.psycopg, peewee.TransactionStatus = psycopg, TransactionStatus
        peewee.Json_pg3, peewee.Jsonb_pg3 = Json, Jsonb
        # Class attributes peewee sets only when psycopg was there at its import.
        adapter = peewee.Psycopg3Adapter
        adapter.txn_idle = TransactionStatus.IDLE
        adapter.txn_inerror = TransactionStatus.INERROR
        adapter.txn_unknown = TransactionStatus.UNKNOWN
    elif backend == "mysql" and peewee.mysql is None:
        import pymysql

        peewee.mysql = pymysql
