"""Real servers for tests: Redis on a free port and Celery worker processes, started and stopped at will."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from config import BASE_DIR
from leads.dev.redis_server import find_redis_server, server_args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class RedisServer:
    """A redis-server process on a fixed port, which a test may stop and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            server_args(self.port, self.data_dir, persist=False),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Worker:
    """A real `celery worker` process bound to the test environment."""

    def __init__(
        self, env: dict, log_path: Path, pool: str = "solo", concurrency: int = 1, options: tuple = ()
    ) -> None:
        """`options`: more `celery worker` command-line options (--soft-time-limit 6)."""
        self.env = {**os.environ, **env}
        self.options = options
        self.log_path = log_path
        self.pool = pool
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0, wait: bool = True) -> None:
        """Start the worker; unless told not to wait, return once it says it is ready."""
        log = self.log_path.open("ab")
        seen = log.tell()  # a restarted worker writes "ready." again after what is there
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.worker",
                "worker",
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{free_port()}@%h",
                *self.options,
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes()[seen:]:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def child_pids(self) -> list[int]:
        """Pool processes of a prefork worker (read from /proc, Linux only)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children


class SentinelCluster:
    """One Redis master, one replica and three Sentinels on loopback (a redis-server binary run
    with --sentinel); `kill_master` kills whichever node is the master now."""

    MASTER_NAME = "mymaster"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.node_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.nodes: dict[int, subprocess.Popen] = {}
        self.sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports)

    @property
    def process(self) -> subprocess.Popen | None:
        """The master's process while it runs (the fault stack checks it is up)."""
        return self.nodes.get(self.master_port())

    def start(self) -> None:
        master, replica = self.node_ports
        for port in self.node_ports:
            extra = [] if port == master else ["--replicaof", "127.0.0.1", str(master)]
            self._start_node(port, extra)
        for port in self.sentinel_ports:
            conf = self.data_dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.data_dir}\n"
                f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {self.MASTER_NAME} 3000\n"
                f"sentinel parallel-syncs {self.MASTER_NAME} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [find_redis_server(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for_port(port)
        self._wait_until_the_sentinels_know_each_other()

    def _start_node(self, port: int, extra: list[str]) -> None:
        directory = self.data_dir / f"node-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.nodes[port] = subprocess.Popen(
            server_args(port, directory, persist=False) + extra,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port)

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)

    def _wait_until_the_sentinels_know_each_other(self, timeout: float = 30.0) -> None:
        """A failover needs every Sentinel to know the replica and the two other Sentinels."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            known = [
                (
                    len(self._sentinel(port).sentinel_slaves(self.MASTER_NAME)),
                    len(self._sentinel(port).sentinel_sentinels(self.MASTER_NAME)),
                )
                for port in self.sentinel_ports
            ]
            if all(replicas >= 1 and others >= 2 for replicas, others in known):
                return
            time.sleep(0.2)
        raise RuntimeError("the Sentinels did not discover each other and the replica")

    def master_port(self) -> int:
        for port in self.sentinel_ports:
            try:
                return int(self._sentinel(port).sentinel_get_master_addr_by_name(self.MASTER_NAME)[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answers")

    def kill_master(self) -> int:
        port = self.master_port()
        process = self.nodes.pop(port)
        process.kill()
        process.wait()
        return port

    def wait_for_failover(self, old_master: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.master_port()
            if port != old_master:
                return port
            time.sleep(0.2)
        raise RuntimeError("the Sentinels did not promote the replica")

    def stop(self) -> None:
        for process in [*self.sentinels, *self.nodes.values()]:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.sentinels.clear()
        self.nodes.clear()
