"""Reading PostgreSQL's EXPLAIN (FORMAT JSON): every node of a plan, for tests that check what a statement
reads (an index scan, how many rows)."""

from __future__ import annotations

import json
from collections.abc import Iterator


def plan_nodes(plan: str | list | dict) -> Iterator[dict]:
    """Each node of `plan` (EXPLAIN's JSON, as text or parsed, or one of its nodes), the root first."""
    if isinstance(plan, str):
        plan = json.loads(plan)
    node = plan[0]["Plan"] if isinstance(plan, list) else plan
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)
