"""The distributed layer's shared vocabulary, the same for its synchronous
and asyncio styles (no I/O here): keys, TTLs, invalidation messages, fill
lock states, write-behind records, the fill guard of a coherent local tier,
and the argument checks of the patterns.  See stores.py for the protocol
these serve."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from typing import Any, Dict, List, Optional, Tuple

from ..config import check_seconds

__all__ = ["MISSING", "FillGuard", "norm_key", "storable", "write_key", "unstorable",
           "check_namespace", "ttl_ms", "lease_ms", "sha1", "invalidation_message",
           "parse_invalidation", "LOCK_FAILURE_TTL", "lock_holder", "lock_failure",
           "FENCE_WINDOW_LEASES", "DONE_LIST_TTL", "parse_record", "make_record",
           "parse_done", "check_local", "check_lease", "min_ttl", "never", "failure_text",
           "mapping_items"]

log = logging.getLogger("corecache.distributed")

MISSING: Any = object()

# ---- keys ------------------------------------------------------------------


def norm_key(key: Any) -> str:
    """A user key as the str the stores use."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return int.__repr__(key)
    raise TypeError(f"key must be a str or an int, got {type(key).__name__}: {key!r}")


def storable(key: str) -> bool:
    """True if a normalized key can name a stored entry (it is valid
    UTF-8: no lone surrogate)."""
    if key.isascii():
        return True
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_key(key: Any) -> str:
    """A user key for a write: normalized, and storable or a ValueError
    naming it."""
    k = norm_key(key)
    if not storable(k):
        raise unstorable(k)
    return k


def unstorable(key: str) -> ValueError:
    bad = next((i for i, c in enumerate(key) if 0xD800 <= ord(c) <= 0xDFFF), -1)
    return ValueError(f"key {key!r} cannot be stored: it is not valid UTF-8 (a lone "
                      f"surrogate {key[bad]!r} at index {bad})")


def check_namespace(namespace: Any) -> str:
    """A namespace: non-empty, valid UTF-8, without ':' (which ends it in
    every key), '#' (which starts the names of internal keys), or braces
    (which would make a Redis Cluster hash tag of it).  So no two
    namespaces share a key, and no user key reaches an internal one."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a non-empty str, got {namespace!r}")
    if not namespace or any(c in namespace for c in "{}#:") or not storable(namespace):
        raise ValueError(f"namespace must be a non-empty str of valid UTF-8 without ':', "
                         f"'#', '{{' or '}}', got {namespace!r}")
    return namespace


def ttl_ms(ttl: Optional[float]) -> Optional[int]:
    """Seconds (None or inf: no expiry) as whole milliseconds, at least 1."""
    if ttl is None or ttl == math.inf:
        return None
    return max(1, math.ceil(ttl * 1000))


def lease_ms(lease: float) -> int:
    return max(1, math.ceil(lease * 1000))


def sha1(data: bytes) -> str:
    """What ``fill(expect=...)`` compares: the SHA-1 of the bytes seen."""
    return hashlib.sha1(data).hexdigest()


# ---- invalidation messages -------------------------------------------------

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


# ---- fill lock states --------------------------------------------------------
# A fill lock holds "h:<token>" while its holder loads, "p" once a write
# came through corecache while it was held (poisoned: the holder's fill is
# refused; anyone may take it), or "f:<token>:<text>" for a little while
# after the holder's loader raised (anyone may take it; the processes that
# waited for <token> raise <text>).

LOCK_FAILURE_TTL = 2.0   # seconds a failure stays visible to the waiters


def lock_holder(state: Optional[str]) -> Optional[str]:
    """The token holding a lock state, or None if it is free."""
    if state is not None and state.startswith("h:"):
        return state[2:]
    return None


def lock_failure(state: Optional[str]) -> Optional[Tuple[str, str]]:
    """(token, failure text) of a lock left by a failed load, or None."""
    if state is not None and state.startswith("f:"):
        token, _, text = state[2:].partition(":")
        return token, text
    return None


# ---- write-behind records --------------------------------------------------
# A record is b"<version> <origin> " + body, where body is b"v" + data (a
# value) or b"d" (a delete).  The version is the store's clock when the
# record was queued: max(last version + 1, the store's time in
# microseconds), so it grows per key, and across a restart that lost the
# clock too (as long as the store's clock does not go back).

FENCE_WINDOW_LEASES = 60   # how long (in leases) a takeover is remembered
DONE_LIST_TTL = 86400.0    # seconds a dead instance's settled writes are kept


def parse_record(record: bytes) -> Tuple[int, str, bytes]:
    """(version, origin, body) of a queued record (0, "" for records queued
    before versions existed)."""
    if record[:1] in (b"v", b"d"):
        return 0, "", record
    version, origin, body = record.split(b" ", 2)
    return int(version), origin.decode(), body


def make_record(version: int, origin: str, body: bytes) -> bytes:
    return b"%d %s %s" % (version, origin.encode(), body)


def parse_done(entry: bytes) -> Tuple[int, str]:
    """(version, key) of a done-list entry."""
    version, _, key = entry.partition(b" ")
    return int(version), key.decode("utf-8", "surrogatepass")



class _Ticket:
    __slots__ = ("key", "epoch", "dirty")

    def __init__(self, key: str, epoch: int) -> None:
        self.key = key
        self.epoch = epoch
        self.dirty = False


class FillGuard:
    """Keeps a value read from the store out of the local tier when the key
    changed while it was being read.

    A fill registers a ticket before reading the store; an invalidation
    marks every ticket of its key dirty, and a lost channel bumps the
    epoch.  The filler puts the value into the local tier *first* and then
    checks its ticket, dropping the entry if it went dirty; the invalidation
    marks first and drops the entry afterwards.  Whatever the interleaving,
    a value that an invalidation overtook does not stay.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: Dict[str, List[_Ticket]] = {}
        self._epoch = 0

    def begin(self, key: str) -> _Ticket:
        with self._lock:
            ticket = _Ticket(key, self._epoch)
            self._watch.setdefault(key, []).append(ticket)
        return ticket

    def end(self, ticket: _Ticket) -> bool:
        """Unregister; True if nothing invalidated the key meanwhile."""
        with self._lock:
            tickets = self._watch.get(ticket.key)
            if tickets is not None:
                try:
                    tickets.remove(ticket)
                except ValueError:
                    pass
                if not tickets:
                    del self._watch[ticket.key]
            return not ticket.dirty and ticket.epoch == self._epoch

    def invalidate(self, key: str, keep: Optional[_Ticket] = None) -> None:
        with self._lock:
            for ticket in self._watch.get(key, ()):
                if ticket is not keep:
                    ticket.dirty = True

    def invalidate_all(self) -> None:
        with self._lock:
            self._epoch += 1



def check_local(local: Any, name: str = "local") -> Any:
    if local is None:
        return None
    for attr in ("get", "set", "pop", "peek", "clear", "stats"):
        if not callable(getattr(local, attr, None)):
            raise TypeError(f"{name} must be a corecache.Cache (LRUCache or any policy) or None, "
                            f"got {local!r}")
    return local


def check_lease(value: Any, name: str) -> float:
    seconds = check_seconds(value, name, allow_inf=False)
    if seconds is None:
        raise TypeError(f"{name} must be a positive number of seconds, got None")
    return seconds


def min_ttl(*ttls: Optional[float]) -> Optional[float]:
    finite = [t for t in ttls if t is not None and t != math.inf]
    return min(finite) if finite else None


def never(key: Any, default: Any = None) -> Any:
    """The lookup of a local tier that is not there (or is bypassed)."""
    return default


def failure_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."




def mapping_items(mapping: Any) -> List[Tuple[Any, Any]]:
    if hasattr(mapping, "items"):
        return list(mapping.items())
    raise TypeError(f"set_many takes a mapping, got {type(mapping).__name__}")
