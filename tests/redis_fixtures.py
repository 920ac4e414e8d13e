"""pytest fixtures with real Redis servers (imported by conftest.py).

* ``redis_server``: a single node shared by the session, flushed and with
  its configuration reset before each test;
* ``fresh_redis``: a node of the test's own, for tests that kill, restart,
  pause or reconfigure it;
* ``redis_cluster``: a 3-master cluster shared by the session, flushed
  before each test;
* ``store_kind`` / ``make_store``: MemoryStore, RedisStore on the single
  node, RedisStore on the cluster.

Without redis-server these tests skip, unless CORECACHE_REQUIRE_REDIS=1
(set by scripts/test, and so in CI), which makes them fail instead.
CORECACHE_REDIS_SERVER / CORECACHE_REDIS_CLI choose the server (see
redis_servers.py), e.g. Valkey from scripts/chroot.  Every
test using them also checks that no corecache thread outlives it.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

from redis_servers import REDIS_CLI, REDIS_SERVER, RedisClusterServers, RedisServer

REQUIRE_REDIS = os.environ.get("CORECACHE_REQUIRE_REDIS", "") not in ("", "0")

__all__ = ["fresh_redis", "make_store", "no_thread_leaks", "redis_cluster",
           "redis_cluster_session", "redis_server", "redis_server_session", "store_kind",
           "require_redis", "REQUIRE_REDIS", "leftover_threads"]


def require_redis(cluster: bool = False) -> None:
    """Skip (or, under CORECACHE_REQUIRE_REDIS, fail) without Redis."""
    why = None
    try:
        import redis  # noqa: F401
    except ImportError:
        why = "redis-py is not installed"
    if REDIS_SERVER is None:
        why = (f"{os.environ.get('CORECACHE_REDIS_SERVER') or 'redis-server'} is not installed "
               "(Debian: apt-get install redis-server)")
    elif cluster and REDIS_CLI is None:
        why = (f"{os.environ.get('CORECACHE_REDIS_CLI') or 'redis-cli'} is not installed "
               "(Debian: apt-get install redis-tools)")
    if why is not None:
        if REQUIRE_REDIS:
            pytest.fail(f"{why}; CORECACHE_REQUIRE_REDIS is set, so Redis tests must run")
        pytest.skip(why)


def leftover_threads(timeout: float = 3.0) -> List[threading.Thread]:
    deadline = time.monotonic() + timeout
    while True:
        left = [t for t in threading.enumerate()
                if t.name.startswith("corecache-") and t.name != "corecache-cleaner"
                and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    left = [t for t in leftover_threads() if t not in before]
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer().start()
    yield server
    server.stop()


def _reset(server: RedisServer) -> None:
    server.resume()
    if not server.running:
        server.start()
    c = server.client()
    try:
        c.config_set("maxmemory", 0)
        c.config_set("maxmemory-policy", "noeviction")
        c.execute_command("CLIENT", "UNPAUSE")
        c.flushall()
        c.script_flush()
    finally:
        c.close()


def _client_count(server: RedisServer) -> int:
    c = server.client()
    try:
        return int(c.info("clients")["connected_clients"]) - 1   # not this one
    finally:
        c.close()


def _kill_clients(server: RedisServer) -> None:
    c = server.client()
    try:
        for kind in ("normal", "pubsub"):
            c.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
    finally:
        c.close()


@pytest.fixture
def redis_server(redis_server_session: RedisServer, no_thread_leaks: None) -> Iterator[RedisServer]:
    _reset(redis_server_session)
    _kill_clients(redis_server_session)     # whatever an earlier test left
    yield redis_server_session
    _reset(redis_server_session)
    # every connection the test opened was closed (stores, listeners, clients)
    deadline = time.monotonic() + 3
    while _client_count(redis_server_session) and time.monotonic() < deadline:
        time.sleep(0.01)
    left = _client_count(redis_server_session)
    assert left == 0, f"{left} connection(s) to Redis left open"


@pytest.fixture
def fresh_redis(no_thread_leaks: None) -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisClusterServers]:
    require_redis(cluster=True)
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisClusterServers,
                  no_thread_leaks: None) -> Iterator[RedisClusterServers]:
    redis_cluster_session.flushall()
    yield redis_cluster_session


def _redis_client_kwargs() -> dict:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    return {"socket_timeout": 1.0, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0)}


@pytest.fixture(params=["memory", "redis", "cluster"])
def store_kind(request: Any) -> str:
    return request.param


@pytest.fixture
def make_store(request: Any, store_kind: str,
               no_thread_leaks: None) -> Iterator[Callable[..., Any]]:
    """make_store(**store_kwargs) -> a store of the test's kind, closed at
    the end (every store made by one test shares the server)."""
    from corecache.distributed import MemoryStore, RedisStore
    made: List[Any] = []
    memory: dict = {}
    if store_kind == "redis":
        server = request.getfixturevalue("redis_server")
    elif store_kind == "cluster":
        cluster = request.getfixturevalue("redis_cluster")

    def make(**kw: Any) -> Any:
        if store_kind == "memory":
            # stores of one test on one "server": the same MemoryStore per namespace
            key = (kw.get("namespace", "corecache"), kw.get("serializer", "json"))
            if key not in memory:
                memory[key] = MemoryStore(**kw)
            return memory[key]
        import redis
        kw.setdefault("circuit_breaker", 0.2)
        if store_kind == "redis":
            client = redis.Redis(host="127.0.0.1", port=server.port, **_redis_client_kwargs())
        else:
            client = cluster.client(**_redis_client_kwargs())
        store = RedisStore(client, **kw)
        store._owns_client = True
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
