"""Typing at run time: the generics the stubs advertise work when
annotations are evaluated (``LRUCache[str, int]``, ``ObjectPool[T]``) in both
implementations; the stubs' signatures match the pure twins' and the
compiled modules' (stubtest checks the compiled ones in depth: scripts/test);
and tests/typing/usage.py, which ``mypy --strict`` checks, also runs."""
from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

import corecache
from corecache import _impl

HERE = Path(__file__).resolve().parent
PACKAGE = Path(corecache.__file__).resolve().parent
STUBS = {"lru": "_lru.pyi", "pool": "_pool.pyi", "chunk": "_chunk.pyi"}


def test_package_is_marked_typed() -> None:
    assert (PACKAGE / "py.typed").exists()
    for stub in STUBS.values():
        assert (PACKAGE / stub).exists(), stub


def test_generic_subscription_at_run_time(impl: Any) -> None:
    alias = impl.LRUCache[str, int]
    assert isinstance(alias, types.GenericAlias)
    assert typing.get_origin(alias) is impl.LRUCache
    assert typing.get_args(alias) == (str, int)
    c = alias(4)                          # calling the alias builds a cache
    assert type(c) is impl.LRUCache
    c["a"] = 1
    assert c["a"] == 1
    pool_alias = impl.ObjectPool[bytearray]
    assert typing.get_origin(pool_alias) is impl.ObjectPool
    with pool_alias(bytearray, 2) as pool:
        assert type(pool) is impl.ObjectPool
        with pool.acquire() as b:
            assert isinstance(b, bytearray)


def test_annotations_evaluate(impl: Any) -> None:
    ns: Dict[str, Any] = {"LRUCache": impl.LRUCache, "ObjectPool": impl.ObjectPool,
                          "Optional": Optional}

    def f(c: "LRUCache[str, Optional[int]]", p: "ObjectPool[bytes]") -> None: ...
    f.__globals__.update(ns)
    hints = typing.get_type_hints(f, ns)
    assert typing.get_args(hints["c"]) == (str, Optional[int])
    assert typing.get_origin(hints["p"]) is impl.ObjectPool


# ---- the stubs against the implementations -----------------------------------

def _params(fn: ast.FunctionDef) -> List[Tuple[str, str, bool]]:
    """(name, kind, has default) of a stub function, self/cls dropped."""
    a = fn.args
    out: List[Tuple[str, str, bool]] = []
    positional = a.posonlyargs + a.args
    defaults = [False] * (len(positional) - len(a.defaults)) + [True] * len(a.defaults)
    for i, (arg, d) in enumerate(zip(positional, defaults)):
        kind = "POSITIONAL_ONLY" if i < len(a.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        out.append((arg.arg, kind, d))
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", False))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "KEYWORD_ONLY", d is not None))
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", False))
    if out and out[0][0] in ("self", "cls"):
        out = out[1:]
    return out


def _decorators(fn: ast.FunctionDef) -> Set[str]:
    return {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in fn.decorator_list}


def stub_api(stub: str) -> Dict[str, Dict[str, List[List[Tuple[str, str, bool]]]]]:
    """{public name: {member ('' for a function): [signatures, one per overload]}}"""
    tree = ast.parse((PACKAGE / stub).read_text())
    api: Dict[str, Dict[str, List[List[Tuple[str, str, bool]]]]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            api.setdefault(node.name, {}).setdefault("", []).append(_params(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            members = api.setdefault(node.name, {})
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and "property" not in _decorators(item):
                    if item.name.startswith("_") and item.name != "__init__":
                        continue
                    members.setdefault(item.name, []).append(_params(item))
    return api


def runtime_params(obj: Any) -> Optional[List[Tuple[str, str, bool]]]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
           for p in sig.parameters.values()]
    if out and out[0][0] in ("self", "cls"):
        out = out[1:]
    return out


def _matches(runtime: List[Tuple[str, str, bool]],
             stubs: List[List[Tuple[str, str, bool]]]) -> bool:
    if len(stubs) == 1:
        return runtime == stubs[0]
    # overloads: every overload's parameters exist at run time with the same
    # kind, and every runtime parameter appears in some overload
    names = {n: (k, d) for n, k, d in runtime}
    seen = set()
    for overload in stubs:
        for n, k, _ in overload:
            if n not in names or names[n][0] != k:
                return False
            seen.add(n)
    return seen == set(names)


@pytest.mark.parametrize("module", sorted(STUBS))
def test_stub_signatures_match_the_implementations(module: str, impl: Any) -> None:
    api = stub_api(STUBS[module])
    mod = (_impl.compiled_module(module) if impl.name == "c" else _impl.pure_module(module))
    assert set(mod.__all__) == {n for n in api}, "stub and module export different names"
    problems = []
    for name, members in api.items():
        obj = getattr(mod, name)
        for member, sigs in members.items():
            target = obj if member == "" else getattr(obj, member, None)
            if target is None:
                problems.append(f"{name}.{member}: missing at run time")
                continue
            runtime = runtime_params(target)
            if runtime is None or runtime == [("args", "VAR_POSITIONAL", False),
                                              ("kwargs", "VAR_KEYWORD", False)]:
                continue                  # a C slot (Cython's __init__) says nothing
            if not _matches(runtime, sigs):
                problems.append(f"{name}.{member}: run time {runtime} vs stub {sigs}")
    assert not problems, "\n".join(problems)


# ---- the typed usage file runs ------------------------------------------------

def _usage() -> types.ModuleType:
    import importlib.util
    spec = importlib.util.spec_from_file_location("typing_usage", HERE / "typing" / "usage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_usage_file_runs() -> None:
    pytest.importorskip("typing_extensions")
    _usage().main()


@pytest.mark.c_extension
def test_usage_file_runs_on_the_pure_twin_too() -> None:
    pytest.importorskip("typing_extensions")
    env = dict(os.environ, CORECACHE_NO_EXTENSIONS="1",
               PYTHONPATH=os.pathsep.join([str(PACKAGE.parent)] + sys.path))
    code = ("import corecache, runpy; assert corecache.IMPLEMENTATION == 'py'; "
            f"runpy.run_path({str(HERE / 'typing' / 'usage.py')!r}, run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=str(HERE))
    assert r.returncode == 0, r.stderr
