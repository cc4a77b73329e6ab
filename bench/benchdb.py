"""The bench scripts' own PostgreSQL databases: each script works in a database of its own,
whose name must start with `zenith_bench`, and starts it from nothing."""

from __future__ import annotations


def recreate_database() -> None:
    """Drops and creates the configured database, then migrates it. Refuses (SystemExit) a
    database whose name does not start with zenith_bench, so a mistyped URL never empties
    real data."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    connection.close()
    db = settings.DATABASES["default"]
    if not db["NAME"].startswith("zenith_bench"):
        raise SystemExit(f"refusing to recreate database {db['NAME']!r}: its name must start with zenith_bench")
    admin = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                            dbname="postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    admin.close()
    call_command("migrate", interactive=False, verbosity=0)
