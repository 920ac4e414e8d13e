"""Stores: where the distributed patterns keep values.

:class:`Store` is the interface every pattern talks to.  Its public methods
(``get``, ``set``, ``delete``, ``get_many``, ``set_many``, ``delete_many``,
``get_with_ttl``, ``clear``, ``close``) take user keys and values; the
underscored primitives below them take normalized keys and serialized bytes
and are what the patterns use (locks, the write-behind queue, invalidation
messages).  Two implementations: :class:`MemoryStore` here, inside the
process, and ``RedisStore`` (``redis_store.py``).

Keys are ``str`` (an ``int`` is accepted and means its decimal string: 42
and "42" name the same entry).  TTLs: ``None`` means the store's
``default_ttl``; ``math.inf`` means no expiry; otherwise seconds, kept with
millisecond precision and set atomically with the value.
"""
from __future__ import annotations

import abc
import heapq
import json
import logging
import math
import secrets
import threading
from collections import OrderedDict
from time import monotonic
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ..config import check_callable, check_ttl
from .serializers import CorruptValue, resolve_serializer

__all__ = ["MemoryStore", "Store", "norm_key"]

log = logging.getLogger("corecache.distributed")

MISSING: Any = object()


def norm_key(key: Any) -> str:
    """A user key as the str the stores use."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return int.__repr__(key)
    raise TypeError(f"key must be a str or an int, got {type(key).__name__}: {key!r}")


def check_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a non-empty str, got {namespace!r}")
    # braces would make a hash tag of it; '#' starts the names of internal keys
    if not namespace or any(c in namespace for c in "{}#"):
        raise ValueError(f"namespace must be a non-empty str without '{{', '}}' or '#', "
                         f"got {namespace!r}")
    return namespace


def ttl_ms(ttl: Optional[float]) -> Optional[int]:
    """Seconds (None or inf: no expiry) as whole milliseconds, at least 1."""
    if ttl is None or ttl == math.inf:
        return None
    return max(1, math.ceil(ttl * 1000))


_quote = json.encoder.encode_basestring   # C-accelerated: a str as a JSON string


def invalidation_message(origin: Optional[str], keys: Optional[List[str]]) -> bytes:
    """What goes on the invalidation channel, as JSON: the writer's id and
    the keys (null: every key of the namespace).  Built by hand: it is on
    every write's path."""
    o = "null" if origin is None else _quote(origin)
    k = "null" if keys is None else "[" + ",".join(map(_quote, keys)) + "]"
    return ('{"o":' + o + ',"k":' + k + "}").encode("utf-8", "surrogatepass")


def parse_invalidation(data: bytes) -> Tuple[Optional[str], Optional[List[str]]]:
    msg = json.loads(data)
    return msg.get("o"), msg.get("k")


class Store(abc.ABC):
    """The interface of a store; see the module docstring."""

    def __init__(self, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None) -> None:
        self._namespace = check_namespace(namespace)
        self._serializer = resolve_serializer(serializer, secret_key)
        self._dumps = self._serializer.dumps
        self._loads = self._serializer.loads
        self._loads_many = getattr(self._serializer, "loads_many", None)
        ttl = check_ttl(default_ttl, "default_ttl")
        self._default_ttl = None if ttl == math.inf else ttl
        self._corrupt = 0
        self._corrupt_lock = threading.Lock()

    # ---- configuration -----------------------------------------------------

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def serializer(self) -> Any:
        return self._serializer

    @property
    def default_ttl(self) -> Optional[float]:
        return self._default_ttl

    @property
    def corrupt(self) -> int:
        """How many stored values the serializer refused so far."""
        return self._corrupt

    def resolve_ttl(self, ttl: Any, name: str = "ttl") -> Optional[int]:
        """A ``ttl=`` argument as milliseconds (None: no expiry)."""
        if ttl is None:
            return ttl_ms(self._default_ttl)
        return ttl_ms(check_ttl(ttl, name))

    # ---- values ------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        """The serialized value; TypeError if the serializer cannot take it."""
        data = self._dumps(value)
        if not isinstance(data, bytes):
            if isinstance(data, (bytearray, memoryview)):
                return bytes(data)
            if isinstance(data, str):
                return data.encode("utf-8")
            raise TypeError(f"serializer {self._serializer!r} returned "
                            f"{type(data).__name__}, not bytes")
        return data

    def decode(self, key: str, data: bytes) -> Any:
        """The value of stored bytes, or MISSING (logged) if refused."""
        try:
            return self._loads(data)
        except Exception as exc:
            with self._corrupt_lock:
                self._corrupt += 1
            reason = exc if isinstance(exc, CorruptValue) else repr(exc)
            log.warning("corecache: discarding the stored value of key %r in namespace "
                        "%r: %s", key, self._namespace, reason)
            return MISSING

    def decode_many(self, keys: List[str], datas: List[Optional[bytes]]) -> List[Any]:
        """decode() of each present value (MISSING for None), in one parse
        when the serializer can (JSON)."""
        present = [d for d in datas if d is not None]
        if self._loads_many is not None and len(present) > 1:
            try:
                values = self._loads_many(present)
            except Exception:
                values = None   # some value is bad: find it one by one
            if values is not None and len(values) == len(present):
                it = iter(values)
                return [MISSING if d is None else next(it) for d in datas]
        return [MISSING if d is None else self.decode(k, d) for k, d in zip(keys, datas)]

    # ---- public API --------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of key, or ``default`` if absent (or refused by the serializer)."""
        k = norm_key(key)
        data = self._fetch(k)
        if data is None:
            return default
        value = self.decode(k, data)
        return default if value is MISSING else value

    def get_with_ttl(self, key: Any, default: Any = None) -> Tuple[Any, Optional[float]]:
        """(value, seconds left or None for no expiry); (default, None) if absent."""
        k = norm_key(key)
        data, left = self._fetch_ttl(k)
        if data is None:
            return default, None
        value = self.decode(k, data)
        return (default, None) if value is MISSING else (value, left)

    def set(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Store value under key (TTL set atomically with it)."""
        k = norm_key(key)
        self._put(k, self.encode(value), self.resolve_ttl(ttl), None)

    def delete(self, key: Any) -> bool:
        """Remove key; True if it was there."""
        return self._remove(norm_key(key), None)

    def get_many(self, keys: Iterable[Any]) -> Dict[str, Any]:
        """{key: value} for the keys that are present (one round trip)."""
        ks = list(dict.fromkeys(norm_key(k) for k in keys))
        out: Dict[str, Any] = {}
        if not ks:
            return out
        for k, value in zip(ks, self.decode_many(ks, self._fetch_many(ks))):
            if value is not MISSING:
                out[k] = value
        return out

    def set_many(self, mapping: Mapping[Any, Any], ttl: Optional[float] = None) -> None:
        """Store every (key, value) of mapping (one round trip)."""
        items = _items(mapping)
        encoded = [(norm_key(k), self.encode(v)) for k, v in items]
        if encoded:
            self._put_many(encoded, self.resolve_ttl(ttl), None)

    def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove keys; returns how many were there (one round trip)."""
        ks = list(dict.fromkeys(norm_key(k) for k in keys))
        return self._remove_many(ks, None) if ks else 0

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every entry of this namespace (not its pending writes)."""

    def close(self) -> None:
        """Release what the store holds (a client it built itself)."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- primitives for the patterns (normalized keys, bytes) -------------

    @abc.abstractmethod
    def _fetch(self, key: str) -> Optional[bytes]: ...

    @abc.abstractmethod
    def _fetch_many(self, keys: List[str]) -> List[Optional[bytes]]: ...

    @abc.abstractmethod
    def _fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]: ...

    @abc.abstractmethod
    def _fetch_ttls(self, keys: List[str]) -> Dict[str, Optional[float]]:
        """{key: seconds left, None for no expiry} of the keys present."""

    @abc.abstractmethod
    def _put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None: ...

    @abc.abstractmethod
    def _put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                  origin: Optional[str]) -> None: ...

    @abc.abstractmethod
    def _remove(self, key: str, origin: Optional[str]) -> bool: ...

    @abc.abstractmethod
    def _remove_many(self, keys: List[str], origin: Optional[str]) -> int: ...

    # locks: kind is "load" or "refresh"; lease in seconds
    @abc.abstractmethod
    def _lock(self, kind: str, key: str, lease: float) -> Optional[str]: ...

    @abc.abstractmethod
    def _unlock(self, kind: str, key: str, token: str) -> bool: ...

    @abc.abstractmethod
    def _lock_many(self, kind: str, keys: List[str], lease: float) -> Dict[str, str]: ...

    @abc.abstractmethod
    def _unlock_many(self, kind: str, tokens: Dict[str, str]) -> None: ...

    @abc.abstractmethod
    def _fetch_locked(self, keys: List[str]) -> Tuple[List[Optional[bytes]], List[bool]]:
        """The keys' values and whether each one's load lock is held."""

    # write-behind: records are b"v" + data (a value) or b"d" (a delete)
    @abc.abstractmethod
    def _wb_enqueue(self, key: str, record: bytes, ttl: Optional[int], max_pending: int,
                    origin: Optional[str]) -> Tuple[bool, int, bool]:
        """(accepted, keys pending, the key was not pending before)."""

    @abc.abstractmethod
    def _wb_claim(self, consumer: str, n: int,
                  lease: float) -> Tuple[List[Tuple[str, bytes]], int, int]: ...

    @abc.abstractmethod
    def _wb_ack(self, consumer: str, items: List[Tuple[str, bytes]]) -> Tuple[int, int]: ...

    @abc.abstractmethod
    def _wb_renew(self, consumer: str, keys: List[str], lease: float) -> List[str]: ...

    @abc.abstractmethod
    def _wb_release(self, consumer: str, keys: List[str]) -> None: ...

    @abc.abstractmethod
    def _wb_records(self, keys: List[str]) -> List[Optional[bytes]]: ...

    @abc.abstractmethod
    def _wb_count(self) -> int: ...

    @abc.abstractmethod
    def _subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        """Deliver invalidations to callback(event, origin, keys) with event
        "up", "down" or "keys" (keys None: all).  Returns a handle with
        close()."""


def _items(mapping: Any) -> List[Tuple[Any, Any]]:
    if hasattr(mapping, "items"):
        return list(mapping.items())
    raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")


# ---- MemoryStore ------------------------------------------------------------


class _Subscription:
    def __init__(self, store: "MemoryStore", callback: Callable[..., None]) -> None:
        self._store = store
        self.callback = callback
        self.up = True

    def close(self) -> None:
        self._store._unsubscribe(self)


class MemoryStore(Store):
    """A store inside this process, with the interface and semantics of
    ``RedisStore``: serialized values, TTLs, locks with leases, a
    write-behind queue and invalidation messages (delivered synchronously to
    the subscribers in this process).  Nothing survives the process, so
    write-behind durability ends with it.

    :param namespace: a label (stores do not share entries in memory).
    :param serializer: "json" (default), "pickle" (with ``secret_key``),
        "raw", or an object with ``dumps``/``loads``.
    :param secret_key: the HMAC key of the pickle serializer.
    :param default_ttl: seconds an entry lives when ``set`` gives no TTL.
    :param clock: a zero-argument callable of monotonic seconds (tests).
    """

    def __init__(self, *, namespace: str = "corecache", serializer: Any = "json",
                 secret_key: Any = None, default_ttl: Optional[float] = None,
                 clock: Optional[Callable[[], float]] = None) -> None:
        super().__init__(namespace=namespace, serializer=serializer, secret_key=secret_key,
                         default_ttl=default_ttl)
        check_callable(clock, "clock")
        self._clock = clock or monotonic
        self._mutex = threading.RLock()
        self._data: Dict[str, Tuple[bytes, float]] = {}
        self._expiry: List[Tuple[float, str]] = []   # (deadline, key), may be stale
        self._locks: Dict[Tuple[str, str], Tuple[str, float]] = {}
        self._pending: Dict[str, bytes] = {}
        self._queue: "OrderedDict[str, None]" = OrderedDict()
        self._claims: Dict[str, Tuple[str, float]] = {}   # key -> (consumer, deadline)
        self._subs: List[_Subscription] = []

    def __repr__(self) -> str:
        return f"MemoryStore(namespace={self._namespace!r}, size={len(self._data)})"

    # ---- storage -----------------------------------------------------------

    def _live(self, key: str, now: float) -> Optional[Tuple[bytes, float]]:
        entry = self._data.get(key)
        if entry is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _store(self, key: str, data: bytes, ttl: Optional[int], now: float) -> None:
        deadline = math.inf if ttl is None else now + ttl / 1000.0
        self._data[key] = (data, deadline)
        if deadline != math.inf:
            heapq.heappush(self._expiry, (deadline, key))
        # drop expired entries now and then, so that unread ones do not pile up
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, k = heapq.heappop(expiry)
            entry = self._data.get(k)
            if entry is not None and entry[1] <= now:
                del self._data[k]

    def _notify(self, origin: Optional[str], keys: Optional[List[str]]) -> None:
        with self._mutex:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.callback("keys", origin, keys)
            except Exception:  # a subscriber's failure is its own
                log.exception("corecache: invalidation callback failed")

    def _fetch(self, key: str) -> Optional[bytes]:
        with self._mutex:
            entry = self._live(key, self._clock())
        return None if entry is None else entry[0]

    def _fetch_many(self, keys: List[str]) -> List[Optional[bytes]]:
        now = self._clock()
        with self._mutex:
            entries = [self._live(k, now) for k in keys]
        return [None if e is None else e[0] for e in entries]

    def _fetch_ttl(self, key: str) -> Tuple[Optional[bytes], Optional[float]]:
        now = self._clock()
        with self._mutex:
            entry = self._live(key, now)
        if entry is None:
            return None, None
        return entry[0], (None if entry[1] == math.inf else entry[1] - now)

    def _fetch_ttls(self, keys: List[str]) -> Dict[str, Optional[float]]:
        now = self._clock()
        out: Dict[str, Optional[float]] = {}
        with self._mutex:
            for k in keys:
                entry = self._live(k, now)
                if entry is not None:
                    out[k] = None if entry[1] == math.inf else entry[1] - now
        return out

    def _put(self, key: str, data: bytes, ttl: Optional[int], origin: Optional[str]) -> None:
        now = self._clock()
        with self._mutex:
            self._store(key, data, ttl, now)
        self._notify(origin, [key])

    def _put_many(self, items: List[Tuple[str, bytes]], ttl: Optional[int],
                  origin: Optional[str]) -> None:
        now = self._clock()
        with self._mutex:
            for k, data in items:
                self._store(k, data, ttl, now)
        self._notify(origin, [k for k, _ in items])

    def _remove(self, key: str, origin: Optional[str]) -> bool:
        now = self._clock()
        with self._mutex:
            found = self._live(key, now) is not None
            self._data.pop(key, None)
        self._notify(origin, [key])
        return found

    def _remove_many(self, keys: List[str], origin: Optional[str]) -> int:
        now = self._clock()
        with self._mutex:
            n = 0
            for k in keys:
                if self._live(k, now) is not None:
                    n += 1
                    del self._data[k]
        self._notify(origin, keys)
        return n

    def clear(self) -> None:
        with self._mutex:
            self._data.clear()
            self._expiry.clear()
        self._notify(None, None)

    def __len__(self) -> int:
        now = self._clock()
        with self._mutex:
            return sum(1 for _, d in self._data.values() if d > now)

    # ---- locks -------------------------------------------------------------

    def _lock(self, kind: str, key: str, lease: float) -> Optional[str]:
        token = secrets.token_hex(16)
        now = self._clock()
        with self._mutex:
            held = self._locks.get((kind, key))
            if held is not None and held[1] > now:
                return None
            self._locks[(kind, key)] = (token, now + lease)
        return token

    def _unlock(self, kind: str, key: str, token: str) -> bool:
        with self._mutex:
            held = self._locks.get((kind, key))
            if held is not None and held[0] == token:
                del self._locks[(kind, key)]
                return True
        return False

    def _lock_many(self, kind: str, keys: List[str], lease: float) -> Dict[str, str]:
        out = {}
        for k in keys:
            token = self._lock(kind, k, lease)
            if token is not None:
                out[k] = token
        return out

    def _unlock_many(self, kind: str, tokens: Dict[str, str]) -> None:
        for k, token in tokens.items():
            self._unlock(kind, k, token)

    def _fetch_locked(self, keys: List[str]) -> Tuple[List[Optional[bytes]], List[bool]]:
        now = self._clock()
        with self._mutex:
            datas = [self._live(k, now) for k in keys]
            locked = []
            for k in keys:
                held = self._locks.get(("load", k))
                locked.append(held is not None and held[1] > now)
        return [None if d is None else d[0] for d in datas], locked

    # ---- write-behind queue ------------------------------------------------

    def _wb_enqueue(self, key: str, record: bytes, ttl: Optional[int], max_pending: int,
                    origin: Optional[str]) -> Tuple[bool, int, bool]:
        now = self._clock()
        with self._mutex:
            new = key not in self._pending
            if new and max_pending and len(self._pending) >= max_pending:
                return False, len(self._pending), new
            self._pending[key] = record
            if new and key not in self._claims:
                self._queue.setdefault(key, None)
            if record[:1] == b"v":
                self._store(key, record[1:], ttl, now)
            else:
                self._data.pop(key, None)
            n = len(self._pending)
        self._notify(origin, [key])
        return True, n, new

    def _reclaim(self, now: float) -> int:
        expired = [k for k, (_, d) in self._claims.items() if d <= now]
        for k in reversed(expired):
            del self._claims[k]
            if k in self._pending:
                self._queue[k] = None
                self._queue.move_to_end(k, last=False)
        return len(expired)

    def _wb_claim(self, consumer: str, n: int,
                  lease: float) -> Tuple[List[Tuple[str, bytes]], int, int]:
        now = self._clock()
        with self._mutex:
            reclaimed = self._reclaim(now)
            out = []
            while self._queue and len(out) < n:
                k, _ = self._queue.popitem(last=False)
                record = self._pending.get(k)
                if record is None:
                    continue
                self._claims[k] = (consumer, now + lease)
                out.append((k, record))
            return out, len(self._pending), reclaimed

    def _wb_ack(self, consumer: str, items: List[Tuple[str, bytes]]) -> Tuple[int, int]:
        done = 0
        with self._mutex:
            for k, record in items:
                claim = self._claims.get(k)
                current = self._pending.get(k)
                if claim is not None and claim[0] == consumer:
                    del self._claims[k]
                    if current == record:
                        del self._pending[k]
                        done += 1
                    elif current is not None:
                        self._queue.setdefault(k, None)
                elif current == record:
                    del self._pending[k]
                    done += 1
            return done, len(self._pending)

    def _wb_renew(self, consumer: str, keys: List[str], lease: float) -> List[str]:
        now = self._clock()
        held = []
        with self._mutex:
            for k in keys:
                claim = self._claims.get(k)
                if claim is not None and claim[0] == consumer:
                    self._claims[k] = (consumer, now + lease)
                    held.append(k)
        return held

    def _wb_release(self, consumer: str, keys: List[str]) -> None:
        with self._mutex:
            for k in reversed(keys):
                claim = self._claims.get(k)
                if claim is not None and claim[0] == consumer:
                    del self._claims[k]
                    if k in self._pending:
                        self._queue[k] = None
                        self._queue.move_to_end(k, last=False)

    def _wb_records(self, keys: List[str]) -> List[Optional[bytes]]:
        with self._mutex:
            return [self._pending.get(k) for k in keys]

    def _wb_count(self) -> int:
        with self._mutex:
            return len(self._pending)

    # ---- invalidation ------------------------------------------------------

    def _subscribe(self, callback: Callable[..., None], *, heartbeat: float = 1.0) -> Any:
        sub = _Subscription(self, callback)
        with self._mutex:
            self._subs.append(sub)
        callback("up", None, None)
        return sub

    def _unsubscribe(self, sub: _Subscription) -> None:
        with self._mutex:
            if sub in self._subs:
                self._subs.remove(sub)

