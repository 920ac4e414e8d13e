"""Generates the synchronous distributed layer from its asyncio source.

The pattern logic of ``corecache.distributed`` (tiers, single flight,
locks, fencing, fills, retries, breaker, stats) is written once, as
asyncio code, in ``corecache/distributed/aio/``.  The synchronous modules
beside this file (``_base.py``, ``stores.py``, ``redis_store.py``,
``patterns.py``, ``write_behind.py``, ``decorator.py``) are generated from
it, the way httpcore generates its sync twin with ``unasync``:

* ``async def`` / ``async with`` / ``async for`` lose ``async``;
* ``await`` goes;
* the names in :data:`NAMES` are renamed wherever they stand, in code,
  docstrings and comments (``aclose`` -> ``close``, ``__aenter__`` ->
  ``__enter__``, ...);
* ``from ..x import`` becomes ``from .x import`` (the source is one package
  deeper; a ``from .x import`` names the module of the same style in
  either), and ``redis.asyncio`` becomes ``redis`` (redis-py's sync API).

What truly differs between the two styles (threads or tasks, ``time.sleep``
or ``asyncio.sleep``, a thread's single flight or an event loop's, calling
a loader or awaiting it) lives in two small hand-written modules with the
same names in them: ``aio/_io.py`` and ``_io.py``.

The generated files are not in git: ``setup.py`` writes them on every
build (``python setup.py build_ext --inplace`` in a checkout), and
``tests/test_unasync.py`` fails when one is stale.  Run this module to
regenerate them by hand: ``python corecache/distributed/_unasync.py``.
It imports nothing of corecache (setup.py runs it from a bare source tree).
"""
from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Dict, List, Tuple

__all__ = ["MODULES", "NAMES", "generate", "check", "write"]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "aio"

# the modules written once, in aio/, and generated here
MODULES = ("_base", "stores", "redis_store", "patterns", "write_behind", "decorator")

NAMES: Dict[str, str] = {
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "AsyncIterator": "Iterator",
}
_NAME_RE = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")
_IMPORT_RE = re.compile(r"^(\s*from\s+)\.\.")
_REDIS_RE = re.compile(r"\bredis\.asyncio\b")

# the first line of a source is a comment naming what is generated from it;
# in the generated module it says where it came from (so that line numbers,
# in tracebacks too, are the same in both)
HEADER = ("# GENERATED from corecache/distributed/aio/{name}.py by _unasync.py: "
          "edit that file, never this one\n")


def generate(source: str, name: str) -> str:
    """The synchronous text of one asyncio source module."""
    lines = source.splitlines(keepends=True)
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"aio/{name}.py must start with a comment line (replaced by "
                         f"the generated module's header)")
    # (row, col start, col end) of the async/await keywords to drop
    edits: List[Tuple[int, int, int]] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME:
            continue
        (row, col), nxt = tok.start, tokens[i + 1]
        if tok.string == "await" or (tok.string == "async"
                                     and nxt.string in ("def", "with", "for")):
            edits.append((row, col, nxt.start[1] if nxt.start[0] == row else tok.end[1]))
    for row, col, end in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + line[end:]
    # the renamed names, in code, docstrings and comments alike
    text = _NAME_RE.sub(lambda m: NAMES[m.group(1)], "".join(lines))
    out = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(("from ", "import ")):
            line = _IMPORT_RE.sub(r"\1.", line)
        out.append(_REDIS_RE.sub("redis", line))
    out[0] = HEADER.format(name=name)
    return "".join(out)


def _pairs() -> List[Tuple[Path, Path, str]]:
    return [(SOURCE / f"{m}.py", HERE / f"{m}.py", m) for m in MODULES]


def check() -> List[str]:
    """The generated modules that are missing or differ from their source."""
    stale = []
    for src, dst, name in _pairs():
        want = generate(src.read_text(encoding="utf-8"), name)
        if not dst.is_file() or dst.read_text(encoding="utf-8") != want:
            stale.append(str(dst))
    return stale


def write() -> List[str]:
    """(Re)write every generated module that changed; the paths written."""
    written = []
    for src, dst, name in _pairs():
        want = generate(src.read_text(encoding="utf-8"), name)
        if not dst.is_file() or dst.read_text(encoding="utf-8") != want:
            dst.write_text(want, encoding="utf-8")
            written.append(str(dst))
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        stale = check()
        print("\n".join(stale) or "up to date")
        sys.exit(1 if stale else 0)
    for path in write():
        print("generated", path)
