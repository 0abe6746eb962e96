"""A multi-host Spark standalone cluster on one machine: master and two workers (``workers=N``: N), each in its own
network namespace.

Every host is a namespace ``<prefix>-m``, ``<prefix>-w1``, ``<prefix>-w2`` holding one end (``eth0``) of a veth
pair whose other end is enslaved to a bridge ``<prefix>br`` in the root namespace (``<prefix>`` = ``grfc<n>``, ``n`` in
1..200 from the PID); the bridge carries ``10.231.<n>.1/24`` (the driver's address), the master is ``.10``, the
workers ``.11``, ``.12`` (…). Shuffle blocks,
broadcasts and heartbeats therefore cross a real network path that a fault can cut
(``ip link set eth0 down`` inside a worker's namespace). Only these addresses and loopback are used.

The JVMs are started with ``ip netns exec`` (which ``exec``s through ``spark-class`` into ``java``, so the PID we hold
is the JVM's) in their own process groups, and stopped by PID. A small tmpfs (``disk_full``) is mounted *before*
the workers start: ``/`` is usually a private mount, so a later mount would not be seen inside the namespaces.
Namespaces, veths, the bridge and the tmpfs are removed on exit, failure included; a stale set left by a killed run
(same prefix) is removed before a start.

    with NetnsCluster(Path("/tmp/c")) as c:
        subprocess.run(c.submit_cmd("jobs/ingest_graph.py", "--input", ...), env=c.driver_env())
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger("benchmarks.netns_cluster")

SUBNET = "10.231"  # 10.231.<n>.0/24, n from the PID: two runs at once (a CI clone beside a checkout) never share names


def _slot() -> int:
    return os.getpid() % 200 + 1
MASTER_PORT, MASTER_UI = 7077, 8080
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def unavailable_reason() -> str | None:
    """Why a namespace cluster cannot run here (not root, no ``ip netns``, no Spark), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) not installed"
    probe = f"grfcprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if not (BIN / "spark-class").exists():
        return "spark-class not found beside the interpreter (pyspark not installed in this venv)"
    return None


def children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class NetnsCluster:
    """Master + ``workers`` (default two) 1-core workers in namespaces; the driver (spark-submit) runs in the root
    namespace. ``spark.cores.max`` of :meth:`submit_cmd` follows ``workers``."""

    def __init__(self, work: Path, slot: int | None = None, worker_memory: str = "1g", executor_memory: str = "512m",
                 disk_full_size: str = "256k", workers: int = 2):
        if not 1 <= workers <= 200:
            raise ValueError(f"workers must be in 1..200, got {workers}")
        n = _slot() if slot is None else slot
        self.work, self.prefix = Path(work), f"grfc{n}"
        net = f"{SUBNET}.{n}"
        self.driver_ip, self.master_ip = f"{net}.1", f"{net}.10"
        self.worker_memory, self.executor_memory = worker_memory, executor_memory
        self.disk_full_size = disk_full_size
        self.bridge = f"{self.prefix}br"
        self.workers = [f"w{i}" for i in range(1, workers + 1)]  # w1 .11, w2 .12, ...
        self.hosts = {"m": self.master_ip, **{w: f"{net}.{10 + i}" for i, w in enumerate(self.workers, 1)}}
        self.procs: dict[str, subprocess.Popen] = {}
        self.disk_full = self.work / "disk_full"
        self._mounted = False
        self.url = f"spark://{self.master_ip}:{MASTER_PORT}"

    # ---- network ----------------------------------------------------------------------------------------------
    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def _teardown_net(self) -> None:
        for host in self.hosts:
            _ip("netns", "del", self.ns(host), check=False)  # removes the namespace's veth end and its peer
            _ip("link", "del", self.ns(host), check=False)
        _ip("link", "del", self.bridge, check=False)

    def _setup_net(self) -> None:
        self._teardown_net()  # a stale set from a killed run
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.driver_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, addr in self.hosts.items():
            ns = self.ns(host)
            _ip("netns", "add", ns)
            _ip("link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", ns, "master", self.bridge)
            _ip("link", "set", ns, "up")
            for cmd in (["link", "set", "lo", "up"], ["addr", "add", f"{addr}/24", "dev", "eth0"],
                        ["link", "set", "eth0", "up"]):
                _ip("netns", "exec", ns, "ip", *cmd)

    def link(self, host: str, up: bool) -> None:
        """Cut (``up=False``) or restore a host's only link, from inside its namespace."""
        _ip("netns", "exec", self.ns(host), "ip", "link", "set", "eth0", "up" if up else "down")

    # ---- processes --------------------------------------------------------------------------------------------
    def _env(self, ip: str, host: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "PYTHON"))}
        env.update(SPARK_LOCAL_IP=ip, SPARK_LOG_DIR=str(self.work / "logs"), SPARK_DAEMON_MEMORY="256m",
                   SPARK_WORKER_DIR=str(self.work / host / "work"), SPARK_LOCAL_DIRS=str(self.work / host / "local"),
                   PYSPARK_PYTHON=sys.executable)
        return env

    def _start(self, host: str, args: list[str]) -> subprocess.Popen:
        (self.work / host / "local").mkdir(parents=True, exist_ok=True)
        logf = open(self.work / f"{host}.log", "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(host), str(BIN / "spark-class"), *args],
                             env=self._env(self.hosts[host], host), cwd=self.work / host, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        self.procs[host] = p
        return p

    def start_worker(self, host: str) -> None:
        self._start(host, ["org.apache.spark.deploy.worker.Worker", self.url, "--host", self.hosts[host],
                           "--cores", "1", "--memory", self.worker_memory, "--webui-port", "8081",
                           "--work-dir", str(self.work / host / "work")])

    def state(self) -> dict:
        return json.load(urllib.request.urlopen(f"http://{self.master_ip}:{MASTER_UI}/json/", timeout=3))

    def wait_workers(self, n: int | None = None, timeout: float = 120) -> None:
        n = len(self.workers) if n is None else n
        deadline = time.time() + timeout
        while True:
            try:
                if self.state().get("aliveworkers", 0) >= n:
                    return
            except OSError:
                pass
            dead = [h for h, p in self.procs.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                tail = "".join((self.work / f"{h}.log").read_text(errors="replace")[-1500:] for h in self.procs)
                raise RuntimeError(f"cluster not up (dead: {dead}):\n{tail}")
            time.sleep(1)

    def stop_proc(self, host: str) -> None:
        p = self.procs.pop(host, None)
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        # the group may still hold an executor or Python daemons
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def executors(self, host: str) -> list[int]:
        """PIDs of the executor JVMs a worker launched."""
        p = self.procs.get(host)
        return [c for c in children(p.pid) if "CoarseGrainedExecutorBackend" in cmdline(c)] if p else []

    def kill_executor(self, host: str) -> list[int]:
        pids = self.executors(host)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def kill_worker(self, host: str) -> None:
        """kill -9 the worker JVM and its whole group (executor, Python workers)."""
        p = self.procs.pop(host)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()

    def restart_worker(self, host: str) -> None:
        self.stop_proc(host)
        self.start_worker(host)
        self.wait_workers()

    # ---- disk -------------------------------------------------------------------------------------------------
    def resize_disk_full(self, size: str) -> None:
        """Resize the small tmpfs in place (the same superblock is seen inside every namespace)."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.disk_full)], check=True)

    # ---- driver -----------------------------------------------------------------------------------------------
    def driver_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "PYTHON"))}
        env.update(SPARK_LOCAL_IP=self.driver_ip, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
                   OMP_NUM_THREADS="1")
        return env

    def submit_cmd(self, app: str, *args: str, zip_path: Path | None = None, conf: dict | None = None) -> list[str]:
        from jobs.runtime.session import build_zip

        zp = zip_path or build_zip()
        settings = {"spark.driver.host": self.driver_ip, "spark.driver.bindAddress": self.driver_ip,
                    "spark.pyspark.python": sys.executable, "spark.ui.enabled": "false",
                    "spark.executor.memory": self.executor_memory, "spark.driver.memory": "768m",
                    "spark.executor.cores": "1", "spark.cores.max": str(len(self.workers)), **(conf or {})}
        cmd = [str(BIN / "spark-submit"), "--master", self.url, "--py-files", str(zp)]
        for k, v in settings.items():
            cmd += ["--conf", f"{k}={v}"]
        return cmd + [str(ROOT / app), *args]

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> "NetnsCluster":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.work.mkdir(parents=True, exist_ok=True)
        self.disk_full.mkdir(exist_ok=True)
        try:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.disk_full_size}", "tmpfs",
                            str(self.disk_full)], check=True, capture_output=True)
            self._mounted = True
            self._setup_net()
            self._start("m", ["org.apache.spark.deploy.master.Master", "--host", self.master_ip, "--port",
                              str(MASTER_PORT), "--webui-port", str(MASTER_UI)])
            for h in self.workers:
                self.start_worker(h)
            self.wait_workers()
        except BaseException:
            self.stop()
            raise
        log.info("netns cluster up: master %s, workers %s", self.url, tuple(self.hosts[w] for w in self.workers))
        return self

    def stop(self) -> None:
        for host in (*self.workers, "m"):
            self.stop_proc(host)
        self._teardown_net()
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.disk_full)], check=False)
            self._mounted = False

    def __enter__(self) -> "NetnsCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
