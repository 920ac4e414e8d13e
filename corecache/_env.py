"""The ``CORECACHE_*`` environment variables, and a warning for one that
nothing reads.

Without it a misspelled variable (``CORECACHE_NO_EXTENSION=1``) is silently
ignored, and the run does something else than asked.  ``corecache`` warns
once per process, when it is first used (the first name taken from it picks
the implementation; ``setup.py`` warns when it builds),
naming the variables it knows and the closest one.

KNOWN lists every variable that corecache, its build, its scripts and its
test suite read: a variable of the scripts or the tests is still set in
the environment of the Python processes they start, and must not warn
there.  tests/test_env.py checks that every variable read anywhere in the
tree is listed here.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional

PREFIX = "CORECACHE_"

KNOWN: Dict[str, str] = {
    # read when corecache is imported (corecache/_impl.py), and by setup.py
    "CORECACHE_NO_EXTENSIONS": "use the pure-Python twin (at install time: build a pure wheel)",
    # CacheConfig.from_env() (corecache/config.py)
    "CORECACHE_MAX_SIZE": "CacheConfig.from_env(): max_size",
    "CORECACHE_DEFAULT_TTL": "CacheConfig.from_env(): default_ttl",
    "CORECACHE_CLEANUP_INTERVAL": "CacheConfig.from_env(): cleanup_interval",
    "CORECACHE_MEMORY_LIMIT_MB": "CacheConfig.from_env(): memory_limit_mb",
    # setup.py
    "CORECACHE_DEBUG_BUILD": "build with -O0 -g3, assertions and consistency checks",
    "CORECACHE_SANITIZE": "build with AddressSanitizer and UndefinedBehaviorSanitizer",
    # scripts/test, scripts/wheels, scripts/bench
    "CORECACHE_PYTHONS": "scripts/test: the Pythons to test",
    "CORECACHE_SKIP_WHEELS": "scripts/test: skip scripts/wheels",
    "CORECACHE_WHEEL_PYTHONS": "scripts/wheels: the Pythons to build wheels for",
    "CORECACHE_BENCH_PYTHON": "scripts/bench: the Python to measure",
    "CORECACHE_CHROOT": "scripts/chroot: where the Debian-unstable chroot lives",
    "CORECACHE_CHROOT_MIRROR": "scripts/chroot: the Debian mirror it is built from",
    "CORECACHE_CHROOT_PYTHONS": "scripts/test: the Pythons to test in the chroot",
    # the test suite
    "CORECACHE_REQUIRE_EXTENSIONS": "tests: a missing compiled module fails",
    "CORECACHE_REQUIRE_REDIS": "tests: a missing redis-server fails",
    "CORECACHE_REQUIRE_PROMETHEUS": "tests: a missing prometheus fails",
    "CORECACHE_HYPOTHESIS_EXAMPLES": "tests: examples per Hypothesis test",
    "CORECACHE_REDIS_SERVER": "tests: the command that starts a Redis-compatible server",
    "CORECACHE_REDIS_CLI": "tests: the command of its redis-cli",
    "CORECACHE_REQUIRE_CPYTHON_TESTS": "tests: CPython's own test package must be there",
    "CORECACHE_TEST_UVLOOP": "tests: the shared distributed tests' event loop is uvloop's",
    "CORECACHE_REQUIRE_FUZZ": "tests: a missing clang or libFuzzer fails tests/test_fuzz.py",
}

_warned = False


def unknown(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The ``CORECACHE_*`` variables set in `environ` (default ``os.environ``)
    that nothing reads, sorted."""
    env = os.environ if environ is None else environ
    return sorted(k for k in env if k.startswith(PREFIX) and k not in KNOWN)


def message(names: List[str]) -> str:
    import difflib                  # only when something is misspelled
    parts = []
    suffixes = [k[len(PREFIX):] for k in KNOWN]
    for name in names:
        # compared without the prefix, which every name shares
        close = difflib.get_close_matches(name[len(PREFIX):], suffixes, n=1, cutoff=0.6)
        parts.append(name + (f" (did you mean {PREFIX}{close[0]}?)" if close else ""))
    return (f"corecache reads no environment variable named {', '.join(parts)}: "
            f"{'it is' if len(names) == 1 else 'they are'} ignored.  The variables it reads: "
            f"{', '.join(sorted(KNOWN))}")


def warn_unknown(environ: Optional[Mapping[str, str]] = None, *, once: bool = True,
                 stacklevel: int = 2) -> Optional[str]:
    """Warn (RuntimeWarning) about the unknown ``CORECACHE_*`` variables, the
    first time only unless `once` is false; returns the message, or None."""
    global _warned
    if once and _warned:
        return None
    names = unknown(environ)
    if not names:
        return None
    _warned = True
    text = message(names)
    import warnings
    warnings.warn(text, RuntimeWarning, stacklevel=stacklevel)
    return text
