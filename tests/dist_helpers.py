"""Helpers of the distributed tests: one wait_for, a system of record that
several processes write (SQLite), the figures a fault run reports, and
slot migrations on a real cluster."""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005) -> bool:
    """True once cond() is true, False if timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


async def await_for(cond: Callable[[], Any], timeout: float = 5.0,
                    interval: float = 0.005) -> bool:
    """wait_for on an event loop (cond() may return an awaitable): the loop
    runs meanwhile."""
    import asyncio
    import inspect
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


# ---- a system of record shared by processes -----------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT, version INTEGER);
CREATE TABLE IF NOT EXISTS log (n INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT, key TEXT,
                                value TEXT, version INTEGER, applied INTEGER);
"""


class Record:
    """A SQLite database standing for the system of record: ``kv`` holds
    the current value of each key, ``log`` every write the writers made.
    ``versioned`` writers refuse a version older than the one stored (the
    fencing a WriteBehindCache(versioned=True) writer should do).

    One connection serves the flusher's writes and the test's reads, one
    call at a time: a read in the middle of a write's transaction would see
    its uncommitted rows."""

    def __init__(self, path: str, who: str = "test") -> None:
        self.path = path
        self.who = who
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def write(self, key: str, value: Any, version: int = 0) -> None:
        with self._lock:
            self._write(key, value, version)

    def _write(self, key: str, value: Any, version: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (key, str(value), version))
            self.db.execute("INSERT INTO log (who, key, value, version, applied) "
                            "VALUES (?, ?, ?, ?, 1)", (self.who, key, str(value), version))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def write_versioned(self, key: str, value: Any, version: int) -> None:
        with self._lock:
            self._write_versioned(key, value, version)

    def _write_versioned(self, key: str, value: Any, version: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute("SELECT version FROM kv WHERE key = ?", (key,)).fetchone()
            applied = row is None or row[0] < version
            if applied:
                self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                                (key, str(value), version))
            self.db.execute("INSERT INTO log (who, key, value, version, applied) "
                            "VALUES (?, ?, ?, ?, ?)", (self.who, key, str(value), version,
                                                        int(applied)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def current(self) -> Dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT key, value FROM kv"))

    def log(self) -> List[Tuple[str, str, str, int, int]]:
        with self._lock:
            return list(self.db.execute("SELECT who, key, value, version, applied FROM log "
                                        "ORDER BY n"))

    def close(self) -> None:
        with self._lock:
            self.db.close()


def fault_figures(acked: Dict[str, Any], record: Record,
                  in_flight: Optional[Dict[str, Any]] = None) -> Dict[str, int]:
    """What a write-behind fault run reports, from the latest acknowledged
    value per key and the system of record (``in_flight``: per key, a later
    write that was being made when its process died: it may have been
    queued without the acknowledgement reaching the test, and then rightly
    replaces the acknowledged one):

    * acknowledged: keys with an acknowledged write (the latest counts);
    * written: writer calls (every write the system of record received);
    * lost: keys whose latest acknowledged value never reached it;
    * duplicated: writes of a (key, value) it had received before;
    * stale_last: keys whose current value is not the latest acknowledged
      one (lost ones included)."""
    log = record.log()
    current = record.current()
    seen = set()
    duplicated = 0
    reached = set()
    for _, key, value, _, _ in log:
        if (key, value) in seen:
            duplicated += 1
        seen.add((key, value))
        reached.add((key, value))
    want = {k: {str(v)} for k, v in acked.items()}
    for k, v in (in_flight or {}).items():
        want.setdefault(k, set()).add(str(v))
    return {
        "acknowledged": len(acked),
        "written": len(log),
        "lost": sum(1 for k, vs in want.items() if k in acked
                    and not any((k, v) in reached for v in vs)),
        "duplicated": duplicated,
        "stale_last": sum(1 for k, vs in want.items() if k in acked and current.get(k) not in vs),
    }


def show(what: str, figures: Dict[str, Any]) -> None:
    print(f"\n[fault run] {what}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


# ---- slot migrations on a real cluster ------------------------------------------


def node_ids(cluster: Any) -> Dict[int, str]:
    out = {}
    for n in cluster.nodes:
        c = n.client()
        try:
            out[n.port] = c.execute_command("CLUSTER", "MYID").decode()
        finally:
            c.close()
    return out


class SlotMigration:
    """A slot halfway through a migration, as ``redis-cli --cluster
    reshard`` leaves it between two MIGRATE batches: the source MIGRATING,
    the target IMPORTING, some keys moved.  ``finish()`` moves the rest and
    hands the slot over; ``abort()`` (used on the way out) drops the keys and
    makes the slot the source's again."""

    def __init__(self, cluster: Any, slot: int) -> None:
        self.cluster = cluster
        self.slot = slot
        ids = node_ids(cluster)
        client = cluster.client()
        try:
            owner = client.nodes_manager.get_node_from_slot(slot)
            self.source_port = owner.port
        finally:
            client.close()
        self.target_port = next(p for p in ids if p != self.source_port)
        self.ids = ids
        by_port = {n.port: n for n in cluster.nodes}
        self.source = by_port[self.source_port].client()
        self.target = by_port[self.target_port].client()
        self.target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING",
                                    ids[self.source_port])
        self.source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING",
                                    ids[self.target_port])

    def keys_on_source(self) -> List[bytes]:
        return list(self.source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 10000))

    def move(self, keys: Iterable[Any]) -> None:
        keys = list(keys)
        if keys:
            self.source.execute_command("MIGRATE", "127.0.0.1", self.target_port, "", 0, 5000,
                                        "KEYS", *keys)

    def finish(self) -> None:
        while True:
            left = self.keys_on_source()
            if not left:
                break
            self.move(left)
        for n in self.cluster.nodes:
            c = n.client()
            try:
                c.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE",
                                  self.ids[self.target_port])
            finally:
                c.close()

    def abort(self) -> None:
        """Drop every key of both nodes and make the slot stable (the
        source's) again: the session cluster is as redis-cli made it."""
        for c in (self.source, self.target):
            try:
                c.flushall()
                c.execute_command("CLUSTER", "SETSLOT", self.slot, "STABLE")
            except Exception:
                pass

    def close(self) -> None:
        self.source.close()
        self.target.close()
