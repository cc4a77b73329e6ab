"""Query plans for the plan tests: EXPLAIN ANALYZE of a statement as the server ran it, its
nodes, and the rows a table's scans read. Django's psycopg cursor binds on the client, so a
captured statement's text is the statement the server ran."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db import connection


def explain(statement: str, *, buffers: bool = False) -> dict:
    """The root node of EXPLAIN (ANALYZE) of `statement`, a complete statement with no
    parameters left (a `%` in it is a literal)."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if buffers else "ANALYZE, FORMAT JSON"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) " + statement.replace("%", "%%"), [])
        raw = cursor.fetchone()[0]
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def rows_read(plan: dict, table: str) -> int:
    """Rows the scans of `table` produced or discarded, over every loop."""
    return sum((node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)) * node.get("Actual Loops", 1)
               for node in nodes(plan) if "Scan" in node["Node Type"] and node.get("Relation Name") == table)
