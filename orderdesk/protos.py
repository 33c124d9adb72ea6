"""Generates the Python code for protos/orderdesk/v1 into orderdesk/v1 (git-ignored).

Run by `make protos` and, as a safety net, on first import of orderdesk.v1 from a
source checkout, so a clean clone works without a manual step. The code is written again only when it is
stale (a .proto newer than it, or another grpcio-tools made it; `--force` writes it anyway): processes
that are already importing it (a test pass running beside another) never see it half written.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PACKAGE = ROOT / "orderdesk" / "v1"


def sources() -> list[Path]:
    return sorted((PROTO_ROOT / "orderdesk" / "v1").glob("*.proto"))


def _stamp_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tools = version("grpcio-tools")
    except PackageNotFoundError:  # pragma: no cover - grpcio-tools is a dependency
        tools = "unknown"
    return (
        f'"""Generated from protos/orderdesk/v1 by orderdesk.protos (grpcio-tools {tools}); do not edit."""\n'
    )


def is_stale() -> bool:
    stamp = OUT_PACKAGE / "__init__.py"
    if not stamp.exists():
        return True
    built = stamp.stat().st_mtime
    if any(p.stat().st_mtime > built for p in sources()):
        return True
    return stamp.read_text() != _stamp_text()


def generate() -> None:
    import grpc_tools
    from grpc_tools import protoc

    OUT_PACKAGE.mkdir(parents=True, exist_ok=True)
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        f"--pyi_out={ROOT}",
        *[str(p) for p in sources()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    (OUT_PACKAGE / "__init__.py").write_text(_stamp_text())


if __name__ == "__main__":
    if "--force" in sys.argv[1:] or is_stale():
        generate()
        print(f"generated {len(sources())} protos into {OUT_PACKAGE.relative_to(ROOT)}", file=sys.stderr)
    else:
        print(f"{OUT_PACKAGE.relative_to(ROOT)} is up to date with {len(sources())} protos", file=sys.stderr)
