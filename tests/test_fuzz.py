"""The fuzz harnesses of scripts/fuzz are not blind, and what they found
stays fixed.

- The C harness (fuzz/cc_fuzz.c), built with -DFUZZ_SELF_TEST (its model
  of the table forgets to move a hit to the MRU end), reports a mismatch on
  a three-operation input, and libFuzzer, from an empty corpus with a fixed
  seed, finds such an input by itself within a bounded number of runs.
- The real C harness runs clean on fuzz/regressions/c/ (the inputs of
  past findings: each crashed it before its fix).
- The API harness's per-input function (fuzz/api_fuzz.py ``check``) runs
  on fixed inputs, one per script and the regressions of fuzz/regressions/py,
  and reports a disagreement of the twins that is planted.

The C tests need clang with libFuzzer's runtime (Debian: clang,
libclang-rt-dev); without it they skip, unless CORECACHE_REQUIRE_FUZZ=1
(set by scripts/test), which makes them fail.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from conftest import all_impls

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
CSRC = ROOT / "csrc"
REQUIRE_FUZZ = os.environ.get("CORECACHE_REQUIRE_FUZZ", "") not in ("", "0")

pytestmark = pytest.mark.skipif(not (FUZZ / "cc_fuzz.c").exists(),
                                reason="the fuzz harnesses are not in this tree (an sdist)")


FLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
         "-std=c11", "-I", str(CSRC)]


def _missing(why: str) -> Any:
    if REQUIRE_FUZZ:
        pytest.fail(f"{why}; CORECACHE_REQUIRE_FUZZ is set, so the fuzz tests must run")
    pytest.skip(why)


@pytest.fixture(scope="module")
def csrc_objects(tmp_path_factory: Any) -> List[str]:
    """csrc/ compiled once for both harness builds (in parallel)."""
    clang = shutil.which("clang")
    if clang is None:
        _missing("clang is not installed (Debian: apt-get install clang libclang-rt-dev)")
    out = tmp_path_factory.mktemp("cc_objects")
    jobs = []
    for name in ("cc_lru", "cc_expiry", "cc_ring", "cc_scan"):
        obj = str(out / f"{name}.o")
        jobs.append((obj, subprocess.Popen(
            [clang, *FLAGS, "-include", str(FUZZ / "fz_alloc.h"), "-c",
             str(CSRC / f"{name}.c"), "-o", obj],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for obj, job in jobs:
        _, err = job.communicate()
        if job.returncode:
            pytest.fail(f"cannot compile {obj} for the fuzzer:\n{err}")
    return [obj for obj, _ in jobs]


def _link(out: Path, objects: List[str], *defines: str) -> Path:
    exe = out / "cc_fuzz"
    r = subprocess.run(["clang", *FLAGS, *defines, str(FUZZ / "cc_fuzz.c"), *objects,
                        "-o", str(exe)], capture_output=True, text=True)
    if r.returncode == 0:
        return exe
    if "libclang_rt.fuzzer" in r.stderr or "cannot find" in r.stderr:
        _missing(f"libFuzzer's runtime is missing (Debian: libclang-rt-dev): {r.stderr[-300:]}")
    pytest.fail(f"cannot build the C harness:\n{r.stderr}")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: Any, csrc_objects: List[str]) -> Path:
    return _link(tmp_path_factory.mktemp("cc_fuzz"), csrc_objects)


@pytest.fixture(scope="module")
def broken_harness(tmp_path_factory: Any, csrc_objects: List[str]) -> Path:
    return _link(tmp_path_factory.mktemp("cc_fuzz_self_test"), csrc_objects, "-DFUZZ_SELF_TEST")


def _run(exe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                          cwd=exe.parent)


# the table; hash mode 0; insert key 1, insert key 2, insert key 1 again (a hit)
HIT_INPUT = bytes([0, 0, 0, 1, 0, 2, 0, 1])


def test_self_test_build_reports_the_planted_mistake(broken_harness: Path,
                                                     tmp_path: Path) -> None:
    seed = tmp_path / "hit"
    seed.write_bytes(HIT_INPUT)
    r = _run(broken_harness, str(seed))
    assert r.returncode != 0
    assert "corecache fuzz: mismatch" in r.stderr and "recency position" in r.stderr


def test_self_test_build_is_found_from_nothing(broken_harness: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    r = _run(broken_harness, "-seed=1", "-runs=200000", f"-artifact_prefix={tmp_path}/",
             str(corpus))
    assert r.returncode != 0, r.stderr[-2000:]
    assert "corecache fuzz: mismatch" in r.stderr
    assert list(tmp_path.glob("crash-*"))


def test_real_harness_passes_the_same_input(harness: Path, tmp_path: Path) -> None:
    seed = tmp_path / "hit"
    seed.write_bytes(HIT_INPUT)
    r = _run(harness, str(seed))
    assert r.returncode == 0, r.stderr[-2000:]


def test_real_harness_runs_clean_on_the_regressions(harness: Path) -> None:
    inputs = sorted(str(p) for p in (FUZZ / "regressions" / "c").iterdir())
    assert inputs
    r = _run(harness, *inputs)
    assert r.returncode == 0, r.stderr[-3000:]


def test_real_harness_runs_briefly_from_nothing(harness: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    r = _run(harness, "-seed=1", "-runs=20000", f"-artifact_prefix={tmp_path}/", str(corpus))
    assert r.returncode == 0, r.stderr[-3000:]


# ---- the API harness -------------------------------------------------------

@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    if len(all_impls()) < 2:
        pytest.skip("the API harness compares the compiled core with the twin")
    sys.path.insert(0, str(FUZZ))
    try:
        import api_fuzz
        yield api_fuzz
    finally:
        sys.path.remove(str(FUZZ))
        sys.modules.pop("api_fuzz", None)


def _fixed_inputs() -> List[bytes]:
    inputs = [p.read_bytes() for p in sorted((FUZZ / "regressions" / "py").iterdir())]
    for script in range(3):
        for n in range(1, 40, 7):
            inputs.append(bytes([script]) + bytes((k * 37 + n) % 256 for k in range(n * 5)))
    return inputs


def test_api_harness_runs_fixed_inputs(api: Any) -> None:
    for data in _fixed_inputs():
        api.check(data)


def test_api_harness_sees_a_planted_difference(api: Any, monkeypatch: Any) -> None:
    (c_kind, c_ns), (p_kind, p_ns) = api.IMPLS
    real = p_ns["LRUCache"]

    class Lying(real):   # type: ignore[misc,valid-type]
        def get(self, key: Any, default: Any = None) -> Any:
            got = super().get(key, default)
            return "lie" if got != default else got

    monkeypatch.setattr(api, "IMPLS", [(c_kind, c_ns), (p_kind, dict(p_ns, LRUCache=Lying))])
    # the LRU script: max_size 1000, no TTL, no limit, no sizes (8 size
    # draws), no callback; then c[0] = 5, c.get(0)
    data = bytes([0, 4, 0, 0, 0] + [0] * 8 + [0] + [0, 0, 5] + [2, 0, 0])
    with pytest.raises(api.Mismatch, match="differ"):
        api.check(data)
