"""Package exports loaded on first use (PEP 562 module ``__getattr__``).

A package whose ``__init__`` imported its heavy modules would make every light submodule wait
for them: importing ``detection.settings`` to check a `--set` value would import scipy first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> Callable:
    """The package's ``__getattr__``: ``exports`` maps each public name to the submodule that
    defines it; the first use imports that submodule and keeps the name in ``namespace``."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value
        return value

    return __getattr__
