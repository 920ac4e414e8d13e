"""CORECACHE_* environment variables: a misspelled one warns, once, naming
the known ones; every variable the tree reads is known (so that none of
the scripts' or tests' own variables warns)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Dict, Set

import pytest

import corecache
from corecache import _env

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CORECACHE_")}
    e["PYTHONPATH"] = str(Path(corecache.__file__).resolve().parent.parent)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                          timeout=120)


def test_a_misspelled_variable_warns_once_at_first_use_naming_the_known_ones() -> None:
    # importing corecache reads nothing; the first name used (which picks the
    # implementation) does
    r = _run("import corecache, importlib, warnings\n"
             "corecache.LRUCache\n"
             "from corecache import _env\n"
             "print(_env.warn_unknown())\n",          # a second time: nothing
             CORECACHE_NO_EXTENSION="1", CORECACHE_NO_EXTENSIONS="0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "None\n"
    assert r.stderr.count("RuntimeWarning") == 1, r.stderr
    assert "CORECACHE_NO_EXTENSION (did you mean CORECACHE_NO_EXTENSIONS?)" in r.stderr
    for name in _env.KNOWN:
        assert name in r.stderr


def test_known_variables_do_not_warn() -> None:
    known = {name: "0" for name in _env.KNOWN}
    known.update(CORECACHE_MAX_SIZE="10", CORECACHE_DEFAULT_TTL="none",
                 CORECACHE_CLEANUP_INTERVAL="none", CORECACHE_MEMORY_LIMIT_MB="none",
                 CORECACHE_PYTHONS="3.11")
    r = _run("import warnings; warnings.simplefilter('error'); import corecache; "
             "corecache.LRUCache", **known)
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr


def test_message_and_suggestions() -> None:
    env = {"CORECACHE_MAXSIZE": "3", "CORECACHE_FOO": "1", "OTHER_THING": "x",
           "CORECACHE_MAX_SIZE": "1"}
    assert _env.unknown(env) == ["CORECACHE_FOO", "CORECACHE_MAXSIZE"]
    text = _env.message(_env.unknown(env))
    assert "CORECACHE_FOO," in text and "CORECACHE_FOO (did" not in text
    assert "CORECACHE_MAXSIZE (did you mean CORECACHE_MAX_SIZE?)" in text
    assert "they are ignored" in text
    with pytest.warns(RuntimeWarning, match="CORECACHE_FOO"):
        assert _env.warn_unknown(env, once=False) == text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _env.warn_unknown({"CORECACHE_MAX_SIZE": "1"}, once=False) is None


# where the tree reads a variable: a quoted name in Python code, a $NAME or
# ${NAME} in shell, NAME= in a workflow or a shell assignment
_READ = re.compile(r"""["'](CORECACHE_[A-Z0-9_]+)["']|\$\{?(CORECACHE_[A-Z0-9_]+)|"""
                   r"""\b(CORECACHE_[A-Z0-9_]+)\s*[=:]""")
# in the tests only what they read from the environment: their other names
# are deliberately unknown (CacheConfig.from_env(environ=...) ignores them)
_TEST_READ = re.compile(r"""(?:environ(?:\.get)?\(?\[?|getenv\(|setenv\()\s*"""
                        r"""["'](CORECACHE_[A-Z0-9_]+)""")


def _names(pattern: "re.Pattern[str]", path: Path) -> Set[str]:
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return set()
    return {name for m in pattern.finditer(text) for name in m.groups() if name}


def test_every_variable_the_tree_reads_is_known() -> None:
    if not (ROOT / "scripts").is_dir():
        pytest.skip("not a source tree")
    where: Dict[str, Set[str]] = {}
    files = [ROOT / "setup.py", ROOT / "pyproject.toml", ROOT / "README.md"]
    for folder, patterns in (("corecache", ("*.py", "*.pyx")), ("scripts", ("*",)),
                             (".ci", ("*",)), (".github", ("*.yml",))):
        for pat in patterns:
            files += [p for p in (ROOT / folder).rglob(pat) if p.is_file()]
    for path in files:
        if path.name == "_env.py":
            continue          # the list itself, and its example of a misspelling
        for name in _names(_READ, path):
            where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in (ROOT / "tests").rglob("*.py"):
        for name in _names(_TEST_READ, path):
            where.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert "CORECACHE_NO_EXTENSIONS" in where     # the scan finds what it should
    missing = {name: sorted(files) for name, files in where.items() if name not in _env.KNOWN}
    assert not missing, f"read but not in corecache/_env.py's KNOWN: {missing}"
