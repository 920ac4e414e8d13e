"""Small helpers shared by the pure-Python twins."""
from __future__ import annotations

import sys
import traceback
from typing import Any, NamedTuple, Optional


class _UnraisableArgs(NamedTuple):
    exc_type: type
    exc_value: BaseException
    exc_traceback: Any
    err_msg: Optional[str]
    object: Any


def write_unraisable(exc: BaseException, obj: Any) -> None:
    """Report ``exc`` through ``sys.unraisablehook`` as the C API's
    ``PyErr_WriteUnraisable(obj)`` does (the compiled core calls that)."""
    hook = sys.unraisablehook
    if hook is sys.__unraisablehook__:
        # The default hook only accepts the interpreter's own argument type,
        # which Python code cannot build; print what it would print.
        try:
            sys.stderr.write(f"Exception ignored in: {obj!r}\n")
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        except Exception:  # stderr gone at shutdown: nothing left to tell
            pass
        return
    try:
        hook(_UnraisableArgs(type(exc), exc, exc.__traceback__, None, obj))
    except Exception:
        pass
