"""Picks the compiled or the pure-Python implementation, once, when first
asked (importing corecache decides nothing and loads nothing).

Each hot-path module exists twice: compiled (``corecache._<name>``) and as
a pure twin (``corecache._pure.<name>``) with the same public names (its
``__all__``).  The twins are used when CORECACHE_NO_EXTENSIONS is set (to
anything but 0/false/no), when running outside CPython, or when any compiled
module fails to import (then all twins, so that they always work together);
IMPLEMENTATION says which ("c" or "py") and IMPORT_ERROR why not "c".  A
twin is imported only when it is selected or asked for.
"""
from __future__ import annotations

import os
import sys
from importlib import import_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Dict, Optional

# name -> (compiled module, pure twin)
MODULES = {
    "lru": ("corecache._lru", "corecache._pure.lru"),
    "pool": ("corecache._pool", "corecache._pure.pool"),
    "chunk": ("corecache._chunk", "corecache._pure.chunk"),
}

IMPORT_ERROR: Optional[BaseException] = None
_selected: Optional[Dict[str, ModuleType]] = None
_implementation: Optional[str] = None


def _wanted() -> bool:
    flag = os.environ.get("CORECACHE_NO_EXTENSIONS", "").strip().lower()
    if flag not in ("", "0", "false", "no"):
        return False
    return sys.implementation.name == "cpython"


def _import_compiled() -> Optional[Dict[str, ModuleType]]:
    global IMPORT_ERROR
    try:
        return {name: import_module(c) for name, (c, _) in MODULES.items()}
    except ImportError as exc:  # not built, or built for another Python
        IMPORT_ERROR = exc
        return None


def selected() -> Dict[str, ModuleType]:
    """name -> the module of the implementation in use (decided on first call)."""
    global _selected, _implementation
    if _selected is None:
        from . import _env
        _env.warn_unknown(stacklevel=4)     # a misspelled CORECACHE_* variable
        compiled = _import_compiled() if _wanted() else None
        if compiled is not None:
            _selected, _implementation = compiled, "c"
        else:
            _selected = {name: pure_module(name) for name in MODULES}
            _implementation = "py"
    return _selected


def implementation() -> str:
    """"c" or "py"."""
    selected()
    return _implementation  # type: ignore[return-value]


def __getattr__(name: str) -> Any:
    if name == "IMPLEMENTATION":
        return implementation()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compiled_module(name: str) -> Optional[ModuleType]:
    """The compiled module even when the twins were selected (tests), or None."""
    if _implementation == "c":
        return _selected[name]  # type: ignore[index]
    try:
        return import_module(MODULES[name][0])
    except ImportError:
        return None


def pure_module(name: str) -> ModuleType:
    return import_module(MODULES[name][1])


def compiled_lru() -> Optional[ModuleType]:
    return compiled_module("lru")


def lru_class(impl: str, name: str = "LRUCache") -> Any:
    """LRUCache (or Cache) of implementation "c" or "py", falling back to
    what exists."""
    if impl == "c":
        mod = compiled_module("lru")
        if mod is not None:
            return getattr(mod, name)
    return getattr(pure_module("lru"), name)
