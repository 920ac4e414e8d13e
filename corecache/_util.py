"""Small helpers shared by the pure-Python twins."""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional


class _UnraisableArgs:
    """What ``sys.unraisablehook`` is given (the interpreter's own type
    cannot be built from Python)."""

    __slots__ = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")

    def __init__(self, exc_type: type, exc_value: BaseException, exc_traceback: Any,
                 err_msg: Optional[str], obj: Any) -> None:
        self.exc_type = exc_type
        self.exc_value = exc_value
        self.exc_traceback = exc_traceback
        self.err_msg = err_msg
        self.object = obj


def write_unraisable(exc: BaseException, obj: Any) -> None:
    """Report ``exc`` through ``sys.unraisablehook`` as the C API's
    ``PyErr_WriteUnraisable(obj)`` does (the compiled core calls that)."""
    hook = sys.unraisablehook
    if hook is sys.__unraisablehook__:
        # The default hook only accepts the interpreter's own argument type,
        # which Python code cannot build; print what it would print.
        try:
            import traceback
            sys.stderr.write(f"Exception ignored in: {obj!r}\n")
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        except Exception:  # stderr gone at shutdown: nothing left to tell
            pass
        return
    try:
        hook(_UnraisableArgs(type(exc), exc, exc.__traceback__, None, obj))
    except Exception:
        pass
