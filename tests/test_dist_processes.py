"""Real processes on one Redis: near-cache invalidation between two
processes, write-behind recovery after kill -9 of the writing process, and
stampede protection across processes."""
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
from redis_servers import _die_with_parent

pytestmark = pytest.mark.redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(corecache.__file__)))


class Child:
    """A Python child process (killed with the test process), whose stdout
    lines are read by a thread so that a read can time out."""

    def __init__(self, code: str, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
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
import sys, time, os
from corecache.distributed import RedisStore, WriteBehindCache
url, log_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = RedisStore.from_url(url, namespace="wb")
log = open(log_path, "a")

def writer(key, value):
    time.sleep(0.02)                      # a slow system of record
    log.write(f"{key}={value}\n")
    log.flush()
    os.fsync(log.fileno())

wb = WriteBehindCache(store, writer, batch_size=10, flush_interval=0.01, lease=1.0)
for i in range(n):
    wb.set(f"k{i % 40}", i)               # 40 keys: coalescing too
    print(f"acked k{i % 40} {i}", flush=True)
print("done", flush=True)
time.sleep(60)                            # killed before it can finish writing
"""


def test_write_behind_recovery_after_kill_9(redis_server, tmp_path):
    log_path = tmp_path / "written.log"
    child = Child(WB_CHILD, redis_server.url, str(log_path), "200")
    acked = {}
    try:
        while True:
            line = child.read_line()
            if line == "done":
                break
            _, key, value = line.split()
            acked[key] = int(value)            # the latest acknowledged value per key
        time.sleep(0.1)                        # let it write a few batches...
        os.kill(child.pid, signal.SIGKILL)     # ...and die in the middle of them
        child.proc.wait()
    finally:
        child.finish()
    before = log_path.read_text().splitlines() if log_path.exists() else []
    assert len(before) < 200                   # it really died with writes pending
    store = RedisStore.from_url(redis_server.url, namespace="wb")
    assert store.queue_count() > 0
    got = {}
    calls = []

    def writer(key, value):
        calls.append((key, value))
        got[key] = value

    t0 = time.monotonic()
    wb = WriteBehindCache(store, writer, flush_interval=0.01, lease=1.0)
    try:
        deadline = time.monotonic() + 15
        while store.queue_count() and time.monotonic() < deadline:
            time.sleep(0.01)
        recovered_in = time.monotonic() - t0
        assert store.queue_count() == 0
    finally:
        wb.close()
        store.close()
    final = {}
    for line in before:
        k, v = line.split("=")
        final[k] = int(v)
    final.update(got)
    assert final == acked                      # every acknowledged write, the latest value
    redelivered = sum(1 for k, v in calls if f"{k}={v}" in before)
    print(f"\nrecovered {len(got)} keys in {recovered_in:.2f}s (lease 1 s); "
          f"{redelivered} write(s) delivered twice (at-least-once)")
    assert recovered_in < 1.0 + 3.0


STAMPEDE_CHILD = r"""
import sys, time, os
from corecache.distributed import ReadThroughCache, RedisStore
url, log_path, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = RedisStore.from_url(url, namespace="stampede")

def loader(key):
    with open(log_path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.3)
    return {"computed by": os.getpid()}

rt = ReadThroughCache(store, loader, ttl=60)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
print(rt.get("hot")["computed by"], rt.stats().lock_waits, flush=True)
"""


def test_stampede_protection_between_processes(redis_server, tmp_path):
    log_path, go = tmp_path / "loads.log", tmp_path / "go"
    children = [Child(STAMPEDE_CHILD, redis_server.url, str(log_path), str(go))
                for _ in range(4)]
    try:
        for c in children:
            assert c.read_line() == "ready"
        go.write_text("go")
        answers = [c.read_line().split() for c in children]
    finally:
        for c in children:
            c.finish()
    loads = log_path.read_text().split()
    assert len(loads) == 1                     # one process loaded...
    assert {a[0] for a in answers} == {loads[0]}   # ...and every process got its value
    assert sum(int(a[1]) for a in answers) <= 3   # the others waited (or came late)
