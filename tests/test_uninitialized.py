"""Objects that were never initialized: every type of the compiled modules,
made with ``__new__`` alone (as a subclass whose ``__init__`` skips ours, or
plain mischief, makes them), must raise a clear error or work, never crash.
Each check runs in a subprocess, so that a crash is a failure rather than
the end of the test run."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import all_impls

SCRIPT = r'''
import inspect, sys
from corecache import _impl
mod = _impl.compiled_module(sys.argv[1])
ARGS = [(), (1,), (1, 2), (None,), (b"x",), (1, 2, 3), (None, None, None)]
checked = 0
for name in dir(mod):
    cls = getattr(mod, name)
    if not isinstance(cls, type) or not cls.__module__.startswith("corecache._"):
        continue
    for attr in sorted(vars(cls)):
        if attr in ("__new__", "__init_subclass__", "__class_getitem__", "__init__",
                    "__reduce_cython__", "__setstate_cython__"):
            continue
        for args in ARGS:
            try:
                obj = cls.__new__(cls)
            except TypeError:
                break                       # cannot be made at all: fine
            try:
                fn = getattr(obj, attr)
                if callable(fn):
                    fn(*args)
            except Exception:
                pass
            checked += 1
    # and calling the object itself, and iterating it
    for args in ARGS:
        try:
            obj = cls.__new__(cls)
            obj(*args)
        except Exception:
            pass
    try:
        for _ in cls.__new__(cls):
            break
    except Exception:
        pass
print("checked", checked)
'''


@pytest.mark.c_extension
@pytest.mark.parametrize("module", ["lru", "pool", "chunk"])
def test_every_compiled_type_survives_use_without_init(module):
    from corecache import _impl
    if _impl.compiled_module(module) is None:
        pytest.skip("no compiled module")
    r = subprocess.run([sys.executable, "-c", SCRIPT, module], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.split()[-1]) > 20


def test_lru_cache_wrapper_made_with_new_alone_is_a_type_error():
    from corecache import _impl
    mod = _impl.compiled_module("lru")
    if mod is None:
        pytest.skip("no compiled module")
    W = type(mod.lru_cache(lambda x: x))
    with pytest.raises(TypeError, match="not initialized"):
        W.__new__(W)(1)


@pytest.mark.parametrize("skip", [-5, 2, 10 ** 30, 1.0, "1", None])
def test_wrapper_skip_is_checked(impl, skip):
    from corecache import _impl
    W = _impl.pure_module("lru")._lru_cache_wrapper if impl.name == "py" else \
        type(impl.lru_cache(lambda x: x))
    with pytest.raises(ValueError, match="skip must be 0 or 1"):
        W(lambda *a: a, 10, False, skip=skip)


def test_an_acquire_context_made_with_new_alone_is_a_type_error(impl):
    L = type(impl.ObjectPool(object).acquire())
    with pytest.raises(TypeError, match="not made by ObjectPool.acquire"):
        L.__new__(L).__enter__()


def test_a_pool_subclass_that_skips_init_gets_a_clear_error(impl):
    class Pool(impl.ObjectPool):
        def __init__(self) -> None:
            pass
    p = Pool()
    with pytest.raises(TypeError, match="was not initialized"):
        p.get()
    with pytest.raises(TypeError, match="was not initialized"):
        with p.acquire():
            pass
