"""`make bench`: figures for the order path, printed, never asserted (see bench/__main__.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devtools.devstack import Stack

# The gateway's rate limiter runs (its cost is in the figures) but never refuses: the bench drives one key at
# full speed, far beyond a partner's production limits (gateway.ratelimit).
UNTHROTTLED = {
    "ORDERDESK_RATE_LIMITS": ",".join(f"{c}=1e9/1000000000" for c in ("submit", "read", "feed", "admin"))
}


def percentile(values: list[float], p: float) -> float:
    """The `p`th percentile (nearest rank) of `values`; NaN for none: every bench reports the same way."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def import_master_data(stack: Stack, folder: Path, *, products: str, stock: str) -> None:
    """Products and stock (CSV text) imported the way an operator does it (`orderdesk import`), one way
    for every bench."""
    from devtools.devstack import ROOT

    (folder / "products.csv").write_text(products)
    (folder / "stock.csv").write_text(stock)
    for kind in ("products", "stock"):
        subprocess.run(
            [sys.executable, "-m", "cli", "import", kind, str(folder / f"{kind}.csv")],
            env=stack.env(),
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
