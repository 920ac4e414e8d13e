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

import functools
import threading
import weakref
from types import MethodType
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

from ._flight import AsyncSingleFlight
from ._checks import check_callable, check_memory_limit_mb, check_ttl

_MISSING = object()
_CO_COROUTINE = 0x80         # inspect.CO_COROUTINE, without importing inspect


def is_async(fn: Any) -> bool:
    """Whether calling ``fn`` makes a coroutine: what inspect.iscoroutinefunction
    says, read from the code flags, so that recognising an ``async def``
    imports neither inspect nor asyncio."""
    while True:
        if getattr(fn, "_is_coroutine_marker", None) is not None:   # markcoroutinefunction
            return True
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif isinstance(fn, MethodType):
            fn = fn.__func__
        else:
            break
    code = getattr(fn, "__code__", None)
    return code is not None and bool(getattr(code, "co_flags", 0) & _CO_COROUTINE)


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
    def compute() -> Any:
        # another thread may have stored it between our miss and now
        value = wrapper._peek(key, h, _MISSING)
        if value is _MISSING:
            value = wrapper._func(*args, **kwargs)
            wrapper._store(key, h, value)
        return value
    return wrapper._flight.run(key, compute)


def _async_wrapper(build: Callable[..., Any], user_function: Callable[..., Any],
                   maxsize: Any, typed: Any, extras: Dict[str, Any],
                   skip: int = 0) -> Callable[..., Any]:
    """Cache the awaited results of a coroutine function (the first `skip`
    arguments are not part of the key: a method's self).

    Concurrent awaiters of one key (in one event loop) share one computation
    (AsyncSingleFlight); exceptions and cancellations are not cached.
    """
    extras = dict(extras, single_flight=False)
    inner = build(user_function, maxsize, typed, **extras)
    flight = AsyncSingleFlight("lru_cache: the awaited call")

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        hit, found = inner._lookup(args[skip:] if skip else args, kwargs)
        if hit:
            return found
        key, h = found

        async def compute() -> Any:
            value = await user_function(*args, **kwargs)
            inner._store(key, h, value)
            return value
        return await flight.run(key, compute)

    for name in ("cache_info", "cache_clear", "cache_stats", "cache_invalidate", "cache_evict"):
        setattr(wrapper, name, getattr(inner, name))

    def cache_pause_writes() -> None:
        inner.cache_pause_writes()
        wrapper.cache_writes_paused = True     # type: ignore[attr-defined]

    def cache_resume_writes() -> None:
        inner.cache_resume_writes()
        wrapper.cache_writes_paused = False    # type: ignore[attr-defined]

    wrapper.cache_pause_writes = cache_pause_writes      # type: ignore[attr-defined]
    wrapper.cache_resume_writes = cache_resume_writes    # type: ignore[attr-defined]
    wrapper.cache_writes_paused = False                  # type: ignore[attr-defined]
    return wrapper


def policy_wrapper(cache_cls: Any, policy: str, user_function: Callable[..., Any],
                   maxsize: int, typed: Any, *, ttl: Optional[float] = None,
                   memory_limit_mb: Optional[float] = None, single_flight: bool = False,
                   clock: Optional[Callable[[], float]] = None, skip: int = 0) -> Any:
    """The wrapper of ``lru_cache(maxsize, policy=...)`` for a policy other
    than LRU: functools' keys over a ``Cache(maxsize, policy=policy)``, with
    the same API as the LRU wrappers (a Python frame per call: the LRU
    wrapper's C call path is LRU's alone)."""
    from functools import _make_key     # type: ignore[attr-defined]
    try:
        from functools import _CacheInfo  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - functools always had it
        from collections import namedtuple
        _CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])
    from ._flight import SingleFlight
    from ._checks import check_count
    from .stats import CacheStats
    if not callable(user_function):
        raise TypeError("the first argument must be callable")
    c = cache_cls(maxsize, ttl, memory_limit_mb=memory_limit_mb, clock=clock, policy=policy)
    get = c.get
    rejected = [0]

    def store(key: Any, h: int, result: Any) -> None:
        if c.writes_paused:
            rejected[0] += 1
            return
        try:
            c[key] = result
        except ValueError:          # larger than the whole memory limit: not kept
            rejected[0] += 1

    def wrapper(*args: Any, **kwds: Any) -> Any:
        key = _make_key(args[skip:] if skip else args, kwds, typed)
        value = get(key, _MISSING)
        if value is not _MISSING:
            return value
        if single_flight:
            return single_flight_miss(wrapper, key, hash(key), args, kwds)
        result = user_function(*args, **kwds)
        store(key, 0, result)
        return result

    def make_key(args: tuple, kwargs: dict) -> Tuple[Any, int]:
        key = _make_key(args, kwargs, typed)
        return key, hash(key)

    def lookup(args: tuple, kwargs: dict) -> Tuple[bool, Any]:
        key, h = make_key(args, kwargs)
        value = get(key, _MISSING)
        if value is not _MISSING:
            return True, value
        return False, (key, h)

    def cache_info() -> Any:
        """Report cache statistics"""
        s = c.stats()
        return _CacheInfo(s.hits, s.misses, maxsize, s.size)

    def cache_clear() -> None:
        """Clear the cache and cache statistics"""
        c.clear()
        c.reset_stats()
        rejected[0] = 0

    def cache_stats() -> Any:
        s = c.stats()
        return CacheStats(s.hits, s.misses, s.evictions, s.expirations, s.size, maxsize,
                          s.memory_bytes, s.memory_limit_bytes, rejected[0])

    def cache_pause_writes() -> None:
        c.pause_writes()
        wrapper.cache_writes_paused = True             # type: ignore[attr-defined]

    def cache_resume_writes() -> None:
        c.resume_writes()
        wrapper.cache_writes_paused = False            # type: ignore[attr-defined]

    def discard(key: Any, h: int) -> bool:
        return c.pop(key, _MISSING) is not _MISSING

    wrapper.cache_info = cache_info                     # type: ignore[attr-defined]
    wrapper.cache_clear = cache_clear                   # type: ignore[attr-defined]
    wrapper.cache_stats = cache_stats                   # type: ignore[attr-defined]
    wrapper.cache_invalidate = lambda *a, **k: discard(*make_key(a, k))  # type: ignore
    wrapper.cache_evict = lambda n: c.evict(check_count(n, "n"))  # type: ignore
    wrapper.cache_pause_writes = cache_pause_writes     # type: ignore[attr-defined]
    wrapper.cache_resume_writes = cache_resume_writes   # type: ignore[attr-defined]
    wrapper.cache_writes_paused = False                 # type: ignore[attr-defined]
    wrapper._make_key = make_key                        # type: ignore[attr-defined]
    wrapper._lookup = lookup                            # type: ignore[attr-defined]
    wrapper._peek = lambda key, h, default=None: c.peek(key, default)  # type: ignore
    wrapper._store = store                              # type: ignore[attr-defined]
    wrapper._discard = discard                          # type: ignore[attr-defined]
    wrapper._flight = SingleFlight("single_flight: the call")  # type: ignore[attr-defined]
    wrapper._func = user_function                       # type: ignore[attr-defined]
    wrapper._cache = c                                  # type: ignore[attr-defined]
    wrapper._check = c._check                           # type: ignore[attr-defined]
    return wrapper


class _CacheSlot:
    """What an instance's ``__dict__`` holds for one cached method: the cache
    and the identity of the instance it belongs to.  Copying and pickling
    an instance do not carry its cache over: a (deep) copy of the slot is
    an empty one, and so is an unpickled one."""

    __slots__ = ("owner", "cache")

    def __init__(self, owner: int = 0, cache: Any = None) -> None:
        self.owner = owner
        self.cache = cache

    def __copy__(self) -> "_CacheSlot":
        return _CacheSlot()

    def __deepcopy__(self, memo: Dict[int, Any]) -> "_CacheSlot":
        return _CacheSlot()

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_CacheSlot, ())


def make_api(lru_build: Callable[..., Any],
             cache_cls: Any = None) -> Tuple[Callable[..., Any], Callable[..., Any], type]:
    """lru_cache, cache and cached_method around the wrapper factory
    `lru_build`, and policy_wrapper over `cache_cls` for other policies."""

    def decorate(user_function: Any, maxsize: Any, typed: Any, extras: Dict[str, Any],
                 params: Dict[str, Any], policy: str = "lru") -> Any:
        if not callable(user_function):
            raise TypeError("the first argument must be callable")
        build = lru_build
        if policy != "lru" and maxsize:         # None (unbounded) and 0 evict nothing
            build = functools.partial(policy_wrapper, cache_cls, policy)
        if is_async(user_function):
            wrapper = _async_wrapper(build, user_function, maxsize, typed, extras)
        else:
            wrapper = build(user_function, maxsize, typed, **extras)
        wrapper.cache_parameters = lambda: dict(params)
        return functools.update_wrapper(wrapper, user_function)

    def lru_cache(maxsize: Any = 128, typed: Any = False, *, ttl: Optional[float] = None,
                  memory_limit_mb: Optional[float] = None, single_flight: bool = False,
                  clock: Optional[Callable[[], float]] = None, policy: str = "lru") -> Any:
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
        :param policy: the eviction policy, one of ``Cache.POLICIES``; LRU
            (the default) is functools'.  ``"adaptive"`` keeps what is used
            often as well as lately (see ``Cache``); its calls go through a
            Python frame over a ``Cache``.

        The decorated function also has ``cache_stats()`` (a CacheStats),
        ``cache_invalidate(*args, **kwargs)``, ``cache_evict(n)`` and
        ``cache_pause_writes()``/``cache_resume_writes()``.  ``async def``
        functions get an async wrapper that caches awaited results.
        """
        extras, given = _extras(ttl, memory_limit_mb, single_flight, clock)
        if policy not in cache_cls.POLICIES:
            raise ValueError(f"policy must be one of {cache_cls.POLICIES}, got {policy!r}")
        if policy != "lru":
            given["policy"] = policy
        if isinstance(maxsize, int):
            # Negative maxsize is treated as 0
            if maxsize < 0:
                maxsize = 0
        elif callable(maxsize) and isinstance(typed, bool):
            # The user_function was passed in directly via the maxsize argument
            user_function, maxsize = maxsize, 128
            return decorate(user_function, maxsize, typed, extras,
                            {"maxsize": maxsize, "typed": typed, **given}, policy)
        elif maxsize is not None:
            raise TypeError(f"Expected first argument (maxsize) to be an integer, a callable, "
                            f"or None, got {maxsize!r}")
        params = {"maxsize": maxsize, "typed": typed, **given}

        def decorating_function(user_function: Any) -> Any:
            return decorate(user_function, maxsize, typed, extras, params, policy)

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
        that instance's cache.  A copy, a deep copy or an unpickled instance
        starts with an empty cache of its own; ``Class.method(obj, x)`` is
        ``obj.method(x)``; an ``async def`` method caches awaited results.

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
                self._apply(func)

        def _apply(self, func: Any) -> "cached_method":
            if not callable(func):
                raise TypeError("the first argument must be callable")
            self.func = func
            functools.update_wrapper(self, func)
            return self

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if self.func is None:                  # @cached_method(...) applied
                if len(args) != 1 or kwargs:
                    raise TypeError("cached_method(...) takes the function to decorate")
                return self._apply(args[0])
            if not args:                           # Class.method() without an instance
                raise TypeError(f"{self.__qualname__}() needs the instance as its first "
                                f"argument")
            return self._cache_for(args[0])(*args, **kwargs)

        def __set_name__(self, owner: type, name: str) -> None:
            self.attrname = name

        def _new_cache(self) -> Any:
            extras = {"ttl": self.ttl, "memory_limit_mb": None, "single_flight": False,
                      "clock": None}
            if is_async(self.func):
                w = _async_wrapper(lru_build, self.func, self.maxsize, self.typed, extras, skip=1)
            else:
                w = lru_build(self.func, self.maxsize, self.typed, skip=1, **extras)
            return functools.update_wrapper(w, self.func)

        def _cache_for(self, instance: Any) -> Any:
            try:
                d = instance.__dict__
            except AttributeError:
                return self._slots_cache(instance)
            slot = "__corecache_" + (self.attrname or self.func.__name__)
            holder = d.get(slot)
            if holder is None or holder.owner != id(instance):
                # none yet, or one copied from another instance with its
                # __dict__ (copy.copy): this instance gets its own, made
                # under the lock so that threads calling first at once
                # share one cache
                with self._lock:
                    holder = d.get(slot)
                    if holder is None or holder.owner != id(instance):
                        holder = _CacheSlot(id(instance), self._new_cache())
                        d[slot] = holder
            return holder.cache

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
