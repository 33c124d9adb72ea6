"""Generates the protobuf code into orderdesk/v1 before setuptools collects the packages, so every wheel
(`pip install .`, the image) carries it and the installed package never needs grpcio-tools.

grpcio-tools is a build requirement only ([build-system] in pyproject.toml); the metadata is in
pyproject.toml. protos.py is loaded by path so that importing it runs nothing else of orderdesk.
"""

import importlib.util
from pathlib import Path

from setuptools import setup

_spec = importlib.util.spec_from_file_location(
    "_orderdesk_protos", Path(__file__).parent / "orderdesk/protos.py"
)
assert _spec is not None and _spec.loader is not None
_protos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_protos)
if _protos.PROTO_ROOT.exists() and _protos.is_stale():
    _protos.generate()

setup()
