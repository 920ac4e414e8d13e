"""The synchronous distributed layer is generated from its asyncio source
(corecache/distributed/_unasync.py): a generated module that is missing or
differs from what its source gives now is stale, and fails here (run
``python setup.py build_ext --inplace`` or ``python
corecache/distributed/_unasync.py``)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import corecache.distributed

HERE = Path(corecache.distributed.__file__).resolve().parent


def _unasync():
    spec = importlib.util.spec_from_file_location("_unasync_under_test", HERE / "_unasync.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_generated_sync_modules_are_up_to_date():
    stale = _unasync().check()
    assert not stale, (f"stale generated modules (edit corecache/distributed/aio/, then "
                       f"run python corecache/distributed/_unasync.py): {stale}")


def test_the_generated_modules_have_no_async_left_and_keep_line_numbers():
    un = _unasync()
    for name in un.MODULES:
        source = (HERE / "aio" / f"{name}.py").read_text(encoding="utf-8")
        text = un.generate(source, name)
        assert text.count("\n") == source.count("\n")          # tracebacks line up
        tree = ast.parse(text)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncWith,
                                         ast.AsyncFor)), (name, getattr(node, "lineno", 0))
        assert "aclose" not in text and "redis.asyncio" not in text, name
        assert text.startswith("# GENERATED from corecache/distributed/aio/")


def test_the_rewrite_rules():
    un = _unasync()
    src = ("# source\n"
           "from ..x import y\nfrom ...config import c\nfrom .stores import Store\n"
           "import redis.asyncio as redis\n"
           "async def f(self):\n"
           "    async with a as b:\n"
           "        await self.aclose()\n"
           "    async for i in g():\n"
           "        return (await h())[0]\n"
           "    '''aclose() in a docstring'''\n"
           "async def __aenter__(self): pass\n")
    out = un.generate(src, "m")
    assert out.splitlines()[1:] == [
        "from .x import y", "from ..config import c", "from .stores import Store",
        "import redis as redis",
        "def f(self):",
        "    with a as b:",
        "        self.close()",
        "    for i in g():",
        "        return (h())[0]",
        "    '''close() in a docstring'''",
        "def __enter__(self): pass"]
