"""Run a benchmark's child (a command, or a function) and measure its whole process tree.

Every benchmark runs the code under test and its baselines as child processes, so that one method's
memory never counts against another's. :func:`run_tree` runs a command (a Spark job: its JVM included)
and samples the tree every ``interval`` seconds with psutil: peak RSS of the tree, peak RSS of its first
Python process (for a Spark job, the driver that submits; local mode's JVM is its child), and user +
system CPU seconds (the last sample of each process, so at most ``interval`` of each process's last CPU
time is missed). :func:`run_call` runs ``fn(*args)`` in a child process and returns its result with the
wall and CPU seconds measured inside the child and the peak RSS of the child's tree.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TreeRun:
    seconds: float  # wall time
    peak_mb: float  # peak RSS of the process tree, MiB
    python_peak_mb: float  # peak RSS of the tree's first Python process, MiB
    cpu_s: float  # user + system CPU seconds of the tree
    returncode: int  # -9 after a timeout
    output: str  # tail of stdout + stderr ("" with capture=False)


def _sample(root: psutil.Process, cpu: dict[int, float]) -> tuple[int, int]:
    """RSS of ``root``'s process tree and of its first Python process, in bytes; records each process's
    user + system CPU seconds in ``cpu`` (by pid). Processes that end while being read are skipped."""
    try:
        tree = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0, 0
    rss, py = 0, None
    for p in tree:
        try:
            with p.oneshot():
                mem, times = p.memory_info().rss, p.cpu_times()
                if py is None and "python" in p.name():
                    py = mem
        except psutil.Error:
            continue
        rss += mem
        cpu[p.pid] = times.user + times.system
    return rss, py or 0


def run_tree(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, timeout: float | None = None,
             capture: bool = True, interval: float = 0.2, tail: int = 3000) -> TreeRun:
    """Run ``cmd`` (``env`` is added to this process's environment) and measure its process tree.

    ``capture``: keep the last ``tail`` characters of its stdout and stderr (else they are inherited).
    ``timeout``: kill the command after that many seconds. The caller decides what a non-zero
    return code means.
    """
    t0 = time.perf_counter()
    log = tempfile.TemporaryFile() if capture else None
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT if capture else None)
    root = psutil.Process(proc.pid)
    cpu: dict[int, float] = {}
    peak = py_peak = 0
    while proc.poll() is None:
        rss, py = _sample(root, cpu)
        peak, py_peak = max(peak, rss), max(py_peak, py)
        if timeout is not None and time.perf_counter() - t0 > timeout:
            proc.kill()
            proc.wait()
            break
        time.sleep(interval)
    out = ""
    if log is not None:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - 4 * tail))  # a Spark job's log can be large: read only its end
        out = log.read().decode(errors="replace")[-tail:]
        log.close()
    return TreeRun(time.perf_counter() - t0, peak / 2**20, py_peak / 2**20, sum(cpu.values()), proc.returncode, out)


@dataclass(frozen=True)
class CallRun:
    result: Any  # fn's return value (None after a timeout)
    seconds: float | None  # wall time of the call inside the child (None after a timeout)
    cpu_s: float | None  # CPU seconds of the call inside the child (its own process)
    peak_mb: float  # peak RSS of the child's process tree, MiB
    timed_out: bool


def _call(q, fn: Callable, args: tuple) -> None:
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    q.put((time.perf_counter() - t, time.process_time() - c, out))


def run_call(fn: Callable, *args, timeout: float | None = None, start: str = "fork",
             interval: float = 0.1) -> CallRun:
    """``fn(*args)`` in a child process (``start``: the multiprocessing start method; ``spawn`` needs an
    importable ``fn``). Raises if the child dies without a result; kills it after ``timeout`` seconds."""
    ctx = mp.get_context(start)
    q = ctx.Queue()
    child = ctx.Process(target=_call, args=(q, fn, args))
    t0 = time.perf_counter()
    child.start()
    root, peak = psutil.Process(child.pid), 0
    while True:
        peak = max(peak, _sample(root, {})[0])
        alive = child.is_alive()  # read before the queue: a result put just before exiting is still found
        try:
            secs, cpu, out = q.get(timeout=interval if alive else 1.0)
            child.join()
            return CallRun(out, secs, cpu, peak / 2**20, False)
        except queue.Empty:
            pass
        if not alive:
            raise RuntimeError(f"{getattr(fn, '__name__', fn)}: child exited with {child.exitcode} and no result")
        if timeout is not None and time.perf_counter() - t0 > timeout:
            child.kill()
            child.join()
            return CallRun(None, None, None, peak / 2**20, True)
