"""The shared runtime sits below everything else: nothing in orderdesk/ imports the gateway, the console,
the services, the CLI, the development tools or the benchmark (every import counts, also one inside a
function)."""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "orderdesk"
ABOVE_THE_RUNTIME = {"gateway", "console", "services", "cli", "devtools", "bench", "tests"}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every module the file imports (relative imports are orderdesk's own)."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            packages.add("orderdesk" if node.level else (node.module or "").split(".")[0])
    return packages


def runtime_modules() -> list[Path]:
    return sorted(p for p in RUNTIME.rglob("*.py") if "v1" not in p.relative_to(RUNTIME).parts)


def test_the_walk_sees_imports_at_the_top_and_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os.path\nfrom gateway import keys\n\ndef f():\n    from services.orders import x\n"
        "    from . import sibling\n"
    )
    assert imported_packages(module) == {"os", "gateway", "services", "orderdesk"}
    assert RUNTIME / "runtime.py" in runtime_modules() and "orderdesk" in imported_packages(
        RUNTIME / "runtime.py"
    )


def test_the_runtime_imports_nothing_above_it():
    offending = {
        str(path.relative_to(RUNTIME.parent)): sorted(imported_packages(path) & ABOVE_THE_RUNTIME)
        for path in runtime_modules()
    }
    assert {path: packages for path, packages in offending.items() if packages} == {}
