"""Real redis-server processes for the tests: single nodes and a 3-master
Redis Cluster on loopback ports.

Every server runs in the foreground as a child of the test process with
PR_SET_PDEATHSIG(SIGKILL), so it dies with the test process even when
pytest itself is SIGKILLed (SIGKILL rather than SIGTERM: a server that a
test has SIGSTOPped would not act on SIGTERM).  Persistence is off unless a
test asks for it.  Readiness is probed with a client that neither retries
nor waits long to connect.

Usable from a plain script too (the benchmark imports the same logic from
corecache.bench.distributed, which cannot import tests/).

Which server: CORECACHE_REDIS_SERVER is the command that runs it, e.g.
``valkey-server`` or ``chroot /var/cache/corecache/sid redis-server``
(default: ``redis-server`` on PATH); CORECACHE_REDIS_CLI likewise for the
cluster set-up (default: the server's command with ``-server`` replaced by
``-cli``).  A prefix must exec the server (chroot does), so that the process
started is the server: the server's own pid is checked against it, since
signals (kill, pause) and PR_SET_PDEATHSIG go to that pid.  With a
``chroot DIR`` prefix the server's directory is made under DIR/tmp.
"""
from __future__ import annotations

import ctypes
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, List, Optional, Sequence



def _command(var: str, default: str) -> Optional[List[str]]:
    """The command in $var (or default), or None when its program is missing."""
    cmd = shlex.split(os.environ.get(var, "").strip() or default)
    exe = shutil.which(cmd[0]) if cmd else None
    if exe is None:
        return None
    root = _chroot_root(cmd)
    if root is not None and not any(os.access(os.path.join(root, d.lstrip("/"), cmd[-1]), os.X_OK)
                                    for d in ("/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin")):
        return None
    return [exe] + cmd[1:]


def _chroot_root(cmd: Sequence[str]) -> Optional[str]:
    """DIR when the command is ``chroot [OPTION...] DIR PROGRAM...``."""
    if not cmd or os.path.basename(cmd[0]) != "chroot":
        return None
    dirs = [a for a in cmd[1:] if not a.startswith("-")]
    return dirs[0] if dirs else None


REDIS_SERVER_COMMAND = _command("CORECACHE_REDIS_SERVER", "redis-server")
_server_words = shlex.split(os.environ.get("CORECACHE_REDIS_SERVER", "").strip() or "redis-server")
REDIS_CLI_COMMAND = _command(
    "CORECACHE_REDIS_CLI",
    shlex.join(_server_words[:-1] + [_server_words[-1].replace("-server", "-cli")]))
# the programs (None when missing), as before the commands could be chosen
REDIS_SERVER = REDIS_SERVER_COMMAND[-1] if REDIS_SERVER_COMMAND else None
REDIS_CLI = REDIS_CLI_COMMAND[-1] if REDIS_CLI_COMMAND else None
_SERVER_ROOT = _chroot_root(REDIS_SERVER_COMMAND or ())

# the cluster bus listens on port + 10000, which must stay <= 65535
MAX_CLUSTER_PORT = 55535

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass
    # the parent may have died between fork and prctl
    if os.getppid() == 1:
        os._exit(1)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster: bool = False) -> int:
    """A loopback port nobody listens on (and, for a cluster node, whose bus
    port, port + 10000, is free too)."""
    for _ in range(200):
        port = random.randint(20000, MAX_CLUSTER_PORT if cluster else 60999)
        if _port_free(port) and (not cluster or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free loopback port found")


def quick_client(port: int, **kw: Any) -> Any:
    """A client that fails at once: no retries, short timeouts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    kw.setdefault("socket_connect_timeout", 0.5)
    kw.setdefault("socket_timeout", 2.0)
    return redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0), **kw)


class RedisServer:
    """One redis-server in the foreground, on a loopback port."""

    def __init__(self, port: Optional[int] = None, *, args: Sequence[str] = (),
                 cluster: bool = False, persistence: bool = False) -> None:
        if REDIS_SERVER is None:
            raise FileNotFoundError("redis-server is not installed")
        self.cluster = cluster
        self.port = port or free_port(cluster)
        # the directory as this process sees it; server_dir as the server does
        tmp = os.path.join(_SERVER_ROOT, "tmp") if _SERVER_ROOT else None
        self.dir = tempfile.mkdtemp(prefix=f"corecache-redis-{self.port}-", dir=tmp)
        self.server_dir = "/" + os.path.relpath(self.dir, _SERVER_ROOT) if _SERVER_ROOT else self.dir
        self.version: Optional[str] = None
        self.args = list(args)
        self.persistence = persistence
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = os.path.join(self.dir, "redis.log")
        self.server_log_path = os.path.join(self.server_dir, "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> List[str]:
        assert REDIS_SERVER_COMMAND is not None
        cmd = [*REDIS_SERVER_COMMAND, "--port", str(self.port), "--bind", "127.0.0.1",
               "--daemonize", "no", "--dir", self.server_dir, "--logfile", self.server_log_path,
               "--enable-debug-command", "local", "--save", "",
               "--appendonly", "yes" if self.persistence else "no"]
        if self.persistence:
            cmd += ["--appendfsync", "always"]
        if self.cluster:
            cmd += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000"]
        return cmd + self.args

    def start(self, timeout: float = 10.0) -> "RedisServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=_die_with_parent)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"redis-server on port {self.port} exited with "
                                   f"{self.proc.returncode}: {err}{self._log_tail()}")
            try:
                c = quick_client(self.port, socket_connect_timeout=0.2)
                try:
                    if c.ping():
                        info = c.info("server")
                        break
                finally:
                    c.close()
            except Exception as exc:  # not listening yet, or still loading
                last = exc
            time.sleep(0.01)
        else:
            raise TimeoutError(f"redis-server on port {self.port} not ready after {timeout}s: "
                               f"{last!r}{self._log_tail()}")
        self.version = info.get("valkey_version") or info.get("redis_version")
        if self.proc is not None and int(info.get("process_id", self.proc.pid)) != self.proc.pid:
            # a wrapper that forked: our signals and PR_SET_PDEATHSIG would miss the server
            pid = info.get("process_id")
            self.proc.kill()
            os.kill(int(pid), signal.SIGKILL)
            raise RuntimeError(f"the server on port {self.port} is pid {pid}, not the process "
                               f"started ({self.proc.pid}): its command must exec the server")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path) as f:
                return "\n" + "".join(f.readlines()[-10:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw: Any) -> Any:
        return quick_client(self.port, **kw)

    def kill(self) -> None:
        """SIGKILL, as a crash: clients see ConnectionError at once."""
        if self.running:
            self.resume()
            self.proc.kill()   # type: ignore[union-attr]
            self.proc.wait()   # type: ignore[union-attr]

    def pause(self) -> None:
        """SIGSTOP: the server holds connections but answers nothing."""
        if self.running:
            self.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self) -> None:
        if self.running:
            self.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]

    def restart(self, timeout: float = 10.0) -> None:
        """Kill and start again on the same port and directory."""
        self.kill()
        deadline = time.monotonic() + 5
        while not _port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.start(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start() if not self.running else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RedisClusterServers:
    """Three masters, no replicas, on loopback; slots spread by redis-cli."""

    def __init__(self, masters: int = 3) -> None:
        if REDIS_CLI is None:
            raise FileNotFoundError("redis-cli is not installed (Debian package redis-tools)")
        self.nodes = [RedisServer(cluster=True) for _ in range(masters)]

    @property
    def ports(self) -> List[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 30.0) -> "RedisClusterServers":
        try:
            for n in self.nodes:
                n.start()
            cmd = [*REDIS_CLI_COMMAND, "--cluster", "create"]
            cmd += [f"127.0.0.1:{p}" for p in self.ports]
            cmd += ["--cluster-replicas", "0", "--cluster-yes"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {r.stdout}{r.stderr}")
            self._wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = 0
            for n in self.nodes:
                c = n.client()
                try:
                    info = c.execute_command("CLUSTER", "INFO")
                    if isinstance(info, dict):
                        state = info.get("cluster_state")
                    else:
                        text = info.decode() if isinstance(info, bytes) else str(info)
                        state = "ok" if "cluster_state:ok" in text else "fail"
                    ok += state in ("ok", b"ok")
                except Exception:
                    pass
                finally:
                    c.close()
            if ok == len(self.nodes):
                return
            time.sleep(0.05)
        raise TimeoutError(f"cluster on ports {self.ports} not ok after {timeout}s")

    def client(self, **kw: Any) -> Any:
        from redis.backoff import NoBackoff
        from redis.cluster import RedisCluster
        from redis.retry import Retry
        kw.setdefault("socket_connect_timeout", 0.5)
        kw.setdefault("socket_timeout", 2.0)
        kw.setdefault("retry", Retry(NoBackoff(), 0))
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, **kw)

    def flushall(self) -> None:
        for n in self.nodes:
            c = n.client()
            try:
                c.flushall()
            finally:
                c.close()

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> "RedisClusterServers":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def counting_client(port: int, **kw: Any) -> Any:
    """A redis.Redis whose connections count the batches they send: one
    send is one round trip (a pipeline sends all its commands at once)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class CountingConnection(redis.Connection):
        sends = 0

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            type(self).sends += 1
            super().send_packed_command(command, check_health)

    kw.setdefault("socket_timeout", 2.0)
    kw.setdefault("socket_connect_timeout", 0.5)
    pool = redis.ConnectionPool(connection_class=CountingConnection, host="127.0.0.1",
                                port=port, retry=Retry(NoBackoff(), 0), **kw)
    client = redis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True   # close() disconnects the pool too
    client.counter = CountingConnection        # type: ignore[attr-defined]
    return client


if __name__ == "__main__":  # manual use: python tests/redis_servers.py [cluster]
    if sys.argv[1:] == ["cluster"]:
        with RedisClusterServers() as cl:
            print("cluster on", cl.ports)
            input("enter to stop")
    else:
        with RedisServer() as s:
            print("redis on", s.port)
            input("enter to stop")
