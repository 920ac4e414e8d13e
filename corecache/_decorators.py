"""The decorator front-end shared by both implementations: lru_cache, cache
and cached_method are built around an implementation's wrapper factory
(the compiled ``_lru_cache_wrapper`` type, or the pure twin's closure
factory), which takes ``(user_function, maxsize, typed, *, ttl,
memory_limit_mb, single_flight, clock, skip)`` and returns the wrapped
function with functools' ``cache_info``/``cache_clear`` plus our
``cache_stats``, ``cache_invalidate``, ``cache_evict``,
``cache_pause_writes``/``cache_resume_writes`` and the private
``_lookup``/``_store``/``_peek``/``_make_key`` used here.

Argument handling copies functools.lru_cache line for line, so that a
program using none of the extras cannot tell the two apart.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import weakref
from types import MethodType
from typing import Any, Callable, Dict, Optional, Tuple

from ._common import Flight
from .config import check_callable, check_memory_limit_mb, check_ttl

_MISSING = object()


def _extras(ttl: Any, memory_limit_mb: Any, single_flight: Any,
            clock: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Validated extras for the wrapper factory, and those to report in
    cache_parameters() (only the ones actually given)."""
    check_ttl(ttl, "ttl")
    check_memory_limit_mb(memory_limit_mb)
    check_callable(clock, "clock")
    if not isinstance(single_flight, bool):
        raise TypeError(f"single_flight must be a bool, got {single_flight!r}")
    extras = {"ttl": ttl, "memory_limit_mb": memory_limit_mb,
              "single_flight": single_flight, "clock": clock}
    given = {k: v for k, v in extras.items() if v is not None and v is not False}
    return extras, given


def single_flight_miss(wrapper: Any, key: Any, h: int, args: tuple, kwargs: dict) -> Any:
    """The miss path of ``single_flight=True``: the first thread to miss a
    key computes it; the others wait for its value or its exception."""
    flights = wrapper._flights
    flight = Flight()
    winner = flights.setdefault(key, flight)
    if winner is not flight:
        if winner.owner == threading.get_ident():
            raise RuntimeError(
                f"single_flight: {getattr(wrapper, '__qualname__', wrapper)} called itself "
                f"with the same arguments while computing them (it would wait for itself)")
        return winner.wait()
    try:
        # another thread may have stored it between our miss and now
        value = wrapper._peek(key, h, _MISSING)
        if value is _MISSING:
            value = wrapper._func(*args, **kwargs)
            wrapper._store(key, h, value)
    except BaseException as exc:
        flights.pop(key, None)
        flight.fail(exc)
        raise
    flights.pop(key, None)
    flight.succeed(value)
    return value


class _AsyncFlight:
    __slots__ = ("loop", "task", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.task: Optional[asyncio.Task] = None
        self.waiters = 0


def _async_wrapper(build: Callable[..., Any], user_function: Callable[..., Any],
                   maxsize: Any, typed: Any, extras: Dict[str, Any]) -> Callable[..., Any]:
    """Cache the awaited results of a coroutine function.

    Concurrent awaiters of one key (in one event loop) share one computation,
    run as a task; an awaiter that is cancelled stops waiting, and the
    computation is cancelled when no awaiter is left.  Exceptions and
    cancellations are not cached.
    """
    extras = dict(extras, single_flight=False)
    inner = build(user_function, maxsize, typed, **extras)
    inflight: Dict[Any, _AsyncFlight] = {}

    async def compute(flight: _AsyncFlight, key: Any, h: int, args: tuple, kwargs: dict) -> Any:
        try:
            value = await user_function(*args, **kwargs)
        finally:
            if inflight.get(key) is flight:
                del inflight[key]
        inner._store(key, h, value)
        return value

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        hit, found = inner._lookup(args, kwargs)
        if hit:
            return found
        key, h = found
        loop = asyncio.get_running_loop()
        flight = inflight.get(key)
        if flight is None or flight.loop is not loop:
            flight = _AsyncFlight(loop)
            inflight[key] = flight
            flight.task = loop.create_task(compute(flight, key, h, args, kwargs))
        task = flight.task
        flight.waiters += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done() and flight.waiters == 1:
                task.cancel()       # the last awaiter gave up
            raise
        finally:
            flight.waiters -= 1

    for name in ("cache_info", "cache_clear", "cache_stats", "cache_invalidate", "cache_evict",
                 "cache_pause_writes", "cache_resume_writes"):
        setattr(wrapper, name, getattr(inner, name))
    return wrapper


def make_api(build: Callable[..., Any]) -> Tuple[Callable[..., Any], Callable[..., Any], type]:
    """lru_cache, cache and cached_method around the wrapper factory `build`."""

    def decorate(user_function: Any, maxsize: Any, typed: Any, extras: Dict[str, Any],
                 params: Dict[str, Any]) -> Any:
        if not callable(user_function):
            raise TypeError("the first argument must be callable")
        if inspect.iscoroutinefunction(user_function):
            wrapper = _async_wrapper(build, user_function, maxsize, typed, extras)
        else:
            wrapper = build(user_function, maxsize, typed, **extras)
        wrapper.cache_parameters = lambda: dict(params)
        return functools.update_wrapper(wrapper, user_function)

    def lru_cache(maxsize: Any = 128, typed: Any = False, *, ttl: Optional[float] = None,
                  memory_limit_mb: Optional[float] = None, single_flight: bool = False,
                  clock: Optional[Callable[[], float]] = None) -> Any:
        """Least-recently-used cache decorator, a drop-in for functools.lru_cache.

        If *maxsize* is set to None, the LRU features are disabled and the
        cache can grow without bound.  If *typed* is True, arguments of
        different types are cached separately (f(3.0) and f(3) are distinct
        calls).  Arguments to the cached function must be hashable.

        View the cache statistics named tuple (hits, misses, maxsize,
        currsize) with f.cache_info().  Clear the cache and statistics with
        f.cache_clear().  Access the underlying function with f.__wrapped__.

        What functools lacks:

        :param ttl: seconds a result stays valid; expired results are
            recomputed, never returned.
        :param memory_limit_mb: keep the cached results within this many MiB
            (``sys.getsizeof`` of key and result); a result larger than the
            whole limit is returned but not kept.
        :param single_flight: threads that miss the same key at once wait for
            one computation instead of each computing it.
        :param clock: zero-argument callable of monotonic seconds (tests).

        The decorated function also has ``cache_stats()`` (a CacheStats),
        ``cache_invalidate(*args, **kwargs)``, ``cache_evict(n)`` and
        ``cache_pause_writes()``/``cache_resume_writes()``.  ``async def``
        functions get an async wrapper that caches awaited results.
        """
        extras, given = _extras(ttl, memory_limit_mb, single_flight, clock)
        if isinstance(maxsize, int):
            # Negative maxsize is treated as 0
            if maxsize < 0:
                maxsize = 0
        elif callable(maxsize) and isinstance(typed, bool):
            # The user_function was passed in directly via the maxsize argument
            user_function, maxsize = maxsize, 128
            return decorate(user_function, maxsize, typed, extras,
                            {"maxsize": maxsize, "typed": typed, **given})
        elif maxsize is not None:
            raise TypeError("Expected first argument to be an integer, a callable, or None")
        params = {"maxsize": maxsize, "typed": typed, **given}

        def decorating_function(user_function: Any) -> Any:
            return decorate(user_function, maxsize, typed, extras, params)

        return decorating_function

    def cache(user_function: Any, /) -> Any:
        'Simple lightweight unbounded cache.  Sometimes called "memoize".'
        return lru_cache(maxsize=None)(user_function)

    class cached_method:
        """Cache a method's results per instance, without keeping instances alive.

        ``@cached_method`` or ``@cached_method(maxsize=128, ttl=None, typed=False)``.
        Each instance gets its own cache, keyed by the arguments after
        ``self`` and held by the instance itself (in its ``__dict__``), so
        an instance with cached results is collected like any other.
        ``obj.method.cache_info()`` (and the other cache methods) speak of
        that instance's cache.

        Classes with ``__slots__`` and no ``__dict__`` must have a
        ``__weakref__`` slot: their instances' caches are then kept in a
        table keyed by identity, and dropped when the instance dies.
        Without either, the first call raises TypeError saying so.
        """

        def __init__(self, maxsize: Any = 128, *, ttl: Optional[float] = None,
                     typed: bool = False) -> None:
            func = None
            if callable(maxsize):
                func, maxsize = maxsize, 128
            if maxsize is not None and not isinstance(maxsize, int):
                raise TypeError(f"maxsize must be an int or None, got {maxsize!r}")
            check_ttl(ttl, "ttl")
            self.maxsize = maxsize
            self.ttl = ttl
            self.typed = typed
            self.func: Any = None
            self.attrname: Optional[str] = None
            self._lock = threading.Lock()
            self._by_id: Dict[int, Tuple[Any, Any]] = {}
            if func is not None:
                self(func)

        def __call__(self, func: Any) -> "cached_method":
            if self.func is not None:
                raise TypeError("cached_method is already applied to a function")
            if not callable(func):
                raise TypeError("the first argument must be callable")
            self.func = func
            functools.update_wrapper(self, func)
            return self

        def __set_name__(self, owner: type, name: str) -> None:
            self.attrname = name

        def _new_cache(self) -> Any:
            w = build(self.func, self.maxsize, self.typed, ttl=self.ttl,
                      memory_limit_mb=None, single_flight=False, clock=None, skip=1)
            return functools.update_wrapper(w, self.func)

        def _cache_for(self, instance: Any) -> Any:
            try:
                d = instance.__dict__
            except AttributeError:
                return self._slots_cache(instance)
            slot = "__corecache_" + (self.attrname or self.func.__name__)
            w = d.get(slot)
            if w is None:
                w = d.setdefault(slot, self._new_cache())
            return w

        def _slots_cache(self, instance: Any) -> Any:
            key = id(instance)
            entry = self._by_id.get(key)
            if entry is not None and entry[0]() is instance:
                return entry[1]
            by_id = self._by_id

            def forget(_ref: Any, key: int = key) -> None:
                by_id.pop(key, None)

            try:
                ref = weakref.ref(instance, forget)
            except TypeError:
                cls = type(instance).__name__
                raise TypeError(
                    f"cached_method needs instances with a __dict__ or a __weakref__ slot; "
                    f"add '__weakref__' to {cls}.__slots__") from None
            with self._lock:
                entry = by_id.get(key)
                if entry is None or entry[0]() is not instance:
                    entry = (ref, self._new_cache())
                    by_id[key] = entry
            return entry[1]

        def __get__(self, instance: Any, owner: Any = None) -> Any:
            if instance is None:
                return self
            if self.func is None:
                raise TypeError("cached_method was never applied to a function")
            return MethodType(self._cache_for(instance), instance)

    return lru_cache, cache, cached_method
