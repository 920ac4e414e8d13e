"""An atheris harness over corecache's public API, differential: the
compiled core and the pure-Python twin run the same operations, built from
the fuzz input, on the same hostile inputs, and must agree.

Per input, one of three scripts:

- ``LRUCache`` with hostile keys (unhashable, ``__hash__`` or ``__eq__``
  raising, an ``__eq__`` that writes to the cache, NaN, keys whose hash
  collides with an int's), a hostile clock (NaN, infinities, going
  backwards, raising, not a number), TTLs, ``getsizeof`` returning
  nonsense, memory limits, limits changed on the fly;
- ``StreamChunker`` over hostile sources (``readinto`` or ``read``
  readers that read short, claim too much, return the wrong type or raise,
  and keep views of the chunker's buffer; iterables of odd pieces) and odd
  arguments; every chunk is kept and must still hold its bytes at the end;
- ``ObjectPool`` with factories, validators and resets that fail, foreign
  and double puts, a clock like the cache's.

Checked after every operation: only TypeError, ValueError, KeyError (and
``PoolExhausted``/``PoolClosed`` of a pool), or the user's own ``Boom``
escape, the structure's ``_check()`` holds, and at the end both
implementations produced the same transcript: every result, every
exception's type and text, every eviction callback, every call the
library made into user code that the outcome depends on.  A difference is
raised as ``Mismatch``: atheris then writes the input as a crash-* file.

Run by scripts/fuzz; ``check(data)`` is the per-input function (tests call
it on fixed inputs).  Needs the compiled modules built in place.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, List, Optional

try:
    import corecache  # noqa: F401
except ImportError:          # run as a script from a checkout: the tree's
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

try:
    import atheris
except ImportError:          # tests run the per-input function without it
    atheris = None


def _import_both() -> Any:
    from corecache import _impl
    impls = []
    for kind in ("c", "py"):
        ns = {}
        for name in _impl.MODULES:
            mod = _impl.compiled_module(name) if kind == "c" else _impl.pure_module(name)
            if mod is None:
                raise SystemExit(f"the compiled modules are not built: {_impl.IMPORT_ERROR}")
            for attr in mod.__all__:
                ns[attr] = getattr(mod, attr)
        impls.append((kind, ns))
    return impls


if atheris is not None and __name__ == "__main__":
    # coverage of the pure twin's Python code guides the search; the compiled
    # core is driven through the same operations (not instrumented)
    with atheris.instrument_imports(include=["corecache"]):
        IMPLS = _import_both()
else:
    IMPLS = _import_both()

from corecache.exceptions import PoolClosed, PoolExhausted  # noqa: E402


class Boom(Exception):
    """The user's own exception, raised by hostile callbacks."""


class Mismatch(AssertionError):
    """The twins disagreed, or something undocumented escaped."""


class Known(Exception):
    """A finding not fixed yet, which would stop every run: the pure twin
    recurses without end (RecursionError) when an insert grows its
    OrderedDict while a key whose hash collides with another's has an
    ``__eq__`` that writes to the cache (OrderedDict re-looks-up every key
    when it rebuilds its node table, inside the operation, and each nested
    write starts the rebuild again).  tests/test_fuzz_findings.py holds it
    as a strict xfail: when it is fixed, that test fails until this
    allowance goes too."""


ALLOWED = (TypeError, ValueError, KeyError, Boom, PoolExhausted, PoolClosed)


class Input:
    """Small draws from the fuzz input (zeros when it runs out)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.data)

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        b = self.data[self.i]
        self.i += 1
        return b

    def pick(self, seq: List[Any]) -> Any:
        return seq[self.byte() % len(seq)]

    def arg(self, good: List[Any], bad: List[Any]) -> Any:
        """A constructor argument: a valid one seven times in eight (else
        most inputs would end at the constructor's error)."""
        b = self.byte()
        return good[b % len(good)] if b < 224 else bad[b % len(bad)]

    def blob(self, n: int, alphabet: bytes = b"\n\nab\r") -> bytes:
        out = bytearray()
        for _ in range(n):
            b = self.byte()
            out.append(alphabet[b % len(alphabet)] if b < 220 else b)
        return bytes(out)


def outcome(fn: Callable[[], Any]) -> Any:
    """("ok", result) or ("exc", type, text); undocumented exceptions fail."""
    try:
        return ("ok", fn())
    except ALLOWED as e:
        return ("exc", type(e).__name__, str(e))
    except RecursionError as e:
        raise Known(str(e)) from e
    except BaseException as e:
        raise Mismatch(f"undocumented exception escaped: {type(e).__name__}: {e}") from e


# ---- LRUCache ---------------------------------------------------------------

NAN = float("nan")


# Keys whose __eq__ writes to the cache (pops "victim", or clears it).
# Both twins must survive them: only documented exceptions, _check() after
# every operation, len() equal to the iteration.  Their transcripts are not
# compared once such a key was used: the twin's index is a dict, which asks
# a stored key's __eq__ wherever a lookup meets an equal hash (an eviction
# too, which removes its entry by key), while the compiled table removes by
# slot and compares only in lookups; the side effects then come at
# different moments.  The runs of such inputs say WRITING in their log.
WRITING_KEYS = True
WRITING = ("a key whose __eq__ writes to the cache was used",)


class Key:
    """A key with a fixed repr; hostile behaviour by kind."""

    def __init__(self, kind: str, n: int, log: List[Any]) -> None:
        self.kind, self.n, self.log = kind, n, log
        self.cache: Any = None

    def __repr__(self) -> str:
        return f"Key({self.kind},{self.n})"

    def __hash__(self) -> int:
        if self.kind == "hash-raises":
            raise Boom("hash")
        return self.n      # collides with the int key n

    def __eq__(self, other: Any) -> bool:
        if self.kind == "eq-raises":
            raise Boom("eq")
        if self.kind == "eq-writes" and self.cache is not None and WRITING_KEYS:
            # re-enters the cache; idempotent, so the number of calls does
            # not change the outcome
            self.cache.pop("victim", None)
        if self.kind == "eq-clears" and self.cache is not None and WRITING_KEYS:
            self.cache.clear()
        return isinstance(other, Key) and other.n == self.n and other.kind == self.kind


class Clock:
    """Reads the reading set by the last "time" operation."""

    def __init__(self) -> None:
        self.now: Any = 1000.0

    def __call__(self) -> Any:
        if self.now == "raise":
            raise Boom("clock")
        return self.now


CLOCK_READINGS = [1000.0, 1000.5, 1001.0, 1003.0, 1010.0, 999.0, 0.0, -5.0, NAN, math.inf,
                  -math.inf, "raise", "soon", None, 10**30, 2**63, True]
TTLS = [None, 1, 0.5, 2.0, 5, 0, -1, NAN, math.inf, -math.inf, "1", 1e308, 2**64]
SIZES = [1, 100, 1 << 19, 1 << 20, 0, -1, 2**63, 2**64, 2**70, 1.5, "big", None, "raise"]


def lru_script(inp: Input) -> Any:
    """Everything random about one LRU run, drawn once so both twins see it."""
    max_size = inp.arg([1, 2, 3, 8, 1000, 2**32, 2**63, 2**64],
                       [0, -1, 1.5, "3", None, True])
    default_ttl = inp.arg([None, None, 1, 0.5, 2.0, 5, math.inf, 1e308, 2**64],
                          [0, -1, NAN, -math.inf, "1"])
    limit = inp.arg([None, None, 1, 2, 0.001, 1e-9, 2**43 - 1],
                    [0, -1, NAN, math.inf, "1", 2**63])
    sized = inp.byte() % 3
    sizes = [inp.pick(SIZES) for _ in range(8)]
    callback = inp.byte() % 2
    ops = []
    while inp.more() and len(ops) < 60:
        ops.append((inp.byte(), inp.byte(), inp.byte()))
    return max_size, default_ttl, limit, sized, sizes, callback, ops


def make_keys(log: List[Any]) -> List[Any]:
    keys: List[Any] = [0, 1, 2, 3, "a", "b", "victim", NAN, float("nan"), 1.0, True, (1, 2),
                       frozenset([1]), b"x", None, -1, 2**64]
    keys += [Key("plain", 1, log), Key("plain", 2, log), Key("hash-raises", 0, log),
             Key("eq-raises", 1, log), Key("eq-writes", 2, log), Key("eq-clears", 3, log),
             [], {}, bytearray(b"x")]      # the last three are unhashable
    return keys


def run_lru(ns: Any, script: Any) -> List[Any]:
    max_size, default_ttl, limit, sized, sizes, callback, ops = script
    log: List[Any] = []
    clock = Clock()
    keys = make_keys(log)

    def getsizeof(key: Any, value: Any) -> Any:
        s = sizes[value % len(sizes)] if isinstance(value, int) else 1
        if s == "raise":
            raise Boom("getsizeof")
        return s

    def on_evict(key: Any, value: Any) -> None:
        log.append(("evicted", repr(key), value))

    kwargs = dict(clock=clock)
    if limit is not None:
        kwargs["memory_limit_mb"] = limit
    if sized == 1:
        kwargs["getsizeof"] = getsizeof
    if callback:
        kwargs["eviction_callback"] = on_evict
    made = outcome(lambda: ns["LRUCache"](max_size, default_ttl, **kwargs))
    log.append(("init", made if made[0] == "exc" else "ok"))
    if made[0] == "exc":
        return log
    c = made[1]
    for k in keys:
        if isinstance(k, Key):
            k.cache = c
    counter = [0]

    def factory() -> Any:
        counter[0] += 1
        if counter[0] % 3 == 0:
            raise Boom("factory")
        return counter[0]

    for a, b, d in ops:
        key = keys[b % len(keys)]
        if isinstance(key, Key) and key.kind in ("eq-writes", "eq-clears") and WRITING \
                not in log:
            log.append(WRITING)
        value = d % 16
        ttl = TTLS[d % len(TTLS)]
        kind = a % 26
        if kind == 0:
            r = outcome(lambda: c.__setitem__(key, value))
        elif kind == 1:
            r = outcome(lambda: c.set(key, value, ttl=ttl))
        elif kind == 2:
            r = outcome(lambda: c.get(key, "default"))
        elif kind == 3:
            r = outcome(lambda: c[key])
        elif kind == 4:
            r = outcome(lambda: c.peek(key, "default"))
        elif kind == 5:
            r = outcome(lambda: key in c)
        elif kind == 6:
            r = outcome(lambda: c.pop(key, "default"))
        elif kind == 7:
            r = outcome(lambda: c.pop(key))
        elif kind == 8:
            r = outcome(lambda: c.popitem())
        elif kind == 9:
            r = outcome(lambda: c.__delitem__(key))
        elif kind == 10:
            r = outcome(lambda: c.setdefault(key, value))
        elif kind == 11:
            pairs = [[(key, value)], [(key, value, 1)], [key], [[key, value]]][d % 4]
            r = outcome(lambda: c.update(pairs))
        elif kind == 12:
            r = outcome(lambda: c.get_or_set(key, factory, ttl=ttl))
        elif kind == 13:
            r = outcome(lambda: c.touch(key, ttl=ttl))
        elif kind == 14:
            r = outcome(lambda: c.ttl(key))
        elif kind == 15:
            r = outcome(lambda: c.expire())
        elif kind == 16:
            r = outcome(lambda: c.resize(max_size=[1, 2, 5, 0, -1, 2**64, "x"][d % 7]))
        elif kind == 17:
            r = outcome(lambda: c.resize(memory_limit_mb=[None, 1, 1e-6, 0, -1, NAN, 2**63][d % 7]))
        elif kind == 18:
            r = outcome(lambda: c.evict([0, 1, 2, 100, -1, 2**63, 2**64, 1.5][d % 8]))
        elif kind == 19:
            r = outcome(lambda: c.clear())
        elif kind == 20:
            r = outcome(lambda: [c.pause_writes, c.resume_writes][d % 2]())
        elif kind in (21, 22):
            clock.now = CLOCK_READINGS[d % len(CLOCK_READINGS)]
            r = ("ok", "time", repr(clock.now))
        elif kind == 23:
            r = outcome(lambda: (list(c), list(c.values()), list(c.items())))
        elif kind == 24:
            st = outcome(lambda: c.stats())
            r = st if st[0] == "exc" else (
                "ok", st[1].hits, st[1].misses, st[1].evictions, st[1].expirations, st[1].size)
        else:
            r = outcome(lambda: (len(c), c.memory_bytes, c.max_size))
        log.append((kind, repr(key), r[0], repr(r[1:])))
        # the checks compare keys too (the twin's iteration may run their
        # __eq__): the keys that re-enter the cache hold still meanwhile
        for k in keys:
            if isinstance(k, Key):
                k.cache = None
        ok = c._check()
        # (both read the clock, which may be raising or NaN just now)
        n, it = outcome(lambda: len(c)), outcome(lambda: sum(1 for _ in c.keys()))
        for k in keys:
            if isinstance(k, Key):
                k.cache = c
        if not ok:
            raise Mismatch(f"_check() failed after operation {kind} on {key!r}")
        if n[0] == it[0] == "ok" and n[1] != it[1]:
            raise Mismatch(f"len() is {n[1]}, iteration gives {it[1]}")
    return log


# ---- StreamChunker ----------------------------------------------------------

class Reader:
    """readinto/read with scripted misbehaviour by call number."""

    def __init__(self, data: bytes, plan: List[int], log: List[Any]) -> None:
        self.data, self.pos, self.plan, self.log = data, 0, plan, log
        self.calls = 0
        self.kept: List[Any] = []

    def _next(self) -> int:
        p = self.plan[self.calls % len(self.plan)] if self.plan else 0
        self.calls += 1
        return p

    def readinto(self, b: Any) -> Any:
        self.log.append(("readinto", len(b)))
        p = self._next()
        n = min(len(b), len(self.data) - self.pos)
        if p == 1:
            n = min(n, 1)                        # short read
        elif p == 2:
            return len(b) + 1                    # claims more than fits
        elif p == 3:
            raise Boom("readinto")
        elif p == 4:
            return "x"                           # wrong type
        elif p == 5:
            return -1
        elif p == 6:
            self.kept.append(b[:16])             # keeps a view of the buffer
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def read(self, size: int) -> Any:
        self.log.append(("read", size))
        p = self._next()
        if p == 2:
            return (self.data[self.pos:] + b"?" * (size + 1))[:size + 1]   # too much
        if p == 3:
            raise Boom("read")
        if p == 4:
            return "text"
        if p == 5:
            return 17
        n = min(size, 1) if p == 1 else size
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return bytearray(out) if p == 6 else out


class ReadOnly:
    def __init__(self, r: Reader) -> None:
        self.read = r.read


class ReadIntoOnly:
    def __init__(self, r: Reader) -> None:
        self.readinto = r.readinto


def chunk_script(inp: Input) -> Any:
    kind = inp.byte() % 4
    chunk_size = inp.arg([1, 2, 3, 4, 5, 8, 16, 64], [0, -1, 1.5, "4", None, True, 2**64])
    delim = inp.arg([None, b"\n", b"\n", b"\r\n", b"\n\n", b"ab", b"aba", bytearray(b"\n"),
                     memoryview(b"\n")], [b"", "x", 10])
    max_record = inp.arg([None, None, 1, 2, 4, 7, 100], [0, -1, "3", 2**64])
    plan = [inp.byte() % 10 for _ in range(inp.byte() % 6)]   # 7-9: normal
    pieces = [inp.byte() % 5 for _ in range(6)]
    data = inp.blob(min(len(inp.data) - inp.i, 300))
    return kind, chunk_size, delim, max_record, plan, pieces, data


def run_chunker(ns: Any, script: Any) -> List[Any]:
    kind, chunk_size, delim, max_record, plan, pieces, data = script
    log: List[Any] = []
    reader = Reader(data, plan, log)
    if kind == 0:
        source: Any = data
    elif kind == 1:
        source = ReadIntoOnly(reader)
    elif kind == 2:
        source = ReadOnly(reader)
    else:
        def gen() -> Any:
            pos, i = 0, 0
            while pos < len(data):
                how = pieces[i % len(pieces)]
                i += 1
                if how == 0:
                    yield b""
                elif how == 1:
                    yield "str piece"
                elif how == 2:
                    raise Boom("piece")
                n = 1 + how * 3
                yield (bytearray if how == 3 else bytes)(data[pos:pos + n])
                pos += n
        source = gen()
    made = outcome(lambda: ns["StreamChunker"](source, chunk_size, delimiter=delim,
                                              max_record_size=max_record))
    log.append(("init", made if made[0] == "exc" else "ok"))
    if made[0] == "exc":
        return log
    ch = made[1]
    held: List[Any] = []
    while True:
        r = outcome(lambda: next(ch, None))
        if r[0] == "exc" or r[1] is None:
            log.append(("end", r))
            break
        view = r[1]
        if not isinstance(view, memoryview) or not view.readonly:
            raise Mismatch(f"a chunk is not a read-only memoryview: {view!r}")
        held.append((view, bytes(view)))
        log.append(("chunk", bytes(view)))
        if len(held) > 400:
            raise Mismatch("more chunks than bytes")
    # a chunk stays valid for as long as it is held
    for view, was in held:
        if bytes(view) != was:
            raise Mismatch("a held chunk changed")
    for kept in reader.kept:
        bytes(kept)
    log.append(("after", outcome(lambda: next(ch, None))))
    # a well-behaved source, read to its end: the chunks are the stream
    honest = set(plan) <= {0, 1, 6, 7, 8, 9} if kind in (1, 2) else \
        kind == 0 or not set(pieces) & {1, 2}
    if honest and log[-2][1][0] == "ok":
        if b"".join(w for _, w in held) != data:
            raise Mismatch("the chunks are not the stream")
    return log


# ---- ObjectPool -------------------------------------------------------------

class Obj:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Obj{self.n}"


def pool_script(inp: Input) -> Any:
    max_size = inp.arg([1, 2, 3, 5, 2**64], [0, -1, 1.5, "2", None])
    min_size = inp.arg([0, 0, 1, 2, 7], [-1, "1"])
    idle_timeout = inp.arg([None, None, 1, 0.5, math.inf], [0, -1, NAN, "1"])
    plans = [[inp.byte() % 6 for _ in range(1 + inp.byte() % 4)] for _ in range(3)]
    use = inp.byte()
    ops = []
    while inp.more() and len(ops) < 50:
        ops.append((inp.byte(), inp.byte()))
    return max_size, min_size, idle_timeout, plans, use, ops


def run_pool(ns: Any, script: Any) -> List[Any]:
    max_size, min_size, idle_timeout, plans, use, ops = script
    log: List[Any] = []
    clock = Clock()
    made_n = [0]
    calls = [0, 0, 0]

    def step(i: int) -> int:
        p = plans[i][calls[i] % len(plans[i])]
        calls[i] += 1
        return p

    def factory() -> Any:
        log.append("factory")
        if step(0) == 0:
            raise Boom("factory")
        if made_n[0] >= 100:       # prefill(2**64) of an unbounded pool
            raise Boom("enough")
        made_n[0] += 1
        return Obj(made_n[0])

    def validate(obj: Any) -> Any:
        log.append(("validate", repr(obj)))
        p = step(1)
        if p == 0:
            raise Boom("validate")
        return p != 1

    def reset(obj: Any) -> Any:
        log.append(("reset", repr(obj)))
        if step(2) == 0:
            raise Boom("reset")

    kwargs = dict(min_size=min_size, idle_timeout=idle_timeout, clock=clock)
    if use & 1:
        kwargs["validate"] = validate
    if use & 2:
        kwargs["reset"] = reset
    made = outcome(lambda: ns["ObjectPool"](factory, max_size, **kwargs))
    log.append(("init", made if made[0] == "exc" else "ok"))
    if made[0] == "exc":
        return log
    pool = made[1]
    lent: List[Any] = []
    for a, b in ops:
        kind = a % 13
        if kind in (0, 1):
            r = outcome(lambda: pool.get(timeout=[0, 0, 0.0, -1, NAN, "0"][b % 6]))
            if r[0] == "ok":
                lent.append(r[1])
        elif kind in (2, 3):
            obj = lent.pop(b % len(lent)) if lent and b % 4 else \
                [Obj(-1), None, 5][b % 3] if not lent or b % 8 else lent[0]
            r = outcome(lambda: pool.put(obj))
        elif kind == 4:
            def lease() -> Any:
                with pool.acquire(timeout=0) as o:
                    if b % 3 == 0:
                        raise Boom("in the with block")
                    return o
            r = outcome(lease)
        elif kind == 5:
            r = outcome(lambda: pool.prefill([None, 0, 1, 3, -1, 2**64][b % 6]))
        elif kind == 6:
            r = outcome(lambda: pool.shrink([0, 1, 3, -1, 2**64, 1.5][b % 6]))
        elif kind == 7:
            r = outcome(lambda: pool.clear())
        elif kind == 8:
            r = outcome(lambda: pool.expire())
        elif kind == 9:
            clock.now = CLOCK_READINGS[b % len(CLOCK_READINGS)]
            r = ("ok", repr(clock.now))
        elif kind == 10:
            st = outcome(lambda: pool.stats())
            r = st if st[0] == "exc" else ("ok", st[1].size, st[1].idle, st[1].in_use)
        elif kind == 11 and b % 8 == 0:
            r = outcome(lambda: pool.close())
        else:
            r = outcome(lambda: (pool.closed, len(lent)))
        log.append((kind, r[0], repr(r[1:])))
        if not pool._check():
            raise Mismatch(f"_check() failed after pool operation {kind}")
    return log


# ---- the per-input function ---------------------------------------------------

SCRIPTS = [(lru_script, run_lru), (chunk_script, run_chunker), (pool_script, run_pool)]


def _canonical(log: List[Any]) -> List[Any]:
    """The log with each run of eviction callbacks sorted: entries that
    expire at the same deadline are reported in an unspecified order (the
    compiled core's heap breaks ties arbitrarily, the twin's by age); the
    order of evictions proper is checked by tests/test_differential.py."""
    out: List[Any] = []
    run: List[Any] = []
    for item in log + [None]:
        if isinstance(item, tuple) and item and item[0] == "evicted":
            run.append(item)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        if item is not None:
            out.append(item)
    return out


def check(data: bytes) -> None:
    """Run one input on both implementations; raise Mismatch on a finding."""
    inp = Input(data)
    make, run = SCRIPTS[inp.byte() % len(SCRIPTS)]
    script = make(inp)
    logs = []
    hook = sys.unraisablehook
    for kind, ns in IMPLS:
        # what user code raised where nobody could catch it (a validator on
        # put(), an eviction callback) is part of the transcript
        unraisable: List[Any] = []
        sys.unraisablehook = lambda u: unraisable.append(
            ("unraisable", type(u.exc_value).__name__, str(u.exc_value)))
        try:
            log = run(ns, script)
        except Mismatch as e:
            raise Mismatch(f"[{kind}] {e}") from e
        except Known as e:
            if kind == "py":
                return          # this input shows the known defect only
            raise Mismatch(f"[{kind}] undocumented exception escaped: RecursionError") from e
        finally:
            sys.unraisablehook = hook
        logs.append(log + unraisable)
    if any(WRITING in log for log in logs):
        return                  # survived: see WRITING_KEYS
    a, b = (_canonical(log) for log in logs)
    if a != b:
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                raise Mismatch(f"the twins differ at step {i}:\n  c:  {x!r}\n  py: {y!r}")
        raise Mismatch(f"the twins differ in length: c {len(a)}, py {len(b)}")


def main() -> None:
    atheris.Setup(sys.argv, lambda data: check(data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
