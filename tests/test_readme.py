"""README.md's code, run as a reader runs it.

Each ``## `` section's ```python blocks run in order, in one fresh Python
process, from an empty directory: the blocks are written to one file at
their README line numbers (the lines between them left blank), so that a
traceback names the README line that failed.  A block in any other
language (```sh, ```text) is shown, not run; a fence without a language is
an error, so every block says which it is.

The README's own setup lines read the environment for what a reader has:
a section whose code reads ``REDIS_URL`` (or ``REDIS_CLUSTER_URL``) runs
once with that variable pointing at a real redis-server (or a 3-master
cluster) started by tests/redis_servers.py (without Redis that run skips,
or fails under CORECACHE_REQUIRE_REDIS), and once without, as a reader
without Redis runs it; ``METRICS_PORT`` is set to 0 (any free port).

The pytest-benchmark command the README gives is run as written too, with
options added that make each benchmark one short round (pytest-benchmark
refuses ``--benchmark-disable`` next to ``--benchmark-only``).  Its
interpreter, ``.venv/test-3.12/bin/python``, is made by scripts/test; where
it does not exist yet (scripts/test runs 3.10 first, and the 3.14 and 3.15
runs are in a chroot), the command runs with this test's interpreter, which
scripts/test set up the same way.

From an installed copy of the suite (no README.md beside tests/), this
module skips.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import corecache

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUN = {"python"}                       # languages whose blocks run
SHOWN = {"sh", "text", "console"}      # languages shown to the reader only
TIMEOUT = 300.0                        # per section: generous for a loaded machine

if not README.is_file():
    pytest.skip("README.md is not beside tests/ (an installed copy of the suite)",
                allow_module_level=True)


@dataclass
class Block:
    section: str
    lang: str
    line: int          # README line number of the block's first code line
    code: str


def blocks(text: str) -> List[Block]:
    """Every fenced block of a Markdown text, with its section (the last
    ``## `` heading before it; the title part is "(top)")."""
    out: List[Block] = []
    section = "(top)"
    fence: Optional[Block] = None
    lines: List[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if fence is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                fence = Block(section, line[3:].strip(), n + 1, "")
                lines = []
        elif line.startswith("```"):
            fence.code = "\n".join(lines) + "\n"
            out.append(fence)
            fence = None
        else:
            lines.append(line)
    if fence is not None:
        raise ValueError(f"README line {fence.line - 1}: a fence that is never closed")
    return out


def sections(text: str) -> Dict[str, List[Block]]:
    """section -> its blocks that run, in order (sections without any left out)."""
    out: Dict[str, List[Block]] = {}
    for b in blocks(text):
        if b.lang in RUN:
            out.setdefault(b.section, []).append(b)
    return out


def script(section: List[Block]) -> str:
    """One program of a section's blocks, each at its own README line."""
    out: List[str] = []
    for b in section:
        out += [""] * (b.line - 1 - len(out))
        out += b.code.splitlines()
    return "\n".join(out) + "\n"


def run_section(section: List[Block], workdir: Path,
                env: Dict[str, str]) -> subprocess.CompletedProcess:
    """Run a section as a fresh process in `workdir` (the file is named
    after README.md, so that tracebacks read README.md-<section>.py:LINE)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", section[0].section).strip("-").lower()
    path = workdir / f"README.md-{slug}.py"
    path.write_text(script(section))
    return subprocess.run([sys.executable, path.name], cwd=str(workdir), env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT)


def child_env(**extra: str) -> Dict[str, str]:
    """This environment, with the corecache under test first on the path
    (the source tree's, or an installed one)."""
    env = dict(os.environ)
    here = str(Path(corecache.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in [env.get("PYTHONPATH")] if p])
    for var in ("REDIS_URL", "REDIS_CLUSTER_URL", "METRICS_PORT"):
        env.pop(var, None)
    env.update(extra)
    return env


README_TEXT = README.read_text()
SECTIONS = sections(README_TEXT)


def _uses_redis(name: str) -> bool:
    return any("REDIS_URL" in b.code or "REDIS_CLUSTER_URL" in b.code for b in SECTIONS[name])


def _params() -> List[Any]:
    out = []
    for name in SECTIONS:
        if _uses_redis(name):
            out.append(pytest.param(name, True, marks=pytest.mark.redis, id=f"{name} (Redis)"))
        out.append(pytest.param(name, False, id=name))
    return out


# ---- the README itself -----------------------------------------------------------------

def test_every_block_says_whether_it_runs() -> None:
    unmarked = [f"README.md:{b.line - 1} ({b.section}): ```{b.lang}" for b in blocks(README_TEXT)
                if b.lang not in RUN | SHOWN]
    assert not unmarked, ("blocks that are neither ```python (run by this test) nor one of "
                          f"{sorted(SHOWN)} (shown only): {unmarked}")
    assert SECTIONS, "no ```python block found in README.md"


@pytest.mark.parametrize("name, redis", _params())
def test_readme_section_runs(name: str, redis: bool, tmp_path: Path, request: Any) -> None:
    section = SECTIONS[name]
    code = "".join(b.code for b in section)
    extra: Dict[str, str] = {"METRICS_PORT": "0"}
    if redis and "REDIS_URL" in code:
        extra["REDIS_URL"] = request.getfixturevalue("redis_server").url
    if redis and "REDIS_CLUSTER_URL" in code:
        extra["REDIS_CLUSTER_URL"] = request.getfixturevalue("redis_cluster").url
    r = run_section(section, tmp_path, child_env(**extra))
    lines = ", ".join(str(b.line) for b in section)
    assert r.returncode == 0, (f"README section {name!r} (blocks at lines {lines}) failed "
                               f"with exit status {r.returncode}:\n{r.stderr}{r.stdout}")


# ---- the mechanism, on made-up READMEs ---------------------------------------------------

FAKE = textwrap.dedent("""\
    # title

    ```sh
    exit 1
    ```

    ## One

    ```python
    x = 41
    ```

    Words between.

    ```text
    not python at all
    ```

    ```python
    x += 1
    print("x is", x)
    ```

    ## Two

    ```python
    import sys
    sys.exit("x" in globals())     # a fresh process: One's x is gone
    ```
    """)


def test_blocks_of_a_section_share_one_process_and_others_do_not_run(tmp_path: Path) -> None:
    secs = sections(FAKE)
    assert list(secs) == ["One", "Two"]
    assert [b.line for b in secs["One"]] == [10, 20]
    r = run_section(secs["One"], tmp_path, child_env())
    assert (r.returncode, r.stdout) == (0, "x is 42\n"), r.stderr
    r = run_section(secs["Two"], tmp_path, child_env())
    assert r.returncode == 0, r.stderr
    assert [b.lang for b in blocks(FAKE)] == ["sh", "python", "text", "python", "python"]


def test_a_broken_block_fails_and_names_its_readme_line(tmp_path: Path) -> None:
    broken = FAKE.replace("x += 1", "x += y")
    r = run_section(sections(broken)["One"], tmp_path, child_env())
    assert r.returncode != 0
    assert "NameError" in r.stderr and "README.md-one.py\", line 20" in r.stderr, r.stderr


def test_a_section_that_hangs_is_stopped(tmp_path: Path, monkeypatch: Any) -> None:
    hangs = sections("## H\n\n```python\nimport time\ntime.sleep(60)\n```\n")["H"]
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 1.0)
    with pytest.raises(subprocess.TimeoutExpired):
        run_section(hangs, tmp_path, child_env())


def test_fences_without_a_language_or_unclosed_are_found() -> None:
    assert [b.lang for b in blocks("```\nx\n```\n")] == [""]
    with pytest.raises(ValueError, match="never closed"):
        blocks("## A\n```python\nx = 1\n")


# ---- the pytest-benchmark command ---------------------------------------------------------

def _bench_command() -> str:
    """The README's pytest-benchmark command (a ```sh line running pytest on bench/)."""
    found = [line.strip() for b in blocks(README_TEXT) if b.lang == "sh"
             for line in b.code.splitlines()
             if "-m pytest bench" in line and not line.lstrip().startswith("#")]
    assert len(found) == 1, f"expected one pytest-benchmark command in README.md, found {found}"
    return found[0]


QUICK_BENCH = ["--benchmark-max-time=0.000001", "--benchmark-min-rounds=1",
               "--benchmark-warmup=off"]


def test_readme_pytest_benchmark_command_runs() -> None:
    """Run the README's command, in the source tree, with one short round
    per benchmark."""
    if not (ROOT / "bench").is_dir():
        pytest.skip("bench/ is not beside tests/ (an sdist or installed copy)")
    command = _bench_command()
    words = shlex.split(command)
    env = child_env()
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    if not (ROOT / words[0]).exists():
        words[0] = sys.executable
    r = subprocess.run(words + QUICK_BENCH,
                       cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"{command} failed ({r.returncode}):\n{r.stdout[-3000:]}{r.stderr}"
    assert re.search(r"\d+ passed", r.stdout), r.stdout[-2000:]


# ---- the benchmark's durations ------------------------------------------------------------

def test_readme_states_the_bench_durations_the_bench_states() -> None:
    """One place for the claims: corecache.bench's DURATION, which --help and
    the line that ends every run state too (a run also prints what it took)."""
    from corecache.bench.__main__ import DURATION
    text = " ".join(README_TEXT.split())
    quick, default, smoke = (DURATION[m][1] for m in ("quick", "default", "smoke"))
    assert f"`scripts/bench --quick` takes {quick} on an idle 2-core machine" in text
    assert (f"On an idle 2-core machine `--quick` takes {quick}, the default mode {default} "
            f"and `--smoke` {smoke}") in text
