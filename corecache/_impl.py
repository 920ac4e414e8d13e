"""Picks the compiled or the pure-Python implementation, once, at import.

The pure twins are used when CORECACHE_NO_EXTENSIONS is set (to anything but
0/false/no), when running outside CPython, or when a compiled module fails to
import; IMPLEMENTATION says which ("c" or "py") and IMPORT_ERROR why not "c".
"""
from __future__ import annotations

import os
import platform
from types import ModuleType
from typing import Any, Optional

from ._pure import lru as _pure_lru

IMPORT_ERROR: Optional[BaseException] = None
_compiled_lru: Optional[ModuleType] = None


def _wanted() -> bool:
    if os.environ.get("CORECACHE_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return platform.python_implementation() == "CPython"


if _wanted():
    try:
        from . import _lru as _compiled_lru
    except ImportError as exc:  # not built, or built for another Python
        IMPORT_ERROR = exc
        _compiled_lru = None

IMPLEMENTATION = "c" if _compiled_lru is not None else "py"

lru: Any = _compiled_lru if _compiled_lru is not None else _pure_lru


def compiled_lru() -> Optional[ModuleType]:
    """The compiled module even when the twin was selected (tests), or None."""
    if _compiled_lru is not None:
        return _compiled_lru
    try:
        from . import _lru
    except ImportError:
        return None
    return _lru


def lru_class(impl: str) -> Any:
    """LRUCache of implementation "c" or "py", falling back to what exists."""
    if impl == "c":
        mod = compiled_lru()
        if mod is not None:
            return mod.LRUCache
    return _pure_lru.LRUCache
