"""Check an sdist: it must hold everything a wheel is built from (the C
sources and headers, the .pyx/.pxd files, the headers next to them, the
typing stubs) and the tests with what they read (monitoring/), and nothing
else: no generated C, no compiled modules, no caches, no build or virtual
environment directories, no benchmark results.

    python scripts/check_sdist.py dist/corecache-X.tar.gz

Run by scripts/wheels and by the sdist job of .github/workflows/wheels.yml.
"""
import fnmatch
import sys
import tarfile
from pathlib import Path

REQUIRED = [
    "PKG-INFO", "pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in",
    "csrc/*.c", "csrc/*.h", "csrc/cc_scan.c", "csrc/cc_lru.c", "csrc/cc_common.h",
    "corecache/_lru.pyx", "corecache/_pool.pyx", "corecache/_chunk.pyx",
    "corecache/_lru.pxd", "corecache/_cc.pxd", "corecache/_lru_py.h", "corecache/_lru_call.h",
    "corecache/_locking.h",
    "corecache/_lru.pyi", "corecache/_pool.pyi", "corecache/_chunk.pyi", "corecache/py.typed",
    "corecache/__init__.py", "corecache/_pure/lru.py", "corecache/bench/__main__.py",
    "corecache/distributed/_unasync.py", "corecache/distributed/aio/_base.py",
    "tests/conftest.py", "tests/test_lru.py", "tests/typing/usage.py", "tests/c/policy_driver.c",
    "monitoring/alerts.yml", "monitoring/grafana-dashboard.json",
]

# anywhere in the tree
FORBIDDEN = [
    "corecache/*.c",                      # Cython's output: built from the .pyx
    "*.so", "*.pyd", "*.dylib", "*.o", "*.a", "*.pyc", "*.png",
    "*__pycache__/*", "*.hypothesis/*", "*.pytest_cache/*", "*.benchmarks/*",
    "*.mypy_cache/*",
]
# top-level directories that stay out
FORBIDDEN_DIRS = ["build", "dist", ".venv", "wheelhouse", "bench-results", ".git", ".github",
                  ".ci", "scripts", "bench"]

ALLOWED_JSON = ["monitoring/*.json"]


def members(path: str) -> list:
    with tarfile.open(path) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
    root = names[0].split("/", 1)[0]
    return [n.split("/", 1)[1] for n in names if "/" in n and n.startswith(root + "/")]


def check(path: str) -> list:
    names = members(path)
    problems = []
    for pattern in REQUIRED:
        if not any(fnmatch.fnmatch(n, pattern) for n in names):
            problems.append(f"missing: {pattern}")
    for n in names:
        if n.endswith("PKG-INFO") and "/" in n:
            continue                      # the egg-info copy setuptools adds
        if n.endswith(".egg-info/SOURCES.txt") or ".egg-info/" in n:
            continue
        top = n.split("/", 1)[0]
        if "/" in n and top in FORBIDDEN_DIRS:
            problems.append(f"should not be there: {n} ({top}/)")
            continue
        for pattern in FORBIDDEN:
            if fnmatch.fnmatch(n, pattern):
                problems.append(f"should not be there: {n} ({pattern})")
                break
        if n.endswith(".json") and not any(fnmatch.fnmatch(n, p) for p in ALLOWED_JSON):
            problems.append(f"should not be there: {n} (data file)")
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problems = check(sys.argv[1])
    n = len(members(sys.argv[1]))
    if problems:
        print(f"{Path(sys.argv[1]).name}: {len(problems)} problem(s) in {n} files:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"{Path(sys.argv[1]).name}: {n} files, sources complete, nothing extra")
    return 0


if __name__ == "__main__":
    sys.exit(main())
