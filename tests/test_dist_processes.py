"""Real processes on one Redis: near-cache invalidation between two
processes, write-behind recovery after kill -9 of the writing processes, a
flusher stopped (SIGSTOP) past its lease, and stampede protection across
processes (a raising loader, one slower than its lease, a holder killed).

The write-behind runs print their figures (acknowledged / written / lost /
duplicated / stale-last) with ``-s``."""
from __future__ import annotations

import json
import os
import queue
import threading
import signal
import subprocess
import sys
import time
from typing import Optional

import pytest

import corecache
from corecache import LRUCache
from corecache.distributed import NearCache, RedisStore, WriteBehindCache
from dist_helpers import Record, fault_figures, show, wait_for
from redis_servers import _die_with_parent

pytestmark = pytest.mark.redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(corecache.__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


class Child:
    """A Python child process (killed with the test process), whose stdout
    lines are read by a thread so that a read can time out."""

    def __init__(self, code: str, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def read_line(self, timeout: float = 20.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"child said nothing in {timeout}s: "
                                 f"{self.proc.stderr.read()}") from None
        if line is None:
            self.proc.wait()
            raise AssertionError(f"child exited {self.proc.returncode}: "
                                 f"{self.proc.stderr.read()}")
        return line

    def rest(self, timeout: float = 20.0) -> list:
        """Every line the (dead) process printed that was not read yet."""
        out = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no end of output in {timeout}s") from None
            if line is None:
                self.lines.put(None)
                return out
            out.append(line)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


NEAR_CHILD = r"""
import sys, time, json
from corecache import LRUCache
from corecache.distributed import NearCache, RedisStore
store = RedisStore.from_url(sys.argv[1])
nc = NearCache(store, local=LRUCache(100, default_ttl=60))
print("ready", nc.local_enabled)
for line in sys.stdin:
    cmd, key = line.split()
    if cmd == "get":
        print(json.dumps([nc.get(key), nc.local.peek(key)]))
    elif cmd == "wait-gone":      # time until the local copy is invalidated
        t0 = time.perf_counter()
        while nc.local.peek(key) is not None and time.perf_counter() - t0 < 10:
            time.sleep(0.0002)
        print(json.dumps((time.perf_counter() - t0) * 1000))
    elif cmd == "quit":
        break
nc.close()
store.close()
"""


def test_near_cache_invalidation_between_processes(redis_server):
    child = Child(NEAR_CHILD, redis_server.url)
    store = RedisStore.from_url(redis_server.url)
    nc = NearCache(store, local=LRUCache(100, default_ttl=60))
    try:
        assert child.read_line() == "ready True"
        nc.set("k", 1)
        time.sleep(0.05)

        def ask(cmd):
            child.send(cmd)
            return json.loads(child.read_line())
        assert ask("get k") == [1, 1]             # read from Redis, now in its local tier
        assert ask("get k") == [1, 1]
        child.send("wait-gone k")
        time.sleep(0.05)
        t0 = time.perf_counter()
        nc.set("k", 2)                            # this process writes...
        waited_ms = json.loads(child.read_line())  # ...the other drops its copy
        elapsed_ms = (time.perf_counter() - t0) * 1000
        assert waited_ms < 5000, waited_ms
        print(f"\ninvalidation reached the other process {elapsed_ms:.1f} ms after the write")
        assert ask("get k") == [2, 2]
        nc.delete("k")
        time.sleep(0.05)
        assert ask("get k") == [None, None]
        child.send("quit -")
        assert child.proc.wait(10) == 0
    finally:
        child.finish()
        nc.close()
        store.close()


WB_CHILD = r"""
import sys, time
from corecache.distributed import RedisStore, WriteBehindCache
from dist_helpers import Record
url, db_path, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = RedisStore.from_url(url, namespace="wb")
record = Record(db_path, who)

def writer(key, value):
    time.sleep(0.002)                     # a slow system of record
    record.write(key, value)

wb = WriteBehindCache(store, writer, batch_size=10, flush_interval=0.01, lease=1.0)
print("ready", flush=True)
for i in range(n):
    key, value = f"{who}{i % 40}", f"{who}-{i}"   # 40 keys each: coalescing too
    print(f"setting {key} {value}", flush=True)
    wb.set(key, value)
    print(f"acked {key} {value}", flush=True)
print("done", flush=True)
time.sleep(60)                            # killed before it can finish writing
"""


def test_write_behind_recovery_after_kill_9(redis_server, tmp_path):
    """Rounds of two write-behind processes killed with -9 at random
    points (while setting, or with writes pending); a fresh instance then
    finishes their queue.  Every acknowledged write reaches the system of
    record, the latest value last."""
    import random
    db_path = str(tmp_path / "record.db")
    record = Record(db_path, "recovery")
    acked = {}
    in_flight = {}
    rng = random.Random(13)
    kills = 0
    recovered = []
    store = RedisStore.from_url(redis_server.url, namespace="wb")
    try:
        for round_ in range(5):
            children = [Child(WB_CHILD, redis_server.url, db_path, f"r{round_}{who}", "300")
                        for who in "ab"]
            try:
                for c in children:
                    assert c.read_line() == "ready"
                # kill each after a random number of acknowledged sets, or once done
                limits = [rng.choice([rng.randint(20, 280), None]) for _ in children]
                for c, limit in zip(children, limits):
                    n = 0
                    while True:
                        line = c.read_line()
                        if line == "done":
                            break
                        if not line.startswith("acked "):
                            continue
                        _, key, value = line.split()
                        acked[key] = value         # the latest acknowledged value per key
                        n += 1
                        if limit is not None and n >= limit:
                            break
                    if limit is None:
                        time.sleep(rng.uniform(0, 0.1))   # some batches written, some not
                    os.kill(c.pid, signal.SIGKILL)
                    kills += 1
                    c.proc.wait()
                for c in children:   # what each acknowledged before it died, in order
                    setting = None
                    for line in c.rest():
                        if line.startswith("acked "):
                            _, key, value = line.split()
                            acked[key] = value     # the latest acknowledged value per key
                            setting = None
                        elif line.startswith("setting "):
                            setting = line.split()[1:]
                    if setting is not None:        # died inside this set
                        in_flight[setting[0]] = setting[1]
            finally:
                for c in children:
                    c.finish()
            t0 = time.monotonic()
            wb = WriteBehindCache(store, record.write, flush_interval=0.01, lease=1.0)
            try:
                assert wait_for(lambda: store.queue_count() == 0, 20)
                recovered.append(time.monotonic() - t0)
            finally:
                wb.close()
    finally:
        store.close()
    figures = fault_figures(acked, record, in_flight)
    figures["died inside a set"] = len(in_flight)
    show(f"kill -9 of write-behind processes at {kills} random points", figures)
    record.close()
    assert figures["lost"] == 0 and figures["stale_last"] == 0
    print(f"queues finished {max(recovered):.2f}s at most after the kills (lease 1 s)")
    assert max(recovered) < 1.0 + 5.0


STALL_CHILD = r"""
import sys, threading, time
from corecache.distributed import RedisStore, WriteBehindCache
from dist_helpers import Record
url, db_path, versioned = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
store = RedisStore.from_url(url, namespace="stall")
record = Record(db_path, "stalled")
out = threading.Lock()       # two threads print: whole lines, never interleaved
held = [True]

def say(line):
    with out:
        print(line, flush=True)

def writer(key, value, version=0):
    say(f"writing {key} {value}")
    if held[0]:                           # stopped here by the test, until it says go
        held[0] = False
        sys.stdin.readline()
    if versioned:
        record.write_versioned(key, value, version)
    else:
        record.write(key, value)
    say(f"wrote {key} {value}")

wb = WriteBehindCache(store, writer, versioned=versioned, flush_interval=0.01, lease=0.5)
wb.set("k", "v1")
say("acked k v1")
time.sleep(60)
"""


@pytest.mark.parametrize("versioned", [False, True])
def test_a_flusher_stopped_past_its_lease_never_leaves_a_stale_value(redis_server, tmp_path,
                                                                      versioned):
    """A flusher is stopped (SIGSTOP) inside its writer, holding v1, past
    its lease; another instance sets v2, takes the key over and writes it;
    the stopped one resumes and finishes writing v1.  The system of record
    kept v1 for good.  Now a versioned writer refuses v1, and an unversioned
    one gets v2 written again after it (the takeover is remembered and v2
    queued again, for either flusher)."""
    db_path = str(tmp_path / "record.db")
    record = Record(db_path, "takeover")
    write = record.write_versioned if versioned else record.write
    child = Child(STALL_CHILD, redis_server.url, db_path, "1" if versioned else "0")
    store = RedisStore.from_url(redis_server.url, namespace="stall")
    wb = None
    try:
        # the flusher may start writing before set() returns to the child
        assert {child.read_line(), child.read_line()} == {"acked k v1", "writing k v1"}
        os.kill(child.pid, signal.SIGSTOP)            # inside the writer, holding the claim
        wb = WriteBehindCache(store, write, versioned=versioned, flush_interval=0.01,
                              lease=0.5)
        wb.set("k", "v2")
        assert wait_for(lambda: record.current().get("k") == "v2", 10)   # taken over
        os.kill(child.pid, signal.SIGCONT)
        child.send("go")                              # the stopped writer goes on with v1
        assert child.read_line() == "wrote k v1"      # the late write landed (or was refused)
        assert wait_for(lambda: record.current().get("k") == "v2" and store.queue_count() == 0
                        and len(record.log()) >= 3, 10)
        wb.flush(10)
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.finish()
        if wb is not None:
            wb.close()
        store.close()
    log = record.log()
    figures = fault_figures({"k": "v2"}, record)
    # v1 applied after v2 was: by the late write (whoever then writes v2
    # again: the queue re-queued it, and either flusher may claim it)
    first_v2 = next(i for i, (_, _, value, _, applied) in enumerate(log)
                    if value == "v2" and applied)
    figures["stale in between"] = int(any(value == "v1" and applied
                                          for _, _, value, _, applied in log[first_v2 + 1:]))
    show(f"SIGSTOP of a flusher past its lease ({'versioned' if versioned else 'unversioned'} "
         f"writer)", figures)
    record.close()
    assert figures["stale_last"] == 0 and figures["lost"] == 0, log
    assert [(who, value) for who, _, value, _, _ in log][:2] == [("takeover", "v2"),
                                                                ("stalled", "v1")], log
    if versioned:
        assert figures["stale in between"] == 0, log   # refused: never held v1 after v2
        assert log[1][4] == 0, log
    else:
        assert figures["stale in between"] == 1, log   # the late v1 landed...
        assert log[2][2] == "v2" and log[2][4] == 1, log   # ...and v2 was written after it


STAMPEDE_CHILD = r"""
import sys, time, os
from corecache.distributed import ReadThroughCache, RedisStore
url, log_path, go, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
store = RedisStore.from_url(url, namespace="stampede")

def loader(key):
    with open(log_path, "a") as f:
        f.write(f"{os.getpid()}\n")
    seconds = {"ok": 0.3, "raise": 0.3, "slow": 1.0}.get(mode, 0.3)
    if mode == "die":
        try:                                  # the first loader hangs (and is killed)
            os.close(os.open(log_path + ".first", os.O_CREAT | os.O_EXCL))
            seconds = 60
        except FileExistsError:
            pass
    time.sleep(seconds)
    if mode == "raise":
        raise RuntimeError("database down")
    return {"computed by": os.getpid()}

rt = ReadThroughCache(store, loader, ttl=60, lock_lease=0.3 if mode in ("slow", "die") else 10)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
try:
    print(rt.get("hot")["computed by"], rt.stats().lock_waits, flush=True)
except Exception as exc:
    print("raised", type(exc).__name__, rt.stats().lock_waits, flush=True)
time.sleep(60)
"""


def stampede(server, tmp_path, mode, kill_first=False):
    """4 processes miss one key at once: (answers, pids that loaded)."""
    log_path, go = tmp_path / "loads.log", tmp_path / "go"
    children = [Child(STAMPEDE_CHILD, server.url, str(log_path), str(go), mode)
                for _ in range(4)]
    try:
        for c in children:
            assert c.read_line() == "ready"
        go.write_text("go")
        if kill_first:
            assert wait_for(lambda: log_path.exists() and log_path.read_text(), 10)
            first = int(log_path.read_text().split()[0])
            os.kill(first, signal.SIGKILL)
            children = [c for c in children if c.pid != first]
        answers = [c.read_line().split() for c in children]
    finally:
        for c in children:
            c.finish()
    return answers, log_path.read_text().split()


def test_stampede_protection_between_processes(redis_server, tmp_path):
    answers, loads = stampede(redis_server, tmp_path, "ok")
    assert len(loads) == 1                     # one process loaded...
    assert {a[0] for a in answers} == {loads[0]}   # ...and every process got its value
    assert sum(int(a[1]) for a in answers) <= 3   # the others waited (or came late)


def test_a_raising_loader_runs_once_across_processes(redis_server, tmp_path):
    """The loader raises: the processes waiting for that load raise its
    failure (LoadFailed) instead of calling it in turn (4 calls before)."""
    answers, loads = stampede(redis_server, tmp_path, "raise")
    assert len(loads) == 1
    assert sorted(a[1] for a in answers) == ["LoadFailed"] * 3 + ["RuntimeError"]


def test_a_loader_slower_than_its_lease_runs_once_across_processes(redis_server, tmp_path):
    """lock_lease 0.3 s, a 1 s loader: the holder's lease is renewed while
    it loads, so nobody takes over (4 calls before)."""
    answers, loads = stampede(redis_server, tmp_path, "slow")
    assert len(loads) == 1 and {a[0] for a in answers} == {loads[0]}


def test_a_holder_killed_mid_load_is_replaced_by_one_waiter(redis_server, tmp_path):
    """The process holding the fill lock is killed with -9 while it loads:
    its lease runs out (0.3 s) and exactly one of the others loads."""
    answers, loads = stampede(redis_server, tmp_path, "die", kill_first=True)
    assert len(loads) == 2 and len(answers) == 3
    assert {a[0] for a in answers} == {loads[1]}
