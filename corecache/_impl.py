"""Picks the compiled or the pure-Python implementation, once, at import.

Each hot-path module exists twice: compiled (``corecache._<name>``) and as
a pure twin (``corecache._pure.<name>``) with the same public names (its
``__all__``).  The twins are used when CORECACHE_NO_EXTENSIONS is set (to
anything but 0/false/no), when running outside CPython, or when any compiled
module fails to import (then all twins, so that they always work together);
IMPLEMENTATION says which ("c" or "py") and IMPORT_ERROR why not "c".
"""
from __future__ import annotations

import importlib
import os
import platform
from types import ModuleType
from typing import Any, Dict, Optional

from . import _env

# name -> (compiled module, pure twin)
MODULES = {
    "lru": ("corecache._lru", "corecache._pure.lru"),
    "pool": ("corecache._pool", "corecache._pure.pool"),
    "chunk": ("corecache._chunk", "corecache._pure.chunk"),
}

IMPORT_ERROR: Optional[BaseException] = None


# a misspelled CORECACHE_* variable would be silently ignored: warn, once
_env.warn_unknown(stacklevel=3)


def _wanted() -> bool:
    flag = os.environ.get("CORECACHE_NO_EXTENSIONS", "").strip().lower()
    if flag not in ("", "0", "false", "no"):
        return False
    return platform.python_implementation() == "CPython"


def _import_compiled() -> Optional[Dict[str, ModuleType]]:
    global IMPORT_ERROR
    try:
        return {name: importlib.import_module(c) for name, (c, _) in MODULES.items()}
    except ImportError as exc:  # not built, or built for another Python
        IMPORT_ERROR = exc
        return None


_pure: Dict[str, ModuleType] = {name: importlib.import_module(p) for name, (_, p) in MODULES.items()}
_compiled = _import_compiled() if _wanted() else None

IMPLEMENTATION = "c" if _compiled is not None else "py"
selected: Dict[str, ModuleType] = _compiled if _compiled is not None else _pure


def compiled_module(name: str) -> Optional[ModuleType]:
    """The compiled module even when the twins were selected (tests), or None."""
    if _compiled is not None:
        return _compiled[name]
    try:
        return importlib.import_module(MODULES[name][0])
    except ImportError:
        return None


def pure_module(name: str) -> ModuleType:
    return _pure[name]


def compiled_lru() -> Optional[ModuleType]:
    return compiled_module("lru")


def lru_class(impl: str) -> Any:
    """LRUCache of implementation "c" or "py", falling back to what exists."""
    if impl == "c":
        mod = compiled_module("lru")
        if mod is not None:
            return mod.LRUCache
    return _pure["lru"].LRUCache
