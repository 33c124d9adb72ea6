"""The console's screens, one module each. Every module here with a `router` is a screen: app.py includes
them all and builds the navigation from their NAV entries (by NavEntry.order), so a new screen is a new
module and nothing else to register (and two screens added at once never touch the same line)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def _discover() -> tuple[ModuleType, ...]:
    modules = (
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    )
    return tuple(module for module in modules if hasattr(module, "router"))


SCREENS = _discover()
